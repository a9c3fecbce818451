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

#include "common.cuh"

/* Register-resident D x D state of a decode block (8 warps): warp w owns rows
 * [w*RPW, (w+1)*RPW), lane l owns columns [l*CPL, (l+1)*CPL). */
template <int D> struct kl_tile {
    static constexpr int RPW = D / 8, CPL = D / 32;
    float v[RPW][CPL];

    __device__ __forceinline__ void load(const float *S)
    {
        const int w = threadIdx.x >> 5, l = threadIdx.x & 31;
#pragma unroll
        for (int r = 0; r < RPW; r++)
#pragma unroll
            for (int c = 0; c < CPL; c++)
                v[r][c] = S[(w * RPW + r) * D + l * CPL + c];
    }
    __device__ __forceinline__ void store(float *S) const
    {
        const int w = threadIdx.x >> 5, l = threadIdx.x & 31;
#pragma unroll
        for (int r = 0; r < RPW; r++)
#pragma unroll
            for (int c = 0; c < CPL; c++)
                S[(w * RPW + r) * D + l * CPL + c] = v[r][c];
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

/* C(i, j) = sum_k A(i, k) * B(k, j) for i < M, j < N, every thread of the block
 * taking elements in turn; `put(i, j, sum)` stores. Operands are accessors so
 * one helper serves every transpose; the chunk products are small (64 x 128). */
template <class FA, class FB, class FP>
KL_DEV void kl_block_mm(int M, int N, int K, FA A, FB B, FP put)
{
    for (int idx = threadIdx.x; idx < M * N; idx += blockDim.x) {
        int i = idx / N, j = idx - i * N;
        float s = 0.0f;
        for (int k = 0; k < K; k++)
            s += A(i, k) * B(k, j);
        put(i, j, s);
    }
}
