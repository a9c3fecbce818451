#!/usr/bin/env python3
"""bench_serve - latency probes of a running `collage serve` (standard library only, for
the GPU machine; scripts/gpu/bench-serve.sh runs them):

  ttft  the time to the first token of a prompt of --total tokens whose first --prefix
        tokens were sent before (so they are stored): the prefix is sent once (warm),
        then the long prompt is timed, --repeat times with fresh tails.
  docs  --docs documents of --doc-tokens tokens are ingested, one composed query warms
        them, then the time to the first token of a --query-tokens query over all of
        them (documents extension) is timed --repeat times.

Prompts are random token ids below --vocab. Prints one JSON object."""
import argparse
import http.client
import json
import random
import sys
import time
import urllib.parse


def conn(url, timeout=3600):
    u = urllib.parse.urlparse(url)
    return http.client.HTTPConnection(u.hostname, u.port or 80, timeout=timeout)


def post(url, path, body, key=None):
    c = conn(url)
    h = {"Content-Type": "application/json"}
    if key:
        h["Authorization"] = "Bearer " + key
    c.request("POST", path, body=json.dumps(body), headers=h)
    r = c.getresponse()
    data = r.read()
    c.close()
    if r.status >= 300:
        raise RuntimeError("%s: %d %s" % (path, r.status, data[:300]))
    return json.loads(data)


def first_token(url, body, key=None):
    """(seconds to the first streamed token, usage of the answer)."""
    body = dict(body, stream=True, stream_options={"include_usage": True})
    c = conn(url)
    h = {"Content-Type": "application/json"}
    if key:
        h["Authorization"] = "Bearer " + key
    t0 = time.time()
    c.request("POST", "/v1/completions", body=json.dumps(body), headers=h)
    r = c.getresponse()
    if r.status != 200:
        raise RuntimeError("completions: %d %s" % (r.status, r.read()[:300]))
    ttft, usage = None, None
    while True:
        line = r.readline()
        if not line:
            break
        if not line.startswith(b"data: ") or line.strip() == b"data: [DONE]":
            continue
        ev = json.loads(line[6:])
        if ttft is None and ev.get("choices"):
            ttft = time.time() - t0
        if ev.get("usage"):
            usage = ev["usage"]
    c.close()
    return ttft, usage


def ids(rng, n, vocab):
    return [rng.randrange(1, vocab) for _ in range(n)]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("what", choices=["ttft", "docs"])
    p.add_argument("--url", required=True)
    p.add_argument("--api-key")
    p.add_argument("--vocab", type=int, default=500)
    p.add_argument("--prefix", type=int, default=31744)
    p.add_argument("--total", type=int, default=32768)
    p.add_argument("--docs", type=int, default=4)
    p.add_argument("--doc-tokens", type=int, default=4096)
    p.add_argument("--query-tokens", type=int, default=64)
    p.add_argument("--repeat", type=int, default=3)
    a = p.parse_args()
    rng = random.Random(1)
    out = {"what": a.what}
    if a.what == "ttft":
        prefix = ids(rng, a.prefix, a.vocab)
        t0 = time.time()
        cold, _ = first_token(a.url, {"prompt": prefix, "max_tokens": 1}, a.api_key)
        out["prefix_tokens"] = a.prefix
        out["prefix_cold_ttft_s"] = cold
        out["prefix_wall_s"] = time.time() - t0
        runs = []
        for _ in range(a.repeat):
            tail = ids(rng, a.total - a.prefix, a.vocab)
            ttft, usage = first_token(a.url, {"prompt": prefix + tail, "max_tokens": 1},
                                      a.api_key)
            runs.append({"ttft_s": ttft, "cached_tokens":
                         usage["prompt_tokens_details"]["cached_tokens"] if usage else None})
        out["total_tokens"] = a.total
        out["runs"] = runs
        out["ttft_s_min"] = min(r["ttft_s"] for r in runs)
    else:
        docs = [{"token_ids": ids(rng, a.doc_tokens, a.vocab), "name": "doc%d" % i}
                for i in range(a.docs)]
        t0 = time.time()
        got = post(a.url, "/v1/documents", {"documents": docs}, a.api_key)
        out["ingest_s"] = time.time() - t0
        doc_ids = [d["id"] for d in got["data"]]
        query = ids(rng, a.query_tokens, a.vocab)
        body = {"prompt": query, "max_tokens": 1, "documents": doc_ids}
        out["warm_ttft_s"] = first_token(a.url, body, a.api_key)[0]
        runs = []
        for _ in range(a.repeat):
            ttft, usage = first_token(a.url, dict(body, prompt=ids(rng, a.query_tokens,
                                                                   a.vocab)), a.api_key)
            runs.append({"ttft_s": ttft, "prompt_tokens": usage and usage["prompt_tokens"],
                         "cached_tokens": usage and
                         usage["prompt_tokens_details"]["cached_tokens"]})
        out.update({"docs": a.docs, "doc_tokens": a.doc_tokens, "query_tokens": a.query_tokens,
                    "runs": runs, "ttft_s_min": min(r["ttft_s"] for r in runs)})
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
