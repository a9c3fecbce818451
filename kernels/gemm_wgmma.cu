/* gemm_wgmma.cu - out = X W^T for decode batches of up to 128 rows on Hopper's
 * warpgroup tensor instructions: X bf16 [R][K] (packed, the converted
 * activations), W bf16 [N][K], out fp32 (row stride ldo), zeroed by the
 * launcher and accumulated with fp32 reductions.
 *
 * Two numbers: W is N*K*2 bytes read once, 2*R*N*K FLOPs; at R ~ 100 (the
 * memory-full batch at 16K context) that is ~100 FLOP/byte, half the H200's
 * balance point, so W must still stream at the copy bandwidth, while the
 * tensor work is ~70% of the stream time. gemm_skinny.cu (mma.sync, every warp
 * re-reading the whole X tile through ldmatrix, one block per SM) reached
 * ~1 TB/s there (event profile): bound by shared-memory reads and issue slots.
 *
 * Here a block (two warpgroups) owns 128 W rows and the padded X tile (BN rows);
 * tiles of 64 k (128-byte rows, the 128-byte swizzle the tensor cores read
 * directly) stream in with cp.async, S stages deep. Each warpgroup multiplies its
 * 64 W rows by the X tile with wgmma m64nBNk16 (both operands read from shared
 * memory by the tensor cores: no ldmatrix, no register traffic for operands).
 * The grid is one block per SM and the (W tile, k tile) units are divided evenly
 * between the blocks (stream-K): a block walks its contiguous range of units
 * and adds its partial sums into `out` whenever it leaves a W tile, so no SM
 * idles in a last partial wave and no K split needs choosing. */
#include "tc.cuh"
#include "wgmma_gen.cuh"

#define WG_ROWS 128           /* W rows per block (2 warpgroups x 64) */
#define WG_K 64               /* k per tile: one 128-byte swizzle row */
#define WG_SMEM_MAX (200 * 1024)

/* chunk c (16 bytes) of row r at c ^ (r mod 8): the 128-byte swizzle pattern */
__device__ __forceinline__ int wg_swz(int r, int c) { return r * 8 + (c ^ (r & 7)); }

template <int BN, int S>
__global__ void __launch_bounds__(256, 1)
    gemm_wgmma_kernel(float *out, int64_t ldo, const __nv_bfloat16 *x,
                      const __nv_bfloat16 *w, int N, int K, int R, int kt, int units)
{
    extern __shared__ uint4 wg_raw[];
    /* descriptors address 1024-byte swizzle atoms: align the base */
    uint4 *sm = reinterpret_cast<uint4 *>(((uintptr_t)wg_raw + 1023) & ~(uintptr_t)1023);
    constexpr int WCH = WG_ROWS * 8, XCH = BN * 8; /* 16-byte chunks per tile */
    constexpr int STAGE = WCH + XCH;
    const int tid = threadIdx.x, wgi = tid >> 7;
    const int G = gridDim.x;
    const int u0 = (int)((int64_t)blockIdx.x * units / G);
    const int u1 = (int)((int64_t)(blockIdx.x + 1) * units / G);
    const int n_u = u1 - u0;

    auto load_w = [&](int i) {
        const int u = u0 + i, tile = u / kt, kb = (u - tile * kt) * WG_K, n0 = tile * WG_ROWS;
        uint4 *ws = sm + (size_t)(i % S) * STAGE;
#pragma unroll
        for (int j = tid; j < WCH; j += 256) {
            const int r = j >> 3, c = j & 7, k = kb + c * 8;
            const bool ok = n0 + r < N && k < K;
            kl_cp16(ws + wg_swz(r, c), ok ? w + (int64_t)(n0 + r) * K + k : w, ok ? 16 : 0);
        }
    };
    auto load_x = [&](int i) {
        const int u = u0 + i, kb = (u % kt) * WG_K;
        uint4 *xs = sm + (size_t)(i % S) * STAGE + WCH;
#pragma unroll
        for (int j = tid; j < XCH; j += 256) {
            const int r = j >> 3, c = j & 7, k = kb + c * 8;
            const bool ok = r < R && k < K;
            kl_cp16(xs + wg_swz(r, c), ok ? x + (int64_t)r * K + k : x, ok ? 16 : 0);
        }
    };

    /* W of the first stages before the dependency wait (weights are never written) */
#pragma unroll
    for (int i = 0; i < S - 1; i++)
        if (i < n_u)
            load_w(i);
    kl_pdl_wait();
    kl_pdl_trigger();
#pragma unroll
    for (int i = 0; i < S - 1; i++) {
        if (i < n_u)
            load_x(i);
        kl_cp_commit();
    }

    float d[BN / 2];
#pragma unroll
    for (int i = 0; i < BN / 2; i++)
        d[i] = 0.0f;
    const int lw = (tid & 127) >> 5, lane = tid & 31, g = lane >> 2, t4 = lane & 3;

    for (int i = 0; i < n_u; i++) {
        kl_cp_wait<S - 2>();
        /* the tensor cores read through the async proxy */
        kl_proxy_fence();
        __syncthreads();
        /* stage (i-1) % S was read by the previous wgmma, finished before the barrier */
        if (i + S - 1 < n_u) {
            load_w(i + S - 1);
            load_x(i + S - 1);
        }
        kl_cp_commit();
        const uint4 *ws = sm + (size_t)(i % S) * STAGE;
        const uint64_t da = kl_wg_desc(ws + wgi * 64 * 8), db = kl_wg_desc(ws + WCH);
        kl_wg_fence();
#pragma unroll
        for (int ks = 0; ks < WG_K / 16; ks++) /* +32 bytes per k16 step: +2 in the descriptor */
            kl_wgmma<BN>::run(d, da + 2 * ks, db + 2 * ks);
        kl_wg_commit();
        kl_wg_wait<0>();

        const int u = u0 + i, tile = u / kt;
        if (u - tile * kt == kt - 1 || i == n_u - 1) {
            /* leaving this W tile: add the partial sums into out */
            const int nb = tile * WG_ROWS + wgi * 64 + lw * 16 + g;
#pragma unroll
            for (int j = 0; j < BN / 8; j++)
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    const int r = j * 8 + 2 * t4 + (e & 1), n = nb + (e >> 1) * 8;
                    if (r < R && n < N)
                        atomicAdd(out + (int64_t)r * ldo + n, d[j * 4 + e]);
                    d[j * 4 + e] = 0.0f;
                }
        }
    }
    kl_cp_wait<0>();
}

template <int BN, int S>
static cudaError_t wg_launch_s(float *out, int64_t ldo, const void *x, const void *w, int64_t N,
                               int64_t K, int64_t R, int sm_count, cudaStream_t stream)
{
    const size_t smem = (size_t)S * (WG_ROWS + BN) * WG_K * 2 + 1024;
    if (!out)
        return cudaFuncSetAttribute(gemm_wgmma_kernel<BN, S>,
                                    cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
    int kt = (int)((K + WG_K - 1) / WG_K), nb = (int)((N + WG_ROWS - 1) / WG_ROWS);
    int64_t units = (int64_t)kt * nb;
    if (units > 0x7fffffff)
        return cudaErrorNotSupported;
    int grid = (int)(units < sm_count ? units : sm_count);
    cudaError_t e = cudaMemset2DAsync(out, (size_t)ldo * sizeof(float), 0,
                                      (size_t)N * sizeof(float), (size_t)R, stream);
    if (e != cudaSuccess)
        return e;
    return kl_launch(gemm_wgmma_kernel<BN, S>, dim3((unsigned)grid), dim3(256), smem, stream, out,
                     ldo, (const __nv_bfloat16 *)x, (const __nv_bfloat16 *)w, (int)N, (int)K,
                     (int)R, kt, (int)units);
}

/* stages: as many as fit in WG_SMEM_MAX, at most 8 */
#define WG_STAGES(BN) ((int)(WG_SMEM_MAX / ((WG_ROWS + (BN)) * WG_K * 2)) > 8 \
                           ? 8                                                 \
                           : (int)(WG_SMEM_MAX / ((WG_ROWS + (BN)) * WG_K * 2)))

template <int BN>
static cudaError_t wg_launch(float *out, int64_t ldo, const void *x, const void *w, int64_t N,
                             int64_t K, int64_t R, int sm_count, cudaStream_t stream)
{
    return wg_launch_s<BN, WG_STAGES(BN)>(out, ldo, x, w, N, K, R, sm_count, stream);
}

#define WG_CASES(X) X(16) X(24) X(32) X(40) X(48) X(56) X(64) X(72) X(80) X(88) X(96) X(104) \
    X(112) X(120) X(128)

extern "C" int kl_gemm_wgmma_available(void)
{
#ifdef KL_WGMMA
    return 1;
#else
    return 0;
#endif
}

extern "C" cudaError_t kl_gemm_wgmma(float *out, int64_t ldo, const void *x16, const void *w,
                                     int64_t N, int64_t K, int64_t rows, int sm_count,
                                     cudaStream_t stream)
{
    if (!kl_gemm_wgmma_available() || rows < 1 || rows > 128 || K % 8 || N > 0x7fffffff ||
        K > 0x7fffffff || ((uintptr_t)x16 % 16) || ((uintptr_t)w % 16))
        return cudaErrorNotSupported;
    const int bn = (int)((rows + 7) / 8 * 8) < 16 ? 16 : (int)((rows + 7) / 8 * 8);
    switch (bn) {
#define WG_CASE(B) \
    case B: return wg_launch<B>(out, ldo, x16, w, N, K, rows, sm_count, stream);
        WG_CASES(WG_CASE)
#undef WG_CASE
    default: return cudaErrorNotSupported;
    }
}

extern "C" cudaError_t kl_gemm_wgmma_prepare(void)
{
    if (!kl_gemm_wgmma_available())
        return cudaSuccess;
    cudaError_t e = cudaSuccess;
#define WG_PREP(B)                                                            \
    if (e == cudaSuccess)                                                     \
        e = wg_launch<B>(NULL, 0, NULL, NULL, 0, 0, 0, 0, 0);
    WG_CASES(WG_PREP)
#undef WG_PREP
    return e;
}
