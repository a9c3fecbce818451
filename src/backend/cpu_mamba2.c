/* CPU Mamba2 scan (spec MODEL.md §7, GQA variant: x<->V, B<->K, C<->Q).
 * One token: the recurrence S = a*S + dt*x(x)B, y = S C + D x.
 * Several tokens: the chunked (SSD) form of §7.2 over chunks of CPU_SSM_CHUNK,
 * each chunk starting from the previous chunk's state. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu_internal.h"
#include "common/status.h"

typedef struct {
    const float *xbc, *dt_raw, *dt_bias, *a_log, *d_skip;
    float *y;
    int64_t lddt, conv_dim, Hq, Hkv, D;
} m2_args;

/* Recurrent step for one token of head h. */
static void m2_step(const m2_args *a, int64_t row, int64_t h, float *S, float *log_decay)
{
    const int64_t D = a->D, g = h / (a->Hq / a->Hkv);
    const float *x = a->xbc + row * a->conv_dim + g * D;
    const float *B = a->xbc + row * a->conv_dim + a->Hkv * D + g * D;
    const float *C = a->xbc + row * a->conv_dim + 2 * a->Hkv * D + h * D;
    float A = -expf(a->a_log[h]);
    float dt = cpu_softplus(a->dt_raw[row * a->lddt + h] + a->dt_bias[h]);
    float decay = expf(dt * A);
    float *y = a->y + row * a->Hq * D + h * D;
    for (int64_t p = 0; p < D; p++) {
        float *Sp = S + p * D, xp = dt * x[p], acc = 0.0f;
        for (int64_t n = 0; n < D; n++) {
            Sp[n] = decay * Sp[n] + xp * B[n];
            acc += Sp[n] * C[n];
        }
        y[p] = acc + a->d_skip[h] * x[p];
    }
    *log_decay += dt * A;
}

/* Chunked form for rows [r0, r0+L) of head h; scratch has room for 4*L*D + L*L + 2*L. */
static void m2_chunk(const m2_args *a, int64_t r0, int64_t L, int64_t h, float *S,
                     float *log_decay, float *scratch)
{
    const int64_t D = a->D, g = h / (a->Hq / a->Hkv), cd = a->conv_dim;
    float *X = scratch, *B = X + L * D, *C = B + L * D, *CS = C + L * D, *M = CS + L * D,
          *lam = M + L * L, *dt = lam + L;
    float A = -expf(a->a_log[h]), cum = 0.0f;
    for (int64_t t = 0; t < L; t++) {
        const float *row = a->xbc + (r0 + t) * cd;
        memcpy(X + t * D, row + g * D, (size_t)D * sizeof *X);
        memcpy(B + t * D, row + a->Hkv * D + g * D, (size_t)D * sizeof *B);
        memcpy(C + t * D, row + 2 * a->Hkv * D + h * D, (size_t)D * sizeof *C);
        dt[t] = cpu_softplus(a->dt_raw[(r0 + t) * a->lddt + h] + a->dt_bias[h]);
        cum += dt[t] * A;
        lam[t] = cum;
    }
    /* M[t,s] = (C_t . B_s) * exp(lam_t - lam_s) * dt_s for s <= t */
    cpu_gemm_nt(L, L, D, C, D, B, D, M, L, 0);
    for (int64_t t = 0; t < L; t++)
        for (int64_t s = 0; s < L; s++)
            M[t * L + s] = s <= t ? M[t * L + s] * expf(lam[t] - lam[s]) * dt[s] : 0.0f;
    float *Y = a->y; /* rows r0.., head h columns, leading dim Hq*D */
    const int64_t ldy = a->Hq * D;
    float *yh = Y + r0 * ldy + h * D;
    /* y = M X + diag(exp(lam)) C S0^T + Dskip X */
    cpu_gemm_nn(L, D, L, M, L, X, D, yh, ldy, 0);
    cpu_gemm_nt(L, D, D, C, D, S, D, CS, D, 0);
    for (int64_t t = 0; t < L; t++) {
        float e = expf(lam[t]);
        for (int64_t p = 0; p < D; p++)
            yh[t * ldy + p] += e * CS[t * D + p] + a->d_skip[h] * X[t * D + p];
    }
    /* S_end = exp(lam_L) S0 + sum_s exp(lam_L - lam_s) dt_s X_s (x) B_s */
    float eL = expf(lam[L - 1]);
    for (int64_t i = 0; i < D * D; i++)
        S[i] *= eL;
    for (int64_t s = 0; s < L; s++) {
        float w = expf(lam[L - 1] - lam[s]) * dt[s];
        for (int64_t p = 0; p < D; p++)
            X[s * D + p] *= w;
    }
    cpu_gemm_tn(D, D, L, X, D, B, D, S, D, 1);
    *log_decay += lam[L - 1];
}

int cpu_mamba2(cl_backend *b, float *y, const float *xbc, const float *dt_raw, int64_t lddt,
               const cl_bweight *dt_bias, const cl_bweight *a_log, const cl_bweight *d_skip,
               const cl_ssm_layer *s, const cl_batch *batch, const cl_mixer_params *p)
{
    (void)b;
    m2_args a = {xbc, dt_raw, cpu_w(dt_bias), cpu_w(a_log), cpu_w(d_skip), y, lddt,
                 s->conv_channels, p->n_heads, p->n_kv_heads, p->head_dim};
    const int64_t D = p->head_dim, H = p->n_heads, Lc = CPU_SSM_CHUNK;
    int failed = 0;
    for (int q = 0; q < batch->n_seq; q++) {
        const cl_batch_seq *sq = &batch->seq[q];
#pragma omp parallel
        {
            float *scratch = NULL;
            if (sq->n_tok > 1) {
                scratch = malloc((size_t)(4 * Lc * D + Lc * Lc + 2 * Lc) * sizeof *scratch);
                if (!scratch) {
#pragma omp atomic write
                    failed = 1;
                }
            }
#pragma omp for schedule(static)
            for (int64_t h = 0; h < H; h++) {
                float *S = s->state + ((int64_t)sq->slot * H + h) * D * D;
                float *ld = s->log_decay + (int64_t)sq->slot * H + h;
                if (sq->n_tok == 1) {
                    m2_step(&a, sq->tok_start, h, S, ld);
                } else if (scratch) {
                    for (int64_t c0 = 0; c0 < sq->n_tok; c0 += Lc) {
                        int64_t L = sq->n_tok - c0 < Lc ? sq->n_tok - c0 : Lc;
                        m2_chunk(&a, sq->tok_start + c0, L, h, S, ld, scratch);
                    }
                }
            }
            free(scratch);
        }
    }
    return failed ? cl_err(CL_ERR_NOMEM, "out of memory (mamba2)") : CL_OK;
}
