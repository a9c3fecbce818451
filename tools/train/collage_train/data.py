"""Training batches of the retrieval task, made in worker processes.

A batch is (ids int32 [B, L], answer bool [B, L]): answer[b, p] marks positions whose next
token is an answer digit. Batches are requested with their length, so the length
curriculum can change while workers run; each request carries its own seed, so a batch
is a function of (seed, length, size)."""
import collections
import multiprocessing as mp
import random

import numpy as np
from tokenizers import Tokenizer

from .task import Encoder, Sampler, load_words, training_sequence

_W = {}


def _init(tokenizer_path):
    tok = Tokenizer.from_file(tokenizer_path)
    _W["sampler"] = Sampler(load_words())
    _W["enc"] = Encoder(tok)
    _W["pad"] = tok.token_to_id("<|endoftext|>")


def make_batch(seed, length, size, max_docs=6, max_questions=3):
    rng = random.Random(seed)
    ids = np.empty((size, length), dtype=np.int32)
    ans = np.zeros((size, length), dtype=bool)
    for b in range(size):
        row, pos = training_sequence(_W["sampler"], _W["enc"], rng, length, _W["pad"],
                                     max_docs=max_docs, max_questions=max_questions)
        ids[b] = row
        ans[b, pos] = True
    return ids, ans


class BatchStream:
    """Keeps `ahead` batch requests in flight on `workers` processes (0: made inline)."""

    def __init__(self, tokenizer_path, workers, seed, ahead=None, max_docs=6, max_questions=3):
        self.seed, self.count = seed, 0
        self.shape = {"max_docs": max_docs, "max_questions": max_questions}
        self.pending = collections.deque()
        self.ahead = ahead or max(2, 2 * workers)
        if workers > 0:
            ctx = mp.get_context("spawn")   # safe after CUDA is initialized
            self.pool = ctx.Pool(workers, initializer=_init, initargs=(tokenizer_path,))
        else:
            self.pool = None
            _init(tokenizer_path)

    def _submit(self, length, size):
        seed = self.seed * 1_000_003 + self.count
        self.count += 1
        if self.pool is None:
            self.pending.append(make_batch(seed, length, size, **self.shape))
        else:
            self.pending.append(self.pool.apply_async(make_batch, (seed, length, size),
                                                      self.shape))

    def next(self, length, size):
        """The oldest requested batch; a new request for (length, size) replaces it."""
        while len(self.pending) < self.ahead:
            self._submit(length, size)
        item = self.pending.popleft()
        self._submit(length, size)
        return item if self.pool is None else item.get()

    def close(self):
        if self.pool is not None:
            self.pool.terminate()
            self.pool.join()
            self.pool = None
