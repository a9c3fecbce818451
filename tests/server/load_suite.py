"""64 concurrent streaming clients (16 under ASan) through serve_load.py, twice: zero
errors, every token delivered, bounded time, memory that does not grow from the first
round to the second, and the cache back to all pages and slots free afterwards. Then a
full queue: requests beyond --max-seqs + --max-queue get 429 with Retry-After."""
import json
import os
import subprocess
import sys
import threading

import srvlib
from srvlib import check

clients = 16 if srvlib.SANITIZED else 64
max_tokens = 8 if srvlib.SANITIZED else 32
limit_s = 600 if srvlib.SANITIZED else 300

work = srvlib.scratch("server-load")
model = srvlib.make_model(work + "/model")
srv = srvlib.Server(model, store=work + "/store")
driver = os.path.join(os.path.dirname(os.path.abspath(__file__)), "serve_load.py")
rss = []
for rnd in range(2):
    out = subprocess.run([sys.executable, driver, "--url", "http://127.0.0.1:%d" % srv.port,
                          "--clients", str(clients), "--max-tokens", str(max_tokens), "--chat",
                          "--timeout", str(limit_s), "--pid", str(srv.p.pid),
                          "--seed", str(rnd)], capture_output=True, text=True)
    check(out.returncode == 0, "round %d: %s %s" % (rnd, out.stdout, out.stderr[-2000:]))
    r = json.loads(out.stdout)
    print("round %d: %s" % (rnd, out.stdout.strip()))
    check(r["errors"] == 0, "errors: %r" % r["error_samples"])
    check(r["completion_tokens"] == clients * max_tokens, "tokens %d" % r["completion_tokens"])
    check(r["wall_s"] < limit_s, "took %.1fs" % r["wall_s"])
    rss.append(srv.rss_kib())
check(rss[1] <= rss[0] * 1.2 + 32 * 1024, "memory grew from %d to %d KiB" % (rss[0], rss[1]))
check(rss[1] < 2 * 1024 * 1024, "RSS %d KiB" % rss[1])
m = srv.metrics()
check(m["collage_requests_running"] == 0 and m["collage_requests_waiting"] == 0,
      "requests left: %r" % m)
check(m["collage_kv_pages_free"] == m["collage_kv_pages_total"], "KV pages not all free")
check(m["collage_state_slots_free"] == m["collage_state_slots_total"], "slots not all free")
srv.stop()

# a full queue: 2 running + 2 waiting; the rest are refused with 429 and Retry-After
srv = srvlib.Server(model, args=["--max-seqs", "2", "--max-queue", "2"])
results = []
lock = threading.Lock()


def one():
    st, hd, body = srv.request("POST", "/v1/completions", {"prompt": "Once", "max_tokens": 64,
                                                          "ignore_eos": True})
    with lock:
        results.append((st, hd.get("retry-after"), body))


threads = [threading.Thread(target=one) for _ in range(12)]
for t in threads:
    t.start()
for t in threads:
    t.join()
codes = sorted(r[0] for r in results)
check(set(codes) <= {200, 429} and 200 in codes and 429 in codes, "codes %r" % codes)
for st, retry, body in results:
    if st == 429:
        check(retry == "1" and json.loads(body)["error"]["type"] == "rate_limit_error",
              "429 without Retry-After: %r %r" % (retry, body))
check(srv.metrics()["collage_requests_rejected_total"] == codes.count(429), "rejected count")
srv.stop()
print("ok: %d streaming clients x 2 rounds, RSS %d -> %d KiB; full queue -> 429" %
      (clients, rss[0], rss[1]))
