/* tiny_train.h - learns byte-level BPE merges from a text, deterministically, for
 * the tiny tokenizer that mkmodel writes. Not a general trainer: it is sized for a
 * few KB of text and a vocabulary of a few thousand tokens. */
#ifndef CL_TOKENIZER_TINY_TRAIN_H
#define CL_TOKENIZER_TINY_TRAIN_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int32_t n_tokens;  /* ids 0..n_tokens-1; id b < 256 is the single byte b */
    char *bytes;       /* raw bytes of every token */
    uint32_t *off, *len;
    int32_t (*merges)[2]; /* (left, right) ids in rank order */
    size_t n_merges;
} cl_bpe_vocab;

/* Learns merges from text until there are n_tokens tokens (n_tokens >= 256).
 * Phase 1 is standard BPE training on the text's pre-tokenized chunks (Qwen2
 * pattern): the most frequent adjacent pair is merged, ties going to the lowest
 * (left, right) ids. When the text has no pair left, phase 2 extends word tokens
 * by one letter each ("Ġlight" + "s") so every id below n_tokens is a real token
 * (a random-weight model may emit any id, and each must decode). */
int cl_bpe_train(const char *text, size_t len, int32_t n_tokens, cl_bpe_vocab *out);
void cl_bpe_vocab_free(cl_bpe_vocab *v);

#endif
