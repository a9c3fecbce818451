"""SIGTERM drains: streams in flight run to their end ([DONE], every token), a request
arriving meanwhile gets 503 with Retry-After, and the process exits 0. With a short
--drain-timeout a request still running is stopped with an error event and [DONE], and
the process still exits 0."""
import json
import threading
import time

import srvlib
from srvlib import check

work = srvlib.scratch("server-drain")
model = srvlib.make_model(work + "/model")
# Long enough that the streams outlive the late request by seconds: 200 tokens took 60 ms once
# the sampler stopped sorting the vocabulary, and the server exited before the request came.
n_tokens = 400 if srvlib.SANITIZED else 2000


def stream_reader(srv, body, out, started):
    c = srv.conn()
    c.request("POST", "/v1/completions", body=json.dumps(body),
              headers={"Content-Type": "application/json"})
    r = c.getresponse()
    events, text = [], b""
    while True:
        line = r.readline()
        if not line:
            break
        if line.startswith(b"data: "):
            events.append(line[6:].strip())
            started.set()
    c.close()
    out.append(events)


srv = srvlib.Server(model, args=["--drain-timeout", "60"])
outs, starts, threads = [], [], []
for i in range(4):
    ev = threading.Event()
    body = {"prompt": "Once upon", "max_tokens": n_tokens, "ignore_eos": True, "stream": True,
            "stream_options": {"include_usage": True}, "seed": i}
    t = threading.Thread(target=stream_reader, args=(srv, body, outs, ev))
    t.start()
    threads.append(t)
    starts.append(ev)
for ev in starts:
    check(ev.wait(60), "a stream did not start")
srv.terminate()
# Until the signal is handled a late request is still served; afterwards it must get 503.
deadline = time.time() + 10
while True:
    st, hd, body = srv.request("POST", "/v1/completions", {"prompt": "late", "max_tokens": 2})
    if st != 200 or time.time() > deadline:
        break
    time.sleep(0.01)
check(st == 503 and hd.get("retry-after") == "1", "during the drain: %d %r" % (st, body))
for t in threads:
    t.join(120)
check(len(outs) == 4, "streams lost")
for events in outs:
    check(events[-1] == b"[DONE]", "a drained stream did not end with [DONE]")
    usage = json.loads(events[-2])["usage"]
    check(usage["completion_tokens"] == n_tokens, "a drained stream was cut: %r" % usage)
srv.stop()

srv = srvlib.Server(model, args=["--drain-timeout", "0.5"])
outs, ev = [], threading.Event()
t = threading.Thread(target=stream_reader, args=(srv, {"prompt": "Once", "max_tokens": 4000,
                                                       "ignore_eos": True, "stream": True},
                                                 outs, ev))
t.start()
check(ev.wait(60), "the long stream did not start")
t0 = time.time()
srv.terminate()
t.join(60)
srv.stop(60)
events = outs[0]
check(events[-1] == b"[DONE]" and b"shutting down" in events[-2],
      "the stopped stream's end: %r" % events[-2:])
print("ok: drain finished %d streams, refused a late request, stopped a long one in %.1fs" %
      (4, time.time() - t0))
