/* gdn.cu - Gated DeltaNet (spec MODEL.md §8): the decode step (§8.1) and the
 * WY chunk form (§8.2), optionally carrying the transition product P (§8.3).
 *
 * Chunk form, per chunk of L tokens from state S0 (K x V):
 *   A[t,s] = beta_t e^{gam_t-gam_s} k_t.k_s (s < t), T = (I + A)^-1,
 *   W = T diag(beta e^gam) K, U0 = T diag(beta) V, U = U0 - W S0,
 *   o_t = e^{gam_t} S0^T q_t + sum_{s<=t} e^{gam_t-gam_s} (q_t.k_s) u_s,
 *   S_end = e^{gam_L} S0 + Kw^T U, Kw_s = e^{gam_L-gam_s} k_s,
 *   P <- (e^{gam_L} I - Kw^T W) P.
 * Everything but U, o and the state update is independent of S0: the prep
 * kernel computes it for all chunks at once, the scan kernel walks the chunks.
 * Decode: two numbers per head: 2 * D^2 * 4 bytes of state (read + write) and
 * ~6 D^2 FLOPs, memory-bound; the state is read once into registers. */
#include "ssm_common.cuh"

/* Per-token inputs of one head (fla l2norm: x / sqrt(sum x^2 + 1e-6), q scaled). */
struct gdn_in {
    const float *qkv, *beta_raw, *gk_raw, *a_log, *dt_bias;
    int64_t ldg, Hq, Hkv, D;
    float scale;
    int neg;
};

/* One warp: writes q-hat, k-hat, v of (row, h) to q, k, v; returns beta, g in lane 0. */
KL_DEV void gdn_token(const gdn_in &a, int64_t row, int64_t h, float *q, float *k, float *v,
                      float *beta, float *g)
{
    const int64_t D = a.D, kvh = h / (a.Hq / a.Hkv), ld = (a.Hq + 2 * a.Hkv) * D;
    const float *r = a.qkv + row * ld;
    const float *qs = r + h * D, *ks = r + a.Hq * D + kvh * D, *vs = r + (a.Hq + a.Hkv) * D + kvh * D;
    double qq = kl_warp_sumsq_d(qs, D), kk = kl_warp_sumsq_d(ks, D);
    float qn = (float)(1.0 / sqrt(qq + 1e-6)) * a.scale, kn = (float)(1.0 / sqrt(kk + 1e-6));
    for (int64_t i = threadIdx.x & 31; i < D; i += 32) {
        q[i] = qs[i] * qn;
        k[i] = ks[i] * kn;
        v[i] = vs[i];
    }
    float bt = kl_sigmoid(a.beta_raw[row * a.ldg + h]);
    *beta = a.neg ? 2.0f * bt : bt;
    *g = -expf(a.a_log[h]) * kl_softplus(a.gk_raw[row * a.ldg + h] + a.dt_bias[h]);
}

/* ------------------------------------------------------------------ decode */

template <int D>
__global__ void __launch_bounds__(256) gdn_decode_kernel(float *o, gdn_in a, kl_ssm s, kl_batch b)
{
    __shared__ float q[D], k[D], v[D], u[D], red[8 * D];
    __shared__ float sc[2];
    const int h = blockIdx.x;
    const kl_seq sq = b.seq[blockIdx.y]; /* batch metadata: uploaded before the step */
    const int64_t row = sq.tok_start, H = s.n_heads;
    const int64_t off = ((int64_t)sq.slot * H + h) * D * D;
    /* the state is this kernel's alone (the previous step wrote it): load it while
     * the kernel before (conv1d) finishes */
    kl_tile<D> S;
    S.load(s.state + off);
    kl_pdl_wait();
    kl_pdl_trigger();
    if (threadIdx.x < 32) {
        float beta, g;
        gdn_token(a, row, h, q, k, v, &beta, &g);
        if (threadIdx.x == 0) {
            sc[0] = beta;
            sc[1] = g;
        }
    }
    __syncthreads();
    const float beta = sc[0], g = sc[1], eg = expf(g);
#pragma unroll
    for (int r = 0; r < kl_tile<D>::RPW; r++)
#pragma unroll
        for (int c = 0; c < kl_tile<D>::CPL; c++)
            S.v[r][c] *= eg;
    S.col_dot(k, red, u); /* u = S^T k */
    for (int j = threadIdx.x; j < D; j += blockDim.x)
        u[j] = beta * (v[j] - u[j]);
    __syncthreads();
    const int w = threadIdx.x >> 5, l = threadIdx.x & 31;
#pragma unroll
    for (int r = 0; r < kl_tile<D>::RPW; r++)
#pragma unroll
        for (int c = 0; c < kl_tile<D>::CPL; c++)
            S.v[r][c] += k[w * kl_tile<D>::RPW + r] * u[l * kl_tile<D>::CPL + c];
    S.col_dot(q, red, u); /* o = S^T q */
    for (int j = threadIdx.x; j < D; j += blockDim.x)
        o[row * a.Hq * D + h * D + j] = u[j];
    S.store(s.state + off);
    if (threadIdx.x == 0)
        s.log_decay[(int64_t)sq.slot * H + h] += g;
    if (s.trans) { /* P <- e^g (I - beta k k^T) P */
        __syncthreads();
        kl_tile<D> P;
        P.load(s.trans + off);
        P.col_dot(k, red, u); /* u = k^T P */
#pragma unroll
        for (int r = 0; r < kl_tile<D>::RPW; r++)
#pragma unroll
            for (int c = 0; c < kl_tile<D>::CPL; c++)
                P.v[r][c] = eg * (P.v[r][c] - beta * k[w * kl_tile<D>::RPW + r] *
                                                  u[l * kl_tile<D>::CPL + c]);
        P.store(s.trans + off);
    }
}

/* ------------------------------------------------------------------ chunked */

#define L KL_SSM_CHUNK

/* Scratch per (chunk, head): Q, Kw, W, U0 [L][D] (U0 becomes U in the state
 * pass), QKM [L][L], eG [L], eL, gL, then S0 [D][D], the state at the chunk's start. */
__host__ __device__ static inline int64_t gdn_s0_at(int64_t D)
{
    return (4 * L * D + L * L + L + 2 + 3) & ~(int64_t)3;
}
__host__ __device__ static inline int64_t gdn_per(int64_t D) { return gdn_s0_at(D) + D * D; }

/* grid (n_chunks, H). Dynamic smem: K [L][D+1] (odd row length: the K^T reads
 * of the L x L products are conflict-free), Qs->W, Vs->U0 [L][D] (read by rows or
 * by column per thread: no padding needed), A [L][L], beta, gam (g summed in
 * place): 113 KB at D = 128, so two blocks fit an SM (one did at 116.5 KB, and
 * the forward substitution's dependent steps had nothing to overlap with). */
__global__ void __launch_bounds__(256) gdn_prep_kernel(gdn_in a, int64_t H, kl_batch b, float *scratch)
{
    extern __shared__ float sm[];
    const int D = (int)a.D, LD = D + 1;
    float *K = sm, *Qs = K + L * LD, *Vs = Qs + L * D, *A = Vs + L * D, *beta = A + L * L,
          *g = beta + L, *gam = g;
    const int ch = blockIdx.x, h = blockIdx.y;
    const int64_t row0 = b.chunks[3 * ch + 1];
    const int len = b.chunks[3 * ch + 2];
    float *out = scratch + ((int64_t)ch * H + h) * gdn_per(D);
    float *oQ = out, *oKw = oQ + L * D, *oW = oKw + L * D, *oU = oW + L * D, *oQK = oU + L * D,
          *oeG = oQK + L * L, *oeL = oeG + L;
    const int warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    for (int t = warp; t < len; t += nw) {
        float bt, gt;
        gdn_token(a, row0 + t, h, Qs + t * D, K + t * LD, Vs + t * D, &bt, &gt);
        if ((threadIdx.x & 31) == 0) {
            beta[t] = bt;
            g[t] = gt;
        }
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        float cum = 0.0f;
        for (int t = 0; t < len; t++) {
            cum += g[t];
            gam[t] = cum;
        }
    }
    __syncthreads();
    /* A (strictly lower) and the masked, decayed Q K^T */
    kl_mm<8, 2>(len, len, D, [&](int t, int i) { return K[t * LD + i]; },
                [&](int i, int u) { return K[u * LD + i]; },
                [&](int t, int u, float x) {
                    A[t * L + u] = u < t ? beta[t] * expf(gam[t] - gam[u]) * x : 0.0f;
                });
    kl_mm<8, 2>(len, len, D, [&](int t, int i) { return Qs[t * D + i]; },
                [&](int i, int u) { return K[u * LD + i]; },
                [&](int t, int u, float x) {
                    oQK[t * L + u] = u <= t ? x * expf(gam[t] - gam[u]) : 0.0f;
                });
    __syncthreads();
    /* Q out; right-hand sides of the two triangular solves in place */
    for (int idx = threadIdx.x; idx < len * D; idx += blockDim.x) {
        int t = idx / D, i = idx - t * D;
        oQ[idx] = Qs[t * D + i];
        Qs[t * D + i] = beta[t] * expf(gam[t]) * K[t * LD + i];
        Vs[t * D + i] *= beta[t];
    }
    __syncthreads();
    /* forward substitution, one column per thread (columns are independent) */
    for (int col = threadIdx.x; col < 2 * D; col += blockDim.x) {
        float *M = col < D ? Qs : Vs;
        int j = col < D ? col : col - D;
        for (int t = 1; t < len; t++) {
            float x = M[t * D + j];
            for (int u = 0; u < t; u++)
                x -= A[t * L + u] * M[u * D + j];
            M[t * D + j] = x;
        }
    }
    __syncthreads();
    const float gL = gam[len - 1];
    for (int idx = threadIdx.x; idx < len * D; idx += blockDim.x) {
        int t = idx / D, i = idx - t * D;
        oKw[idx] = expf(gL - gam[t]) * K[t * LD + i];
        oW[idx] = Qs[t * D + i];
        oU[idx] = Vs[t * D + i];
    }
    for (int t = threadIdx.x; t < len; t += blockDim.x)
        oeG[t] = expf(gam[t]);
    if (threadIdx.x == 0) {
        oeL[0] = expf(gL);
        oeL[1] = gL;
    }
}

#define VB 32 /* state columns per block of the state and output passes */

/* State pass, grid (H, D / VB, n_seq): walks the chunks of one sequence carrying
 * S[:, jb] (and P[:, jb]); per chunk it saves S0 and turns U0 into U = U0 - W S0.
 * Only the two products the recurrence needs are here (the outputs, which do
 * not feed it, are the parallel pass below), and the next chunk's operands
 * (Kw, W, U0: 72 KB) load with cp.async while this one computes: the single
 * pass it replaced (4 products, 120 KB staged synchronously per chunk) spent
 * ~30 us per chunk waiting on loads. */
__global__ void __launch_bounds__(256) gdn_state_kernel(int64_t D64, kl_ssm s, kl_batch b,
                                                        float *scratch)
{
    extern __shared__ float sm[];
    const int D = (int)D64;
    const int buf = 2 * L * D + L * VB + L + 4; /* one stage: Kw, W, U0, eG (16-byte multiple) */
    float *S = sm, *P = S + D * VB, *U = P + D * VB, *Y = U + L * VB, *stages = Y + L * VB;
    const int h = blockIdx.x, jb = blockIdx.y;
    const kl_seq sq = b.seq[blockIdx.z];
    const int64_t H = s.n_heads, off = ((int64_t)sq.slot * H + h) * D * D + jb * VB;
    auto fetch = [&](int ci) {
        const int ch = sq.chunk0 + ci;
        const int len = b.chunks[3 * ch + 2];
        const float *in = scratch + ((int64_t)ch * H + h) * gdn_per(D);
        float *st = stages + (ci & 1) * buf;
        kl_stage_async(st, D, in + L * D, D, len, D);
        kl_stage_async(st + L * D, D, in + 2 * L * D, D, len, D);
        kl_stage_async(st + 2 * L * D, VB, in + 3 * L * D + jb * VB, D, len, VB);
        for (int t = threadIdx.x; t < L + 2; t += blockDim.x)
            st[2 * L * D + L * VB + t] = in[4 * L * D + L * L + t];
        kl_cp_commit();
    };
    if (sq.n_chunks > 0)
        fetch(0);
    for (int idx = threadIdx.x; idx < D * VB; idx += blockDim.x) {
        S[idx] = s.state[off + (idx / VB) * D + idx % VB];
        if (s.trans)
            P[idx] = s.trans[off + (idx / VB) * D + idx % VB];
    }
    const bool tr = s.trans != NULL;
    for (int ci = 0; ci < sq.n_chunks; ci++) {
        const int ch = sq.chunk0 + ci;
        const int len = b.chunks[3 * ch + 2];
        float *in = scratch + ((int64_t)ch * H + h) * gdn_per(D);
        /* stage (ci+1)&1 was last read in chunk ci-1, which every thread finished */
        if (ci + 1 < sq.n_chunks) {
            fetch(ci + 1);
            kl_cp_wait<1>();
        } else {
            kl_cp_wait<0>();
        }
        /* S0 for the output pass (S is not written before the barrier below) */
        float *s0 = in + gdn_s0_at(D) + jb * VB;
        for (int idx = threadIdx.x; idx < D * VB; idx += blockDim.x)
            s0[(idx / VB) * D + idx % VB] = S[idx];
        __syncthreads();
        const float *st = stages + (ci & 1) * buf;
        const float *Kw = st, *W = st + L * D, *U0s = st + 2 * L * D, *eGs = U0s + L * VB;
        const float eL = eGs[L];
        /* U = U0 - W S0 (also to the scratch, for the output pass) ; Y = W P0 */
        float *u_out = in + 3 * L * D + jb * VB;
        kl_mm<8, 1>(len, VB, D, [&](int t, int i) { return W[t * D + i]; },
                    [&](int i, int c) { return S[i * VB + c]; },
                    [&](int t, int c, float x) {
                        const float u = U0s[t * VB + c] - x;
                        U[t * VB + c] = u;
                        u_out[t * D + c] = u;
                    });
        if (tr)
            kl_mm<8, 1>(len, VB, D, [&](int t, int i) { return W[t * D + i]; },
                        [&](int i, int c) { return P[i * VB + c]; },
                        [&](int t, int c, float x) { Y[t * VB + c] = x; });
        __syncthreads();
        /* S = e^gam_L S0 + Kw^T U ; P = e^gam_L P0 - Kw^T Y (in place: each element has one owner) */
        kl_mm<16, 1>(D, VB, len, [&](int i, int t) { return Kw[t * D + i]; },
                     [&](int t, int c) { return U[t * VB + c]; },
                     [&](int i, int c, float x) { S[i * VB + c] = eL * S[i * VB + c] + x; });
        if (tr)
            kl_mm<16, 1>(D, VB, len, [&](int i, int t) { return Kw[t * D + i]; },
                         [&](int t, int c) { return Y[t * VB + c]; },
                         [&](int i, int c, float x) { P[i * VB + c] = eL * P[i * VB + c] - x; });
        if (jb == 0 && threadIdx.x == 0)
            s.log_decay[(int64_t)sq.slot * H + h] += eGs[L + 1];
        __syncthreads();
    }
    for (int idx = threadIdx.x; idx < D * VB; idx += blockDim.x) {
        s.state[off + (idx / VB) * D + idx % VB] = S[idx];
        if (s.trans)
            s.trans[off + (idx / VB) * D + idx % VB] = P[idx];
    }
}

/* Output pass, grid (n_chunks, H, D / VB), every chunk at once:
 * o = QKM U + e^gam Q S0 for the columns jb*VB.. of one head. */
__global__ void __launch_bounds__(256) gdn_out_kernel(float *o, int64_t Hq, int64_t D64,
                                                      int64_t H, kl_batch b, const float *scratch)
{
    extern __shared__ float sm[];
    const int D = (int)D64;
    float *Qs = sm, *S0 = Qs + L * D, *QKs = S0 + D * VB, *Us = QKs + L * L, *Os = Us + L * VB,
          *eGs = Os + L * VB;
    const int ch = blockIdx.x, h = blockIdx.y, jb = blockIdx.z;
    const int64_t row0 = b.chunks[3 * ch + 1];
    const int len = b.chunks[3 * ch + 2];
    const float *in = scratch + ((int64_t)ch * H + h) * gdn_per(D);
    kl_stage(Qs, D, in, D, len, D);
    kl_stage(S0, VB, in + gdn_s0_at(D) + jb * VB, D, D, VB);
    kl_stage(QKs, L, in + 4 * L * D, L, len, L);
    kl_stage(Us, VB, in + 3 * L * D + jb * VB, D, len, VB);
    for (int t = threadIdx.x; t < L; t += blockDim.x)
        eGs[t] = in[4 * L * D + L * L + t];
    __syncthreads();
    /* same products, order and element -> thread mapping as the single pass had */
    kl_mm<8, 1>(len, VB, D, [&](int t, int i) { return Qs[t * D + i]; },
                [&](int i, int c) { return S0[i * VB + c]; },
                [&](int t, int c, float x) { Os[t * VB + c] = eGs[t] * x; });
    kl_mm<8, 1>(len, VB, len, [&](int t, int u) { return QKs[t * L + u]; },
                [&](int u, int c) { return Us[u * VB + c]; },
                [&](int t, int c, float x) {
                    o[(row0 + t) * Hq * D + h * D + jb * VB + c] = x + Os[t * VB + c];
                });
}

/* ------------------------------------------------------------------ launchers */

extern "C" size_t kl_gdn_scratch_floats(int64_t n_chunks, int64_t H, int64_t D)
{
    return (size_t)(n_chunks * H * gdn_per(D));
}

extern "C" cudaError_t kl_gdn(float *o, const float *qkv, const float *beta_raw,
                              const float *gk_raw, int64_t ldg, const float *a_log,
                              const float *dt_bias, const kl_ssm *s, const kl_batch *b,
                              const kl_mix *p, void *scratch, cudaStream_t stream)
{
    const int64_t D = p->head_dim, H = p->n_heads;
    gdn_in a = {qkv, beta_raw, gk_raw, a_log, dt_bias, ldg, p->n_heads, p->n_kv_heads, D,
                p->scale, p->allow_neg_eigval};
    if (b->n_seq <= 0)
        return cudaSuccess;
    if (b->decode && (D == 32 || D == 64 || D == 128)) {
        dim3 grid((unsigned)H, (unsigned)b->n_seq);
        if (D == 128)
            (void)kl_launch(gdn_decode_kernel<128>, dim3(grid), dim3(256), 0, stream, o, a, *s, *b);
        else if (D == 64)
            (void)kl_launch(gdn_decode_kernel<64>, dim3(grid), dim3(256), 0, stream, o, a, *s, *b);
        else
            (void)kl_launch(gdn_decode_kernel<32>, dim3(grid), dim3(256), 0, stream, o, a, *s, *b);
        return cudaGetLastError();
    }
    if (D % VB || D > 128 || b->n_chunks <= 0)
        return b->n_chunks <= 0 ? cudaSuccess : cudaErrorNotSupported;
    size_t prep_smem = (size_t)(L * (D + 1) + 2 * L * D + L * L + 2 * L) * sizeof(float);
    cudaError_t e = cudaFuncSetAttribute(gdn_prep_kernel,
                                         cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         (int)prep_smem);
    if (e != cudaSuccess)
        return e;
    gdn_prep_kernel<<<dim3((unsigned)b->n_chunks, (unsigned)H), 256, prep_smem, stream>>>(
        a, H, *b, (float *)scratch);
    if ((e = cudaGetLastError()) != cudaSuccess)
        return e;
    KL_MARK("gdn.prep");
    size_t state_smem = (size_t)(2 * D * VB + 2 * L * VB + 2 * (2 * L * D + L * VB + L + 4)) *
                        sizeof(float);
    if ((e = cudaFuncSetAttribute(gdn_state_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                  (int)state_smem)) != cudaSuccess)
        return e;
    gdn_state_kernel<<<dim3((unsigned)H, (unsigned)(D / VB), (unsigned)b->n_seq), 256,
                       state_smem, stream>>>(D, *s, *b, (float *)scratch);
    if ((e = cudaGetLastError()) != cudaSuccess)
        return e;
    KL_MARK("gdn.state");
    size_t out_smem = (size_t)(L * D + D * VB + L * L + 2 * L * VB + L) * sizeof(float);
    if ((e = cudaFuncSetAttribute(gdn_out_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                  (int)out_smem)) != cudaSuccess)
        return e;
    gdn_out_kernel<<<dim3((unsigned)b->n_chunks, (unsigned)H, (unsigned)(D / VB)), 256, out_smem,
                     stream>>>(o, p->n_heads, D, H, *b, (const float *)scratch);
    return cudaGetLastError();
}

#undef L
#undef VB
