"""Runs a retrieval question set (questions.py) through collage and reports accuracy.

    python -m collage_train.eval_collage --collage build/collage --model models/gdn \\
        --questions q.json [--mode plain|compose] [--compose-type concat_kv_soup_ssm] \\
        [--limit N] [--out results.json]

plain:   the documents concatenated, then the prompt, one prefill (collage generate
         --batch-file, greedy, 5 new tokens).
compose: every document ingested on its own (collage ingest --ids-file, a private store),
         then composed at query time with the prompt as the query (collage query).
A question is answered when the five generated tokens decode to the answer."""
import argparse
import json
import os
import subprocess
import sys
import tempfile

from tokenizers import Tokenizer


def run(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:2])} failed ({p.returncode}): {p.stderr.strip()}")
    return p.stdout


def plain(a, tok, qs, tmp):
    path = os.path.join(tmp, "batch.txt")
    with open(path, "w") as f:
        for q in qs:
            ids = tok.encode("".join(q["documents"]) + q["prompt"], add_special_tokens=False).ids
            f.write(",".join(map(str, ids)) + "\n")
    out = json.loads(run([a.collage, "generate", "--no-store", "--model", a.model,
                          "--batch-file", path, "--max-new-tokens", "5", "--greedy",
                          "--ignore-eos", "--json", "--backend", a.backend]))
    return [tok.decode(r["ids"]) for r in out["results"]]


def compose(a, tok, qs, tmp):
    store = os.path.join(tmp, "store")
    answers = []
    for i, q in enumerate(qs):
        path = os.path.join(tmp, f"docs{i}.txt")
        with open(path, "w") as f:
            for d in q["documents"]:
                f.write(",".join(map(str, tok.encode(d, add_special_tokens=False).ids)) + "\n")
        ing = json.loads(run([a.collage, "ingest", "--model", a.model, "--store", store,
                              "--ids-file", path, "--json", "--backend", a.backend]))
        prompt = tok.encode(q["prompt"], add_special_tokens=False).ids
        out = json.loads(run([a.collage, "query", "--model", a.model, "--store", store,
                              "--docs", ",".join(d["id"] for d in ing["docs"]),
                              "--compose-type", a.compose_type,
                              "--suffix-ids", ",".join(map(str, prompt)),
                              "--max-new-tokens", "5", "--greedy", "--json",
                              "--backend", a.backend]))
        answers.append(tok.decode(out["ids"]))
    return answers


def main(argv=None):
    ap = argparse.ArgumentParser(description="retrieval accuracy through collage")
    ap.add_argument("--collage", default="build/collage")
    ap.add_argument("--model", required=True)
    ap.add_argument("--questions", required=True)
    ap.add_argument("--mode", choices=("plain", "compose"), default="plain")
    ap.add_argument("--compose-type", default="concat_kv_soup_ssm")
    ap.add_argument("--backend", default="cpu")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--out", help="per-question results (JSON)")
    a = ap.parse_args(argv)
    with open(a.questions) as f:
        qs = json.load(f)["questions"]
    if a.limit:
        qs = qs[:a.limit]
    tok = Tokenizer.from_file(os.path.join(a.model, "tokenizer.json"))
    with tempfile.TemporaryDirectory(prefix="collage-eval-") as tmp:
        got = (plain if a.mode == "plain" else compose)(a, tok, qs, tmp)
    ok = [g.strip() == q["answer"] for g, q in zip(got, qs)]
    acc = sum(ok) / max(1, len(ok))
    label = a.mode if a.mode == "plain" else f"compose {a.compose_type}"
    print(f"{os.path.basename(a.model.rstrip('/'))}: {label}: {sum(ok)}/{len(ok)} = {acc:.4f}")
    if a.out:
        with open(a.out, "w") as f:
            json.dump({"model": a.model, "questions": a.questions, "mode": label,
                       "accuracy": acc, "results": [
                           {"id": q["id"], "answer": q["answer"], "got": g, "ok": o,
                            "needle_doc": q["needle_doc"], "needle_depth": q["needle_depth"]}
                           for q, g, o in zip(qs, got, ok)]}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
