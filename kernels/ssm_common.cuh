/* ssm_common.cuh - pieces shared by the Mamba2 / GDN / GKA kernels.
 *
 * All three layers have the same two shapes of work:
 *  - decode: one token per sequence; a block per (sequence, head) reads the
 *    head's D x D fp32 state once into registers, updates it and writes it once
 *    (the state is the only large traffic, so this is the bandwidth floor);
 *  - chunked prefill (spec §7.2, §8.2, §9.2): a "prep" kernel per (chunk, head)
 *    computes everything that does not depend on the chunk-start state (in
 *    parallel over all chunks), a "scan" kernel per (head, column block of the
 *    state) walks the chunks of a sequence in order carrying the state, and for
 *    GKA an "out" kernel per (chunk, head) uses the chunk-start states the scan
 *    saved. The same 64-token chunks as the CPU backend, so rounding agrees.
 */
#pragma once

#include "tc.cuh"

/* Register-resident D x D state of a decode block (8 warps): warp w owns rows
 * [w*RPW, (w+1)*RPW), lane l owns columns [l*CPL, (l+1)*CPL). */
template <int D, int ROWS = D> struct kl_tile {
    static constexpr int RPW = ROWS / 8, CPL = D / 32;
    float v[RPW][CPL];

    /* S: the first of this tile's ROWS rows of a row-major [.][D] state */
    __device__ __forceinline__ void load(const float *S)
    {
        const int w = threadIdx.x >> 5, l = threadIdx.x & 31;
#pragma unroll
        for (int r = 0; r < RPW; r++) {
            const float *row = S + (w * RPW + r) * D + l * CPL;
            if (CPL == 4) { /* one 16-byte access per lane: coalesced, conflict-free */
                float4 t = *reinterpret_cast<const float4 *>(row);
                v[r][0] = t.x;
                v[r][CPL > 1 ? 1 : 0] = t.y;
                v[r][CPL > 2 ? 2 : 0] = t.z;
                v[r][CPL > 3 ? 3 : 0] = t.w;
            } else {
#pragma unroll
                for (int c = 0; c < CPL; c++)
                    v[r][c] = row[c];
            }
        }
    }
    __device__ __forceinline__ void store(float *S) const
    {
        const int w = threadIdx.x >> 5, l = threadIdx.x & 31;
#pragma unroll
        for (int r = 0; r < RPW; r++) {
            float *row = S + (w * RPW + r) * D + l * CPL;
            if (CPL == 4) {
                *reinterpret_cast<float4 *>(row) =
                    make_float4(v[r][0], v[r][CPL > 1 ? 1 : 0], v[r][CPL > 2 ? 2 : 0],
                                v[r][CPL > 3 ? 3 : 0]);
            } else {
#pragma unroll
                for (int c = 0; c < CPL; c++)
                    row[c] = v[r][c];
            }
        }
    }
    /* out[j] = sum_i v[i][j] * x[i] (column sums; red is 8 x D shared floats). */
    __device__ __forceinline__ void col_dot(const float *x, float *red, float *out) const
    {
        const int w = threadIdx.x >> 5, l = threadIdx.x & 31;
        float p[CPL];
#pragma unroll
        for (int c = 0; c < CPL; c++)
            p[c] = 0.0f;
#pragma unroll
        for (int r = 0; r < RPW; r++) {
            float xi = x[w * RPW + r];
#pragma unroll
            for (int c = 0; c < CPL; c++)
                p[c] += v[r][c] * xi;
        }
#pragma unroll
        for (int c = 0; c < CPL; c++)
            red[w * D + l * CPL + c] = p[c];
        __syncthreads();
        for (int j = threadIdx.x; j < D; j += blockDim.x) {
            float s = 0.0f;
#pragma unroll
            for (int k = 0; k < 8; k++)
                s += red[k * D + j];
            out[j] = s;
        }
        __syncthreads();
    }
    /* out[i] = sum_j v[i][j] * x[j] (row dots, reduced across the warp's lanes). */
    __device__ __forceinline__ void row_dot(const float *x, float *out) const
    {
        const int w = threadIdx.x >> 5, l = threadIdx.x & 31;
        float xj[CPL];
#pragma unroll
        for (int c = 0; c < CPL; c++)
            xj[c] = x[l * CPL + c];
#pragma unroll
        for (int r = 0; r < RPW; r++) {
            float s = 0.0f;
#pragma unroll
            for (int c = 0; c < CPL; c++)
                s += v[r][c] * xj[c];
            s = kl_warp_sum(s);
            if (l == 0)
                out[w * RPW + r] = s;
        }
    }
};

/* dst[r*dld + c] = src[r*sld + c] for r < rows, c < cols (cols % 4 == 0, 16-byte
 * aligned rows): the scans stage each chunk's operands in shared memory, so the
 * products' inner loops never wait on global loads. */
KL_DEV void kl_stage(float *dst, int dld, const float *src, int64_t sld, int rows, int cols)
{
    const int c4 = cols / 4;
    for (int i = threadIdx.x; i < rows * c4; i += blockDim.x) {
        int r = i / c4, c = (i - r * c4) * 4;
        float4 v = *reinterpret_cast<const float4 *>(src + r * sld + c);
        float *d = dst + r * dld + c;
        d[0] = v.x;
        d[1] = v.y;
        d[2] = v.z;
        d[3] = v.w;
    }
}

/* kl_stage through cp.async (16-byte copies that do not hold registers): the
 * caller commits the group and waits for it (cp.async.wait_group) before a
 * barrier, so a chunk's operands can load while the previous chunk computes.
 * dst rows must be 16-byte aligned too (dld % 4 == 0). */
KL_DEV void kl_stage_async(float *dst, int dld, const float *src, int64_t sld, int rows, int cols)
{
    const int c4 = cols / 4;
    for (int i = threadIdx.x; i < rows * c4; i += blockDim.x) {
        const int r = i / c4, c = (i - r * c4) * 4;
        kl_cp16(dst + r * dld + c, src + r * sld + c, 16);
    }
}

KL_DEV double kl_warp_sum_d(double v)
{
#pragma unroll
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

/* Sum of squares of n values in double (as the CPU's norms), by one warp. */
KL_DEV double kl_warp_sumsq_d(const float *x, int64_t n)
{
    double s = 0.0;
    for (int64_t i = threadIdx.x & 31; i < n; i += 32)
        s += (double)x[i] * x[i];
    return kl_warp_sum_d(s);
}

/* C(i, j) = sum_k A(i, k) * B(k, j) for i < M, j < N by a block of 256 threads
 * (8 warps x 32 lanes), register-tiled: thread (warp w, lane l) owns rows
 * w, w+8, ... (up to RM of them) and columns l, l+32, ... (up to CN), so for a
 * fixed k the A reads of a warp are one broadcast address per row and the B
 * reads are 32 consecutive columns (conflict-free when B(k, j) is row-major in
 * j; for B(k, j) = Y[j][k] pad Y's rows to an odd length). The element ->
 * thread mapping depends only on (RM, CN), so two products of the same shape
 * may chain through `put` without a barrier. Operands are accessors, so one
 * helper serves every transpose and every memory space. */
template <int RM, int CN, class FA, class FB, class FP>
KL_DEV void kl_mm(int M, int N, int K, FA A, FB B, FP put)
{
    const int w = threadIdx.x >> 5, l = threadIdx.x & 31;
    float acc[RM][CN];
#pragma unroll
    for (int r = 0; r < RM; r++)
#pragma unroll
        for (int c = 0; c < CN; c++)
            acc[r][c] = 0.0f;
    /* unrolled: the loads of later k overlap the FMAs of earlier ones */
#pragma unroll 4
    for (int k = 0; k < K; k++) {
        float a[RM], bv[CN];
#pragma unroll
        for (int r = 0; r < RM; r++)
            a[r] = w + 8 * r < M ? A(w + 8 * r, k) : 0.0f;
#pragma unroll
        for (int c = 0; c < CN; c++)
            bv[c] = l + 32 * c < N ? B(k, l + 32 * c) : 0.0f;
#pragma unroll
        for (int r = 0; r < RM; r++)
#pragma unroll
            for (int c = 0; c < CN; c++)
                acc[r][c] += a[r] * bv[c];
    }
#pragma unroll
    for (int r = 0; r < RM; r++)
#pragma unroll
        for (int c = 0; c < CN; c++)
            if (w + 8 * r < M && l + 32 * c < N)
                put(w + 8 * r, l + 32 * c, acc[r][c]);
}
