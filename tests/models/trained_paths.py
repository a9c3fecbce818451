"""trained_paths - each trained model (models/m2, gdn, gka) answers retrieval questions of
models/quality-ci-4T.json through every path a user has: `collage run` (the needle's own
document, within the trained length), `collage ingest` + `collage query` (the four
documents composed), and `collage serve` (documents posted over HTTP, then a completion
that names them; and a second server on the CLI's store answering from the documents the
CLI stored). The two questions are ones every model answers at delivery; the paths must
give the expected five digits and agree with each other (same document ids: content hashes
of model + tokens)."""
import json
import os
import subprocess
import sys

from srvlib import BIN, Server, check, scratch

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
QUESTIONS = [0, 1]
COMPOSE = "concat_kv_soup_ssm"


def cli(*args):
    r = subprocess.run([BIN] + list(args), capture_output=True, text=True, timeout=600)
    check(r.returncode == 0, "collage %s: exit %d: %s" % (args[0], r.returncode, r.stderr[-800:]))
    return r.stdout


def complete(srv, q, ids):
    """A greedy 5-token completion of q's prompt over the composed documents ids."""
    r = srv.json("POST", "/v1/completions", {
        "prompt": q["prompt"], "documents": ids, "compose_type": COMPOSE,
        "max_tokens": 5, "temperature": 0})
    return r["choices"][0]["text"], r["usage"]


def main():
    with open(os.path.join(ROOT, "models", "quality-ci-4T.json")) as f:
        qs = json.load(f)["questions"]
    tmp = scratch("trained_paths")
    for kind in ("m2", "gdn", "gka"):
        model = os.path.join(ROOT, "models", kind)
        store = os.path.join(tmp, kind + "-cli")
        cases = []
        for qi in QUESTIONS:
            q = qs[qi]
            want = q["answer"]
            # run: the needle's document alone (within T) then the question
            got = cli("run", "--model", model, "--no-store", "--threads", "1", "--greedy",
                      "--max-new-tokens", "5", "--prompt", q["documents"][q["needle_doc"]] + q["prompt"])
            check(got.strip() == want, "%s q%d run: %r, expected %s" % (kind, qi, got, want))
            # ingest + query: the four documents, each ingested on its own, composed
            files = []
            for i, text in enumerate(q["documents"]):
                path = os.path.join(tmp, "%s-q%d-doc%d.txt" % (kind, qi, i))
                with open(path, "w") as f:
                    f.write(text)
                files.append(path)
            lines = cli("ingest", "--model", model, "--store", store, "--threads", "1", *files)
            ids = [line.split()[0] for line in lines.splitlines() if line.strip()]
            check(len(ids) == len(files), "%s q%d ingest: %r" % (kind, qi, lines))
            got = cli("query", "--model", model, "--store", store, "--threads", "1",
                      "--docs", ",".join(ids), "--compose-type", COMPOSE, "--prompt", q["prompt"],
                      "--greedy", "--max-new-tokens", "5")
            check(got.strip() == want, "%s q%d query: %r, expected %s" % (kind, qi, got, want))
            cases.append((q, ids, want))

        # serve: the documents posted over HTTP into a store of its own
        srv = Server(model, store=os.path.join(tmp, kind + "-http"))
        for qi, (q, ids, want) in zip(QUESTIONS, cases):
            posted = srv.json("POST", "/v1/documents", {"documents": q["documents"]}, expect=201)
            hids = [d["id"] for d in posted["data"]]
            check(hids == ids, "%s q%d: server ids %s, CLI ids %s" % (kind, qi, hids, ids))
            text, usage = complete(srv, q, hids)
            check(text == want, "%s q%d serve: %r, expected %s" % (kind, qi, text, want))
            cached = usage["prompt_tokens_details"]["cached_tokens"]
            check(cached >= sum(q["doc_tokens"]), "%s q%d serve: cached_tokens %d < the documents' "
                  "%d" % (kind, qi, cached, sum(q["doc_tokens"])))
        srv.stop()
        # serve on the CLI's store: the documents `collage ingest` stored, by their ids
        srv = Server(model, store=store)
        for qi, (q, ids, want) in zip(QUESTIONS, cases):
            text, _ = complete(srv, q, ids)
            check(text == want, "%s q%d serve (CLI's store): %r, expected %s" % (kind, qi, text, want))
        srv.stop()
        print("%s: run, query, serve and serve-on-the-CLI-store answer %s" %
              (kind, ", ".join(w for _, _, w in cases)))
    print("ok")


if __name__ == "__main__":
    sys.exit(main())
