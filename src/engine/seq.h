/* seq.h - one sequence's state handle and feeding tokens through the model.
 *
 * A cl_seq owns an SSM slot and a list of KV pages in a cl_cache, and keeps two
 * counters (spec MODEL.md §12): kv_len (KV slots filled) and pos (RoPE position
 * of the next token). They are equal except after composition.
 */
#ifndef CL_SEQ_H
#define CL_SEQ_H

#include <stdint.h>

#include "model/cache.h"
#include "model/forward.h"
#include "model/model.h"

struct cl_seq {
    cl_cache *c;
    int32_t slot;
    int32_t *pages;
    int64_t n_pages, cap_pages;
    int64_t kv_len; /* KV slots filled */
    int64_t pos;    /* RoPE position of the next token */
    int64_t hide_lo, hide_hi; /* KV slots hidden from new queries (sw composition) */
    int64_t n_tokens; /* tokens fed since the state began (or was restored) */
};

/* Public (collage.h): cl_seq_create/free (a heap cl_seq), reset, copy, pos, kv_len,
 * feed, state_save/load, cl_logits_mode. Below: the engine's own. */

/* Initialises a cl_seq held by value (inside another structure): a fresh (zero) slot. */
int cl_seq_init(cl_seq *s, cl_cache *c);
void cl_seq_release(cl_seq *s);
/* Ensures pages for kv_slots KV slots. */
int cl_seq_reserve(cl_seq *s, int64_t kv_slots);

/* Tokens per forward call when feeding a long prompt and neither the model
 * (cl_model.feed_chunk: --prefill-chunk) nor the backend (feed_tokens) sets it. */
#define CL_FEED_CHUNK 512

/* One forward call over several sequences: sequence i adds toks[i][0..n[i]) (rows
 * in that order, concatenated); logits [n_rows, V] (host, may be NULL) and/or
 * argmax ids [n_rows] for the batch rows listed in rows. */
int cl_seq_forward(cl_model *m, cl_seq **seqs, const int32_t *const *toks, const int64_t *n,
                   int n_seq, const int64_t *rows, int64_t n_rows, float *logits,
                   int32_t *argmax);
/* One forward call for several sequences, one token each (batched decode);
 * logits [n_seq, V]. */
int cl_seq_decode_batch(cl_model *m, cl_seq **seqs, const int32_t *tokens, int n_seq,
                        float *logits);

#endif
