/* CPU Gated KalmaNet (spec MODEL.md §9): per token, solve (H_t + lambda_t I) x = q
 * with exactly num_iter Chebyshev steps (lambda_t = r ||H_t||_F), blend the query,
 * then gated linear attention with the blended query. One token: the recurrent
 * form with H and S materialised. Several tokens: the chunk form of §9.2, where
 * every token of a chunk solves with its own H_t = e^{G_t} H0 + sum w k k^T. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu_internal.h"
#include "common/status.h"

typedef struct {
    const float *qkv, *a_raw, *b_raw, *al_raw, *b_bias, *al_bias, *a_log, *dt_bias;
    float *o;
    int64_t ldg, Hq, Hkv, D, ldqkv, num_iter;
    float scale, ridge;
    int use_alpha;
} gka_args;

/* q-hat, k-tilde, v-tilde, alpha, g of one token and head (HF: x/(||x|| + 1e-6)). */
static void gka_token(const gka_args *a, int64_t row, int64_t h, float *q, float *k, float *v,
                      float *alpha, float *g)
{
    const int64_t D = a->D, kv = h / (a->Hq / a->Hkv);
    const float *r = a->qkv + row * a->ldqkv;
    const float *qs = r + h * D, *ks = r + a->Hq * D + kv * D,
                *vs = r + (a->Hq + a->Hkv) * D + kv * D;
    double qq = 0, kk = 0;
    for (int64_t i = 0; i < D; i++) {
        qq += (double)qs[i] * qs[i];
        kk += (double)ks[i] * ks[i];
    }
    float qn = (float)(1.0 / (sqrt(qq) + 1e-6)), kn = (float)(1.0 / (sqrt(kk) + 1e-6));
    float beta = cpu_sigmoid(a->b_raw[row * a->ldg + h] + a->b_bias[h]) + 1e-6f;
    for (int64_t i = 0; i < D; i++) {
        q[i] = qs[i] * qn;
        k[i] = beta * (ks[i] * kn);
        v[i] = beta * vs[i];
    }
    *alpha = a->use_alpha ? cpu_sigmoid(a->al_raw[row * a->ldg + h] + a->al_bias[h]) : 1.0f;
    *g = -expf(a->a_log[h]) * cpu_softplus(a->a_raw[row * a->ldg + h] + a->dt_bias[h]);
}

/* Chebyshev coefficients of §9.1 step 10 from phi = ||H||_F. */
static void cheb_coef(float phi, float ridge, float *lambda, float *tau, float *rho4)
{
    *lambda = ridge * phi;
    float den = 2.0f * *lambda + phi;
    *tau = den > 0 ? 2.0f / den : 0.0f;
    float r = den > 0 ? phi / den / 2.0f : 0.0f;
    *rho4 = r * r;
}

static void gka_step(const gka_args *a, int64_t row, int64_t h, float *S, float *Hm, float *ld,
                     float *scratch)
{
    const int64_t D = a->D;
    float *q = scratch, *k = q + D, *v = k + D, *x = v + D, *xp = x + D, *r = xp + D, alpha, g;
    gka_token(a, row, h, q, k, v, &alpha, &g);
    float eg = expf(g);
    if (a->num_iter > 0) {
        double fro = 0;
        for (int64_t i = 0; i < D; i++)
            for (int64_t j = 0; j < D; j++) {
                float hv = eg * Hm[i * D + j] + k[i] * k[j];
                Hm[i * D + j] = hv;
                fro += (double)hv * hv;
            }
        float lambda, tau, rho4, omega = 2.0f;
        cheb_coef((float)sqrt(fro), a->ridge, &lambda, &tau, &rho4);
        for (int64_t i = 0; i < D; i++) {
            x[i] = tau * q[i];
            xp[i] = 0.0f;
        }
        for (int64_t it = 0; it < a->num_iter; it++) {
            omega = 1.0f / (1.0f - rho4 * omega);
            for (int64_t i = 0; i < D; i++)
                r[i] = cpu_dot(Hm + i * D, x, D) + lambda * x[i] - q[i];
            for (int64_t i = 0; i < D; i++) {
                float xn = omega * (x[i] - tau * r[i]) + (1.0f - omega) * xp[i];
                xp[i] = x[i];
                x[i] = xn;
            }
        }
        for (int64_t i = 0; i < D; i++)
            q[i] += alpha * (x[i] - q[i]);
    }
    float *o = a->o + row * a->Hq * D + h * D;
    for (int64_t j = 0; j < D; j++)
        o[j] = 0.0f;
    for (int64_t i = 0; i < D; i++) {
        float *Si = S + i * D, qi = q[i] * a->scale;
        for (int64_t j = 0; j < D; j++) {
            Si[j] = eg * Si[j] + k[i] * v[j];
            o[j] += Si[j] * qi;
        }
    }
    *ld += g;
}

/* Scratch floats needed by gka_chunk for chunk length L and head dim D. */
static size_t chunk_scratch(int64_t L, int64_t D) { return (size_t)(9 * L * D + 3 * L * L + 9 * L); }

static void gka_chunk(const gka_args *a, int64_t r0, int64_t L, int64_t h, float *S, float *Hm,
                      float *ld, float *sc)
{
    const int64_t D = a->D;
    float *Q = sc, *K = Q + L * D, *V = K + L * D, *X = V + L * D, *Xp = X + L * D,
          *R = Xp + L * D, *T1 = R + L * D, *Kw = T1 + L * D, *QS = Kw + L * D, *KK = QS + L * D,
          *Wm = KK + L * L, *Z = Wm + L * L, *alpha = Z + L * L, *g = alpha + L, *G = g + L,
          *eG = G + L, *lam = eG + L, *tau = lam + L, *rho4 = tau + L, *omega = rho4 + L,
          *hk = omega + L;
    float cum = 0.0f;
    for (int64_t t = 0; t < L; t++) {
        gka_token(a, r0 + t, h, Q + t * D, K + t * D, V + t * D, &alpha[t], &g[t]);
        cum += g[t];
        G[t] = cum;
        eG[t] = expf(cum);
    }
    /* Wm[t,s] = e^{G_t - G_s} for s <= t */
    for (int64_t t = 0; t < L; t++)
        for (int64_t s = 0; s < L; s++)
            Wm[t * L + s] = s <= t ? expf(G[t] - G[s]) : 0.0f;
    const float eL = eG[L - 1];
    if (a->num_iter > 0) {
        /* phi_t^2 = e^{2G_t}|H0|^2 + 2 e^{G_t} sum_s w k_s^T H0 k_s + sum_{s,s'} w w' (k_s.k_s')^2 */
        double h0 = 0;
        for (int64_t i = 0; i < D * D; i++)
            h0 += (double)Hm[i] * Hm[i];
        cpu_gemm_nn(L, D, D, K, D, Hm, D, T1, D, 0); /* K H0 */
        for (int64_t t = 0; t < L; t++)
            hk[t] = cpu_dot(T1 + t * D, K + t * D, D);
        cpu_gemm_nt(L, L, D, K, D, K, D, KK, L, 0);
        for (int64_t t = 0; t < L; t++) {
            const float *w = Wm + t * L;
            double cross = 0, quad = 0;
            for (int64_t s = 0; s <= t; s++) {
                cross += (double)w[s] * hk[s];
                double inner = 0;
                for (int64_t s2 = 0; s2 <= t; s2++) {
                    double c = KK[s * L + s2];
                    inner += (double)w[s2] * c * c;
                }
                quad += (double)w[s] * inner;
            }
            double phi2 = (double)eG[t] * eG[t] * h0 + 2.0 * eG[t] * cross + quad;
            cheb_coef((float)sqrt(phi2 > 0 ? phi2 : 0), a->ridge, &lam[t], &tau[t], &rho4[t]);
            omega[t] = 2.0f;
            for (int64_t i = 0; i < D; i++) {
                X[t * D + i] = tau[t] * Q[t * D + i];
                Xp[t * D + i] = 0.0f;
            }
        }
        for (int64_t it = 0; it < a->num_iter; it++) {
            /* R = e^{G} (X H0) + (X K^T o Wm) K + lambda X - Q */
            cpu_gemm_nn(L, D, D, X, D, Hm, D, R, D, 0);
            cpu_gemm_nt(L, L, D, X, D, K, D, Z, L, 0);
            for (int64_t i = 0; i < L * L; i++)
                Z[i] *= Wm[i];
            for (int64_t t = 0; t < L; t++)
                for (int64_t i = 0; i < D; i++)
                    R[t * D + i] = eG[t] * R[t * D + i] + lam[t] * X[t * D + i] - Q[t * D + i];
            cpu_gemm_nn(L, D, L, Z, L, K, D, R, D, 1);
            for (int64_t t = 0; t < L; t++) {
                omega[t] = 1.0f / (1.0f - rho4[t] * omega[t]);
                for (int64_t i = 0; i < D; i++) {
                    float x = X[t * D + i];
                    float xn = omega[t] * (x - tau[t] * R[t * D + i]) + (1.0f - omega[t]) * Xp[t * D + i];
                    Xp[t * D + i] = x;
                    X[t * D + i] = xn;
                }
            }
        }
        for (int64_t t = 0; t < L; t++)
            for (int64_t i = 0; i < D; i++)
                Q[t * D + i] += alpha[t] * (X[t * D + i] - Q[t * D + i]);
    }
    /* Kw_s = e^{G_L - G_s} k_s */
    for (int64_t s = 0; s < L; s++) {
        float e = expf(G[L - 1] - G[s]);
        for (int64_t i = 0; i < D; i++)
            Kw[s * D + i] = e * K[s * D + i];
    }
    /* GLA output: o_t = s (e^{G_t} q'_t S0 + sum_{s<=t} w (q'_t . k_s) v_s) */
    const int64_t ldo = a->Hq * D;
    float *oh = a->o + r0 * ldo + h * D;
    cpu_gemm_nn(L, D, D, Q, D, S, D, QS, D, 0);
    cpu_gemm_nt(L, L, D, Q, D, K, D, Z, L, 0);
    for (int64_t i = 0; i < L * L; i++)
        Z[i] *= Wm[i];
    cpu_gemm_nn(L, D, L, Z, L, V, D, oh, ldo, 0);
    for (int64_t t = 0; t < L; t++)
        for (int64_t j = 0; j < D; j++)
            oh[t * ldo + j] = a->scale * (oh[t * ldo + j] + eG[t] * QS[t * D + j]);
    /* states: S = e^{G_L} S0 + Kw^T V ; H = e^{G_L} H0 + Kw^T K */
    for (int64_t i = 0; i < D * D; i++)
        S[i] *= eL;
    cpu_gemm_tn(D, D, L, Kw, D, V, D, S, D, 1);
    if (a->num_iter > 0) {
        for (int64_t i = 0; i < D * D; i++)
            Hm[i] *= eL;
        cpu_gemm_tn(D, D, L, Kw, D, K, D, Hm, D, 1);
    }
    *ld += G[L - 1];
}

int cpu_gka(cl_backend *b, float *o, const float *qkv, const float *a_raw, const float *b_raw,
            const float *alpha_raw, int64_t ldg, const cl_bweight *b_bias,
            const cl_bweight *alpha_bias, const cl_bweight *a_log, const cl_bweight *dt_bias,
            const cl_ssm_layer *s, const cl_batch *batch, const cl_mixer_params *p)
{
    (void)b;
    gka_args a = {qkv, a_raw, b_raw, alpha_raw, cpu_w(b_bias),
                  p->use_alpha ? cpu_w(alpha_bias) : NULL, cpu_w(a_log), cpu_w(dt_bias), o, ldg,
                  p->n_heads, p->n_kv_heads, p->head_dim,
                  (p->n_heads + 2 * p->n_kv_heads) * p->head_dim, p->num_iter, p->scale,
                  p->ridge_strength, p->use_alpha};
    const int64_t D = p->head_dim, H = p->n_heads, Lc = CPU_SSM_CHUNK;
    int failed = 0;
    for (int q = 0; q < batch->n_seq; q++) {
        const cl_batch_seq *sq = &batch->seq[q];
#pragma omp parallel
        {
            float *scratch = malloc(chunk_scratch(Lc, D) * sizeof *scratch);
            if (!scratch) {
#pragma omp atomic write
                failed = 1;
            }
#pragma omp for schedule(static)
            for (int64_t h = 0; h < H; h++) {
                if (!scratch)
                    continue;
                int64_t off = (int64_t)sq->slot * H + h;
                float *S = s->state + off * D * D, *Hm = s->state2 + off * D * D;
                float *ld = s->log_decay + off;
                if (sq->n_tok == 1) {
                    gka_step(&a, sq->tok_start, h, S, Hm, ld, scratch);
                } else {
                    for (int64_t c0 = 0; c0 < sq->n_tok; c0 += Lc) {
                        int64_t L = sq->n_tok - c0 < Lc ? sq->n_tok - c0 : Lc;
                        gka_chunk(&a, sq->tok_start + c0, L, h, S, Hm, ld, scratch);
                    }
                }
            }
            free(scratch);
        }
    }
    return failed ? cl_err(CL_ERR_NOMEM, "out of memory (gka)") : CL_OK;
}
