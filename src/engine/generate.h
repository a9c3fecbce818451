/* generate.h - prompt in, new token ids out: prefill (chunked), then one token
 * at a time through the recurrent (decode) path, choosing with a sampler or
 * emitting forced ids (teacher forcing), stopping on EOS, a callback or the
 * token budget. */
#ifndef CL_GENERATE_H
#define CL_GENERATE_H

#include <stdint.h>

#include "common/ids.h"
#include "engine/sampler.h"
#include "engine/seq.h"

/* Called for each emitted token; return non-zero to stop after it. */
typedef int (*cl_token_cb)(void *user, int32_t id);

typedef enum { CL_STOP_LENGTH = 0, CL_STOP_EOS, CL_STOP_CALLBACK } cl_stop_reason;

typedef struct {
    int64_t max_new_tokens;
    cl_sampler_opts sampling;
    const int32_t *force_ids; /* emitted instead of chosen, for the first n_force steps */
    int64_t n_force;
    const int64_t *eos_ids;   /* stop ids (NULL: the model config's) */
    int n_eos;
    int ignore_eos;
    float *logits_out;        /* optional host [max_new_tokens, V]: row k chose id k */
    cl_token_cb on_token;
    void *user;
    int64_t prefill_chunk;    /* tokens per forward call in prefill (0: default) */
    int64_t max_context;      /* RoPE positions allowed (0: config max_position_embeddings) */
    int feed_last;            /* also feed the last emitted token (the state then covers it) */
} cl_gen_opts;

typedef struct {
    int64_t prompt_tokens;  /* tokens given */
    int64_t prefill_tokens; /* tokens actually computed in prefill */
    int64_t new_tokens;
    double prefill_s, decode_s;
    cl_stop_reason stop;
} cl_gen_stats;

void cl_gen_opts_default(cl_gen_opts *o);

/* Feeds prompt[0..n) to s (whose state may already hold a prefix) and generates.
 * out receives the new ids. */
int cl_generate(cl_model *m, cl_seq *s, const int32_t *prompt, int64_t n, const cl_gen_opts *o,
                cl_ids *out, cl_gen_stats *st);

/* 1 if id ends generation under o (its eos ids, else the config's; never with ignore_eos). */
int cl_gen_is_eos(const cl_gen_opts *o, const cl_config *cfg, int32_t id);
/* Checks that n more tokens fit in the context (clear error otherwise). */
int cl_check_context(const cl_model *m, const cl_seq *s, int64_t n, int64_t max_context);
/* Checks ids are in the vocabulary and fit in the context. */
int cl_check_prompt(const cl_model *m, const cl_seq *s, const int32_t *ids, int64_t n,
                    int64_t max_context);

#endif
