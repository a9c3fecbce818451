"""Training batches of the retrieval task, made in worker processes.

A batch is (ids int32 [B, L], roles uint8 [B, L]): the role of the next token's loss,
task.FIRST / ANSWER / NAME / COPY (see task.training_sequence and task.copy_sequence) or 0.
Batches are requested with their length and curriculum level, so both can change while
workers run; each request carries its own seed, so a batch is a function of (seed,
length, size, level, copy share, shape). A row is a synthetic copy row (task.copy_sequence)
with probability copy_share; else a retrieval row that draws its own level: with
probability easy_share uniformly below the batch's level (easy examples stay to the end),
else the level."""
import collections
import multiprocessing as mp
import random

import numpy as np
from tokenizers import Tokenizer

from .task import Encoder, Sampler, copy_sequence, load_words, row_spec, training_sequence

_W = {}


def _init(tokenizer_path):
    tok = Tokenizer.from_file(tokenizer_path)
    _W["sampler"] = Sampler(load_words())
    _W["enc"] = Encoder(tok)
    _W["pad"] = tok.token_to_id("<|endoftext|>")


def make_batch(seed, length, size, level, copy_share=0.0, easy_share=0.2, max_docs=6,
               max_questions=8, near_miss=0.3):
    rng = random.Random(seed)
    ids = np.empty((size, length), dtype=np.int32)
    roles = np.zeros((size, length), dtype=np.uint8)
    for b in range(size):
        if rng.random() < copy_share:
            ids[b], roles[b] = copy_sequence(rng, length, _W["pad"])
            continue
        row_level = rng.uniform(0.0, level) if rng.random() < easy_share else level
        spec = row_spec(rng, row_level, length, max_docs=max_docs, max_questions=max_questions,
                        near_miss=near_miss)
        row, r = training_sequence(_W["sampler"], _W["enc"], rng, length, _W["pad"], spec)
        ids[b] = row
        roles[b] = r
    return ids, roles


class BatchStream:
    """Keeps `ahead` batch requests in flight on `workers` processes (0: made inline)."""

    def __init__(self, tokenizer_path, workers, seed, ahead=None, easy_share=0.2, max_docs=6,
                 max_questions=8, near_miss=0.3):
        self.seed, self.count = seed, 0
        self.shape = {"easy_share": easy_share, "max_docs": max_docs,
                      "max_questions": max_questions, "near_miss": near_miss}
        self.pending = collections.deque()
        self.ahead = ahead or max(2, 2 * workers)
        if workers > 0:
            ctx = mp.get_context("spawn")   # safe after CUDA is initialized
            self.pool = ctx.Pool(workers, initializer=_init, initargs=(tokenizer_path,))
        else:
            self.pool = None
            _init(tokenizer_path)

    def _submit(self, length, size, level, copy_share):
        seed = self.seed * 1_000_003 + self.count
        self.count += 1
        if self.pool is None:
            self.pending.append(make_batch(seed, length, size, level, copy_share, **self.shape))
        else:
            self.pending.append(self.pool.apply_async(
                make_batch, (seed, length, size, level, copy_share), self.shape))

    def next(self, length, size, level, copy_share=0.0):
        """The oldest requested batch; a new request for (length, size, level, copy_share)
        replaces it."""
        while len(self.pending) < self.ahead:
            self._submit(length, size, level, copy_share)
        item = self.pending.popleft()
        self._submit(length, size, level, copy_share)
        return item if self.pool is None else item.get()

    def close(self):
        if self.pool is not None:
            self.pool.terminate()
            self.pool.join()
            self.pool = None
