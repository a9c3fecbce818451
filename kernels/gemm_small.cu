/* gemm_small.cu - out = X W^T for small decode batches (R <= 32 rows): W bf16
 * [N][K], X fp32 (the activations as they are) or bf16 (a norm's copy), out
 * fp32 (row stride ldo).
 *
 * Two numbers: W is N*K*2 bytes read once, 2*R*N*K FLOPs (<= 32 FLOP/byte):
 * only the stream of W matters. The shared-memory pipeline of gemm_skinny.cu
 * reached 2.8 TB/s at batch 1 (event profile, H200), with a memset and fp32
 * atomics per split-K call. Here W goes straight from global memory into the
 * registers that are the mma A operand: thread (g, t) of a warp loads 16 bytes
 * of W rows g and g+8 at k = 8t..8t+7 of a 32-wide chunk; the 8 values are
 * spread over two m16n8k16 products by a fixed permutation of k, and X is
 * loaded with the same permutation (16 bytes of X row g at the same k), so
 * no shuffle or shared memory is needed. Each warp streams a K-slice of 16 W
 * rows with two groups of GS_U chunks in flight; the 8 warps of a block add
 * their slices in shared memory, so there is no split-K across blocks, no
 * atomics and no memset. W loads are issued before the programmatic-launch
 * wait (nothing writes weights), so the stream starts while the previous
 * kernel drains.
 *
 * X is fp32 or bf16 rows. (A SwiGLU fused into the X loads of the down
 * projection made it 2.5x slower: every block recomputed silu for all of K on
 * the 4 of 32 lanes that hold X, so the warps became issue-bound.) */
#include "tc.cuh"

/* KS warps per block: K-slices of the same 16 W rows (8 by default; other values
 * for the tuning runs of test_kernels, kl_small_variant) */

__device__ __forceinline__ uint4 gs_ldw(const __nv_bfloat16 *p)
{
    uint4 v;
    asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
                 : "l"(p));
    return v;
}

enum { GS_X_F32 = 0, GS_X_BF16 };

/* X[r][k..k+7] as 4 bf16 pairs */
template <int XM>
__device__ __forceinline__ uint4 gs_ldx(const void *x, int64_t ldx, int r, int k)
{
    if (XM == GS_X_BF16)
        return __ldg(reinterpret_cast<const uint4 *>(
            reinterpret_cast<const __nv_bfloat16 *>(x) + (int64_t)r * ldx + k));
    const float *p = reinterpret_cast<const float *>(x) + (int64_t)r * ldx + k;
    return kl_pack_bf16x8(__ldg(reinterpret_cast<const float4 *>(p)),
                          __ldg(reinterpret_cast<const float4 *>(p) + 1));
}

/* the A fragment arrives as four loose registers (straight from the W loads) */
__device__ __forceinline__ void gs_mma(float *d, uint32_t a0, uint32_t a1, uint32_t a2,
                                       uint32_t a3, uint32_t b0, uint32_t b1)
{
    const uint32_t a[4] = {a0, a1, a2, a3};
    kl_mma_bf16(d, a, b0, b1);
}

/* NT n8 tiles of X rows (R <= 8 NT); U chunks of 32 k per load group. */
template <int NT, int U, int XM, int KS>
__global__ void __launch_bounds__(KS * 32, NT == 1 ? 16 / KS : 1)
    gemm_small_kernel(float *out, int64_t ldo, const void *x, int64_t ldx,
                      const __nv_bfloat16 *w, int N, int K, int R)
{
    __shared__ float red[KS][NT * 4][32];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    const int n0 = blockIdx.x * 16;
    const int nc = (K + 31) >> 5; /* 32-k chunks */
    const int per = (nc + KS - 1) / KS;
    const int c0 = warp * per, c1 = c0 + per < nc ? c0 + per : nc;
    /* rows past N read row N-1 (in bounds); their sums are never stored */
    const int ra = n0 + g < N ? n0 + g : N - 1, rb = n0 + g + 8 < N ? n0 + g + 8 : N - 1;
    const __nv_bfloat16 *wa = w + (int64_t)ra * K + 8 * t, *wb = w + (int64_t)rb * K + 8 * t;

    /* two register buffers (A, B) of U chunks each: while one is multiplied the
     * other is in flight, and a buffer is reloaded as soon as it is consumed */
    uint4 aw[U][2], ax[U][NT], bw[U][2], bx[U][NT];
    auto load = [&](uint4(&lw)[U][2], uint4(&lx)[U][NT], int c, bool with_x) {
#pragma unroll
        for (int u = 0; u < U; u++) {
            const int k = (c + u) * 32 + 8 * t;
            const bool ok = c + u < c1 && k < K;
            lw[u][0] = ok ? gs_ldw(wa + (c + u) * 32) : make_uint4(0, 0, 0, 0);
            lw[u][1] = ok ? gs_ldw(wb + (c + u) * 32) : make_uint4(0, 0, 0, 0);
            if (with_x)
#pragma unroll
                for (int nt = 0; nt < NT; nt++) {
                    const int r = nt * 8 + g;
                    lx[u][nt] = ok && r < R ? gs_ldx<XM>(x, ldx, r, k)
                                            : make_uint4(0, 0, 0, 0);
                }
        }
    };
    auto load_x = [&](uint4(&lx)[U][NT], int c) {
#pragma unroll
        for (int u = 0; u < U; u++)
#pragma unroll
            for (int nt = 0; nt < NT; nt++) {
                const int k = (c + u) * 32 + 8 * t, r = nt * 8 + g;
                lx[u][nt] = c + u < c1 && k < K && r < R ? gs_ldx<XM>(x, ldx, r, k)
                                                         : make_uint4(0, 0, 0, 0);
            }
    };
    float acc[NT][4];
#pragma unroll
    for (int nt = 0; nt < NT; nt++)
        acc[nt][0] = acc[nt][1] = acc[nt][2] = acc[nt][3] = 0.0f;
    auto mul = [&](const uint4(&mw)[U][2], const uint4(&mx)[U][NT]) {
#pragma unroll
        for (int u = 0; u < U; u++)
#pragma unroll
            for (int nt = 0; nt < NT; nt++) {
                /* k permutation: mma 1 takes k 8t+0..3, mma 2 k 8t+4..7 (A and B alike) */
                gs_mma(acc[nt], mw[u][0].x, mw[u][1].x, mw[u][0].y, mw[u][1].y, mx[u][nt].x,
                       mx[u][nt].y);
                gs_mma(acc[nt], mw[u][0].z, mw[u][1].z, mw[u][0].w, mw[u][1].w, mx[u][nt].z,
                       mx[u][nt].w);
            }
    };

    load(aw, ax, c0, false);
    kl_pdl_wait(); /* X and out belong to earlier kernels */
    kl_pdl_trigger();
    load_x(ax, c0);
    for (int c = c0; c < c1; c += 2 * U) {
        if (c + U < c1)
            load(bw, bx, c + U, true);
        mul(aw, ax);
        if (c + 2 * U < c1)
            load(aw, ax, c + 2 * U, true);
        if (c + U < c1)
            mul(bw, bx);
    }

    /* acc[nt]: e0,e1 = (W row g, X rows nt*8 + 2t, +1); e2,e3 = W row g + 8 */
#pragma unroll
    for (int nt = 0; nt < NT; nt++)
#pragma unroll
        for (int e = 0; e < 4; e++)
            red[warp][nt * 4 + e][lane] = acc[nt][e];
    __syncthreads();
    for (int i = threadIdx.x; i < NT * 4 * 32; i += KS * 32) {
        const int slot = i >> 5, ln = i & 31, nt = slot >> 2, e = slot & 3;
        const int r = nt * 8 + 2 * (ln & 3) + (e & 1), n = n0 + (ln >> 2) + (e >> 1) * 8;
        float s = 0.0f;
#pragma unroll
        for (int k = 0; k < KS; k++)
            s += red[k][slot][ln];
        if (r < R && n < N)
            out[(int64_t)r * ldo + n] = s;
    }
}

template <int NT, int U, int XM, int KS = 8>
static cudaError_t small_launch(float *out, int64_t ldo, const void *x, int64_t ldx,
                                const void *w, int64_t N, int64_t K, int64_t R, cudaStream_t stream)
{
    unsigned nb = (unsigned)((N + 15) / 16);
    return kl_launch(gemm_small_kernel<NT, U, XM, KS>, dim3(nb), dim3(KS * 32), 0, stream, out,
                     ldo, x, ldx, (const __nv_bfloat16 *)w, (int)N, (int)K, (int)R);
}

extern "C" {
int kl_small_variant = 0;
}

template <int XM>
static cudaError_t small_rows(float *out, int64_t ldo, const void *x, int64_t ldx, const void *w,
                             int64_t N, int64_t K, int64_t R, cudaStream_t stream)
{
    if (R <= 8)
        switch (kl_small_variant) {
        case 1: return small_launch<1, 4, XM, 4>(out, ldo, x, ldx, w, N, K, R, stream);
        case 2: return small_launch<1, 4, XM, 8>(out, ldo, x, ldx, w, N, K, R, stream);
        case 3: return small_launch<1, 4, XM, 16>(out, ldo, x, ldx, w, N, K, R, stream);
        case 4: return small_launch<1, 2, XM, 16>(out, ldo, x, ldx, w, N, K, R, stream);
        case 5: return small_launch<1, 2, XM, 4>(out, ldo, x, ldx, w, N, K, R, stream);
        case 6: return small_launch<1, 1, XM, 8>(out, ldo, x, ldx, w, N, K, R, stream);
        default: return small_launch<1, 2, XM, 8>(out, ldo, x, ldx, w, N, K, R, stream);
        }
    if (R <= 16)
        return small_launch<2, 4, XM>(out, ldo, x, ldx, w, N, K, R, stream);
    return small_launch<4, 2, XM>(out, ldo, x, ldx, w, N, K, R, stream);
}

static bool small_ok(int64_t rows, int64_t N, int64_t K, const void *w, const void *x)
{
    return rows >= 1 && rows <= KL_SMALL_MAX_ROWS && N >= 1 && K >= 8 && K % 8 == 0 &&
           N <= 0x7fffffff && K <= 0x7fffffff && ((uintptr_t)w % 16) == 0 &&
           ((uintptr_t)x % 16) == 0;
}

extern "C" cudaError_t kl_gemm_small(float *out, int64_t ldo, const void *x, int x_bf16,
                                     int64_t ldx, const void *w, int64_t N, int64_t K,
                                     int64_t rows, cudaStream_t stream)
{
    if (!small_ok(rows, N, K, w, x) || ldx % (x_bf16 ? 8 : 4))
        return cudaErrorNotSupported;
    if (x_bf16)
        return small_rows<GS_X_BF16>(out, ldo, x, ldx, w, N, K, rows, stream);
    return small_rows<GS_X_F32>(out, ldo, x, ldx, w, N, K, rows, stream);
}
