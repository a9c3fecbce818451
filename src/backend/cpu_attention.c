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

/* Rows per tile of the prefill path; below TILE_MIN_ROWS new tokens (decode) the
 * per-row path is cheaper than gathering the keys. */
#define TILE_ROWS 64
#define TILE_MIN_ROWS 16

/* First visible slot of the query in slot qslot (sliding window). */
static inline int64_t first_visible(const cl_mixer_params *p, int64_t qslot)
{
    return p->window > 0 && qslot - p->window + 1 > 0 ? qslot - p->window + 1 : 0;
}

/* Softmax of scores[lo..qslot] in place (hidden slots -> weight 0); returns the sum of
 * the weights before normalisation is applied by the caller (0: nothing visible). */
static float softmax_row(float *sc, int64_t lo, int64_t qslot, const cl_batch_seq *sq, int64_t base)
{
    float mx = -FLT_MAX;
    for (int64_t j = lo; j <= qslot; j++) {
        if (j >= sq->hide_lo && j < sq->hide_hi)
            sc[j - base] = -INFINITY;
        else if (sc[j - base] > mx)
            mx = sc[j - base];
    }
    float sum = 0.0f;
    for (int64_t j = lo; j <= qslot; j++) {
        float e = sc[j - base] == -INFINITY ? 0.0f : expf(sc[j - base] - mx);
        sc[j - base] = e;
        sum += e;
    }
    return sum;
}

/* Decode-sized batches: one task per (row, head), keys read in place from the pages. */
static int attend_rows(float *out, const float *q, int64_t ldq, const cl_kv_layer *kv,
                       const cl_batch_seq *sq, const cl_mixer_params *p)
{
    const int64_t Hq = p->n_heads, D = p->head_dim, G = Hq / p->n_kv_heads;
    const int64_t max_kv = sq->kv_start + sq->n_tok;
    int64_t tasks = sq->n_tok * Hq;
    int failed = 0;
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
            int64_t lo = first_visible(p, qslot);
            const float *qv = q + row * ldq + h * D;
            for (int64_t j = lo; j <= qslot; j++)
                scores[j - lo] = cpu_dot(qv, kv_at(kv->k, kv, sq->blocks, j, g), D) * p->scale;
            float sum = softmax_row(scores, lo, qslot, sq, lo);
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
    return failed;
}

/* Prefill: the KV heads' keys and values gathered into contiguous matrices once, then
 * per (tile of TILE_ROWS rows, query head) two matrix products (scores = Q K^T, out =
 * P V) over the keys the tile can see, with the causal, window and hidden masks
 * applied to the scores in between. */
static int attend_tiled(float *out, const float *q, int64_t ldq, const cl_kv_layer *kv,
                        const cl_batch_seq *sq, const cl_mixer_params *p)
{
    const int64_t Hq = p->n_heads, Hkv = p->n_kv_heads, D = p->head_dim, G = Hq / Hkv;
    /* keys [base, base + nk): what the batch's first row can see and everything after */
    const int64_t base = first_visible(p, sq->kv_start), nk = sq->kv_start + sq->n_tok - base;
    float *K = malloc((size_t)(Hkv * nk * D) * sizeof *K);
    float *V = malloc((size_t)(Hkv * nk * D) * sizeof *V);
    if (!K || !V) {
        free(K);
        free(V);
        return 1;
    }
#pragma omp parallel for schedule(static) if (nk * Hkv * D > 65536)
    for (int64_t j = 0; j < nk; j++)
        for (int64_t g = 0; g < Hkv; g++) {
            memcpy(K + (g * nk + j) * D, kv_at(kv->k, kv, sq->blocks, base + j, g),
                   (size_t)D * sizeof *K);
            memcpy(V + (g * nk + j) * D, kv_at(kv->v, kv, sq->blocks, base + j, g),
                   (size_t)D * sizeof *V);
        }
    const int64_t tiles = (sq->n_tok + TILE_ROWS - 1) / TILE_ROWS, tasks = tiles * Hq;
    int failed = 0;
#pragma omp parallel
    {
        float *S = malloc((size_t)(TILE_ROWS * nk) * sizeof *S);
        if (!S) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(dynamic, 1)
        for (int64_t task = 0; task < tasks; task++) {
            if (!S)
                continue;
            int64_t t = task / Hq, h = task % Hq, g = h / G;
            int64_t i0 = t * TILE_ROWS;
            int64_t rows = sq->n_tok - i0 < TILE_ROWS ? sq->n_tok - i0 : TILE_ROWS;
            int64_t lo = first_visible(p, sq->kv_start + i0);  /* the tile's first row's */
            int64_t hi = sq->kv_start + i0 + rows;                /* past the last row's */
            int64_t n = hi - lo;
            const float *Kg = K + (g * nk + lo - base) * D, *Vg = V + (g * nk + lo - base) * D;
            const float *Q = q + (sq->tok_start + i0) * ldq + h * D;
            cpu_gemm_nt(rows, n, D, Q, ldq, Kg, D, S, n, 0);
            float *O = out + (sq->tok_start + i0) * Hq * D + h * D;
            float inv[TILE_ROWS];
            for (int64_t r = 0; r < rows; r++) {
                float *sr = S + r * n;
                int64_t qslot = sq->kv_start + i0 + r, rlo = first_visible(p, qslot);
                for (int64_t j = lo; j <= qslot; j++)
                    sr[j - lo] *= p->scale;
                float sum = softmax_row(sr, rlo, qslot, sq, lo);
                for (int64_t j = lo; j < rlo; j++)     /* before the row's window */
                    sr[j - lo] = 0.0f;
                for (int64_t j = qslot + 1; j < hi; j++) /* the future */
                    sr[j - lo] = 0.0f;
                inv[r] = sum > 0 ? 1.0f / sum : 0.0f;
            }
            cpu_gemm_nn(rows, D, n, S, n, Vg, D, O, Hq * D, 0);
            for (int64_t r = 0; r < rows; r++)
                for (int64_t d = 0; d < D; d++)
                    O[r * Hq * D + d] *= inv[r];
        }
        free(S);
    }
    free(K);
    free(V);
    return failed;
}

int cpu_attention(cl_backend *b, float *out, const float *q, int64_t ldq, const float *k,
                  const float *v, int64_t ldk, const cl_kv_layer *kv, const cl_batch *batch,
                  const cl_mixer_params *p)
{
    (void)b;
    const int64_t Hkv = p->n_kv_heads, D = p->head_dim;
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
    /* 2. attend */
    int failed = 0;
    for (int s = 0; s < batch->n_seq && !failed; s++) {
        const cl_batch_seq *sq = &batch->seq[s];
        if (sq->n_tok >= TILE_MIN_ROWS)
            failed = attend_tiled(out, q, ldq, kv, sq, p);
        else
            failed = attend_rows(out, q, ldq, kv, sq, p);
    }
    return failed ? cl_err(CL_ERR_NOMEM, "out of memory (attention)") : CL_OK;
}
