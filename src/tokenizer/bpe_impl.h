/* bpe_impl.h - the inside of cl_tokenizer, shared by bpe_load.c (builds it) and
 * bpe.c (encodes and decodes with it). Not part of the module's contract. */
#ifndef CL_TOKENIZER_BPE_IMPL_H
#define CL_TOKENIZER_BPE_IMPL_H

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "tokenizer/bpe.h"
#include "tokenizer/jscan.h"
#include "tokenizer/pretok.h"

enum { CL_TOK_PRESENT = 1, CL_TOK_ADDED = 2, CL_TOK_SPECIAL = 4, CL_TOK_MAPPED = 8 };

/* One merge: the pair (left, right) -> its rank and the id of the merged token.
 * key = left << 32 | right; CL_MERGE_EMPTY marks a free slot. */
typedef struct {
    uint64_t key;
    int32_t rank, id;
} cl_merge_slot;
#define CL_MERGE_EMPTY UINT64_MAX

typedef struct {
    int32_t id;
    uint32_t off, len; /* its text in the tokenizer's byte arena */
    int special;
} cl_added_token;

/* Chunk -> ids cache of encode (see bpe.c). */
typedef struct cl_word_cache cl_word_cache;

#define CL_MAX_PRETOK 4 /* Split stages applied one after the other */

struct cl_tokenizer {
    char *path;          /* for messages */
    int32_t n_ids;       /* 1 + highest id */
    uint32_t *tok_off;   /* [n_ids] offset of the token's raw bytes in `bytes` */
    uint32_t *tok_len;   /* [n_ids] */
    uint8_t *tok_flags;  /* [n_ids] CL_TOK_* */
    char *bytes;         /* raw bytes of every token */
    size_t bytes_len, bytes_cap;
    int32_t byte_id[256]; /* the token of each single byte */

    cl_merge_slot *merges; /* open addressing, merge_mask + 1 slots */
    uint64_t merge_mask;
    size_t n_merges;

    void *lookup;          /* raw bytes -> id of byte-level vocab tokens (bpe_load.c) */
    uint64_t lookup_mask;

    /* Added tokens matched in the raw text (normalized: false) and after NFC
     * (normalized: true), each sorted longest first. */
    cl_added_token *added_raw, *added_norm;
    size_t n_added_raw, n_added_norm;
    uint8_t first_raw[256], first_norm[256]; /* 1 if some token starts with that byte */
    int only_first_raw, only_first_norm;       /* the one such byte (memchr), or -1 */

    int nfc;            /* normalizer: NFC (else none) */
    int ignore_merges;  /* a chunk that is a whole vocab token is taken as is */
    cl_pretok *pretok[CL_MAX_PRETOK];
    int n_pretok;

    pthread_mutex_t cache_lock;
    cl_word_cache *cache;
};

/* Hash of a byte string: XXH3, inlined (tokens and chunks are a few bytes, where
 * a library call costs as much as the hashing). */
static inline uint64_t cl_tok_hash(const void *p, size_t len) { return XXH3_64bits(p, len); }

/* memcmp(a, b, n) == 0 for the short strings of the tables, without a call. */
static inline int cl_tok_equal(const char *a, const char *b, size_t n)
{
    uint64_t x, y;
    for (; n >= 8; n -= 8, a += 8, b += 8) {
        memcpy(&x, a, 8);
        memcpy(&y, b, 8);
        if (x != y)
            return 0;
    }
    for (; n; n--)
        if (*a++ != *b++)
            return 0;
    return 1;
}
/* The id of the byte-level vocab token with these raw bytes, or -1. */
int32_t cl_tok_lookup(const cl_tokenizer *t, const char *raw, size_t len);
/* The same with the hash already computed (cl_tok_hash). */
int32_t cl_tok_lookup_hashed(const cl_tokenizer *t, const char *raw, size_t len, uint64_t h);
/* Slots of an open-addressing table for n entries (a power of two, < 2/3 full). */
uint64_t cl_tok_table_size(size_t n);

/* bpe_merges.c: reads model.merges (the scanner is at the array) into t->merges.
 * The vocab tables must be built; n_vocab_ids = 1 + the highest vocab id. */
int cl_bpe_read_merges(cl_tokenizer *t, cl_jscan *s, int32_t n_vocab_ids);
/* Replaces t->merges with a table of these n merges (in rank order). */
int cl_bpe_merge_table(cl_tokenizer *t, const cl_merge_slot *recs, size_t n);

/* bpe_config.c: checks model settings (the "model" keys other than vocab and
 * merges) and sets t->ignore_merges; refuses what is not implemented. */
int cl_bpe_config_model(cl_tokenizer *t, const cJSON *model, const char *path);
/* bpe_config.c: reads normalizer, pre_tokenizer and decoder from the top level. */
int cl_bpe_config_pipeline(cl_tokenizer *t, const cJSON *top, const char *path);

/* Word cache, created empty at load; freed with the tokenizer. */
int cl_word_cache_create(cl_word_cache **out);
void cl_word_cache_free(cl_word_cache *c);

static inline uint64_t cl_merge_hash(uint64_t key)
{
    uint64_t h = key * 0x9E3779B97F4A7C15ull;
    h ^= h >> 32;
    h *= 0xBF58476D1CE4E5B9ull;
    return h ^ (h >> 29);
}

static inline const cl_merge_slot *cl_merge_find(const cl_tokenizer *t, int32_t a, int32_t b)
{
    uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    for (uint64_t i = cl_merge_hash(key) & t->merge_mask;; i = (i + 1) & t->merge_mask) {
        const cl_merge_slot *s = &t->merges[i];
        if (s->key == key)
            return s;
        if (s->key == CL_MERGE_EMPTY)
            return NULL;
    }
}

#endif
