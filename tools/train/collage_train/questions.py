"""Writes a question set of the retrieval task as JSON (format collage-retrieval-v1).

    python -m collage_train.questions --context-tokens 4096 --docs 4 --count 100 \\
        --seed 1 --out q.json [--facts-per-1k 8] [--random-doc-lengths] [--ids]

Each question: "documents" (texts; their concatenation is the context, each ends with a
blank line), "question", "prompt" (the text that follows the documents), "answer" (five
digits, the expected continuation of the prompt), "needle_doc" (index of the document
holding the fact asked about), "needle_doc_depth" and "needle_depth" (token offset of
that fact / tokens of its document, of the whole context), "num_facts" (needle +
distractors), "doc_tokens", "context_tokens", "prompt_tokens". With --ids also
"doc_ids" and "prompt_ids" (token ids of the documents and of the prompt). The same seed
and arguments always give the same file (Python's random.Random(seed))."""
import argparse
import json
import os
import random
import sys

from tokenizers import Tokenizer

from .task import (DOC_END, FACT_TEMPLATE, FILLER_TEMPLATES, PROMPT_TEMPLATE, QUESTION_TEMPLATE,
                   Encoder, Sampler, check_tokenization, load_words, make_question)

DEFAULT_TOKENIZER = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                 "tokenizer", "tokenizer.json")


def build(args, tokenizer):
    enc = Encoder(tokenizer)
    sampler = Sampler(load_words())
    rng = random.Random(args.seed)
    out = []
    for i in range(args.count):
        q = make_question(sampler, enc, rng, args.context_tokens, args.docs, args.facts_per_1k,
                          equal_docs=not args.random_doc_lengths, share=args.near_miss)
        if not check_tokenization(enc, q):
            raise RuntimeError(f"question {i}: piece ids differ from the tokenizer's ids")
        item = {"id": i}
        item.update({k: v for k, v in q.items() if not k.startswith("_")})
        item["prompt_tokens"] = len(q["_prompt_ids"])
        if args.ids:
            item["doc_ids"] = q["_doc_ids"]
            item["prompt_ids"] = q["_prompt_ids"]
        out.append(item)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description="write a retrieval question set (JSON)")
    ap.add_argument("--context-tokens", type=int, required=True,
                    help="tokens of all documents together (prompt excluded)")
    ap.add_argument("--docs", type=int, default=1, help="number of documents")
    ap.add_argument("--count", type=int, default=100)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--facts-per-1k", type=float, default=8.0,
                    help="facts (needle + distractors) per 1000 context tokens")
    ap.add_argument("--near-miss", type=float, default=0.3,
                    help="probability that a distractor shares the first or last name")
    ap.add_argument("--random-doc-lengths", action="store_true",
                    help="random document lengths (default: equal)")
    ap.add_argument("--ids", action="store_true", help="also write token ids")
    ap.add_argument("--tokenizer", default=DEFAULT_TOKENIZER)
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    if a.docs < 1 or a.context_tokens < 32 * a.docs or a.count < 1:
        ap.error("need --docs >= 1, --count >= 1 and at least 32 context tokens per document")
    tok = Tokenizer.from_file(a.tokenizer)
    doc = {
        "format": "collage-retrieval-v1",
        "templates": {"fact": FACT_TEMPLATE, "question": QUESTION_TEMPLATE,
                      "prompt": PROMPT_TEMPLATE, "document_end": DOC_END,
                      "filler": list(FILLER_TEMPLATES)},
        "words": "tools/train/collage_train/words.json",
        "params": {"seed": a.seed, "context_tokens": a.context_tokens, "num_docs": a.docs,
                   "count": a.count, "facts_per_1k": a.facts_per_1k, "near_miss": a.near_miss,
                   "equal_docs": not a.random_doc_lengths},
        "questions": build(a, tok),
    }
    with open(a.out, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1, ensure_ascii=False)
        f.write("\n")
    n = doc["questions"]
    print(f"wrote {a.out}: {len(n)} questions, {a.docs} documents, about "
          f"{sum(q['context_tokens'] for q in n) // len(n)} context tokens each")
    return 0


if __name__ == "__main__":
    sys.exit(main())
