/* sampler.h - choosing the next token from logits (public part in collage.h:
 * cl_sampler_opts, create/free/pick): greedy, or temperature with top-k, top-p
 * (nucleus), min-p, HF's repetition penalty and OpenAI's presence / frequency
 * penalties, from a seeded counter-based RNG (same seed, same choices, on any
 * machine). Order (as HF): penalties -> temperature -> top-k -> top-p -> min-p.
 * Log-probabilities are reported from the raw logits (as vLLM does by default). */
#ifndef CL_SAMPLER_H
#define CL_SAMPLER_H

#include <stdint.h>

#include "collage.h"

#define CL_MAX_TOP_LOGPROBS 20

/* A token and its unnormalised probability (the draw's working set). */
typedef struct {
    float w;
    int32_t id;
} cl_sampler_item;

struct cl_sampler {
    cl_sampler_opts o;
    uint64_t step;
    /* scratch */
    int32_t *idx;
    float *prob;
    int64_t cap;
    cl_sampler_item *items;
    int64_t items_cap;
    double *block_mass; /* the draw's mass per CL_VEXP_BLOCK ids */
    int64_t block_cap;
    uint32_t *seen;      /* [V]: bit 0 seen anywhere, bits 1..: count in the generated text */
    int64_t seen_cap;
    int32_t top_ids[CL_MAX_TOP_LOGPROBS];
    float top_lp[CL_MAX_TOP_LOGPROBS];
};

/* Initialises a sampler held by value (checks the options: CL_ERR_ARG). */
int cl_sampler_init(cl_sampler *s, const cl_sampler_opts *o);
void cl_sampler_release(cl_sampler *s);
/* The probability distribution the sampler draws from after all filters (for
 * tests): writes probs[n_vocab] (zeros where filtered). */
int cl_sampler_probs(cl_sampler *s, float *logits, int64_t n_vocab, const int32_t *history,
                     int64_t n_history, int64_t n_prompt, float *probs);
/* Log-probabilities of the raw logits (log-softmax): `id`'s and the k most likely
 * (k <= CL_MAX_TOP_LOGPROBS); out points into s (valid until the next call). */
int cl_sampler_logprobs(cl_sampler *s, const float *raw_logits, int64_t n_vocab, int32_t id,
                        int k, cl_token_logprobs *out);
/* The draw itself, for a given uniform u in [0, 1): temperature, top-k, top-p, min-p
 * applied to logits (scaled in place) and the token at which the running mass first
 * exceeds u times the total (cl_sampler_pick's choice, without sorting the vocabulary):
 * in order of probability (descending; ties by id) when something is filtered, in id
 * order when nothing is (the same distribution, no ordering work). */
int32_t cl_sampler_draw(cl_sampler *s, float *logits, int64_t n_vocab, double u);
/* argmax (first index of the maximum). */
int32_t cl_argmax(const float *x, int64_t n);

#endif
