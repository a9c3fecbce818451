/* CPU Gated DeltaNet (spec MODEL.md §8). One token: the gated delta rule
 * recurrence of §8.1. Several tokens: the WY/UT chunk form of §8.2 from the
 * running state. Optionally keeps the transition product P (§8.3) that GDN
 * "fuse" composition needs: S_end = P S_0 + S_end|S0=0. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu_internal.h"
#include "common/status.h"

typedef struct {
    const float *qkv, *beta_raw, *gk_raw, *a_log, *dt_bias;
    float *o;
    int64_t ldg, Hq, Hkv, D, ldqkv;
    float scale;
    int neg;
} gdn_args;

/* q-hat (scaled), k-hat, v, beta, g of one token and head (fla l2norm: x/sqrt(sum x^2+1e-6)). */
static void gdn_token(const gdn_args *a, int64_t row, int64_t h, float *q, float *k, float *v,
                      float *beta, float *g)
{
    const int64_t D = a->D, kv = h / (a->Hq / a->Hkv);
    const float *r = a->qkv + row * a->ldqkv;
    const float *qs = r + h * D, *ks = r + a->Hq * D + kv * D, *vs = r + (a->Hq + a->Hkv) * D + kv * D;
    double qq = 0, kk = 0;
    for (int64_t i = 0; i < D; i++) {
        qq += (double)qs[i] * qs[i];
        kk += (double)ks[i] * ks[i];
    }
    float qn = (float)(1.0 / sqrt(qq + 1e-6)) * a->scale, kn = (float)(1.0 / sqrt(kk + 1e-6));
    for (int64_t i = 0; i < D; i++) {
        q[i] = qs[i] * qn;
        k[i] = ks[i] * kn;
        v[i] = vs[i];
    }
    float bt = cpu_sigmoid(a->beta_raw[row * a->ldg + h]);
    *beta = a->neg ? 2.0f * bt : bt;
    *g = -expf(a->a_log[h]) * cpu_softplus(a->gk_raw[row * a->ldg + h] + a->dt_bias[h]);
}

/* P <- e^g (I - beta k k^T) P */
static void trans_step(float *P, const float *k, float beta, float eg, int64_t D, float *tmp)
{
    for (int64_t j = 0; j < D; j++)
        tmp[j] = 0.0f;
    for (int64_t i = 0; i < D; i++)
        for (int64_t j = 0; j < D; j++)
            tmp[j] += k[i] * P[i * D + j]; /* k^T P */
    for (int64_t i = 0; i < D; i++)
        for (int64_t j = 0; j < D; j++)
            P[i * D + j] = eg * (P[i * D + j] - beta * k[i] * tmp[j]);
}

static void gdn_step(const gdn_args *a, int64_t row, int64_t h, float *S, float *ld, float *P,
                     float *scratch)
{
    const int64_t D = a->D;
    float *q = scratch, *k = q + D, *v = k + D, *u = v + D, beta, g;
    gdn_token(a, row, h, q, k, v, &beta, &g);
    float eg = expf(g);
    for (int64_t j = 0; j < D; j++)
        u[j] = 0.0f;
    for (int64_t i = 0; i < D; i++) {
        float *Si = S + i * D;
        for (int64_t j = 0; j < D; j++) {
            Si[j] *= eg;
            u[j] += Si[j] * k[i]; /* S^T k */
        }
    }
    for (int64_t j = 0; j < D; j++)
        u[j] = beta * (v[j] - u[j]);
    float *o = a->o + row * a->Hq * D + h * D;
    for (int64_t j = 0; j < D; j++)
        o[j] = 0.0f;
    for (int64_t i = 0; i < D; i++) {
        float *Si = S + i * D;
        for (int64_t j = 0; j < D; j++) {
            Si[j] += k[i] * u[j];
            o[j] += Si[j] * q[i];
        }
    }
    *ld += g;
    if (P)
        trans_step(P, k, beta, eg, D, u);
}

/* Chunk form over rows [r0, r0+L); scratch: 6*L*D + 2*L*L + 4*L + 2*D*D floats. */
static void gdn_chunk(const gdn_args *a, int64_t r0, int64_t L, int64_t h, float *S, float *ld,
                      float *P, float *scratch)
{
    const int64_t D = a->D;
    float *Q = scratch, *K = Q + L * D, *V = K + L * D, *U = V + L * D, *KS = U + L * D,
          *Wt = KS + L * D, *A = Wt + L * D, *QK = A + L * L, *beta = QK + L * L, *g = beta + L,
          *gam = g + L, *eG = gam + L, *tmp = eG + L;
    float cum = 0.0f;
    for (int64_t t = 0; t < L; t++) {
        gdn_token(a, r0 + t, h, Q + t * D, K + t * D, V + t * D, &beta[t], &g[t]);
        cum += g[t];
        gam[t] = cum;
        eG[t] = expf(cum);
    }
    /* A[t,s] = beta_t e^{gam_t - gam_s} (k_t . k_s), s < t */
    cpu_gemm_nt(L, L, D, K, D, K, D, A, L, 0);
    for (int64_t t = 0; t < L; t++)
        for (int64_t s = 0; s < L; s++)
            A[t * L + s] = s < t ? beta[t] * expf(gam[t] - gam[s]) * A[t * L + s] : 0.0f;
    /* rhs_t = beta_t v_t - beta_t e^{gam_t} S0^T k_t ; then (I + A) U = rhs */
    cpu_gemm_nn(L, D, D, K, D, S, D, KS, D, 0);
    for (int64_t t = 0; t < L; t++) {
        float *u = U + t * D;
        for (int64_t j = 0; j < D; j++)
            u[j] = beta[t] * (V[t * D + j] - eG[t] * KS[t * D + j]);
        for (int64_t s = 0; s < t; s++) {
            float c = A[t * L + s];
            if (c == 0.0f)
                continue;
            for (int64_t j = 0; j < D; j++)
                u[j] -= c * U[s * D + j];
        }
    }
    /* o_t = e^{gam_t} S0^T q_t + sum_{s<=t} e^{gam_t - gam_s} (k_s . q_t) u_s */
    const int64_t ldo = a->Hq * D;
    float *oh = a->o + r0 * ldo + h * D;
    cpu_gemm_nn(L, D, D, Q, D, S, D, KS, D, 0); /* Q S0 */
    cpu_gemm_nt(L, L, D, Q, D, K, D, QK, L, 0);
    for (int64_t t = 0; t < L; t++)
        for (int64_t s = 0; s < L; s++)
            QK[t * L + s] = s <= t ? QK[t * L + s] * expf(gam[t] - gam[s]) : 0.0f;
    cpu_gemm_nn(L, D, L, QK, L, U, D, oh, ldo, 0);
    for (int64_t t = 0; t < L; t++)
        for (int64_t j = 0; j < D; j++)
            oh[t * ldo + j] += eG[t] * KS[t * D + j];
    /* transition: W = (I + A)^-1 diag(beta e^gam) K ; P_chunk = e^{gam_L} I - Kw^T W */
    const float gL = gam[L - 1], eL = eG[L - 1];
    if (P) {
        for (int64_t t = 0; t < L; t++) {
            float *w = Wt + t * D;
            for (int64_t j = 0; j < D; j++)
                w[j] = beta[t] * eG[t] * K[t * D + j];
            for (int64_t s = 0; s < t; s++) {
                float c = A[t * L + s];
                if (c == 0.0f)
                    continue;
                for (int64_t j = 0; j < D; j++)
                    w[j] -= c * Wt[s * D + j];
            }
        }
    }
    /* Kw_s = e^{gam_L - gam_s} k_s (in place in K) */
    for (int64_t s = 0; s < L; s++) {
        float e = expf(gL - gam[s]);
        for (int64_t j = 0; j < D; j++)
            K[s * D + j] *= e;
    }
    for (int64_t i = 0; i < D * D; i++)
        S[i] *= eL;
    cpu_gemm_tn(D, D, L, K, D, U, D, S, D, 1);
    if (P) {
        float *Pc = tmp; /* D x D */
        cpu_gemm_tn(D, D, L, K, D, Wt, D, Pc, D, 0);
        for (int64_t i = 0; i < D * D; i++)
            Pc[i] = -Pc[i];
        for (int64_t i = 0; i < D; i++)
            Pc[i * D + i] += eL;
        float *NP = tmp + D * D; /* P <- Pc P */
        cpu_gemm_nn(D, D, D, Pc, D, P, D, NP, D, 0);
        memcpy(P, NP, (size_t)(D * D) * sizeof *P);
    }
    *ld += gL;
}

int cpu_gdn(cl_backend *b, float *o, const float *qkv, const float *beta_raw,
            const float *gk_raw, int64_t ldg, const cl_bweight *a_log, const cl_bweight *dt_bias,
            const cl_ssm_layer *s, const cl_batch *batch, const cl_mixer_params *p)
{
    (void)b;
    gdn_args a = {qkv, beta_raw, gk_raw, cpu_w(a_log), cpu_w(dt_bias), o, ldg, p->n_heads,
                  p->n_kv_heads, p->head_dim, (p->n_heads + 2 * p->n_kv_heads) * p->head_dim,
                  p->scale, p->allow_neg_eigval};
    const int64_t D = p->head_dim, H = p->n_heads, Lc = CPU_SSM_CHUNK;
    const size_t scratch_n = (size_t)(6 * Lc * D + 2 * Lc * Lc + 4 * Lc + 2 * D * D);
    int failed = 0;
    for (int q = 0; q < batch->n_seq; q++) {
        const cl_batch_seq *sq = &batch->seq[q];
#pragma omp parallel
        {
            float *scratch = malloc(scratch_n * sizeof *scratch);
            if (!scratch) {
#pragma omp atomic write
                failed = 1;
            }
#pragma omp for schedule(static)
            for (int64_t h = 0; h < H; h++) {
                if (!scratch)
                    continue;
                int64_t off = (int64_t)sq->slot * H + h;
                float *S = s->state + off * D * D, *ld = s->log_decay + off;
                float *P = s->trans ? s->trans + off * D * D : NULL;
                if (sq->n_tok == 1) {
                    gdn_step(&a, sq->tok_start, h, S, ld, P, scratch);
                } else {
                    for (int64_t c0 = 0; c0 < sq->n_tok; c0 += Lc) {
                        int64_t L = sq->n_tok - c0 < Lc ? sq->n_tok - c0 : Lc;
                        gdn_chunk(&a, sq->tok_start + c0, L, h, S, ld, P, scratch);
                    }
                }
            }
            free(scratch);
        }
    }
    return failed ? cl_err(CL_ERR_NOMEM, "out of memory (gdn)") : CL_OK;
}
