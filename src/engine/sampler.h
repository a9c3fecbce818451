/* sampler.h - choosing the next token from logits: greedy, or temperature with
 * top-k, top-p (nucleus), min-p and a repetition penalty, from a seeded
 * counter-based RNG (same seed, same choices, on any machine).
 * Order (as HF): repetition penalty -> temperature -> top-k -> top-p -> min-p. */
#ifndef CL_SAMPLER_H
#define CL_SAMPLER_H

#include <stdint.h>

typedef struct {
    int greedy;           /* 1: argmax (ignores the rest but the penalty) */
    float temperature;    /* > 0 */
    int64_t top_k;        /* 0: off */
    float top_p;          /* 1: off */
    float min_p;          /* 0: off */
    float repetition_penalty; /* 1: off */
    uint64_t seed;
} cl_sampler_opts;

typedef struct {
    cl_sampler_opts o;
    uint64_t step;
    /* scratch */
    int32_t *idx;
    float *prob;
    int64_t cap;
} cl_sampler;

void cl_sampler_opts_default(cl_sampler_opts *o);
int cl_sampler_init(cl_sampler *s, const cl_sampler_opts *o);
void cl_sampler_free(cl_sampler *s);
/* Chooses a token. logits (n_vocab) are modified (penalty, temperature). history:
 * tokens seen so far (prompt + generated) for the repetition penalty. */
int32_t cl_sampler_pick(cl_sampler *s, float *logits, int64_t n_vocab, const int32_t *history,
                        int64_t n_history);
/* The probability distribution the sampler draws from after all filters
 * (for tests): writes probs[n_vocab] (zeros where filtered). */
int cl_sampler_probs(cl_sampler *s, float *logits, int64_t n_vocab, const int32_t *history,
                     int64_t n_history, float *probs);
/* argmax (first index of the maximum). */
int32_t cl_argmax(const float *x, int64_t n);

#endif
