"""Trains the three retrieval models one after another within one wall-clock budget and
writes OUTDIR/<kind>/ (model folders, see export.py), OUTDIR/summary.json and
OUTDIR/RESULTS.md.

    python -m collage_train.train_all OUTDIR [--total-s 470] [--kinds m2,gdn,gka]
        [--prime-from-kind m2] [-- ARGS]

The first kind trains from scratch (copy stage and curriculum); with --prime-from-kind K
(default m2) the others start from K's trained attention layers, MLPs, embeddings and
norms (train --prime-from) and train at level 1 only, as models/README.md describes.

Each model runs in its own process (a failure or an out-of-memory in one leaves the others
alone) with a training budget of (time left - overhead reserve) x its weight's share among
the models left, so a slow start or a slow model shortens the later ones instead of
overrunning the total. ARGS after
'--' go to every collage_train.train run."""
import argparse
import json
import os
import subprocess
import sys
import time


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = []
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1:]
    ap = argparse.ArgumentParser(description="train the gdn, m2 and gka retrieval models")
    ap.add_argument("outdir")
    ap.add_argument("--total-s", type=float, default=470.0,
                    help="wall-clock budget of the whole run (training + evaluation + export)")
    ap.add_argument("--reserve-s", type=float, default=30.0,
                    help="per model: start-up, evaluation and export time kept out of training")
    ap.add_argument("--kinds", default="m2,gdn,gka")
    ap.add_argument("--prime-from-kind", default="m2",
                    help="kind whose trained model primes the others ('' : all from scratch)")
    ap.add_argument("--prime-args", default="--copy-gate 0 --force-start 0 --force-frac 0 "
                    "--lr 1.5e-3 --decay-frac 0.3",
                    help="extra train arguments of the primed runs (level 1 from the start)")
    ap.add_argument("--weights", default="m2=2.0,gdn=0.7,gka=1.0",
                    help="relative training time per kind (a primed model needs a fraction "
                         "of the steps; GKA's tokens cost about 1.3x the others')")
    a = ap.parse_args(argv)
    t0 = time.time()
    kinds = a.kinds.split(",")
    prime = a.prime_from_kind
    if prime and kinds[0] != prime:
        raise SystemExit(f"train_all: --prime-from-kind {prime} must be the first of --kinds")
    weights = {k: float(v) for k, v in (x.split("=") for x in a.weights.split(","))}
    os.makedirs(a.outdir, exist_ok=True)
    results = []
    for i, kind in enumerate(kinds):
        left = a.total_s - (time.time() - t0)
        share = weights.get(kind, 1.0) / sum(weights.get(k, 1.0) for k in kinds[i:])
        budget = (left - a.reserve_s * (len(kinds) - i)) * share
        if budget < 5:
            print(f"[train_all] {kind}: skipped, only {left:.0f}s left", flush=True)
            results.append({"kind": kind, "status": "skipped (no time left)"})
            continue
        out = os.path.join(a.outdir, kind)
        cmd = [sys.executable, "-m", "collage_train.train", "--kind", kind, "--out", out,
               "--time-budget-s", f"{budget:.1f}"] + extra
        if prime and kind != prime:
            donor = os.path.join(a.outdir, prime)
            if not os.path.isfile(os.path.join(donor, "model.safetensors")):
                print(f"[train_all] {kind}: skipped, no {prime} model to prime from", flush=True)
                results.append({"kind": kind, "status": f"skipped (no {prime} model)"})
                continue
            cmd += ["--prime-from", donor] + a.prime_args.split()
        print(f"[train_all] {kind}: training budget {budget:.0f}s ({left:.0f}s left)", flush=True)
        ts = time.time()
        rc = subprocess.call(cmd)
        info = {"kind": kind, "status": "ok" if rc == 0 else f"failed (exit {rc})",
                "wall_seconds": round(time.time() - ts, 1)}
        try:
            with open(os.path.join(out, "training.json")) as f:
                t = json.load(f)
            t.pop("history", None)
            info.update(t)
        except (OSError, ValueError):
            pass
        results.append(info)
        with open(os.path.join(a.outdir, "summary.json"), "w") as f:
            json.dump({"models": results, "seconds": round(time.time() - t0, 1)}, f, indent=2)
            f.write("\n")
    write_results(a.outdir, results, time.time() - t0)
    print(f"[train_all] done in {time.time() - t0:.0f}s: "
          + ", ".join(f"{r['kind']} {r['status']}" for r in results), flush=True)
    return 0 if all(r["status"] == "ok" for r in results) else 1


def write_results(outdir, results, seconds):
    lines = ["# Trained retrieval models", "",
             "Written by `tools/train/train_all.sh` (collage_train.train_all). Accuracy: held-out",
             "questions of the retrieval task (models/README.md), greedy answer = the 5 digits,",
             "measured in PyTorch on the exported weights (bf16 on disk, fp32 compute).", "",
             "| model | pattern | params | steps | tokens | train s | acc within T | T | "
             "acc plain 2T | device |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        if "eval" not in r:
            lines.append(f"| {r['kind']} | {r['status']} | | | | | | | | |")
            continue
        e = r["eval"]
        lines.append(f"| {r['kind']} | `{r['pattern']}` | {r['params']} | {r['steps']} | "
                     f"{r['tokens']} | {r['train_seconds']} | {e['accuracy_in_T']:.4f} "
                     f"({e['questions']}) | {e['context_T']} | {e['accuracy_plain_2T']:.4f} "
                     f"({e['plain_2T_questions']}) | {r['device']} |")
    lines += ["", f"Whole run: {seconds:.0f} s. Per model: `<kind>/training.json` (arguments, "
              "loss history, accuracy by needle depth).", ""]
    with open(os.path.join(outdir, "RESULTS.md"), "w") as f:
        f.write("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
