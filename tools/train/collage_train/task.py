"""The synthetic retrieval task (models/README.md): documents of filler sentences carrying
facts "<First> <Last>'s code is <5 digits>.", and questions "What is <First> <Last>'s
code?" answered by the five digits.

Text layout (plain prefill): doc_1 ... doc_N, then PROMPT; each document is sentences
joined by single spaces and ends with a blank line ("\\n\\n"), so the concatenation of the
documents is the context, and a composed run ingests each document's text unchanged.

Samples are built from pieces that are whole pre-tokens of the Qwen2 pre-tokenizer
(" Mara", "'s", " ", "4", ".\\n\\n", ...), so the token ids are the concatenation of the
pieces' ids: training batches are assembled from cached ids without running the
tokenizer, and `check_tokenization` verifies that equality against the tokenizer."""
import json
import os
import random

FACT_TEMPLATE = "{name}'s code is {code}."
QUESTION_TEMPLATE = "What is {name}'s code?"
PROMPT_TEMPLATE = "Question: {question}\nAnswer: "
DOC_END = "\n\n"
# slots: adj, noun, noun2, iverb (intransitive), tverb (transitive), prep, adv
FILLER_TEMPLATES = (
    "The {adj} {noun} {iverb} {prep} the {noun2}.",
    "A {adj} {noun} {iverb} {adv}.",
    "The {noun} {tverb} the {adj} {noun2}.",
    "Every {noun} {iverb} {prep} the {adj} {noun2}.",
    "The {noun} {iverb} {adv} {prep} the {noun2}.",
)
CODE_DIGITS = 5
WORDS_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "words.json")


def load_words(path=WORDS_PATH):
    with open(path) as f:
        return json.load(f)


class Sentence:
    """A sentence as pieces: words (a leading space is added unless it opens a document)
    and glued pieces ("'s", digits), then the final period."""
    __slots__ = ("words", "fact")

    def __init__(self, words, fact=None):
        self.words = words    # list of (text, glued) where glued = no space before it
        self.fact = fact      # (name, code) for a fact sentence

    def pieces(self, doc_start, last_in_doc):
        out = []
        for i, (w, glued) in enumerate(self.words):
            out.append(w if (glued or (i == 0 and doc_start)) else " " + w)
        out.append("." + DOC_END if last_in_doc else ".")
        return out


def fact_sentence(name, code):
    first, last = name
    words = [(first, False), (last, False), ("'s", True), ("code", False), ("is", False), ("", False)]
    words += [(d, True) for d in code]
    return Sentence(words, fact=(name, code))


def name_text(name):
    return f"{name[0]} {name[1]}"


def prompt_pieces(name):
    """Pieces of PROMPT_TEMPLATE for a name (ends with the space before the answer)."""
    return ["Question", ":", " What", " is", " " + name[0], " " + name[1], "'s", " code", "?\n",
            "Answer", ":", " "]


class Sampler:
    """Random contexts, needles and questions (deterministic for a given random.Random)."""

    def __init__(self, words):
        self.w = words
        self.first, self.last = words["first_names"], words["last_names"]

    def filler(self, rng):
        t = rng.choice(FILLER_TEMPLATES)
        w = self.w
        text = t.format(adj=rng.choice(w["adjectives"]), noun=rng.choice(w["nouns"]),
                        noun2=rng.choice(w["nouns"]), iverb=rng.choice(w["intransitive_verbs"]),
                        tverb=rng.choice(w["transitive_verbs"]), prep=rng.choice(w["prepositions"]),
                        adv=rng.choice(w["adverbs"]))
        return Sentence([(x, False) for x in text[:-1].split(" ")])

    def names(self, rng, n, share=0.3):
        """n distinct names; after the first, each shares the first or the last name with
        the first one with probability `share` (near-miss distractors)."""
        out, seen = [], set()
        while len(out) < n:
            f, l = rng.choice(self.first), rng.choice(self.last)
            if out and rng.random() < share:
                if rng.random() < 0.5:
                    f = out[0][0]
                else:
                    l = out[0][1]
            if (f, l) not in seen:
                seen.add((f, l))
                out.append((f, l))
        return out

    @staticmethod
    def code(rng):
        return "".join(rng.choice("0123456789") for _ in range(CODE_DIGITS))


class Encoder:
    """Token ids of pieces, cached (each piece is encoded once by the tokenizer)."""

    def __init__(self, tokenizer):
        self.tok = tokenizer
        self.cache = {}

    def piece(self, p):
        ids = self.cache.get(p)
        if ids is None:
            ids = self.cache[p] = self.tok.encode(p, add_special_tokens=False).ids
        return ids

    def pieces(self, ps):
        out = []
        for p in ps:
            out.extend(self.piece(p))
        return out

    def sentence(self, s, doc_start, last_in_doc):
        return self.pieces(s.pieces(doc_start, last_in_doc))


def build_docs(sampler, enc, rng, doc_budgets, facts):
    """Documents filling doc_budgets (tokens each) with filler sentences, `facts`
    [(doc index, Sentence)] inserted at random sentence slots of their documents.
    Returns (docs, ids_per_doc, fact_offsets) where fact_offsets maps fact index -> (doc,
    token offset within the doc)."""
    per_doc = [[] for _ in doc_budgets]
    for fi, (d, s) in enumerate(facts):
        per_doc[d].append((fi, s))
    docs, ids, offsets = [], [], {}
    for d, budget in enumerate(doc_budgets):
        fact_list = per_doc[d]
        # 3 tokens of slack: the first sentence lacks its leading space and the last one
        # ends with ".\n\n", which may tokenize differently from " ... ."
        used = 3 + sum(len(enc.sentence(s, False, False)) for _, s in fact_list)
        sents = []
        while True:
            s = sampler.filler(rng)
            n = len(enc.sentence(s, False, False))
            if used + n > budget:
                break
            sents.append(s)
            used += n
        for fi, s in fact_list:
            sents.insert(rng.randint(0, len(sents)), (fi, s))
        doc_ids, pieces = [], []
        for i, s in enumerate(sents):
            fi, sent = s if isinstance(s, tuple) else (None, s)
            if fi is not None:
                offsets[fi] = (d, len(doc_ids))
            p = sent.pieces(i == 0, i == len(sents) - 1)
            pieces.extend(p)
            doc_ids.extend(enc.pieces(p))
        docs.append("".join(pieces))
        ids.append(doc_ids)
    return docs, ids, offsets


def split_budget(rng, total, n, min_each=24):
    """n positive integers summing to total, random proportions, each >= min_each."""
    cuts = sorted(rng.random() for _ in range(n - 1))
    parts = [b - a for a, b in zip([0.0] + cuts, cuts + [1.0])]
    free = max(0, total - n * min_each)
    out = [min_each + int(p * free) for p in parts]
    out[-1] += total - sum(out)
    return out


def sample_context(sampler, enc, rng, context_tokens, num_docs, n_facts, equal_docs, share=0.3):
    """Documents totalling about context_tokens tokens with n_facts facts about distinct
    names, spread over the documents in proportion to their lengths. Returns (names,
    codes, docs, doc_ids, offsets) with offsets[i] = (doc, token offset) of fact i."""
    names = sampler.names(rng, n_facts, share)
    codes = [sampler.code(rng) for _ in names]
    budgets = ([context_tokens // num_docs] * num_docs if equal_docs
               else split_budget(rng, context_tokens, num_docs))
    budgets[-1] += context_tokens - sum(budgets)
    facts = [(rng.choices(range(num_docs), weights=budgets)[0], fact_sentence(nm, cd))
             for nm, cd in zip(names, codes)]
    docs, doc_ids, offsets = build_docs(sampler, enc, rng, budgets, facts)
    return names, codes, docs, doc_ids, offsets


def make_question(sampler, enc, rng, context_tokens, num_docs, facts_per_1k, equal_docs=True,
                  share=0.3):
    """One retrieval question: documents totalling about context_tokens tokens (prompt
    excluded), the needle (fact 0) and distractor facts. Returns a dict (text fields,
    and the ids under keys starting with '_')."""
    n_facts = max(1, round(facts_per_1k * context_tokens / 1000))
    names, codes, docs, doc_ids, offsets = sample_context(
        sampler, enc, rng, context_tokens, num_docs, n_facts, equal_docs, share)
    nd, off = offsets[0]
    ctx_len = sum(len(x) for x in doc_ids)
    before = sum(len(x) for x in doc_ids[:nd]) + off
    question = QUESTION_TEMPLATE.format(name=name_text(names[0]))
    return {
        "documents": docs,
        "question": question,
        "prompt": PROMPT_TEMPLATE.format(question=question),
        "answer": codes[0],
        "needle_doc": nd,
        "needle_doc_depth": round(off / max(1, len(doc_ids[nd])), 4),
        "needle_depth": round(before / max(1, ctx_len), 4),
        "num_facts": n_facts,
        "doc_tokens": [len(x) for x in doc_ids],
        "context_tokens": ctx_len,
        "_doc_ids": doc_ids,
        "_prompt_ids": enc.pieces(prompt_pieces(names[0])),
        "_answer_ids": enc.pieces(list(codes[0])),
    }


# roles of a training target: an answer's first digit (the look-up), its other digits, a
# name in a question, a copied token
FIRST, ANSWER, NAME, COPY = 4, 1, 2, 3
QUESTION_BLOCK_TOKENS = 18   # PROMPT + 5 digits + ".\n" with one-token names


FACT_TOKENS = 12   # a fact sentence with one-token names: F L 's code is _ d d d d d .


def row_spec(rng, level, length, max_docs=6, max_questions=8, density=(4.0, 16.0),
             near_miss=0.3):
    """Difficulty of one training row of `length` tokens at curriculum level in [0, 1]:
    (facts, documents, near-miss share, questions); every fact is asked about (at most
    max_questions). Level 0 packs the row with facts and their questions (as many as fit,
    up to max_questions; little filler: every question is a look-up among them) in one
    document without near misses; level 1 is the evaluation's distribution: facts at
    `density` per 1000 tokens of the row, 1..max_docs documents, near misses at
    `near_miss` (reached at level 0.5 already: a model that matches one of the two name
    tokens plateaus at the accuracy the near misses leave it). Between, the fact count
    and the documents move linearly (the filler fills the rest)."""
    full_facts = max(1, round(rng.uniform(*density) * length / 1000))
    dense = max(1, min(max_questions, (length - 8) // (FACT_TOKENS + QUESTION_BLOCK_TOKENS)))
    n_facts = max(1, round(dense + level * (full_facts - dense)))
    n_q = min(n_facts, max_questions)
    num_docs = 1 + round(level * (rng.randint(1, max_docs) - 1))
    return n_facts, num_docs, near_miss * min(1.0, 2.0 * level), n_q


def training_sequence(sampler, enc, rng, length, pad_id, spec):
    """A plain training context of exactly `length` tokens: documents of random lengths
    holding spec's facts, then question/answer blocks (PROMPT + code + ".\n") about
    distinct facts, padded with pad_id. spec = (facts, documents, near-miss share,
    questions), see row_spec. Returns (ids, roles): roles[p] is FIRST where the next
    token is an answer's first digit, ANSWER where it is one of its other digits, NAME
    where it is a name of a question, else 0."""
    n_facts, num_docs, share, n_q = spec
    ctx_budget = max(32, length - QUESTION_BLOCK_TOKENS * n_q - 4)
    num_docs = max(1, min(num_docs, ctx_budget // 48))
    names, codes, _, doc_ids, _ = sample_context(sampler, enc, rng, ctx_budget, num_docs,
                                                 n_facts, equal_docs=False, share=share)
    ids = [i for d in doc_ids for i in d]
    roles = [0] * length
    for qi in rng.sample(range(n_facts), n_q):
        pieces = prompt_pieces(names[qi])
        head = len(enc.pieces(pieces[:4]))              # "Question: What is"
        name_len = len(enc.pieces(pieces[4:6]))
        block = enc.pieces(pieces)
        digits = enc.pieces(list(codes[qi]))
        if len(ids) + len(block) + len(digits) + 1 > length:
            break
        for p in range(len(ids) + head - 1, len(ids) + head - 1 + name_len):
            roles[p] = NAME
        ids.extend(block)
        for p in range(len(ids) - 1, len(ids) - 1 + len(digits)):
            roles[p] = FIRST if p == len(ids) - 1 else ANSWER
        ids.extend(digits)
        ids.extend(enc.piece(".\n"))
    ids = ids[:length]   # a context of many facts in few tokens may overrun (no question)
    ids.extend([pad_id] * (length - len(ids)))
    return ids, roles


def copy_sequence(rng, length, n_regular):
    """A synthetic induction row (the curriculum's first stage, it teaches copying): k =
    length // 2 token ids drawn uniformly from [0, n_regular), then the same k again.
    Returns (ids, roles) with roles COPY where the next token is in the repeat."""
    k = length // 2
    first = [rng.randrange(n_regular) for _ in range(k)]
    ids = (first * 3)[:length]
    roles = [0] * k + [COPY] * (length - k - 1) + [0]   # the repeat's first token: a guess
    return ids, roles


def check_tokenization(enc, q):
    """The piece-wise ids of a question equal the tokenizer's ids of its text."""
    text = "".join(q["documents"]) + q["prompt"] + q["answer"]
    want = enc.tok.encode(text, add_special_tokens=False).ids
    got = [i for d in q["_doc_ids"] for i in d] + q["_prompt_ids"] + q["_answer_ids"]
    return want == got
