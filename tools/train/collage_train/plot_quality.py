"""Table (Markdown) and plot (PNG) of `collage bench quality` results.

    python -m collage_train.plot_quality quality-gdn.json quality-m2.json quality-gka.json \\
        --png docs/composition-quality.png [--md table.md]

Each JSON is one model's `collage bench quality --json-out` (sets at 1T..16T). The plot has
one panel per model: accuracy against total context in multiples of the training context
T, one line per method (plain prefill dashed)."""
import argparse
import json
import os
import sys


def load(paths):
    runs = []
    for p in paths:
        with open(p) as f:
            r = json.load(f)
        r["name"] = os.path.basename(r["model"].rstrip("/"))
        runs.append(r)
    return runs


def markdown(runs, train_T):
    lines = []
    for r in runs:
        T = train_T.get(r["name"]) or r["sets"][0]["context_tokens"]
        sets = r["sets"]
        methods = list(sets[0]["accuracy"].keys())
        head = "| %s (T = %d) | %s |" % (r["name"], T, " | ".join(
            "%gT (%d docs, n=%d)" % (round(s["context_tokens"] / T, 1), s["docs"], s["questions"])
            for s in sets))
        lines += [head, "|---" * (len(sets) + 1) + "|"]
        for m in methods:
            lines.append("| `%s` | %s |" % (m, " | ".join(
                "%.1f%%" % (100 * s["accuracy"][m]) for s in sets)))
        lines.append("")
    return "\n".join(lines)


def plot(runs, train_T, png):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(runs), figsize=(5.2 * len(runs), 4.2), squeeze=False)
    for ax, r in zip(axes[0], runs):
        T = train_T.get(r["name"]) or r["sets"][0]["context_tokens"]
        xs = [s["context_tokens"] / T for s in r["sets"]]
        for m in r["sets"][0]["accuracy"]:
            ys = [100 * s["accuracy"][m] for s in r["sets"]]
            style = "--" if m == "plain" else (":" if m.startswith("seq:") else "-")
            ax.plot(xs, ys, style, marker="o", markersize=3, label=m,
                    color="black" if m == "plain" else None, linewidth=1.2)
        ax.set_xscale("log", base=2)
        ax.set_xticks(xs)
        ax.set_xticklabels(["%gT" % round(x) for x in xs])
        ax.set_ylim(-2, 102)
        ax.set_title("%s (T = %d tokens)" % (r["name"], T))
        ax.set_xlabel("total context (documents of T tokens each)")
        ax.set_ylabel("retrieval accuracy (%)")
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=6, loc="lower left")
    fig.tight_layout()
    fig.savefig(png, dpi=110)


def main(argv=None):
    ap = argparse.ArgumentParser(description="table and plot of bench quality results")
    ap.add_argument("results", nargs="+")
    ap.add_argument("--png")
    ap.add_argument("--md")
    ap.add_argument("--models", help="model folders' parent (reads each training.json's T)")
    a = ap.parse_args(argv)
    runs = load(a.results)
    train_T = {}
    if a.models:
        for r in runs:
            p = os.path.join(a.models, r["name"], "training.json")
            if os.path.exists(p):
                with open(p) as f:
                    train_T[r["name"]] = json.load(f)["eval"]["context_T"]
    md = markdown(runs, train_T)
    if a.md:
        with open(a.md, "w") as f:
            f.write(md + "\n")
    else:
        print(md)
    if a.png:
        plot(runs, train_T, a.png)
    return 0


if __name__ == "__main__":
    sys.exit(main())
