/* mamba2.cu - Mamba2, GQA variant (spec MODEL.md §7): the decode recurrence
 * (§7.1) and the chunked SSD form (§7.2).
 *
 * Chunk form, per chunk of L tokens from state S0 [P x N] (P = N = D):
 *   lam_t = sum_{r<=t} dt_r A, M[t,s] = (C_t.B_s) e^{lam_t-lam_s} dt_s (s <= t),
 *   y = M X + D X + diag(e^lam) C S0^T,
 *   S_end = e^{lam_L} S0 + Xw^T B, Xw_s = e^{lam_L-lam_s} dt_s X_s.
 * The prep kernel writes M X + D X into y and the S0-free pieces into scratch
 * for every chunk at once; the scan kernel (a block per head and block of P
 * rows) adds the S0 term and carries the state. Decode reads each head's state
 * once (2 * D^2 * 4 bytes, read + write) into registers. */
#include "ssm_common.cuh"

struct m2_in {
    const float *xbc, *dt_raw, *dt_bias, *a_log, *d_skip;
    int64_t lddt, conv_dim, Hq, Hkv, D;
};

/* ------------------------------------------------------------------ decode */

/* grid (H, n_seq, 2): each block owns half of the head's state rows (p), so a
 * block holds 32 KB of state in registers and more blocks fit on an SM, which
 * keeps more of the state stream in flight (the rows are independent: y[p]
 * only needs row p). */
template <int D>
__global__ void __launch_bounds__(256) m2_decode_kernel(float *y, m2_in a, kl_ssm s, kl_batch b)
{
    constexpr int ROWS = D / 2;
    __shared__ float x[D], B[D], C[D], yo[ROWS];
    const int h = blockIdx.x, half = blockIdx.z, p0 = half * ROWS;
    const kl_seq sq = b.seq[blockIdx.y]; /* batch metadata: uploaded before the step */
    const int64_t row = sq.tok_start, H = s.n_heads, g = h / (a.Hq / a.Hkv);
    const float *r = a.xbc + row * a.conv_dim;
    const int64_t off = ((int64_t)sq.slot * H + h) * D * D + (int64_t)p0 * D;
    /* the state is this kernel's alone: load it while the kernel before finishes */
    kl_tile<D, ROWS> S;
    S.load(s.state + off);
    kl_pdl_wait();
    kl_pdl_trigger();
    for (int i = threadIdx.x; i < D; i += blockDim.x) {
        x[i] = r[g * D + i];
        B[i] = r[a.Hkv * D + g * D + i];
        C[i] = r[2 * a.Hkv * D + h * D + i];
    }
    const float A = -expf(a.a_log[h]);
    const float dt = kl_softplus(a.dt_raw[row * a.lddt + h] + a.dt_bias[h]);
    const float decay = expf(dt * A);
    __syncthreads();
    const int w = threadIdx.x >> 5, l = threadIdx.x & 31;
    constexpr int RPW = kl_tile<D, ROWS>::RPW, CPL = kl_tile<D, ROWS>::CPL;
#pragma unroll
    for (int rr = 0; rr < RPW; rr++) {
        float xp = dt * x[p0 + w * RPW + rr];
#pragma unroll
        for (int c = 0; c < CPL; c++)
            S.v[rr][c] = decay * S.v[rr][c] + xp * B[l * CPL + c];
    }
    S.row_dot(C, yo);
    S.store(s.state + off);
    __syncthreads();
    for (int p = threadIdx.x; p < ROWS; p += blockDim.x)
        y[row * a.Hq * D + h * D + p0 + p] = yo[p] + a.d_skip[h] * x[p0 + p];
    if (threadIdx.x == 0 && half == 0)
        s.log_decay[(int64_t)sq.slot * H + h] += dt * A;
}

/* ------------------------------------------------------------------ chunked */

#define L KL_SSM_CHUNK
#define PB 32 /* state rows (p) per scan block */

/* Scratch per (chunk, head): C, Xw, B [L][D], e^lam [L], e^lam_L, lam_L. */
__host__ __device__ static inline int64_t m2_per(int64_t D) { return (3 * L * D + L + 2 + 3) & ~(int64_t)3; }

/* grid (n_chunks, H). Dynamic smem: X, B, C [L][D+1], M [L][L+1], dt, lam [L]. */
__global__ void __launch_bounds__(256) m2_prep_kernel(float *y, m2_in a, int64_t H, kl_batch b,
                                                      float *scratch)
{
    extern __shared__ float sm[];
    const int D = (int)a.D, LD = D + 1;
    float *X = sm, *Bm = X + L * LD, *Cm = Bm + L * LD, *M = Cm + L * LD, *dt = M + L * (L + 1),
          *lam = dt + L;
    const int ch = blockIdx.x, h = blockIdx.y;
    const int64_t row0 = b.chunks[3 * ch + 1], g = h / (a.Hq / a.Hkv);
    const int len = b.chunks[3 * ch + 2];
    float *out = scratch + ((int64_t)ch * H + h) * m2_per(D);
    float *oC = out, *oXw = oC + L * D, *oB = oXw + L * D, *oel = oB + L * D;
    for (int idx = threadIdx.x; idx < len * D; idx += blockDim.x) {
        int t = idx / D, i = idx - t * D;
        const float *r = a.xbc + (row0 + t) * a.conv_dim;
        X[t * LD + i] = r[g * D + i];
        Bm[t * LD + i] = r[a.Hkv * D + g * D + i];
        Cm[t * LD + i] = r[2 * a.Hkv * D + h * D + i];
    }
    const float A = -expf(a.a_log[h]);
    for (int t = threadIdx.x; t < len; t += blockDim.x)
        dt[t] = kl_softplus(a.dt_raw[(row0 + t) * a.lddt + h] + a.dt_bias[h]);
    __syncthreads();
    if (threadIdx.x == 0) {
        float cum = 0.0f;
        for (int t = 0; t < len; t++) {
            cum += dt[t] * A;
            lam[t] = cum;
        }
    }
    __syncthreads();
    /* M = (C B^T) o decay o dt, lower triangle */
    kl_mm<8, 2>(len, len, D, [&](int t, int n) { return Cm[t * LD + n]; },
                [&](int n, int u) { return Bm[u * LD + n]; },
                [&](int t, int u, float x) {
                    M[t * (L + 1) + u] = u <= t ? x * expf(lam[t] - lam[u]) * dt[u] : 0.0f;
                });
    __syncthreads();
    const float dsk = a.d_skip[h], lamL = lam[len - 1];
    /* y = M X + D X (the scan adds the S0 term) */
    kl_mm<8, 4>(len, D, len, [&](int t, int u) { return M[t * (L + 1) + u]; },
                [&](int u, int p) { return X[u * LD + p]; },
                [&](int t, int p, float x) {
                    y[(row0 + t) * a.Hq * D + h * D + p] = x + dsk * X[t * LD + p];
                });
    for (int idx = threadIdx.x; idx < len * D; idx += blockDim.x) {
        int t = idx / D, i = idx - t * D;
        oXw[idx] = expf(lamL - lam[t]) * dt[t] * X[t * LD + i];
        oC[idx] = Cm[t * LD + i];
        oB[idx] = Bm[t * LD + i];
    }
    for (int t = threadIdx.x; t < len; t += blockDim.x)
        oel[t] = expf(lam[t]);
    if (threadIdx.x == 0) {
        oel[L] = expf(lamL);
        oel[L + 1] = lamL;
    }
}

/* grid (H, D / PB, n_seq): S rows [pb*PB, pb*PB + PB) across the sequence's chunks.
 * S rows are padded to D+1 floats (the y product reads S across rows). */
__global__ void __launch_bounds__(256) m2_scan_kernel(float *y, int64_t Hq, int64_t D64, kl_ssm s,
                                                      kl_batch b, const float *scratch)
{
    extern __shared__ float S[]; /* [PB][D+1], then the chunk's C, B [L][D], Xw [L][PB], e^lam */
    const int D = (int)D64, LD = D + 1;
    float *Cs = S + PB * LD, *Bs = Cs + L * D, *Xs = Bs + L * D, *els = Xs + L * PB;
    const int h = blockIdx.x, pb = blockIdx.y;
    const kl_seq sq = b.seq[blockIdx.z];
    const int64_t H = s.n_heads, off = ((int64_t)sq.slot * H + h) * D * D + (int64_t)pb * PB * D;
    for (int idx = threadIdx.x; idx < PB * D; idx += blockDim.x)
        S[(idx / D) * LD + idx % D] = s.state[off + idx];
    for (int ci = 0; ci < sq.n_chunks; ci++) {
        const int ch = sq.chunk0 + ci;
        const int64_t row0 = b.chunks[3 * ch + 1];
        const int len = b.chunks[3 * ch + 2];
        const float *in = scratch + ((int64_t)ch * H + h) * m2_per(D);
        kl_stage(Cs, D, in, D, len, D);
        kl_stage(Xs, PB, in + L * D + pb * PB, D, len, PB);
        kl_stage(Bs, D, in + 2 * L * D, D, len, D);
        for (int t = threadIdx.x; t < L + 2; t += blockDim.x)
            els[t] = in[3 * L * D + t];
        __syncthreads();
        const float *Cm = Cs, *Bm = Bs, *el = els;
        kl_mm<8, 1>(len, PB, D, [&](int t, int n) { return Cm[t * D + n]; },
                    [&](int n, int p) { return S[p * LD + n]; },
                    [&](int t, int p, float x) {
                        y[(row0 + t) * Hq * D + h * D + pb * PB + p] += el[t] * x;
                    });
        __syncthreads();
        const float eL = el[L];
        kl_mm<4, 4>(PB, D, len, [&](int p, int t) { return Xs[t * PB + p]; },
                    [&](int t, int n) { return Bm[t * D + n]; },
                    [&](int p, int n, float x) { S[p * LD + n] = eL * S[p * LD + n] + x; });
        if (pb == 0 && threadIdx.x == 0)
            s.log_decay[(int64_t)sq.slot * H + h] += el[L + 1];
        __syncthreads();
    }
    for (int idx = threadIdx.x; idx < PB * D; idx += blockDim.x)
        s.state[off + idx] = S[(idx / D) * LD + idx % D];
}

/* ------------------------------------------------------------------ launchers */

extern "C" size_t kl_m2_scratch_floats(int64_t n_chunks, int64_t H, int64_t D)
{
    return (size_t)(n_chunks * H * m2_per(D));
}

extern "C" cudaError_t kl_mamba2(float *y, const float *xbc, const float *dt_raw, int64_t lddt,
                                 const float *dt_bias, const float *a_log, const float *d_skip,
                                 const kl_ssm *s, const kl_batch *b, const kl_mix *p,
                                 void *scratch, cudaStream_t stream)
{
    const int64_t D = p->head_dim, H = p->n_heads;
    m2_in a = {xbc, dt_raw, dt_bias, a_log, d_skip, lddt, s->conv_channels, p->n_heads,
               p->n_kv_heads, D};
    if (b->n_seq <= 0)
        return cudaSuccess;
    if (b->decode && (D == 32 || D == 64 || D == 128)) {
        dim3 grid((unsigned)H, (unsigned)b->n_seq, 2);
        if (D == 128)
            (void)kl_launch(m2_decode_kernel<128>, dim3(grid), dim3(256), 0, stream, y, a, *s, *b);
        else if (D == 64)
            (void)kl_launch(m2_decode_kernel<64>, dim3(grid), dim3(256), 0, stream, y, a, *s, *b);
        else
            (void)kl_launch(m2_decode_kernel<32>, dim3(grid), dim3(256), 0, stream, y, a, *s, *b);
        return cudaGetLastError();
    }
    if (D % PB || D > 128 || b->n_chunks <= 0)
        return b->n_chunks <= 0 ? cudaSuccess : cudaErrorNotSupported;
    size_t prep_smem = (size_t)(3 * L * (D + 1) + L * (L + 1) + 2 * L) * sizeof(float);
    cudaError_t e = cudaFuncSetAttribute(m2_prep_kernel,
                                         cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         (int)prep_smem);
    if (e != cudaSuccess)
        return e;
    m2_prep_kernel<<<dim3((unsigned)b->n_chunks, (unsigned)H), 256, prep_smem, stream>>>(
        y, a, H, *b, (float *)scratch);
    if ((e = cudaGetLastError()) != cudaSuccess)
        return e;
    KL_MARK("mamba2.prep");
    size_t scan_smem = (size_t)(PB * (D + 1) + 2 * L * D + L * PB + L + 2) * sizeof(float);
    if ((e = cudaFuncSetAttribute(m2_scan_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                  (int)scan_smem)) != cudaSuccess)
        return e;
    m2_scan_kernel<<<dim3((unsigned)H, (unsigned)(D / PB), (unsigned)b->n_seq), 256, scan_smem,
                     stream>>>(y, p->n_heads, D, *s, *b, (const float *)scratch);
    return cudaGetLastError();
}

#undef L
#undef PB
