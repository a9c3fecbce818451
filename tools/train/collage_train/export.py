"""Writes a trained model in the checkpoint layout collage loads (spec/MODEL.md §1.1):
config.json, generation_config.json, model.safetensors (bf16, HF names), tokenizer.json,
tokenizer_config.json; and beside it the reference collage is tested against:

  reference_prompt.txt      a retrieval question (documents + prompt), UTF-8
  reference.safetensors     input_ids [T] (I64: the prompt's tokens), logits [T, V] (F32:
                            every position, computed in float64 from the bf16 weights as
                            they are on disk), greedy_ids [5] (I64: greedy continuation)"""
import json
import os
import random
import shutil

import torch
from safetensors.torch import save_file

from .checkpoint import load_model, save_weights
from .task import Encoder, Sampler, load_words, make_question

REFERENCE_SEED = 20251204


def reference_question(enc, context_tokens=72):
    q = make_question(Sampler(load_words()), enc, random.Random(REFERENCE_SEED), context_tokens,
                      2, 30.0, equal_docs=True)
    text = "".join(q["documents"]) + q["prompt"]
    ids = [t for d in q["_doc_ids"] for t in d] + q["_prompt_ids"]
    return text, ids, q


def folder_bytes(path):
    return sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path))


@torch.no_grad()
def greedy(model, ids, n):
    out = list(ids)
    for _ in range(n):
        logits = model(torch.tensor([out]))
        out.append(int(logits[0, -1].argmax()))
    return out[len(ids):]


def export_model(model, cfg, tokenizer, tok_dir, out_dir):
    """Writes the model folder; returns a dict describing the reference check."""
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(cfg.to_hf("bfloat16"), f, indent=2)
        f.write("\n")
    gen = {"eos_token_id": [cfg.eos_token_id], "pad_token_id": cfg.pad_token_id}
    with open(os.path.join(out_dir, "generation_config.json"), "w") as f:
        json.dump(gen, f, indent=2)
        f.write("\n")
    save_weights(model, os.path.join(out_dir, "model.safetensors"), torch.bfloat16)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copyfile(os.path.join(tok_dir, name), os.path.join(out_dir, name))

    ref = load_model(out_dir, dtype=torch.float64)        # exactly what is on disk
    text, ids, q = reference_question(Encoder(tokenizer))
    if tokenizer.encode(text, add_special_tokens=False).ids != ids:
        raise RuntimeError("reference prompt: piece ids differ from the tokenizer's ids")
    with torch.no_grad():
        logits = ref(torch.tensor([ids]))[0]
    g = greedy(ref, ids, 5)
    with open(os.path.join(out_dir, "reference_prompt.txt"), "w", encoding="utf-8") as f:
        f.write(text)
    save_file({"input_ids": torch.tensor(ids, dtype=torch.int64),
               "logits": logits.to(torch.float32).contiguous(),
               "greedy_ids": torch.tensor(g, dtype=torch.int64)},
              os.path.join(out_dir, "reference.safetensors"), metadata={"format": "pt"})
    answer_ids = q["_answer_ids"]
    return {"reference_tokens": len(ids), "reference_answer": q["answer"],
            "reference_greedy": tokenizer.decode(g), "reference_correct": g == answer_ids,
            "folder_bytes": folder_bytes(out_dir)}
