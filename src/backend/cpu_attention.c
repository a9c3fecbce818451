/* CPU attention (spec MODEL.md §5-6): appends the new K/V to the paged cache,
 * then causal softmax attention of every new query over the visible slots,
 * GQA (query head h reads KV head h / G), optional sliding window of w keys
 * including the query's own slot, optional hidden slot range (sw composition). */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu_internal.h"
#include "common/status.h"

static inline float *kv_at(void *pool, const cl_kv_layer *kv, const int32_t *blocks, int64_t slot,
                           int64_t head)
{
    int64_t page = blocks[slot / kv->page_tokens], off = slot % kv->page_tokens;
    return (float *)pool + ((page * kv->page_tokens + off) * kv->n_kv_heads + head) * kv->head_dim;
}

int cpu_attention(cl_backend *b, float *out, const float *q, int64_t ldq, const float *k,
                  const float *v, int64_t ldk, const cl_kv_layer *kv, const cl_batch *batch,
                  const cl_mixer_params *p)
{
    (void)b;
    const int64_t Hq = p->n_heads, Hkv = p->n_kv_heads, D = p->head_dim, G = Hq / Hkv;
    if (kv->kv_dtype != CL_F32)
        return cl_err(CL_ERR_UNSUPPORTED, "cpu attention: KV dtype %s (fp32 only)",
                      cl_dtype_name(kv->kv_dtype));
    /* 1. append */
    for (int s = 0; s < batch->n_seq; s++) {
        const cl_batch_seq *sq = &batch->seq[s];
        for (int64_t i = 0; i < sq->n_tok; i++) {
            int64_t row = sq->tok_start + i, slot = sq->kv_start + i;
            for (int64_t h = 0; h < Hkv; h++) {
                memcpy(kv_at(kv->k, kv, sq->blocks, slot, h), k + row * ldk + h * D,
                       (size_t)D * sizeof(float));
                memcpy(kv_at(kv->v, kv, sq->blocks, slot, h), v + row * ldk + h * D,
                       (size_t)D * sizeof(float));
            }
        }
    }
    /* 2. attend: one task per (row, head) */
    int64_t max_kv = 1;
    for (int s = 0; s < batch->n_seq; s++)
        if (batch->seq[s].kv_start + batch->seq[s].n_tok > max_kv)
            max_kv = batch->seq[s].kv_start + batch->seq[s].n_tok;
    int failed = 0;
    for (int s = 0; s < batch->n_seq; s++) {
        const cl_batch_seq *sq = &batch->seq[s];
        int64_t tasks = sq->n_tok * Hq;
#pragma omp parallel if (tasks > 1)
        {
            float *scores = malloc((size_t)max_kv * sizeof *scores);
            float *acc = malloc((size_t)D * sizeof *acc);
            if (!scores || !acc) {
#pragma omp atomic write
                failed = 1;
            }
#pragma omp for schedule(dynamic, 4)
            for (int64_t task = 0; task < tasks; task++) {
                if (!scores || !acc)
                    continue;
                int64_t i = task / Hq, h = task % Hq, g = h / G;
                int64_t row = sq->tok_start + i, qslot = sq->kv_start + i;
                int64_t lo = 0;
                if (p->window > 0 && qslot - p->window + 1 > 0)
                    lo = qslot - p->window + 1;
                const float *qv = q + row * ldq + h * D;
                float mx = -FLT_MAX;
                for (int64_t j = lo; j <= qslot; j++) {
                    if (j >= sq->hide_lo && j < sq->hide_hi) {
                        scores[j - lo] = -INFINITY;
                        continue;
                    }
                    float sc = cpu_dot(qv, kv_at(kv->k, kv, sq->blocks, j, g), D) * p->scale;
                    scores[j - lo] = sc;
                    if (sc > mx)
                        mx = sc;
                }
                float sum = 0.0f;
                for (int64_t j = lo; j <= qslot; j++) {
                    float e = scores[j - lo] == -INFINITY ? 0.0f : expf(scores[j - lo] - mx);
                    scores[j - lo] = e;
                    sum += e;
                }
                memset(acc, 0, (size_t)D * sizeof *acc);
                for (int64_t j = lo; j <= qslot; j++) {
                    float w = scores[j - lo];
                    if (w == 0.0f)
                        continue;
                    const float *vv = kv_at(kv->v, kv, sq->blocks, j, g);
                    for (int64_t d = 0; d < D; d++)
                        acc[d] += w * vv[d];
                }
                float *o = out + row * Hq * D + h * D;
                float inv = sum > 0 ? 1.0f / sum : 0.0f;
                for (int64_t d = 0; d < D; d++)
                    o[d] = acc[d] * inv;
            }
            free(scores);
            free(acc);
        }
    }
    return failed ? cl_err(CL_ERR_NOMEM, "out of memory (attention)") : CL_OK;
}
