/* attention_wgmma.cu - prefill flash attention on Hopper's warpgroup tensor
 * instructions (wgmma), bf16 paged KV, D = 128 (spec MODEL.md §5-6).
 *
 * Why: the mma.sync kernel (attention_mma.cu, fa2) holds 32 query rows per warp
 * in registers (O 128 + S 64 floats per thread), runs at 255 registers with
 * spills and reaches ~250 TFLOP/s. A warpgroup (4 warps) multiplies 64 rows at
 * once with wgmma, reading Q and K (and V) straight from shared memory: per
 * thread O is 64 floats and S KT/2, and no ldmatrix.
 *
 * A block (2 warpgroups, 256 threads) takes 128 query rows of one sequence and
 * one head; warpgroup w owns rows 64w..64w+63. Q (converted to bf16) and K/V
 * tiles of KT keys (cp.async through the block table; 3 stages, 2 in the
 * variant without overlap) live in shared memory as two 64-wide column halves
 * with 128-byte rows in the 128-byte swizzle (chunk c of row r at c ^ (r mod 8)),
 * the layout wgmma reads:
 *   S = Q K^T  : A = Q and B = K, both K-major (d contiguous);
 *   O += P V   : A = P from registers (the softmax of S rounded to bf16: the
 *                accumulator layout is the A fragment layout), B = V, MN-major
 *                (keys are the k dimension, d contiguous).
 * Default order (PIPE, FlashAttention-3's intra-warpgroup overlap): S(kt+1) and
 * P(kt) V(kt) are issued together and the softmax of tile kt+1 runs while the
 * tensor cores work. Masking, online softmax and the output are those of fa2
 * (same arithmetic up to the order of fp32 sums inside the tensor cores).
 *
 * Two numbers (H100, 8B shape, causal 32K in 8192-row calls,
 * `cuda_test_attention --bench`): fa2 253 TFLOP/s; this kernel without overlap
 * 346, with it 376 (dense bf16 peak ~990: softmax, masking and the K/V copies
 * still share the warps' issue slots with nothing to hide them but the other
 * warpgroup). */
#include "kernels.h"
#include "tc.cuh"
#include "wgmma_gen.cuh"

#define F3_ROWS 128 /* query rows per block */
#define F3_D 128

/* 16-byte chunk c (0..15) of row r in a tile of `rows` rows: column half c / 8 */
__device__ __forceinline__ int f3_idx(int rows, int r, int c)
{
    return (c >> 3) * rows * 8 + r * 8 + ((c & 7) ^ (r & 7));
}

/* MN-major, 128-byte swizzle: 64-column halves `half_bytes` apart (LBO), 8-row
 * groups of the k dimension 1024 bytes apart (SBO) */
__device__ __forceinline__ uint64_t f3_desc_mn(const void *p, uint32_t half_bytes)
{
    return ((uint64_t)(kl_smem(p) & 0x3FFFF) >> 4) | ((uint64_t)(half_bytes >> 4) << 16) |
           ((uint64_t)(1024 >> 4) << 32) | (1ull << 62);
}

/* The compiler sees a wgmma's registers as used at issue; these keep them in
 * place (and unread) until the wait that ends it. */
__device__ __forceinline__ void f3_keep(float &x) { asm volatile("" : "+f"(x)::"memory"); }
__device__ __forceinline__ void f3_keep(uint32_t &x) { asm volatile("" : "+r"(x)::"memory"); }

/* 2^x on the SFU without exp2f's denormal fix-up (a probability below 2^-126
 * is zero for the softmax anyway) */
__device__ __forceinline__ float f3_exp2(float x)
{
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
    return y;
}

template <int KT, bool PIPE>
__global__ void __launch_bounds__(256, 1)
    fa3_kernel(float *out, const float *q, int64_t ldq, const __nv_bfloat16 *kp,
               const __nv_bfloat16 *vp, int64_t P, int p_shift, int64_t Hq, int64_t Hkv,
               float scale_log2, int64_t window, kl_batch b)
{
    constexpr int NST = PIPE ? 3 : 2; /* K/V stages */
    extern __shared__ uint4 f3_raw[];
    /* descriptors address 1024-byte swizzle atoms: align the base */
    uint4 *Qs = reinterpret_cast<uint4 *>(((uintptr_t)f3_raw + 1023) & ~(uintptr_t)1023);
    uint4 *KV = Qs + F3_ROWS * 16; /* stage st: K at KV + st * 2 * KT * 16, V after it */
    const int tid = threadIdx.x, wg = tid >> 7, lw = (tid >> 5) & 3, lane = tid & 31;
    const int g = lane >> 2, t4 = lane & 3;
    const int tile = b.n_tiles - 1 - (int)blockIdx.x; /* most keys first */
    const int64_t h = blockIdx.y, kvh = h / (Hq / Hkv);
    const int si = b.tiles[2 * tile], r0 = b.tiles[2 * tile + 1];
    const kl_seq sq = b.seq[si];
    const int nrows = (int)(sq.n_tok - r0 < F3_ROWS ? sq.n_tok - r0 : F3_ROWS);
    if (nrows <= 0)
        return;

    for (int i = tid; i < F3_ROWS * 16; i += 256) {
        const int r = i >> 4, c = i & 15;
        uint4 v = make_uint4(0, 0, 0, 0);
        if (r < nrows) {
            const float4 *src = reinterpret_cast<const float4 *>(
                q + (sq.tok_start + r0 + r) * ldq + h * F3_D + c * 8);
            v = kl_pack_bf16x8(src[0], src[1]);
        }
        Qs[f3_idx(F3_ROWS, r, c)] = v;
    }

    const int32_t q_first = (int32_t)(sq.kv_start + r0), q_last = q_first + nrows - 1;
    const int32_t lo = window > 0 && q_first - window + 1 > 0 ? q_first - (int32_t)window + 1 : 0;
    const int32_t hi = q_last + 1;
    const int32_t hide_lo = (int32_t)sq.hide_lo, hide_hi = (int32_t)sq.hide_hi;
    const int32_t *btab = b.blocks + sq.blocks_off;
    const int32_t pmask = p_shift >= 0 ? (1 << p_shift) - 1 : 0;
    const int n_kt = (int)((hi - lo + KT - 1) / KT);
    const int64_t row_elems = Hkv * F3_D;
    /* this warpgroup's rows */
    const int wrows = nrows - wg * 64 < 64 ? nrows - wg * 64 : 64;
    const int32_t wq_first = q_first + wg * 64, wq_last = wq_first + (wrows > 0 ? wrows : 1) - 1;

    /* K/V loads: 16 threads per key row (one 16-byte chunk each, so a warp's
     * copy covers two whole 256-byte rows: coalesced), KT / 16 rows per thread.
     * Per row: one block-table lookup and one 64-bit product; the shared-memory
     * offsets are tile-invariant and computed once. (Two earlier versions: the
     * generic loop spent ~85 instructions per row on index math, ~40% of all
     * issue slots; 8 chunks of one row per thread halved the instructions but
     * split every 32-byte sector over two requests and throttled the LSU.) */
    constexpr int RPT = KT / 16; /* rows per thread */
    const int lc = tid & 15, lr0 = tid >> 4;
    uint32_t so[RPT];
#pragma unroll
    for (int i = 0; i < RPT; i++)
        so[i] = (uint32_t)f3_idx(KT, lr0 + 16 * i, lc) * 16u;
    const uint32_t kv_sm = kl_smem(KV);
    const int64_t col = kvh * F3_D + lc * 8;
    auto load = [&](int kt, int st) {
        const int32_t base = lo + kt * KT + lr0;
        const uint32_t kd = kv_sm + (uint32_t)st * (2u * KT * 256u), vd = kd + KT * 256u;
        int64_t off[RPT];
        if (p_shift >= 0) {
            int32_t page[RPT];
#pragma unroll
            for (int i = 0; i < RPT; i++) {
                const int32_t j = base + 16 * i;
                page[i] = j < hi ? btab[j >> p_shift] : -1;
            }
#pragma unroll
            for (int i = 0; i < RPT; i++) {
                const int32_t j = base + 16 * i;
                off[i] = page[i] < 0 ? -1
                                     : ((int64_t)page[i] * P + (j & pmask)) * row_elems + col;
            }
        } else {
#pragma unroll
            for (int i = 0; i < RPT; i++) {
                const int32_t j = base + 16 * i;
                off[i] = j < hi ? ((int64_t)btab[j / P] * P + j % P) * row_elems + col : -1;
            }
        }
#pragma unroll
        for (int i = 0; i < RPT; i++) {
            const int sz = off[i] < 0 ? 0 : 16;
            const int64_t o2 = off[i] < 0 ? 0 : off[i];
            kl_cp16_at(kd + so[i], kp + o2, sz);
            kl_cp16_at(vd + so[i], vp + o2, sz);
        }
        kl_cp_commit();
    };
    if (n_kt > 0)
        load(0, 0);

    float o[64];
#pragma unroll
    for (int i = 0; i < 64; i++)
        o[i] = 0.0f;
    float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};
    /* the two rows of this thread (within the tile) and their first visible key */
    int32_t qs[2], qlo[2];
#pragma unroll
    for (int k = 0; k < 2; k++) {
        const int rl = wg * 64 + lw * 16 + g + 8 * k;
        qs[k] = rl < nrows ? q_first + rl : -1;
        qlo[k] = window > 0 && qs[k] - window + 1 > 0 ? qs[k] - (int32_t)window + 1 : 0;
    }
    const uint64_t dq = kl_wg_desc(Qs + wg * 64 * 8);

    /* a warpgroup skips key tiles after its last row or before its window */
    auto skip_of = [&](int kt) {
        const int32_t kbase = lo + kt * KT;
        return wrows <= 0 || kbase > wq_last ||
               (window > 0 && kbase + KT - 1 < wq_first - (int32_t)window + 1);
    };
    auto tile_k = [&](int kt) { return KV + (size_t)(kt % NST) * 2 * KT * 16; };
    /* S(kt) = Q K(kt)^T into sc (the first k step overwrites: no zeroing, which
     * would be a non-wgmma definition of accumulators); issued, not waited for */
    auto issue_s = [&](float(&sc)[KT / 2], int kt) {
        const uint64_t dk = kl_wg_desc(tile_k(kt));
#pragma unroll
        for (int kk = 0; kk < 8; kk++) { /* d in steps of 16: +32 bytes in a half */
            const uint64_t half_q = (uint64_t)((kk >> 2) * F3_ROWS * 128 >> 4);
            const uint64_t half_k = (uint64_t)((kk >> 2) * KT * 128 >> 4);
            kl_wgmma<KT>::run(sc, dq + half_q + 2 * (kk & 3), dk + half_k + 2 * (kk & 3),
                              kk > 0);
        }
    };
    /* O += P V(kt), issued */
    auto issue_pv = [&](uint32_t(&pa)[KT / 16][4], int kt) {
        const uint4 *vs = tile_k(kt) + KT * 16;
#pragma unroll
        for (int kk = 0; kk < KT / 16; kk++) /* 16 keys: 2 groups of 8 rows, 2048 bytes */
            kl_wgmma_rs<F3_D>::run(o, pa[kk], f3_desc_mn(vs + kk * 16 * 8, KT * 128));
    };
    /* mask and online softmax of tile kt's scores sc (read only: they may belong
     * to a wgmma stage still open): P (bf16, A-fragment layout) into pa, the
     * factor for O into corr; updates m and l */
    auto softmax = [&](const float(&sc)[KT / 2], int kt, uint32_t(&pa)[KT / 16][4],
                       float(&corr)[2]) {
        const int32_t kbase = lo + kt * KT;
        const bool whole = wrows == 64 && kbase + KT - 1 <= wq_first &&
                           (window <= 0 || kbase >= wq_last - (int32_t)window + 1) &&
                           (kbase + KT <= hide_lo || kbase >= hide_hi);
        auto vis = [&](int j, int e) { /* score j*4+e, or -inf where masked */
            const int k = e >> 1;
            const int32_t key = kbase + j * 8 + 2 * t4 + (e & 1);
            const bool ok = key >= qlo[k] && key <= qs[k] && !(key >= hide_lo && key < hide_hi);
            return ok ? sc[j * 4 + e] : -INFINITY;
        };
        /* raw scores (scale_log2 > 0 keeps the max): the scale is folded into
         * the exponent's FFMA. Separate loops for whole and masked tiles: the
         * compiler does not hoist `whole` out of an unrolled loop (a branch per
         * score cost ~40% of the issue slots). */
        float mx[2] = {-INFINITY, -INFINITY};
        if (whole) {
#pragma unroll
            for (int j = 0; j < KT / 8; j++)
#pragma unroll
                for (int e = 0; e < 4; e++)
                    mx[e >> 1] = fmaxf(mx[e >> 1], sc[j * 4 + e]);
        } else {
#pragma unroll
            for (int j = 0; j < KT / 8; j++)
#pragma unroll
                for (int e = 0; e < 4; e++)
                    mx[e >> 1] = fmaxf(mx[e >> 1], vis(j, e));
        }
        float mu[2];
#pragma unroll
        for (int k = 0; k < 2; k++) {
            mx[k] = fmaxf(mx[k], __shfl_xor_sync(0xffffffffu, mx[k], 1));
            mx[k] = fmaxf(mx[k], __shfl_xor_sync(0xffffffffu, mx[k], 2));
            const float mn = fmaxf(m[k], mx[k]); /* running max, raw units */
            mu[k] = mn == -INFINITY ? 0.0f : mn * scale_log2;
            corr[k] = f3_exp2(m[k] * scale_log2 - mu[k]);
            m[k] = mn;
            l[k] *= corr[k];
        }
        auto put = [&](int j, float v0, float v1, float v2, float v3) {
            const float p0 = f3_exp2(fmaf(v0, scale_log2, -mu[0]));
            const float p1 = f3_exp2(fmaf(v1, scale_log2, -mu[0]));
            const float p2 = f3_exp2(fmaf(v2, scale_log2, -mu[1]));
            const float p3 = f3_exp2(fmaf(v3, scale_log2, -mu[1]));
            l[0] += p0 + p1;
            l[1] += p2 + p3;
            pa[j >> 1][(j & 1) * 2 + 0] = kl_pack_bf16(p0, p1);
            pa[j >> 1][(j & 1) * 2 + 1] = kl_pack_bf16(p2, p3);
        };
        if (whole) {
#pragma unroll
            for (int j = 0; j < KT / 8; j++)
                put(j, sc[j * 4], sc[j * 4 + 1], sc[j * 4 + 2], sc[j * 4 + 3]);
        } else {
#pragma unroll
            for (int j = 0; j < KT / 8; j++)
                put(j, vis(j, 0), vis(j, 1), vis(j, 2), vis(j, 3));
        }
    };
    auto rescale_o = [&](const float(&corr)[2]) {
#pragma unroll
        for (int j = 0; j < 16; j++) {
            o[j * 4 + 0] *= corr[0];
            o[j * 4 + 1] *= corr[0];
            o[j * 4 + 2] *= corr[1];
            o[j * 4 + 3] *= corr[1];
        }
    };
    auto keep_s = [&](float(&sc)[KT / 2]) {
#pragma unroll
        for (int i = 0; i < KT / 2; i++)
            f3_keep(sc[i]);
    };
    auto keep_o = [&](uint32_t(&pa)[KT / 16][4]) {
#pragma unroll
        for (int i = 0; i < 64; i++)
            f3_keep(o[i]);
#pragma unroll
        for (int kk = 0; kk < KT / 16; kk++)
#pragma unroll
            for (int i = 0; i < 4; i++)
                f3_keep(pa[kk][i]);
    };

    if (!PIPE) {
        for (int kt = 0; kt < n_kt; kt++) {
            if (kt + 1 < n_kt) {
                load(kt + 1, (kt + 1) % NST);
                kl_cp_wait<1>();
            } else {
                kl_cp_wait<0>();
            }
            /* the tensor cores read shared memory through the async proxy */
            kl_proxy_fence();
            __syncthreads();
            if (!skip_of(kt)) {
                float sc[KT / 2], corr[2];
                uint32_t pa[KT / 16][4];
                kl_wg_fence();
                issue_s(sc, kt);
                kl_wg_commit();
                kl_wg_wait<0>();
                keep_s(sc);
                softmax(sc, kt, pa, corr);
                rescale_o(corr);
                kl_wg_fence();
                issue_pv(pa, kt);
                kl_wg_commit();
                kl_wg_wait<0>();
                keep_o(pa);
            }
            __syncthreads(); /* the stage is loaded again next iteration */
        }
    } else {
        /* FlashAttention-3's order within a warpgroup: S(kt+1) and P(kt) V(kt)
         * are issued together, the softmax of tile kt+1 runs while P V is on the
         * tensor cores, and O is rescaled once that is done. Three stages: V(kt)
         * and K(kt+1) in use while kt+2 loads. */
        float sa[KT / 2], sb[KT / 2], corr[2];
        uint32_t pa[KT / 16][4], pb[KT / 16][4];
        if (n_kt > 1)
            load(1, 1);
        if (n_kt > 1)
            kl_cp_wait<1>(); /* tile 0 */
        else
            kl_cp_wait<0>();
        kl_proxy_fence();
        __syncthreads();
        if (n_kt > 0) {
            kl_wg_fence();
            issue_s(sa, 0);
            kl_wg_commit();
            kl_wg_wait<0>();
            keep_s(sa);
            softmax(sa, 0, pa, corr); /* O is zero: no rescale */
        }
        /* tile kt+1 landed; every warp is past step kt-1, so the stage of
         * tile kt-1 ((kt+2) mod 3) is free */
        auto sync_load = [&](int kt) {
            kl_cp_wait<0>();
            kl_proxy_fence();
            __syncthreads();
            if (kt + 2 < n_kt)
                load(kt + 2, (kt + 2) % NST);
        };
        /* P(kt) in pcur; S(kt+1) into snext, its P into pnext. The wgmma
         * sequence is the same on every path (no per-warpgroup skipping, the
         * last tile peeled off): ptxas serializes wgmma issued under divergent
         * branches (C7520) or whose group count it cannot follow (C7514). A
         * warpgroup's tiles outside its rows or window get zero weight. */
        auto step = [&](int kt, uint32_t(&pcur)[KT / 16][4], float(&snext)[KT / 2],
                        uint32_t(&pnext)[KT / 16][4]) {
            sync_load(kt);
            kl_wg_fence();
            issue_s(snext, kt + 1);
            kl_wg_commit();
            issue_pv(pcur, kt);
            kl_wg_commit();
            kl_wg_wait<1>();
            keep_s(snext);
            float cn[2];
            softmax(snext, kt + 1, pnext, cn);
            kl_wg_wait<0>();
            keep_o(pcur);
            rescale_o(cn);
        };
        auto last = [&](int kt, uint32_t(&pcur)[KT / 16][4]) {
            sync_load(kt);
            kl_wg_fence();
            issue_pv(pcur, kt);
            kl_wg_commit();
            kl_wg_wait<0>();
            keep_o(pcur);
        };
        int kt = 0;
        for (; kt + 2 < n_kt; kt += 2) {
            step(kt, pa, sb, pb);
            step(kt + 1, pb, sa, pa);
        }
        if (kt + 1 < n_kt) {
            step(kt, pa, sb, pb);
            last(kt + 1, pb);
        } else if (kt < n_kt) {
            last(kt, pa);
        }
    }

#pragma unroll
    for (int k = 0; k < 2; k++) {
        float lk = l[k];
        lk += __shfl_xor_sync(0xffffffffu, lk, 1);
        lk += __shfl_xor_sync(0xffffffffu, lk, 2);
        const int rl = wg * 64 + lw * 16 + g + 8 * k;
        if (rl >= nrows)
            continue;
        const float inv = lk > 0.0f ? 1.0f / lk : 0.0f;
        float *dst = out + (sq.tok_start + r0 + rl) * Hq * F3_D + h * F3_D + 2 * t4;
#pragma unroll
        for (int j = 0; j < 16; j++)
            *reinterpret_cast<float2 *>(dst + j * 8) =
                make_float2(o[j * 4 + 2 * k] * inv, o[j * 4 + 2 * k + 1] * inv);
    }
}

template <int KT, bool PIPE> static size_t f3_smem_bytes()
{
    return (size_t)(F3_ROWS + (PIPE ? 3 : 2) * 2 * KT) * F3_D * 2 + 1024;
}

template <int KT, bool PIPE>
static cudaError_t f3_launch(float *out, const float *q, int64_t ldq, const kl_kv *kv,
                             const kl_batch *b, const kl_mix *p, int64_t P, int p_shift,
                             cudaStream_t stream)
{
    static int attr_set = 0;
    if (!attr_set) {
        cudaError_t e = cudaFuncSetAttribute(fa3_kernel<KT, PIPE>,
                                             cudaFuncAttributeMaxDynamicSharedMemorySize,
                                             (int)f3_smem_bytes<KT, PIPE>());
        if (e != cudaSuccess)
            return e;
        attr_set = 1;
    }
    const float log2e = 1.4426950408889634f;
    dim3 grid((unsigned)b->n_tiles, (unsigned)p->n_heads);
    fa3_kernel<KT, PIPE><<<grid, 256, f3_smem_bytes<KT, PIPE>(), stream>>>(
        out, q, ldq, (const __nv_bfloat16 *)kv->k, (const __nv_bfloat16 *)kv->v, P, p_shift,
        p->n_heads, p->n_kv_heads, p->scale * log2e, p->window, *b);
    return cudaGetLastError();
}

extern "C" {
int kl_fa3_variant = 0;
}

extern "C" cudaError_t kl_attn_prefill_wgmma(float *out, const float *q, int64_t ldq,
                                             const kl_kv *kv, const kl_batch *b,
                                             const kl_mix *p, cudaStream_t stream)
{
#ifndef KL_WGMMA
    (void)out, (void)q, (void)ldq, (void)kv, (void)b, (void)p, (void)stream;
    return cudaErrorNotSupported;
#else
    /* scale > 0: the running max is kept on unscaled scores */
    if (kv->dtype != KL_BF16 || p->head_dim != F3_D || ldq % 4 || ((uintptr_t)q % 16) ||
        p->n_kv_heads <= 0 || p->n_heads % p->n_kv_heads || !(p->scale > 0.0f))
        return cudaErrorNotSupported;
    if (b->n_tiles <= 0)
        return cudaSuccess;
    const int64_t P = kv->page_tokens;
    int p_shift = -1;
    if (P > 0 && !(P & (P - 1)))
        for (p_shift = 0; (1ll << p_shift) < P; p_shift++)
            ;
    switch (kl_fa3_variant) {
    case 1: return f3_launch<128, false>(out, q, ldq, kv, b, p, P, p_shift, stream);
    case 2: return f3_launch<64, true>(out, q, ldq, kv, b, p, P, p_shift, stream);
    case 3: return f3_launch<64, false>(out, q, ldq, kv, b, p, P, p_shift, stream);
    default: return f3_launch<128, true>(out, q, ldq, kv, b, p, P, p_shift, stream);
    }
#endif
}
