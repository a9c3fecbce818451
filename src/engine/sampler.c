#include "engine/sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/rng.h"
#include "common/status.h"

void cl_sampler_opts_default(cl_sampler_opts *o)
{
    o->greedy = 0;
    o->temperature = 1.0f;
    o->top_k = 0;
    o->top_p = 1.0f;
    o->min_p = 0.0f;
    o->repetition_penalty = 1.0f;
    o->seed = 0;
}

int cl_sampler_init(cl_sampler *s, const cl_sampler_opts *o)
{
    memset(s, 0, sizeof *s);
    s->o = *o;
    if (!o->greedy && !(o->temperature > 0))
        return cl_err(CL_ERR_ARG, "--temperature must be > 0 (use --greedy for argmax)");
    if (o->top_p <= 0 || o->top_p > 1)
        return cl_err(CL_ERR_ARG, "--top-p must be in (0, 1]");
    if (o->min_p < 0 || o->min_p >= 1)
        return cl_err(CL_ERR_ARG, "--min-p must be in [0, 1)");
    if (o->top_k < 0)
        return cl_err(CL_ERR_ARG, "--top-k must be >= 0");
    if (!(o->repetition_penalty > 0))
        return cl_err(CL_ERR_ARG, "--repetition-penalty must be > 0");
    return CL_OK;
}

void cl_sampler_free(cl_sampler *s)
{
    free(s->idx);
    free(s->prob);
    memset(s, 0, sizeof *s);
}

int32_t cl_argmax(const float *x, int64_t n)
{
    int64_t best = 0;
    for (int64_t i = 1; i < n; i++)
        if (x[i] > x[best])
            best = i;
    return (int32_t)best;
}

static void penalize(const cl_sampler_opts *o, float *logits, int64_t V, const int32_t *hist,
                     int64_t n)
{
    if (o->repetition_penalty == 1.0f)
        return;
    /* HF: each distinct previous token once: positive logits divided, negative multiplied */
    for (int64_t i = 0; i < n; i++) {
        int32_t t = hist[i];
        if (t < 0 || t >= V)
            continue;
        int seen = 0;
        for (int64_t j = 0; j < i && !seen; j++)
            seen = hist[j] == t;
        if (seen)
            continue;
        logits[t] = logits[t] > 0 ? logits[t] / o->repetition_penalty
                                  : logits[t] * o->repetition_penalty;
    }
}

static const float *cmp_base;
static int cmp_desc(const void *a, const void *b)
{
    float x = cmp_base[*(const int32_t *)a], y = cmp_base[*(const int32_t *)b];
    if (x != y)
        return x > y ? -1 : 1;
    return *(const int32_t *)a - *(const int32_t *)b;
}

/* Fills s->idx[0..*n) with the surviving token ids and s->prob with their
 * normalised probabilities (sorted by probability, descending). */
static int filtered(cl_sampler *s, float *logits, int64_t V, int64_t *n_out)
{
    if (s->cap < V) {
        int32_t *ni = realloc(s->idx, (size_t)V * sizeof *ni);
        if (ni)
            s->idx = ni;
        float *np = realloc(s->prob, (size_t)V * sizeof *np);
        if (np)
            s->prob = np;
        if (!ni || !np)
            return cl_err(CL_ERR_NOMEM, "out of memory (sampler)");
        s->cap = V;
    }
    const cl_sampler_opts *o = &s->o;
    for (int64_t i = 0; i < V; i++) {
        logits[i] /= o->temperature;
        s->idx[i] = (int32_t)i;
    }
    cmp_base = logits;
    qsort(s->idx, (size_t)V, sizeof *s->idx, cmp_desc);
    int64_t n = V;
    if (o->top_k > 0 && o->top_k < n)
        n = o->top_k;
    double mx = logits[s->idx[0]], sum = 0;
    for (int64_t i = 0; i < n; i++) {
        s->prob[i] = (float)exp((double)logits[s->idx[i]] - mx);
        sum += s->prob[i];
    }
    for (int64_t i = 0; i < n; i++)
        s->prob[i] = (float)(s->prob[i] / sum);
    if (o->top_p < 1.0f) {
        /* keep the smallest prefix whose mass reaches top_p (at least one token) */
        double acc = 0;
        int64_t keep = n;
        for (int64_t i = 0; i < n; i++) {
            acc += s->prob[i];
            if (acc >= o->top_p) {
                keep = i + 1;
                break;
            }
        }
        n = keep;
    }
    if (o->min_p > 0.0f) {
        float thr = o->min_p * s->prob[0];
        int64_t keep = 1;
        while (keep < n && s->prob[keep] >= thr)
            keep++;
        n = keep;
    }
    sum = 0;
    for (int64_t i = 0; i < n; i++)
        sum += s->prob[i];
    for (int64_t i = 0; i < n; i++)
        s->prob[i] = (float)(s->prob[i] / sum);
    *n_out = n;
    return CL_OK;
}

int cl_sampler_probs(cl_sampler *s, float *logits, int64_t V, const int32_t *hist, int64_t nh,
                     float *probs)
{
    penalize(&s->o, logits, V, hist, nh);
    memset(probs, 0, (size_t)V * sizeof *probs);
    if (s->o.greedy) {
        probs[cl_argmax(logits, V)] = 1.0f;
        return CL_OK;
    }
    int64_t n;
    CL_TRY(filtered(s, logits, V, &n));
    for (int64_t i = 0; i < n; i++)
        probs[s->idx[i]] = s->prob[i];
    return CL_OK;
}

int32_t cl_sampler_pick(cl_sampler *s, float *logits, int64_t V, const int32_t *hist, int64_t nh)
{
    penalize(&s->o, logits, V, hist, nh);
    uint64_t step = s->step++;
    if (s->o.greedy)
        return cl_argmax(logits, V);
    int64_t n;
    if (filtered(s, logits, V, &n) != CL_OK)
        return cl_argmax(logits, V);
    /* one uniform per step from (seed, step): repeatable */
    double u = (double)(cl_mix64(cl_mix64(s->o.seed) ^ (step * 0x9e3779b97f4a7c15ull)) >> 11) *
               (1.0 / 9007199254740992.0);
    double acc = 0;
    for (int64_t i = 0; i < n; i++) {
        acc += s->prob[i];
        if (u < acc)
            return s->idx[i];
    }
    return s->idx[n - 1];
}
