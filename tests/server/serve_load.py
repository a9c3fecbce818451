#!/usr/bin/env python3
"""serve_load - concurrent clients against a running `collage serve` (standard library
only: it also runs where no `openai` package is installed, e.g. the GPU machine).

Each client sends its requests one after the other (streamed by default) and records the
time to the first token, the gaps between chunks and its errors. A side thread scrapes
/metrics so that the decode rate of the window where every client is decoding comes from
the server's own token counter. With --pid (the server's process id, same machine) the
server overhead per streamed token is measured: the CPU time of the HTTP threads plus the
engine thread's time outside the model (per-token text and events, collecting, waking
connections), over the tokens generated.

  serve_load.py --url http://127.0.0.1:8000 --clients 64 --max-tokens 64 [--chat]
                [--prompt-tokens 512 | --prompt TEXT] [--requests 1] [--pid PID]
                [--api-key KEY] [--json-out F]

Prints one JSON object; exit 1 if any request failed."""
import argparse
import http.client
import json
import os
import random
import sys
import threading
import time
import urllib.parse


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--url", required=True)
    p.add_argument("--api-key")
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--requests", type=int, default=1, help="per client, one after the other")
    p.add_argument("--max-tokens", type=int, default=32)
    p.add_argument("--prompt-tokens", type=int, default=32, help="random token-id prompt length")
    p.add_argument("--shared-prefix", type=int, default=0,
                   help="the first N prompt tokens are the same for every request")
    p.add_argument("--vocab", type=int, default=500, help="prompt ids are drawn below this")
    p.add_argument("--prompt", help="text prompt (instead of random ids)")
    p.add_argument("--chat", action="store_true", help="chat completions with a user message")
    p.add_argument("--no-stream", action="store_true")
    p.add_argument("--no-ignore-eos", action="store_true")
    p.add_argument("--timeout", type=float, default=600)
    p.add_argument("--pid", type=int, help="server pid: measure its HTTP threads' CPU time")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json-out")
    return p.parse_args()


class Target:
    def __init__(self, url, key):
        u = urllib.parse.urlparse(url)
        self.host, self.port = u.hostname, u.port or 80
        self.headers = {"Content-Type": "application/json"}
        if key:
            self.headers["Authorization"] = "Bearer " + key

    def conn(self, timeout):
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def metrics(self):
        c = self.conn(30)
        c.request("GET", "/metrics")
        text = c.getresponse().read().decode()
        c.close()
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                k, v = line.rsplit(" ", 1)
                out[k] = float(v)
        return out


def thread_cpu(pid, name):
    """CPU seconds of the threads of pid whose name is `name`."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                s = f.read()
        except OSError:
            continue
        comm = s[s.index("(") + 1:s.rindex(")")]
        if comm == name:
            fields = s[s.rindex(")") + 2:].split()
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def one_request(t, args, body, rec):
    path = "/v1/chat/completions" if args.chat else "/v1/completions"
    t0 = time.time()
    c = t.conn(args.timeout)
    c.request("POST", path, body=json.dumps(body), headers=t.headers)
    r = c.getresponse()
    if r.status != 200:
        rec["errors"].append("status %d: %s" % (r.status, r.read()[:300]))
        c.close()
        return
    first, last, n_chunks, done, usage = None, None, 0, False, None
    if args.no_stream:
        data = json.loads(r.read())
        first = last = time.time()
        usage = data.get("usage")
        n_chunks = 1
        done = True
    else:
        while True:
            line = r.readline()
            if not line:
                break
            line = line.strip()
            if not line.startswith(b"data: "):
                continue
            payload = line[6:]
            if payload == b"[DONE]":
                done = True
                break
            ev = json.loads(payload)
            if "error" in ev:
                rec["errors"].append("stream error: %s" % ev["error"])
                break
            if ev.get("usage"):
                usage = ev["usage"]
            now = time.time()
            ch = ev.get("choices") or []
            if ch and (ch[0].get("text") or (ch[0].get("delta") or {}).get("content") or
                       (ch[0].get("delta") or {}).get("reasoning_content")):
                if first is None:
                    first = now
                else:
                    rec["gaps"].append(now - last)
                last = now
                n_chunks += 1
                rec["times"].append(now)
    c.close()
    if not done:
        rec["errors"].append("the stream ended without [DONE]")
        return
    if first is not None:
        rec["ttft"].append(first - t0)
        rec["first"].append(first)
    rec["end"].append(time.time())
    rec["chunks"] += n_chunks
    if usage:
        rec["tokens"] += usage["completion_tokens"]
        rec["cached"] += usage["prompt_tokens_details"]["cached_tokens"]


def client(t, args, idx, rec, prefix):
    rng = random.Random(args.seed * 1000003 + idx)
    for k in range(args.requests):
        body = {"max_tokens": args.max_tokens, "stream": not args.no_stream,
                "ignore_eos": not args.no_ignore_eos, "seed": idx * 7919 + k}
        if not args.no_stream:
            body["stream_options"] = {"include_usage": True}
        if args.chat:
            text = args.prompt or "Tell me about the lighthouse, number %d." % idx
            body["messages"] = [{"role": "user", "content": text}]
        elif args.prompt:
            body["prompt"] = args.prompt
        else:
            tail = [rng.randrange(1, args.vocab) for _ in range(args.prompt_tokens - len(prefix))]
            body["prompt"] = prefix + tail
        try:
            one_request(t, args, body, rec)
        except Exception as e:  # a dropped connection, a timeout: counted, not fatal
            rec["errors"].append("%s: %s" % (type(e).__name__, e))


def pct(xs, q):
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def main():
    args = parse_args()
    t = Target(args.url, args.api_key)
    rng = random.Random(args.seed)
    prefix = [rng.randrange(1, args.vocab) for _ in range(min(args.shared_prefix,
                                                                args.prompt_tokens))]
    recs = [{"errors": [], "ttft": [], "gaps": [], "first": [], "end": [], "times": [],
             "chunks": 0, "tokens": 0, "cached": 0} for _ in range(args.clients)]
    samples = []
    stop = threading.Event()

    def scrape():
        while not stop.is_set():
            try:
                m = t.metrics()
                samples.append((time.time(), m.get("collage_generation_tokens_total", 0)))
            except Exception:
                pass
            stop.wait(0.25)

    m0 = t.metrics()
    http0 = thread_cpu(args.pid, "MHD-worker") if args.pid else None
    t0 = time.time()
    scraper = threading.Thread(target=scrape, daemon=True)
    scraper.start()
    threads = [threading.Thread(target=client, args=(t, args, i, recs[i], prefix))
               for i in range(args.clients)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(args.timeout)
    wall = time.time() - t0
    stop.set()
    scraper.join(5)
    m1 = t.metrics()
    http1 = thread_cpu(args.pid, "MHD-worker") if args.pid else None
    alive = sum(th.is_alive() for th in threads)
    errors = [e for r in recs for e in r["errors"]]
    if alive:
        errors.append("%d clients did not finish within %gs" % (alive, args.timeout))
    ttft = [x for r in recs for x in r["ttft"]]
    gaps = [x for r in recs for x in r["gaps"]]
    tokens = sum(r["tokens"] for r in recs)
    d = lambda k: m1.get(k, 0) - m0.get(k, 0)
    gen = d("collage_generation_tokens_total")
    out = {
        "clients": args.clients, "requests": args.clients * args.requests,
        "errors": len(errors), "error_samples": errors[:5], "wall_s": round(wall, 3),
        "completion_tokens": tokens, "cached_tokens": sum(r["cached"] for r in recs),
        "chunks": sum(r["chunks"] for r in recs),
        "tokens_per_s": round(gen / wall, 1) if wall > 0 else None,
        "ttft_p50_s": pct(ttft, 0.5), "ttft_p90_s": pct(ttft, 0.9), "ttft_max_s": pct(ttft, 1.0),
        "itl_p50_s": pct(gaps, 0.5), "itl_p90_s": pct(gaps, 0.9),
    }
    # the decode window: every client has its first token and none has finished
    firsts = [min(r["first"]) for r in recs if r["first"]]
    ends = [min(r["end"]) for r in recs if r["end"]]
    if len(firsts) == args.clients and ends and args.requests == 1:
        a, b = max(firsts), min(ends)
        if b > a:  # chunks received in the window (a chunk carries one token or more)
            n = sum(1 for r in recs for ts in r["times"] if a <= ts <= b)
            out["decode_chunks_per_s"] = round(n / (b - a), 1)
        win = [(ts, v) for ts, v in samples if a <= ts <= b]
        if len(win) >= 2 and win[-1][0] > win[0][0]:
            out["decode_window_s"] = round(win[-1][0] - win[0][0], 3)
            out["decode_tokens_per_s"] = round((win[-1][1] - win[0][1]) /
                                               (win[-1][0] - win[0][0]), 1)
    # server work per generated token outside the model
    cpu = lambda part: d('collage_engine_cpu_seconds_total{part="%s"}' % part)
    engine = cpu("loop") - cpu("step") + cpu("token_callbacks")
    out["server_tokens"] = gen
    out["engine_overhead_s"] = round(engine, 4)
    if http0 is not None:
        out["http_cpu_s"] = round(http1 - http0, 4)
        if gen > 0:
            out["overhead_us_per_token"] = round((engine + http1 - http0) / gen * 1e6, 2)
    elif gen > 0:
        out["engine_overhead_us_per_token"] = round(engine / gen * 1e6, 2)
    text = json.dumps(out)
    print(text)
    if args.json_out:
        with open(args.json_out, "w") as f:
            f.write(text + "\n")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
