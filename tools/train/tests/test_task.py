"""Training rows of the retrieval curriculum: each role marks the token it claims (first
answer digit, other digits, question names, copy repeats), the texts tokenize as their
pieces do, level 0 packs the row with facts and level 1 matches the evaluation's density.

    cd tools/train && python tests/test_task.py"""
import os
import random
import sys

from tokenizers import Tokenizer

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from collage_train.task import (ANSWER, COPY, FIRST, NAME, Encoder, Sampler,  # noqa: E402
                                copy_sequence, load_words, make_question, row_spec,
                                training_sequence)

TOK = Tokenizer.from_file(os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), "tokenizer", "tokenizer.json"))
PAD = TOK.token_to_id("<|endoftext|>")


def test_roles():
    enc, sampler, rng = Encoder(TOK), Sampler(load_words()), random.Random(3)
    words = load_words()
    names = {TOK.token_to_id("Ġ" + n) for k in ("first_names", "last_names") for n in words[k]}
    digits = {TOK.token_to_id(d) for d in "0123456789"}
    answer_tok = TOK.token_to_id("Ġ")
    for level in (0.0, 0.5, 1.0):
        for length in (128, 256, 512):
            spec = row_spec(rng, level, length)
            ids, roles = training_sequence(sampler, enc, rng, length, PAD, spec)
            assert len(ids) == len(roles) == length
            firsts = [p for p, r in enumerate(roles) if r == FIRST]
            assert len(firsts) == spec[3], (level, length, spec, len(firsts))
            for p in firsts:   # "Answer: " then five digits, all ANSWER after the first
                assert ids[p] == answer_tok and ids[p + 1] in digits
                assert roles[p + 1:p + 5] == [ANSWER] * 4
            for p, r in enumerate(roles):
                if r == NAME:
                    assert ids[p + 1] in names, TOK.decode(ids[p - 4:p + 2])
            assert sum(r == NAME for r in roles) == 2 * spec[3]
            text = TOK.decode([i for i in ids if i != PAD])
            assert TOK.encode(text, add_special_tokens=False).ids == [i for i in ids if i != PAD]


def test_levels():
    rng = random.Random(5)
    dense = [row_spec(rng, 0.0, 256) for _ in range(50)]
    assert all(s[0] == 8 and s[1] == 1 and s[2] == 0.0 and s[3] == 8 for s in dense), dense[:3]
    full = [row_spec(rng, 1.0, 1000) for _ in range(400)]
    facts = [s[0] for s in full]
    assert min(facts) >= 4 and max(facts) <= 16 and 9 <= sum(facts) / len(facts) <= 11
    assert {s[1] for s in full} == set(range(1, 7)) and all(s[2] == 0.3 for s in full)


def test_copy():
    ids, roles = copy_sequence(random.Random(1), 9, PAD)
    assert ids[:4] == ids[4:8] and ids[8] == ids[0] and max(ids) < PAD
    assert roles == [0, 0, 0, 0, COPY, COPY, COPY, COPY, 0]


def test_question_tokens():
    """Every name is one token, so a question's prompt has a fixed layout."""
    enc, sampler, rng = Encoder(TOK), Sampler(load_words()), random.Random(7)
    for _ in range(20):
        q = make_question(sampler, enc, rng, 300, 2, 10.0)
        assert len(q["_prompt_ids"]) == 12 and len(q["_answer_ids"]) == 5


if __name__ == "__main__":
    for t in (test_roles, test_levels, test_copy, test_question_tokens):
        t()
        print(f"{t.__name__} ok")
