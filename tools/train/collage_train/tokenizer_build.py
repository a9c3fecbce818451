"""Builds the retrieval models' tokenizer: a byte-level BPE of the Qwen2/Qwen3 kind (NFC,
the Qwen2 pre-tokenizer regex, ByteLevel), merges learned with the `tokenizers` library
on task text, the 7 Qwen3 added tokens at the top ids. Digits stay single tokens (the
regex splits numbers digit by digit); every word of words.json is one token (the build
fails otherwise).

    python -m collage_train.tokenizer_build --out DIR [--vocab 1024] [--seed 0]

writes DIR/tokenizer.json and DIR/tokenizer_config.json (ChatML template)."""
import argparse
import json
import os
import random

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

from .task import Encoder, Sampler, load_words, make_question, prompt_pieces

QWEN2_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"
                 r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
ADDED = (("<|endoftext|>", True), ("<|im_start|>", True), ("<|im_end|>", True),
         ("<think>", False), ("</think>", False), ("<tool_call>", False), ("</tool_call>", False))
WORD_WEIGHT = 1000
# the fixed pieces of facts, prompts, answers and filler sentences (weighted like the words)
TEMPLATE_TEXT = ("Question: What is Mara Quill's code?\nAnswer: 1.\n"
                 "The Mara Quill's code is 1. A the Every.\n\n")
CHAT_TEMPLATE = (
    "{%- for message in messages -%}\n"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' -}}\n"
    "{%- endfor -%}\n"
    "{%- if add_generation_prompt -%}\n"
    "{{- '<|im_start|>assistant\\n' -}}\n"
    "{%- if enable_thinking is defined and not enable_thinking -%}\n"
    "{{- '<think>\\n\\n</think>\\n\\n' -}}\n"
    "{%- endif -%}\n"
    "{%- endif -%}\n")


class _Chars:
    """Encoder stand-in for corpus generation: lengths in characters/4 (no tokenizer yet)."""

    class _Enc:
        def __init__(self, n):
            self.ids = list(range(max(1, n)))

    def encode(self, text, add_special_tokens=False):
        return self._Enc(len(text) // 4)


def corpus(seed, n_questions=400):
    """Task text: documents and prompts of random questions (deterministic in seed)."""
    rng = random.Random(seed)
    sampler, enc = Sampler(load_words()), Encoder(_Chars())
    for _ in range(n_questions):
        q = make_question(sampler, enc, rng, rng.randint(100, 600), rng.randint(1, 4), 10)
        yield "".join(q["documents"]) + q["prompt"] + q["answer"] + ".\n"
    # every list word weighted far above the sentences' byte pairs, so each is merged into
    # one token: " Name" (both name lists), "Name" (first names open documents) and the
    # filler words with their leading space (check_single_tokens verifies it)
    w = load_words()
    for _ in range(WORD_WEIGHT):
        for key, words in w.items():
            if key != "_doc":
                yield " " + " ".join(words) + "\n"
        yield "\n".join(w["first_names"]) + "\n"
        yield TEMPLATE_TEXT
    # spare merges (last names opening a line: text the task never makes), rare enough to
    # come after all of the above, fill the vocabulary up to its size
    for _ in range(2):
        yield "\n".join(w["last_names"]) + "\n"


def build(vocab_size, seed):
    tok = Tokenizer(models.BPE(unk_token=None, fuse_unk=False, byte_fallback=False))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    tok.post_processor = processors.ByteLevel(add_prefix_space=False, trim_offsets=False,
                                              use_regex=False)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size - len(ADDED), min_frequency=2,
                                  show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus(seed), trainer=trainer)
    if tok.get_vocab_size() != vocab_size - len(ADDED):
        raise RuntimeError(f"BPE learned {tok.get_vocab_size()} tokens, wanted "
                           f"{vocab_size - len(ADDED)} (corpus too small?)")
    check_single_tokens(tok)
    from tokenizers import AddedToken
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t, s in ADDED if s])
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t, s in ADDED if not s])
    return tok


def check_single_tokens(tok):
    """Every word of words.json with its leading space, every first name without it and
    every fixed piece of the templates is one token (fixed token offsets in facts and questions make retrieval easier)."""
    w = load_words()
    texts = [" " + x for k, v in w.items() if k != "_doc" for x in v] + list(w["first_names"])
    texts += prompt_pieces(("Mara", "Quill")) + ["'s", " code", " is", ".", ".\n", ".\n\n",
                                                 "The", "A", "Every", " the"]
    bad = [t for t in texts if len(tok.encode(t, add_special_tokens=False).ids) != 1]
    if bad:
        raise RuntimeError(f"words.json: {len(bad)} words are not one token: {bad[:8]}")


def tokenizer_config(tok):
    added = {}
    for text, special in ADDED:
        added[str(tok.token_to_id(text))] = {
            "content": text, "single_word": False, "lstrip": False, "rstrip": False,
            "normalized": False, "special": special}
    return {
        "add_bos_token": False, "add_prefix_space": False, "added_tokens_decoder": added,
        "additional_special_tokens": ["<|im_start|>", "<|im_end|>"], "bos_token": None,
        "chat_template": CHAT_TEMPLATE, "clean_up_tokenization_spaces": False,
        "eos_token": "<|im_end|>", "errors": "replace", "model_max_length": 131072,
        "pad_token": "<|endoftext|>", "split_special_tokens": False,
        "tokenizer_class": "Qwen2Tokenizer", "unk_token": None}


def write(tok, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    tok.save(os.path.join(out_dir, "tokenizer.json"), pretty=True)
    with open(os.path.join(out_dir, "tokenizer_config.json"), "w") as f:
        json.dump(tokenizer_config(tok), f, indent=2)
        f.write("\n")


def main(argv=None):
    ap = argparse.ArgumentParser(description="build the retrieval task's BPE tokenizer")
    ap.add_argument("--out", required=True)
    ap.add_argument("--vocab", type=int, default=1024)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    tok = build(a.vocab, a.seed)
    write(tok, a.out)
    print(f"wrote {a.out}/tokenizer.json ({tok.get_vocab_size()} tokens)")


if __name__ == "__main__":
    main()
