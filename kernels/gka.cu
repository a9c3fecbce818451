/* gka.cu - Gated KalmaNet (spec MODEL.md §9): per token, solve
 * (H_t + lambda_t I) x = q with exactly num_iter Chebyshev steps from x = tau q
 * (lambda_t = r ||H_t||_F), blend x into the query with alpha, then gated linear
 * attention with the blended query.
 *
 * Decode (§9.1): a block per (sequence, head) keeps h_kk in registers for the
 * whole solve (num_iter mat-vecs of D x D, reduced across lanes), then streams
 * h_kv once. Two numbers per head: 4 * D^2 * 4 bytes (both states read and
 * written) and ~2 (num_iter + 2) D^2 FLOPs; memory-bound for num_iter <= ~30 at
 * large batch, latency-bound at batch 1.
 *
 * Chunked prefill (§9.2): prep (per chunk and head: normalised q, k~, v~, alpha,
 * cumulative decays), scan (per head and column block, in chunk order: saves the
 * chunk-start h_kk / h_kv and advances them), out (per chunk and head: the
 * chunk's Frobenius norms, the Chebyshev iterations with each token's own
 * H_t = e^{G_t} H0 + sum_s e^{G_t-G_s} k_s k_s^T, and the GLA output). */
#include "ssm_common.cuh"

struct gka_in {
    const float *qkv, *a_raw, *b_raw, *al_raw, *b_bias, *al_bias, *a_log, *dt_bias;
    int64_t ldg, Hq, Hkv, D, num_iter;
    float scale, ridge;
    int use_alpha;
};

/* One warp: q-hat, k~, v~ of (row, h) (HF: x / (||x|| + 1e-6), k and v times beta). */
KL_DEV void gka_token(const gka_in &a, int64_t row, int64_t h, float *q, float *k, float *v,
                      float *alpha, float *g)
{
    const int64_t D = a.D, kvh = h / (a.Hq / a.Hkv), ld = (a.Hq + 2 * a.Hkv) * D;
    const float *r = a.qkv + row * ld;
    const float *qs = r + h * D, *ks = r + a.Hq * D + kvh * D, *vs = r + (a.Hq + a.Hkv) * D + kvh * D;
    double qq = kl_warp_sumsq_d(qs, D), kk = kl_warp_sumsq_d(ks, D);
    float qn = (float)(1.0 / (sqrt(qq) + 1e-6)), kn = (float)(1.0 / (sqrt(kk) + 1e-6));
    float beta = kl_sigmoid(a.b_raw[row * a.ldg + h] + a.b_bias[h]) + 1e-6f;
    for (int64_t i = threadIdx.x & 31; i < D; i += 32) {
        q[i] = qs[i] * qn;
        k[i] = beta * (ks[i] * kn);
        v[i] = beta * vs[i];
    }
    *alpha = a.use_alpha ? kl_sigmoid(a.al_raw[row * a.ldg + h] + a.al_bias[h]) : 1.0f;
    *g = -expf(a.a_log[h]) * kl_softplus(a.a_raw[row * a.ldg + h] + a.dt_bias[h]);
}

/* Chebyshev coefficients of §9.1 step 10 from phi = ||H||_F. */
KL_DEV void cheb_coef(float phi, float ridge, float *lambda, float *tau, float *rho4)
{
    *lambda = ridge * phi;
    float den = 2.0f * *lambda + phi;
    *tau = den > 0 ? 2.0f / den : 0.0f;
    float r = den > 0 ? phi / den / 2.0f : 0.0f;
    *rho4 = r * r;
}

/* ------------------------------------------------------------------ decode */

/* The h_kv tile is copied to shared memory with cp.async as the block starts,
 * so its load overlaps the solve (dynamic shared memory: D * D floats). */
template <int D>
__global__ void __launch_bounds__(256) gka_decode_kernel(float *o, gka_in a, kl_ssm s, kl_batch b)
{
    __shared__ float q[D], k[D], v[D], x[D], xp[D], r[D], red[8 * D];
    __shared__ float sc[4];
    __shared__ double dred[8];
    extern __shared__ float4 s_pref[]; /* [D * D / 4] */
    const int h = blockIdx.x;
    const kl_seq sq = b.seq[blockIdx.y]; /* batch metadata: uploaded before the step */
    const int64_t row = sq.tok_start, H = s.n_heads;
    const int w = threadIdx.x >> 5, l = threadIdx.x & 31;
    constexpr int RPW = kl_tile<D>::RPW, CPL = kl_tile<D>::CPL;
    const int64_t off = ((int64_t)sq.slot * H + h) * D * D;
    /* both states are this kernel's alone (the previous step wrote them): start
     * loading them while the kernel before (conv1d) finishes */
    {
        const float4 *src = reinterpret_cast<const float4 *>(s.state + off);
        for (int i = threadIdx.x; i < D * D / 4; i += blockDim.x)
            asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(
                             (uint32_t)__cvta_generic_to_shared(s_pref + i)),
                         "l"(src + i));
        asm volatile("cp.async.commit_group;\n" ::);
    }
    kl_tile<D> Hm;
    if (a.num_iter > 0)
        Hm.load(s.state2 + off);
    kl_pdl_wait();
    kl_pdl_trigger();
    if (threadIdx.x < 32) {
        float alpha, g;
        gka_token(a, row, h, q, k, v, &alpha, &g);
        if (threadIdx.x == 0) {
            sc[0] = alpha;
            sc[1] = g;
        }
    }
    __syncthreads();
    const float alpha = sc[0], g = sc[1], eg = expf(g);
    if (a.num_iter > 0) {
        double fro = 0.0;
#pragma unroll
        for (int rr = 0; rr < RPW; rr++)
#pragma unroll
            for (int c = 0; c < CPL; c++) {
                float hv = eg * Hm.v[rr][c] + k[w * RPW + rr] * k[l * CPL + c];
                Hm.v[rr][c] = hv;
                fro += (double)hv * hv;
            }
        fro = kl_warp_sum_d(fro);
        if (l == 0)
            dred[w] = fro;
        __syncthreads();
        if (threadIdx.x == 0) {
            double f = 0.0;
            for (int i = 0; i < 8; i++)
                f += dred[i];
            float lambda, tau, rho4;
            cheb_coef((float)sqrt(f), a.ridge, &lambda, &tau, &rho4);
            sc[2] = lambda;
            sc[3] = tau;
            red[0] = rho4;
        }
        __syncthreads();
        const float lambda = sc[2], tau = sc[3], rho4 = red[0];
        for (int i = threadIdx.x; i < D; i += blockDim.x) {
            x[i] = tau * q[i];
            xp[i] = 0.0f;
        }
        __syncthreads();
        /* r = H x as column sums (H is symmetric: same value as the CPU's row dots up
         * to rounding), partials of the 8 warps through shared memory: two barriers
         * per iteration instead of a shuffle tree per row */
        float omega = 2.0f;
        for (int64_t it = 0; it < a.num_iter; it++) {
            omega = 1.0f / (1.0f - rho4 * omega);
            float p[CPL];
#pragma unroll
            for (int c = 0; c < CPL; c++)
                p[c] = 0.0f;
#pragma unroll
            for (int rr = 0; rr < RPW; rr++) {
                float xi = x[w * RPW + rr];
#pragma unroll
                for (int c = 0; c < CPL; c++)
                    p[c] += Hm.v[rr][c] * xi;
            }
#pragma unroll
            for (int c = 0; c < CPL; c++)
                red[w * D + l * CPL + c] = p[c];
            __syncthreads();
            for (int i = threadIdx.x; i < D; i += blockDim.x) {
                float hx = 0.0f;
#pragma unroll
                for (int k = 0; k < 8; k++)
                    hx += red[k * D + i];
                float ri = hx + lambda * x[i] - q[i];
                float xn = omega * (x[i] - tau * ri) + (1.0f - omega) * xp[i];
                xp[i] = x[i];
                x[i] = xn;
            }
            __syncthreads();
        }
        for (int i = threadIdx.x; i < D; i += blockDim.x)
            q[i] += alpha * (x[i] - q[i]);
        Hm.store(s.state2 + off);
    }
    __syncthreads();
    for (int i = threadIdx.x; i < D; i += blockDim.x)
        xp[i] = q[i] * a.scale;
    asm volatile("cp.async.wait_all;\n" ::);
    __syncthreads();
    kl_tile<D> S;
    S.load(reinterpret_cast<const float *>(s_pref));
#pragma unroll
    for (int rr = 0; rr < RPW; rr++)
#pragma unroll
        for (int c = 0; c < CPL; c++)
            S.v[rr][c] = eg * S.v[rr][c] + k[w * RPW + rr] * v[l * CPL + c];
    S.col_dot(xp, red, r);
    for (int j = threadIdx.x; j < D; j += blockDim.x)
        o[row * a.Hq * D + h * D + j] = r[j];
    S.store(s.state + off);
    if (threadIdx.x == 0)
        s.log_decay[(int64_t)sq.slot * H + h] += g;
}

/* ------------------------------------------------------------------ chunked */

#define L KL_SSM_CHUNK
#define VB 32

/* Scratch per (chunk, head): Q, K, V, Kw [L][D], alpha, G, e^G [L], e^{G_L}, G_L.
 * Then the chunk-start states: S0 [chunks][H][D][D], and H0 likewise when num_iter > 0. */
__host__ __device__ static inline int64_t gka_per(int64_t D) { return (4 * L * D + 3 * L + 2 + 3) & ~(int64_t)3; }

/* grid (n_chunks, H), 256 threads, no shared memory beyond registers. */
__global__ void __launch_bounds__(256) gka_prep_kernel(gka_in a, int64_t H, kl_batch b, float *scratch)
{
    __shared__ float gs[L];
    const int64_t D = a.D;
    const int ch = blockIdx.x, h = blockIdx.y;
    const int64_t row0 = b.chunks[3 * ch + 1];
    const int len = b.chunks[3 * ch + 2];
    float *out = scratch + ((int64_t)ch * H + h) * gka_per(D);
    float *Q = out, *K = Q + L * D, *V = K + L * D, *Kw = V + L * D, *al = Kw + L * D,
          *G = al + L, *eG = G + L;
    const int warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    for (int t = warp; t < len; t += nw) {
        float alpha, g;
        gka_token(a, row0 + t, h, Q + t * D, K + t * D, V + t * D, &alpha, &g);
        if ((threadIdx.x & 31) == 0) {
            al[t] = alpha;
            gs[t] = g;
        }
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        float cum = 0.0f;
        for (int t = 0; t < len; t++) {
            cum += gs[t];
            G[t] = cum;
            eG[t] = expf(cum);
        }
        eG[L] = expf(cum);
        eG[L + 1] = cum;
    }
    __syncthreads();
    const float GL = G[len - 1];
    for (int64_t idx = threadIdx.x; idx < len * D; idx += blockDim.x) {
        int t = (int)(idx / D);
        Kw[idx] = expf(GL - G[t]) * K[idx];
    }
}

/* grid (H, D / VB, n_seq): saves chunk-start S (and H) columns, then advances them. */
__global__ void __launch_bounds__(256) gka_scan_kernel(int64_t D64, int64_t n_chunks_total,
                                                       int track_h, kl_ssm s, kl_batch b,
                                                       float *scratch)
{
    extern __shared__ float sm[];
    const int D = (int)D64;
    float *S = sm, *Hm = S + D * VB, *Kws = Hm + D * VB, *Vs = Kws + L * D, *Kc = Vs + L * VB;
    const int h = blockIdx.x, jb = blockIdx.y;
    const kl_seq sq = b.seq[blockIdx.z];
    const int64_t H = s.n_heads, off = ((int64_t)sq.slot * H + h) * D * D + jb * VB;
    float *S0 = scratch + n_chunks_total * H * gka_per(D);
    float *H0 = S0 + n_chunks_total * H * D * D;
    for (int idx = threadIdx.x; idx < D * VB; idx += blockDim.x) {
        S[idx] = s.state[off + (idx / VB) * D + idx % VB];
        if (track_h)
            Hm[idx] = s.state2[off + (idx / VB) * D + idx % VB];
    }
    __syncthreads();
    for (int ci = 0; ci < sq.n_chunks; ci++) {
        const int ch = sq.chunk0 + ci;
        const int len = b.chunks[3 * ch + 2];
        const float *in = scratch + ((int64_t)ch * H + h) * gka_per(D);
        const float *gK = in + L * D, *gV = gK + L * D, *gKw = gV + L * D, *eG = gKw + L * D + 2 * L;
        const float eL = eG[L];
        const int64_t so = ((int64_t)ch * H + h) * D * D + jb * VB;
        /* save the chunk-start columns, stage the chunk's operands */
        for (int idx = threadIdx.x; idx < D * VB; idx += blockDim.x) {
            S0[so + (idx / VB) * D + idx % VB] = S[idx];
            if (track_h)
                H0[so + (idx / VB) * D + idx % VB] = Hm[idx];
        }
        kl_stage(Kws, D, gKw, D, len, D);
        kl_stage(Vs, VB, gV + jb * VB, D, len, VB);
        if (track_h)
            kl_stage(Kc, VB, gK + jb * VB, D, len, VB);
        __syncthreads();
        /* S = e^{G_L} S0 + Kw^T V ; H = e^{G_L} H0 + Kw^T K (each element has one owner) */
        kl_mm<16, 1>(D, VB, len, [&](int i, int t) { return Kws[t * D + i]; },
                     [&](int t, int c) { return Vs[t * VB + c]; },
                     [&](int i, int c, float x) { S[i * VB + c] = eL * S[i * VB + c] + x; });
        if (track_h)
            kl_mm<16, 1>(D, VB, len, [&](int i, int t) { return Kws[t * D + i]; },
                         [&](int t, int c) { return Kc[t * VB + c]; },
                         [&](int i, int c, float x) { Hm[i * VB + c] = eL * Hm[i * VB + c] + x; });
        if (jb == 0 && threadIdx.x == 0)
            s.log_decay[(int64_t)sq.slot * H + h] += eG[L + 1];
        __syncthreads();
    }
    for (int idx = threadIdx.x; idx < D * VB; idx += blockDim.x) {
        s.state[off + (idx / VB) * D + idx % VB] = S[idx];
        if (track_h)
            s.state2[off + (idx / VB) * D + idx % VB] = Hm[idx];
    }
}

/* grid (n_chunks, H), 256 threads. Shared: Q, X, R [L][D], K [L][D+1] (odd
 * rows: the X K^T products read K across rows without bank conflicts), the
 * chunk-start h_kk (then h_kv) [D][D] (every warp reads all of it in each
 * iteration: from shared memory, not L2), Z [L][L+1]. The element -> thread
 * mapping of the L x D products is fixed (kl_mm), and x_prev of the Chebyshev
 * recurrence stays in registers in the elementwise update. */
template <int D>
__global__ void __launch_bounds__(256, 1) gka_out_kernel(float *o, int64_t Hq, int64_t num_iter,
                                                         float ridge, float scale,
                                                         int64_t n_chunks_total, kl_batch b,
                                                         const float *scratch)
{
    constexpr int NE = L * D / 256, LD = D + 1, LL = L + 1;
    /* R also holds K K^T (rows of L+1) before the iterations */
    constexpr int RS = L * D > L * LL ? L * D : L * LL;
    extern __shared__ float sm[];
    float *Q = sm, *X = Q + L * D, *R = X + L * D, *K = R + RS, *Hs = K + L * LD,
          *Z = Hs + D * D, *G = Z + L * LL, *eG = G + L, *lam = eG + L, *tau = lam + L,
          *rho4 = tau + L, *omega = rho4 + L, *al = omega + L, *hk = al + L;
    __shared__ double dred[8];
    const int ch = blockIdx.x, h = blockIdx.y;
    const int64_t H = Hq, row0 = b.chunks[3 * ch + 1];
    const int len = b.chunks[3 * ch + 2];
    const float *in = scratch + ((int64_t)ch * H + h) * gka_per(D);
    const float *gQ = in, *gK = gQ + L * D, *gV = gK + L * D, *gal = gV + 2 * L * D,
                *gG = gal + L, *geG = gG + L;
    const float *S0 = scratch + n_chunks_total * H * gka_per(D) + ((int64_t)ch * H + h) * D * D;
    const float *H0 = S0 + n_chunks_total * H * D * D;
    for (int idx = threadIdx.x; idx < L * D; idx += blockDim.x) {
        int t = idx / D, i = idx - t * D;
        bool live = t < len;
        Q[idx] = live ? gQ[idx] : 0.0f;
        K[t * LD + i] = live ? gK[idx] : 0.0f;
    }
    for (int t = threadIdx.x; t < L; t += blockDim.x) {
        G[t] = t < len ? gG[t] : 0.0f;
        eG[t] = t < len ? geG[t] : 0.0f;
        al[t] = t < len ? gal[t] : 0.0f;
        lam[t] = tau[t] = rho4[t] = 0.0f;
        omega[t] = 2.0f;
    }
    if (num_iter > 0) {
        /* H0 to shared; ||H0||^2 (double, as the CPU) */
        double h0 = 0.0;
        for (int idx = threadIdx.x; idx < D * D; idx += blockDim.x) {
            float v = H0[idx];
            Hs[idx] = v;
            h0 += (double)v * v;
        }
        h0 = kl_warp_sum_d(h0);
        if ((threadIdx.x & 31) == 0)
            dred[threadIdx.x >> 5] = h0;
        __syncthreads();
        /* hk_t = k_t^T H0 k_t via T1 = K H0 (in R) */
        kl_mm<8, D / 32>(len, D, D, [&](int t, int p) { return K[t * LD + p]; },
                         [&](int p, int i) { return Hs[p * D + i]; },
                         [&](int t, int i, float v) { R[t * D + i] = v; });
        for (int idx = threadIdx.x; idx < len * len; idx += blockDim.x) {
            int t = idx / len, u = idx - t * len;
            Z[t * LL + u] = u <= t ? expf(G[t] - G[u]) : 0.0f;
        }
        __syncthreads();
        for (int t = threadIdx.x >> 5; t < len; t += blockDim.x >> 5) {
            float d = 0.0f;
            for (int i = threadIdx.x & 31; i < D; i += 32)
                d += R[t * D + i] * K[t * LD + i];
            d = kl_warp_sum(d);
            if ((threadIdx.x & 31) == 0)
                hk[t] = d;
        }
        __syncthreads();
        /* KK = K K^T (in R, rows of L+1) */
        float *KK = R;
        kl_mm<8, 2>(len, len, D, [&](int t, int i) { return K[t * LD + i]; },
                    [&](int i, int u) { return K[u * LD + i]; },
                    [&](int t, int u, float v) { KK[t * LL + u] = v; });
        __syncthreads();
        if (threadIdx.x < len) {
            const int t = threadIdx.x;
            double hh = 0.0;
            for (int i = 0; i < 8; i++)
                hh += dred[i];
            const float *wrow = Z + t * LL;
            double cross = 0.0, quad = 0.0;
            for (int u = 0; u <= t; u++) {
                cross += (double)wrow[u] * hk[u];
                double inner = 0.0;
                for (int u2 = 0; u2 <= t; u2++) {
                    double c = KK[u * LL + u2];
                    inner += (double)wrow[u2] * c * c;
                }
                quad += (double)wrow[u] * inner;
            }
            double phi2 = (double)eG[t] * eG[t] * hh + 2.0 * eG[t] * cross + quad;
            cheb_coef((float)sqrt(phi2 > 0 ? phi2 : 0), ridge, &lam[t], &tau[t], &rho4[t]);
            omega[t] = 2.0f;
        }
        __syncthreads();
        float xp[NE];
#pragma unroll
        for (int e = 0; e < NE; e++) {
            int idx = threadIdx.x + 256 * e, t = idx / D;
            X[idx] = tau[t] * Q[idx];
            xp[e] = 0.0f;
        }
        __syncthreads();
        for (int64_t it = 0; it < num_iter; it++) {
            /* Z = (X K^T) o Wm */
            kl_mm<8, 2>(len, len, D, [&](int t, int i) { return X[t * D + i]; },
                        [&](int i, int u) { return K[u * LD + i]; },
                        [&](int t, int u, float v) {
                            Z[t * LL + u] = u <= t ? v * expf(G[t] - G[u]) : 0.0f;
                        });
            if (threadIdx.x < len)
                omega[threadIdx.x] = 1.0f / (1.0f - rho4[threadIdx.x] * omega[threadIdx.x]);
            __syncthreads();
            /* R = e^G (X H0) + lam X - Q + Z K (two products, one element -> thread mapping) */
            kl_mm<8, D / 32>(len, D, D, [&](int t, int p) { return X[t * D + p]; },
                             [&](int p, int i) { return Hs[p * D + i]; },
                             [&](int t, int i, float v) {
                                 R[t * D + i] = eG[t] * v + lam[t] * X[t * D + i] - Q[t * D + i];
                             });
            kl_mm<8, D / 32>(len, D, len, [&](int t, int u) { return Z[t * LL + u]; },
                             [&](int u, int i) { return K[u * LD + i]; },
                             [&](int t, int i, float v) { R[t * D + i] += v; });
            __syncthreads();
#pragma unroll
            for (int e = 0; e < NE; e++) {
                int idx = threadIdx.x + 256 * e, t = idx / D;
                float x = X[idx], w = omega[t];
                float xn = w * (x - tau[t] * R[idx]) + (1.0f - w) * xp[e];
                xp[e] = x;
                X[idx] = t < len ? xn : 0.0f;
            }
            __syncthreads();
        }
#pragma unroll
        for (int e = 0; e < NE; e++) {
            int idx = threadIdx.x + 256 * e, t = idx / D;
            Q[idx] += al[t] * (X[idx] - Q[idx]);
        }
    }
    __syncthreads();
    /* GLA: o = scale (e^G (Q' S0) + ((Q' K^T) o Wm) V) */
    kl_mm<8, 2>(len, len, D, [&](int t, int i) { return Q[t * D + i]; },
                [&](int i, int u) { return K[u * LD + i]; },
                [&](int t, int u, float v) { Z[t * LL + u] = u <= t ? v * expf(G[t] - G[u]) : 0.0f; });
    __syncthreads();
    for (int idx = threadIdx.x; idx < len * D; idx += blockDim.x)
        K[(idx / D) * LD + idx % D] = gV[idx]; /* K's buffer now holds V */
    for (int idx = threadIdx.x; idx < D * D; idx += blockDim.x)
        Hs[idx] = S0[idx]; /* and Hs the chunk-start h_kv */
    __syncthreads();
    kl_mm<8, D / 32>(len, D, len, [&](int t, int u) { return Z[t * LL + u]; },
                     [&](int u, int j) { return K[u * LD + j]; },
                     [&](int t, int j, float v) { R[t * D + j] = v; });
    kl_mm<8, D / 32>(len, D, D, [&](int t, int i) { return Q[t * D + i]; },
                     [&](int i, int j) { return Hs[i * D + j]; },
                     [&](int t, int j, float v) {
                         o[(row0 + t) * Hq * D + h * D + j] = scale * (R[t * D + j] + eG[t] * v);
                     });
}

/* ------------------------------------------------------------------ launchers */

extern "C" size_t kl_gka_scratch_floats(int64_t n_chunks, int64_t H, int64_t D, int64_t num_iter)
{
    return (size_t)(n_chunks * H * (gka_per(D) + (num_iter > 0 ? 2 : 1) * D * D));
}

template <int D>
static cudaError_t out_launch(float *o, const kl_mix *p, const kl_batch *b, const float *scratch,
                              cudaStream_t stream)
{
    size_t rs = (size_t)(L * D > L * (L + 1) ? L * D : L * (L + 1));
    size_t smem = (size_t)(2 * L * D + rs + L * (D + 1) + D * D + L * (L + 1) + 8 * L) * sizeof(float);
    cudaError_t e = cudaFuncSetAttribute(gka_out_kernel<D>,
                                         cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
    if (e != cudaSuccess)
        return e;
    gka_out_kernel<D><<<dim3((unsigned)b->n_chunks, (unsigned)p->n_heads), 256, smem, stream>>>(
        o, p->n_heads, p->num_iter, p->ridge, p->scale, b->n_chunks, *b, scratch);
    return cudaGetLastError();
}

extern "C" cudaError_t kl_gka(float *o, const float *qkv, const float *a_raw, const float *b_raw,
                              const float *alpha_raw, int64_t ldg, const float *b_bias,
                              const float *alpha_bias, const float *a_log, const float *dt_bias,
                              const kl_ssm *s, const kl_batch *b, const kl_mix *p, void *scratch,
                              cudaStream_t stream)
{
    const int64_t D = p->head_dim, H = p->n_heads;
    gka_in a = {qkv, a_raw, b_raw, alpha_raw, b_bias, alpha_bias, a_log, dt_bias, ldg,
                p->n_heads, p->n_kv_heads, D, p->num_iter, p->scale, p->ridge, p->use_alpha};
    if (b->n_seq <= 0)
        return cudaSuccess;
    if (D != 32 && D != 64 && D != 128)
        return cudaErrorNotSupported;
    if (b->decode) {
        dim3 grid((unsigned)H, (unsigned)b->n_seq);
        size_t pref = (size_t)D * D * sizeof(float);
        if (D == 128)
            (void)kl_launch(gka_decode_kernel<128>, dim3(grid), dim3(256), pref, stream, o, a,
                            *s, *b);
        else if (D == 64)
            (void)kl_launch(gka_decode_kernel<64>, dim3(grid), dim3(256), pref, stream, o, a,
                            *s, *b);
        else
            (void)kl_launch(gka_decode_kernel<32>, dim3(grid), dim3(256), pref, stream, o, a,
                            *s, *b);
        return cudaGetLastError();
    }
    if (b->n_chunks <= 0)
        return cudaSuccess;
    float *sc = (float *)scratch;
    gka_prep_kernel<<<dim3((unsigned)b->n_chunks, (unsigned)H), 256, 0, stream>>>(a, H, *b, sc);
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess)
        return e;
    KL_MARK("gka.prep");
    size_t scan_smem = (size_t)(2 * D * VB + L * D + 2 * L * VB) * sizeof(float);
    if ((e = cudaFuncSetAttribute(gka_scan_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                  (int)scan_smem)) != cudaSuccess)
        return e;
    gka_scan_kernel<<<dim3((unsigned)H, (unsigned)(D / VB), (unsigned)b->n_seq), 256, scan_smem,
                      stream>>>(D, b->n_chunks, p->num_iter > 0, *s, *b, sc);
    if ((e = cudaGetLastError()) != cudaSuccess)
        return e;
    KL_MARK("gka.scan");
    if (D == 128)
        return out_launch<128>(o, p, b, sc, stream);
    if (D == 64)
        return out_launch<64>(o, p, b, sc, stream);
    return out_launch<32>(o, p, b, sc, stream);
}

extern "C" cudaError_t kl_ssm_prepare(void)
{
    /* the decode kernel's h_kv prefetch needs 64 KB at D = 128 (set outside any graph capture) */
    return cudaFuncSetAttribute(gka_decode_kernel<128>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                128 * 128 * (int)sizeof(float));
}

#undef L
#undef VB
