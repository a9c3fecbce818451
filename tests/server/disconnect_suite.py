"""A client that goes away cancels its request at once: a stream closed after a few
events, a whole-answer request closed while it is computed, and a request closed while it
waits in the queue all leave the scheduler, and the cache is back to every KV page and
state slot free (as /metrics reports them) within seconds; the server keeps serving."""
import json
import socket
import time

import srvlib
from srvlib import check

work = srvlib.scratch("server-disconnect")
model = srvlib.make_model(work + "/model")
srv = srvlib.Server(model, args=["--max-seqs", "1"])


def raw_post(path, body):
    """A socket with a request sent (nothing read)."""
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=60)
    data = json.dumps(body).encode()
    s.sendall(b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Content-Length: %d\r\n\r\n%s" % (path.encode(), len(data), data))
    return s


def settled():
    m = srv.metrics()
    return (m["collage_requests_running"] == 0 and m["collage_requests_waiting"] == 0 and
            m["collage_engine_requests"] == 0 and
            m["collage_kv_pages_free"] == m["collage_kv_pages_total"] and
            m["collage_state_slots_free"] == m["collage_state_slots_total"])


long_req = {"prompt": "Once upon a time", "max_tokens": 3000, "ignore_eos": True}
# 1. a stream read for a few events, then closed
s = raw_post("/v1/completions", dict(long_req, stream=True))
got = b""
while got.count(b"data: ") < 3:
    chunk = s.recv(4096)
    check(chunk, "the stream ended early")
    got += chunk
check(b" 200 " in got.split(b"\r\n")[0], "stream status: %r" % got[:80])
s.close()
srvlib.wait_until(settled, 20, "the stream's pages and slot to be freed")
m = srv.metrics()
check(m["collage_client_disconnects_total"] >= 1, "disconnect not counted")
check(m["collage_generation_tokens_total"] < 3000, "the stream ran to its end")

# 2. a whole answer being computed, then the client leaves
before = srv.metrics()["collage_client_disconnects_total"]
s = raw_post("/v1/completions", long_req)
srvlib.wait_until(lambda: srv.metrics()["collage_requests_running"] == 1, 20, "admission")
s.close()
srvlib.wait_until(settled, 20, "a whole answer's pages to be freed")
check(srv.metrics()["collage_client_disconnects_total"] == before + 1, "not counted")

# 3. one running, one queued (--max-seqs 1): the queued client leaves
s1 = raw_post("/v1/completions", long_req)
srvlib.wait_until(lambda: srv.metrics()["collage_requests_running"] == 1, 20, "the first")
s2 = raw_post("/v1/completions", long_req)
srvlib.wait_until(lambda: srv.metrics()["collage_requests_waiting"] == 1, 20, "the queue")
s2.close()
srvlib.wait_until(lambda: srv.metrics()["collage_requests_waiting"] == 0, 20, "the dequeue")
check(srv.metrics()["collage_requests_running"] == 1, "the first request was disturbed")
s1.close()
srvlib.wait_until(settled, 20, "everything to be freed")

# 4. still serving
r = srv.json("POST", "/v1/completions", {"prompt": "Once", "max_tokens": 4})
check(r["usage"]["completion_tokens"] <= 4, "serving after disconnects")
t0 = time.time()
srv.stop()
print("ok: disconnects cancel at once, pages and slots freed (stop %.2fs)" % (time.time() - t0))
