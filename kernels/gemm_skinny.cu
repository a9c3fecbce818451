/* gemm_skinny.cu - out = X W^T for decode batches: X bf16 [R][K] (R <= 128
 * rows, the converted activations), W bf16 [N][K], out fp32 (row stride ldo).
 *
 * Two numbers: W is N*K*2 bytes read once; the product is 2*R*N*K FLOPs, at
 * most 128 FLOP/byte here, under the ~200 where an H200 turns compute-bound:
 * the kernel must stream W at the copy bandwidth at every R from 1 to 128.
 * A block (4 or 8 warps) owns 16 rows of W per warp and a K-slice; W and X tiles of 64 k go
 * through shared memory with cp.async, four stages deep; each warp multiplies
 * its 16 W rows (the mma A operand) with all R activation rows (B operand, n8
 * tiles) on the tensor cores, fp32 accumulation. When N / 64 blocks cannot fill
 * the GPU, K is split and the slices add into the (zeroed) output with fp32
 * atomics. Rows are padded to RT = 8, 16, 32, 64 or 128 with zeros. */
#include "tc.cuh"

#define SK_K 64     /* k per stage */
#define SK_CH 8     /* 16-byte chunks per 64-k row */
#define SK_STAGES 4

/* rows of 8 chunks (128 bytes): chunk c of row r at c ^ (r mod 8), so that
 * ldmatrix's eight rows at one logical chunk hit eight different bank groups */
__device__ __forceinline__ int sk_swz(int r, int c) { return r * SK_CH + (c ^ (r & 7)); }


/* NW warps: W rows per block SK_N = 16 NW. Wider blocks for more activation rows
 * keep the X tile (re-read from L2 by every block) small next to the W tile. */
template <int RT, int NW>
__global__ void __launch_bounds__(NW * 32) skinny_kernel(float *out, int64_t ldo,
                                                     const __nv_bfloat16 *x,
                                                     const __nv_bfloat16 *w, int N, int K, int R,
                                                     int k_per_split, int atomic)
{
    constexpr int NT = RT / 8; /* n8 tiles of activation rows */
    constexpr int SK_N = 16 * NW, NTH = 32 * NW;
    extern __shared__ uint4 sk_sm[];
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    const int n0 = blockIdx.x * SK_N;
    const int k0 = blockIdx.y * k_per_split;
    const int k1 = k0 + k_per_split < K ? k0 + k_per_split : K;
    const int n_kt = k1 > k0 ? (k1 - k0 + SK_K - 1) / SK_K : 0;
    constexpr int STAGE = (SK_N + RT) * SK_CH; /* uint4 per stage */

    auto load = [&](int kt) {
        uint4 *ws = sk_sm + (size_t)(kt % SK_STAGES) * STAGE, *xs = ws + SK_N * SK_CH;
        const int kb = k0 + kt * SK_K;
        for (int i = tid; i < SK_N * SK_CH; i += NTH) {
            int r = i / SK_CH, c = i % SK_CH, k = kb + c * 8;
            bool ok = n0 + r < N && k < k1;
            kl_cp16(ws + sk_swz(r, c), ok ? w + (int64_t)(n0 + r) * K + k : w, ok ? 16 : 0);
        }
        for (int i = tid; i < RT * SK_CH; i += NTH) {
            int r = i / SK_CH, c = i % SK_CH, k = kb + c * 8;
            bool ok = r < R && k < k1;
            kl_cp16(xs + sk_swz(r, c), ok ? x + (int64_t)r * K + k : x, ok ? 16 : 0);
        }
    };
#pragma unroll
    for (int s = 0; s < SK_STAGES - 1; s++) {
        if (s < n_kt)
            load(s);
        kl_cp_commit();
    }
    float acc[NT][4];
#pragma unroll
    for (int t = 0; t < NT; t++)
        acc[t][0] = acc[t][1] = acc[t][2] = acc[t][3] = 0.0f;

    for (int kt = 0; kt < n_kt; kt++) {
        if (kt + SK_STAGES - 1 < n_kt)
            load(kt + SK_STAGES - 1);
        kl_cp_commit();
        kl_cp_wait<SK_STAGES - 1>();
        __syncthreads();
        const uint4 *ws = sk_sm + (size_t)(kt % SK_STAGES) * STAGE, *xs = ws + SK_N * SK_CH;
#pragma unroll
        for (int ks = 0; ks < SK_K / 16; ks++) {
            uint32_t a[4];
            {
                int row = warp * 16 + (lane & 7) + ((lane >> 3) & 1) * 8;
                kl_ldm4(a, ws + sk_swz(row, 2 * ks + (lane >> 4)));
            }
            if (NT == 1) {
                uint32_t bx[2];
                int row = lane & 7;
                kl_ldm2(bx, xs + sk_swz(row, 2 * ks + ((lane >> 3) & 1)));
                kl_mma_bf16(acc[0], a, bx[0], bx[1]);
            } else {
#pragma unroll
                for (int t = 0; t < NT; t += 2) {
                    uint32_t bq[4];
                    int row = t * 8 + (lane & 7) + (lane >> 4) * 8;
                    kl_ldm4(bq, xs + sk_swz(row, 2 * ks + ((lane >> 3) & 1)));
#pragma unroll
                    for (int u = 0; u < 2; u++)
                        kl_mma_bf16(acc[t + u], a, bq[2 * u], bq[2 * u + 1]);
                }
            }
        }
        __syncthreads();
    }
    /* acc[t]: c0,c1 = (W row g, x rows t*8 + 2q, +1); c2,c3 = (W row g + 8, same x rows) */
    const int g = lane >> 2, q2 = (lane & 3) * 2;
#pragma unroll
    for (int t = 0; t < NT; t++)
#pragma unroll
        for (int e = 0; e < 4; e++) {
            int r = t * 8 + q2 + (e & 1), n = n0 + warp * 16 + g + (e >> 1) * 8;
            if (r < R && n < N) {
                float *dst = out + (int64_t)r * ldo + n;
                if (atomic)
                    atomicAdd(dst, acc[t][e]);
                else
                    *dst = acc[t][e];
            }
        }
}

template <int RT, int NW>
static cudaError_t skinny_launch(float *out, int64_t ldo, const void *x, const void *w, int64_t N,
                                 int64_t K, int64_t R, int sm_count, cudaStream_t stream)
{
    constexpr int SK_N = 16 * NW;
    size_t smem = (size_t)SK_STAGES * (SK_N + RT) * SK_CH * sizeof(uint4);
    if (!out)
        return cudaFuncSetAttribute(skinny_kernel<RT, NW>,
                                    cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
    int nb = (int)((N + SK_N - 1) / SK_N), kt = (int)((K + SK_K - 1) / SK_K);
    /* enough blocks for two per SM, each with at least 4 k tiles */
    int split = (2 * sm_count + nb - 1) / nb;
    if (split > kt / 4)
        split = kt / 4;
    if (split < 1)
        split = 1;
    int kps = (kt + split - 1) / split * SK_K;
    split = (int)((K + kps - 1) / kps);
    if (split > 1) {
        cudaError_t e = cudaMemset2DAsync(out, (size_t)ldo * sizeof(float), 0,
                                          (size_t)N * sizeof(float), (size_t)R, stream);
        if (e != cudaSuccess)
            return e;
    }
    dim3 grid((unsigned)nb, (unsigned)split);
    skinny_kernel<RT, NW><<<grid, NW * 32, smem, stream>>>(out, ldo, (const __nv_bfloat16 *)x,
                                                           (const __nv_bfloat16 *)w, (int)N,
                                                           (int)K, (int)R, kps, split > 1);
    return cudaGetLastError();
}

extern "C" cudaError_t kl_gemm_skinny(float *out, int64_t ldo, const void *x16, const void *w,
                                      int64_t N, int64_t K, int64_t rows, int sm_count,
                                      cudaStream_t stream)
{
    if (rows < 1 || rows > KL_SKINNY_MAX_ROWS || K % 8 || N > 0x7fffffff || K > 0x7fffffff ||
        ((uintptr_t)x16 % 16) || ((uintptr_t)w % 16))
        return cudaErrorNotSupported;
    if (rows <= 8)
        return skinny_launch<8, 4>(out, ldo, x16, w, N, K, rows, sm_count, stream);
    if (rows <= 16)
        return skinny_launch<16, 4>(out, ldo, x16, w, N, K, rows, sm_count, stream);
    if (rows <= 32)
        return skinny_launch<32, 8>(out, ldo, x16, w, N, K, rows, sm_count, stream);
    if (rows <= 64)
        return skinny_launch<64, 8>(out, ldo, x16, w, N, K, rows, sm_count, stream);
    return skinny_launch<128, 8>(out, ldo, x16, w, N, K, rows, sm_count, stream);
}

extern "C" cudaError_t kl_gemm_skinny_prepare(void)
{
    cudaError_t e;
    if ((e = skinny_launch<8, 4>(NULL, 0, NULL, NULL, 0, 0, 0, 0, 0)) != cudaSuccess ||
        (e = skinny_launch<16, 4>(NULL, 0, NULL, NULL, 0, 0, 0, 0, 0)) != cudaSuccess ||
        (e = skinny_launch<32, 8>(NULL, 0, NULL, NULL, 0, 0, 0, 0, 0)) != cudaSuccess ||
        (e = skinny_launch<64, 8>(NULL, 0, NULL, NULL, 0, 0, 0, 0, 0)) != cudaSuccess)
        return e;
    return skinny_launch<128, 8>(NULL, 0, NULL, NULL, 0, 0, 0, 0, 0);
}
