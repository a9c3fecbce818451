/* gemv.cu - out = x W^T for a few rows (decode at small batch), W bf16/f16.
 *
 * Two numbers: the product reads N*K*2 bytes of W once and does 2*rows*N*K
 * FLOPs; at rows <= 8 that is <= 8 FLOP/byte, far under the chip's ~200, so the
 * only goal is streaming W at full bandwidth. Each warp owns one output row
 * (or a K-slice of it when N is small, so that every SM gets work), reads W in
 * 16-byte loads, four in flight per lane, and keeps `rows` fp32 sums in
 * registers. x (fp32, a few KB) is read through L1. */
#include "common.cuh"

#define GEMV_UNROLL 4

template <typename T, int R>
__global__ void __launch_bounds__(256) gemv_kernel(float *out, int64_t ldo, const float *x,
                                                   int64_t ldx, const T *w, int64_t N, int64_t K,
                                                   int split)
{
    __shared__ float part[8][R];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int rows_per_block = 8 / split;
    const int64_t n = (int64_t)blockIdx.x * rows_per_block + warp / split;
    const int piece = warp % split;
    float acc[R];
#pragma unroll
    for (int r = 0; r < R; r++)
        acc[r] = 0.0f;
    if (n < N) {
        const uint4 *wr = reinterpret_cast<const uint4 *>(w + n * K);
        const int64_t K8 = K / 8; /* 16-byte chunks in the row */
        const int64_t per = (K8 + split - 1) / split;
        const int64_t c0 = piece * per, c1 = c0 + per < K8 ? c0 + per : K8;
        int64_t c = c0 + lane;
        for (; c + 32 * (GEMV_UNROLL - 1) < c1; c += 32 * GEMV_UNROLL) {
            uint4 u[GEMV_UNROLL];
#pragma unroll
            for (int j = 0; j < GEMV_UNROLL; j++)
                u[j] = __ldg(wr + c + 32 * j);
#pragma unroll
            for (int j = 0; j < GEMV_UNROLL; j++) {
                float wf[8];
                kl_unpack8<T>(u[j], wf);
                int64_t k = (c + 32 * j) * 8;
#pragma unroll
                for (int r = 0; r < R; r++) {
                    const float4 *xr = reinterpret_cast<const float4 *>(x + r * ldx + k);
                    float4 a = xr[0], b = xr[1];
                    acc[r] += wf[0] * a.x + wf[1] * a.y + wf[2] * a.z + wf[3] * a.w +
                              wf[4] * b.x + wf[5] * b.y + wf[6] * b.z + wf[7] * b.w;
                }
            }
        }
        for (; c < c1; c += 32) {
            float wf[8];
            kl_unpack8<T>(__ldg(wr + c), wf);
            int64_t k = c * 8;
#pragma unroll
            for (int r = 0; r < R; r++) {
                const float4 *xr = reinterpret_cast<const float4 *>(x + r * ldx + k);
                float4 a = xr[0], b = xr[1];
                acc[r] += wf[0] * a.x + wf[1] * a.y + wf[2] * a.z + wf[3] * a.w + wf[4] * b.x +
                          wf[5] * b.y + wf[6] * b.z + wf[7] * b.w;
            }
        }
    }
#pragma unroll
    for (int r = 0; r < R; r++)
        acc[r] = kl_warp_sum(acc[r]);
    if (split == 1) {
        if (lane == 0 && n < N)
#pragma unroll
            for (int r = 0; r < R; r++)
                out[r * ldo + n] = acc[r];
        return;
    }
    if (lane == 0)
#pragma unroll
        for (int r = 0; r < R; r++)
            part[warp][r] = acc[r];
    __syncthreads();
    if (threadIdx.x < rows_per_block * R) {
        int rw = threadIdx.x / R, r = threadIdx.x % R;
        int64_t nn = (int64_t)blockIdx.x * rows_per_block + rw;
        if (nn < N) {
            float s = 0.0f;
            for (int p = 0; p < split; p++)
                s += part[rw * split + p][r];
            out[r * ldo + nn] = s;
        }
    }
}

template <typename T, int R>
static void launch(float *out, int64_t ldo, const float *x, int64_t ldx, const T *w, int64_t N,
                   int64_t K, int split, cudaStream_t stream)
{
    int rows_per_block = 8 / split;
    unsigned grid = (unsigned)((N + rows_per_block - 1) / rows_per_block);
    gemv_kernel<T, R><<<grid, 256, 0, stream>>>(out, ldo, x, ldx, w, N, K, split);
}

template <typename T>
static void dispatch(float *out, int64_t ldo, const float *x, int64_t ldx, const T *w, int64_t N,
                     int64_t K, int64_t rows, int split, cudaStream_t stream)
{
    switch (rows) {
    case 1: launch<T, 1>(out, ldo, x, ldx, w, N, K, split, stream); break;
    case 2: launch<T, 2>(out, ldo, x, ldx, w, N, K, split, stream); break;
    case 3: launch<T, 3>(out, ldo, x, ldx, w, N, K, split, stream); break;
    case 4: launch<T, 4>(out, ldo, x, ldx, w, N, K, split, stream); break;
    case 5: launch<T, 5>(out, ldo, x, ldx, w, N, K, split, stream); break;
    case 6: launch<T, 6>(out, ldo, x, ldx, w, N, K, split, stream); break;
    case 7: launch<T, 7>(out, ldo, x, ldx, w, N, K, split, stream); break;
    default: launch<T, 8>(out, ldo, x, ldx, w, N, K, split, stream); break;
    }
}

extern "C" cudaError_t kl_gemv(float *out, int64_t ldo, const float *x, int64_t ldx,
                               const void *w, int dtype, int64_t N, int64_t K, int64_t rows,
                               cudaStream_t stream)
{
    if (rows < 1 || rows > KL_GEMV_MAX_ROWS || K % 8 || ldx % 4 || ((uintptr_t)x % 16) ||
        ((uintptr_t)w % 16) || (dtype != KL_BF16 && dtype != KL_F16))
        return cudaErrorInvalidValue;
    /* enough warps for every SM: split K when N alone gives too few blocks */
    int split = N >= 8192 ? 1 : N >= 2048 ? 2 : N >= 512 ? 4 : 8;
    if (dtype == KL_BF16)
        dispatch(out, ldo, x, ldx, (const __nv_bfloat16 *)w, N, K, rows, split, stream);
    else
        dispatch(out, ldo, x, ldx, (const __half *)w, N, K, rows, split, stream);
    return cudaGetLastError();
}
