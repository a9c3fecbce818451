/* attention.cu - paged-KV attention (spec MODEL.md §5-6): the KV append, the
 * decode kernel (one query per sequence, split over the KV range, then a
 * combine), and a plain prefill kernel for any KV dtype and head dim (the fp32
 * reference path; bf16 prefill at D = 128 goes to attention_mma.cu).
 *
 * Visibility of a query at slot q: keys [lo, q] with lo = q - window + 1 for SWA
 * (0 otherwise), minus the hidden range [hide_lo, hide_hi) of the sequence.
 *
 * Decode, two numbers: a step reads every visible K and V row once
 * (2 * Hkv * D * bytes per token and layer) and does 4 * Hq * D FLOPs per token,
 * i.e. G = Hq/Hkv FLOP per byte (bf16): memory-bound, so the kernel only has to
 * keep enough 16-byte loads in flight. LG = D/8 lanes share one token row (each
 * lane 8 elements, one 16-byte load for bf16), so a warp reads 32/LG rows at a
 * time, coalesced; the G query heads of the KV head are all served by that one
 * read (GQA costs no extra bytes). */
#include <float.h>
#include <string.h>

#include "tc.cuh"

/* ------------------------------------------------------------------ append */

template <typename T>
__global__ void kv_append_kernel(T *kp, T *vp, const float *k, const float *v, int64_t ldk,
                                 int64_t P, int64_t Hkv, int64_t D, kl_batch b)
{
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    int64_t per_row = Hkv * D;
    if (i >= b.n_tok * per_row)
        return;
    int64_t row = i / per_row, hd = i - row * per_row;
    const kl_seq sq = b.seq[b.row_seq[row]];
    int64_t slot = sq.kv_start + (row - sq.tok_start);
    int64_t page = b.blocks[sq.blocks_off + slot / P];
    int64_t dst = (page * P + slot % P) * per_row + hd;
    kp[dst] = kl_from_f32<T>(k[row * ldk + hd]);
    vp[dst] = kl_from_f32<T>(v[row * ldk + hd]);
}

/* ------------------------------------------------------------------ helpers */

/* 8 consecutive elements at p (16-byte aligned for 2-byte types) to fp32. */
template <typename T> __device__ __forceinline__ void load8(const T *p, float *f);
template <> __device__ __forceinline__ void load8<__nv_bfloat16>(const __nv_bfloat16 *p, float *f)
{
    kl_unpack8<__nv_bfloat16>(*reinterpret_cast<const uint4 *>(p), f);
}
template <> __device__ __forceinline__ void load8<__half>(const __half *p, float *f)
{
    kl_unpack8<__half>(*reinterpret_cast<const uint4 *>(p), f);
}
template <> __device__ __forceinline__ void load8<float>(const float *p, float *f)
{
    float4 a = reinterpret_cast<const float4 *>(p)[0], b = reinterpret_cast<const float4 *>(p)[1];
    f[0] = a.x; f[1] = a.y; f[2] = a.z; f[3] = a.w;
    f[4] = b.x; f[5] = b.y; f[6] = b.z; f[7] = b.w;
}

__device__ __forceinline__ void visible_range(const kl_seq &sq, int64_t qslot, int64_t window,
                                              int64_t *lo, int64_t *hi)
{
    *lo = window > 0 && qslot - window + 1 > 0 ? qslot - window + 1 : 0;
    *hi = qslot + 1;
}

/* ------------------------------------------------------------------ decode */

#define DEC_THREADS 128
#define DEC_TOK 32   /* tokens per pipeline stage */
#define DEC_STAGES 3

/* Page of KV slot j: a shift when the page size is a power of two (p_shift >= 0). */
__device__ __forceinline__ int64_t kv_row(const kl_batch &b, const kl_seq &sq, int32_t j, int64_t P,
                                          int p_shift)
{
    int32_t pi = p_shift >= 0 ? j >> p_shift : (int32_t)(j / P);
    int32_t off = p_shift >= 0 ? j & ((1 << p_shift) - 1) : (int32_t)(j % P);
    return (int64_t)b.blocks[sq.blocks_off + pi] * P + off;
}

/* grid (n_split, Hkv, n_seq). KV rows stream through shared memory in tiles of
 * DEC_TOK tokens, DEC_STAGES deep (cp.async), so each SM keeps tens of KB of
 * loads in flight; LG = D/8 lanes then score one token row from shared memory
 * for all G query heads. partial[(seq*Hq + qh)*n_split + split] = {m, l, acc[D]}. */
template <typename T, int D, int G>
__global__ void __launch_bounds__(DEC_THREADS) attn_decode_kernel(
    float *out, const float *q, int64_t ldq, const T *kp, const T *vp, int64_t P, int p_shift,
    int64_t Hkv, float scale, int64_t window, kl_batch b, float *partial)
{
    constexpr int LG = D / 8;             /* lanes per token row */
    constexpr int NG = DEC_THREADS / LG;  /* token groups per block */
    constexpr int CH = D * (int)sizeof(T) / 16; /* 16-byte chunks per row */
    extern __shared__ uint4 dec_sm[];     /* stages x {K, V} x DEC_TOK x CH; then the combine */
    const int split = blockIdx.x, n_split = gridDim.x, h = blockIdx.y, s = blockIdx.z;
    const int tid = threadIdx.x, grp = tid / LG, gl = tid % LG;
    const kl_seq sq = b.seq[s];
    const int64_t qslot = sq.kv_start, Hq = Hkv * G;
    int64_t lo, hi;
    visible_range(sq, qslot, window, &lo, &hi);
    const int64_t per = (hi - lo + n_split - 1) / n_split;
    const int32_t t0 = (int32_t)(lo + split * per);
    const int32_t t1 = (int32_t)(lo + split * per + per < hi ? lo + split * per + per : hi);
    const int n_tiles = t1 > t0 ? (t1 - t0 + DEC_TOK - 1) / DEC_TOK : 0;
    const int64_t row_elems = Hkv * D;

    auto load_tile = [&](int tile) {
        uint4 *kd = dec_sm + (size_t)(tile % DEC_STAGES) * 2 * DEC_TOK * CH, *vd = kd + DEC_TOK * CH;
        for (int i = tid; i < DEC_TOK * CH; i += DEC_THREADS) {
            int r = i / CH, c = i % CH;
            int32_t j = t0 + tile * DEC_TOK + r;
            const T *ks = kp, *vs = vp;
            int sz = 0;
            if (j < t1) {
                int64_t off = kv_row(b, sq, j, P, p_shift) * row_elems + h * D;
                ks = kp + off + c * (16 / sizeof(T));
                vs = vp + off + c * (16 / sizeof(T));
                sz = 16;
            }
            kl_cp16(kd + r * CH + c, ks, sz);
            kl_cp16(vd + r * CH + c, vs, sz);
        }
    };
#pragma unroll
    for (int k = 0; k < DEC_STAGES - 1; k++) {
        if (k < n_tiles)
            load_tile(k);
        kl_cp_commit();
    }

    float qv[G][8], acc[G][8], m[G], l[G];
#pragma unroll
    for (int g = 0; g < G; g++) {
        const float *qp = q + sq.tok_start * ldq + (h * G + g) * D + gl * 8;
#pragma unroll
        for (int e = 0; e < 8; e++) {
            qv[g][e] = qp[e] * scale;
            acc[g][e] = 0.0f;
        }
        m[g] = -INFINITY;
        l[g] = 0.0f;
    }
    for (int tile = 0; tile < n_tiles; tile++) {
        if (tile + DEC_STAGES - 1 < n_tiles)
            load_tile(tile + DEC_STAGES - 1);
        kl_cp_commit();
        kl_cp_wait<DEC_STAGES - 1>();
        __syncthreads();
        const T *ks = reinterpret_cast<const T *>(dec_sm + (size_t)(tile % DEC_STAGES) * 2 * DEC_TOK * CH);
        const T *vs = ks + DEC_TOK * D;
        /* every group takes the same number of rows: the shuffles need whole warps */
#pragma unroll
        for (int rr = 0; rr < DEC_TOK / NG; rr++) {
            const int r = rr * NG + grp;
            const int32_t j = t0 + tile * DEC_TOK + r;
            const bool valid = j < t1 && !(j >= sq.hide_lo && j < sq.hide_hi);
            float kf[8], vf[8];
            load8<T>(ks + r * D + gl * 8, kf);
            load8<T>(vs + r * D + gl * 8, vf);
            float sc[G];
#pragma unroll
            for (int g = 0; g < G; g++) {
                float d = 0.0f;
#pragma unroll
                for (int e = 0; e < 8; e++)
                    d += qv[g][e] * kf[e];
#pragma unroll
                for (int o = LG / 2; o > 0; o >>= 1)
                    d += __shfl_xor_sync(0xffffffffu, d, o);
                sc[g] = d;
            }
            if (!valid)
                continue;
#pragma unroll
            for (int g = 0; g < G; g++) {
                float mn = fmaxf(m[g], sc[g]);
                float corr = expf(m[g] - mn), p = expf(sc[g] - mn);
                l[g] = l[g] * corr + p;
#pragma unroll
                for (int e = 0; e < 8; e++)
                    acc[g][e] = acc[g][e] * corr + p * vf[e];
                m[g] = mn;
            }
        }
        __syncthreads();
    }
    kl_cp_wait<0>();
    __syncthreads();
    /* combine the NG groups of the block (reusing the pipeline's shared memory) */
    float *sm = reinterpret_cast<float *>(dec_sm);
    float *mine = sm + (size_t)grp * G * (D + 2);
#pragma unroll
    for (int g = 0; g < G; g++) {
        float *r = mine + g * (D + 2);
#pragma unroll
        for (int e = 0; e < 8; e++)
            r[2 + gl * 8 + e] = acc[g][e];
        if (gl == 0) {
            r[0] = m[g];
            r[1] = l[g];
        }
    }
    __syncthreads();
    for (int idx = tid; idx < G * D; idx += DEC_THREADS) {
        int g = idx / D, d = idx % D;
        float M = -INFINITY;
        for (int k = 0; k < NG; k++)
            M = fmaxf(M, sm[(size_t)k * G * (D + 2) + g * (D + 2)]);
        float L = 0.0f, A = 0.0f;
        if (M > -INFINITY)
            for (int k = 0; k < NG; k++) {
                const float *r = sm + (size_t)k * G * (D + 2) + g * (D + 2);
                float w = expf(r[0] - M);
                L += r[1] * w;
                A += r[2 + d] * w;
            }
        int64_t qh = (int64_t)h * G + g;
        if (n_split == 1) {
            out[sq.tok_start * Hq * D + qh * D + d] = L > 0.0f ? A / L : 0.0f;
        } else {
            float *pp = partial + (((int64_t)s * Hq + qh) * n_split + split) * (D + 2);
            pp[2 + d] = A;
            if (d == 0) {
                pp[0] = M;
                pp[1] = L;
            }
        }
    }
}

/* Split-KV combine: one block per (sequence, query head). The split maxima and
 * sums go through shared memory first, so the per-d sums below are independent
 * loads (a dependent chain of n_split L2 loads per thread was the cost). */
__global__ void attn_combine_kernel(float *out, const float *partial, int n_split, int64_t Hq,
                                    int64_t D, kl_batch b)
{
    kl_pdl_wait();
    kl_pdl_trigger();
    extern __shared__ float cw[]; /* m[n_split], l[n_split] -> weights */
    const int64_t s = blockIdx.x / Hq, qh = blockIdx.x % Hq;
    const float *pp = partial + (s * Hq + qh) * n_split * (D + 2);
    float *ms = cw, *ls = cw + n_split;
    for (int k = threadIdx.x; k < n_split; k += blockDim.x) {
        ms[k] = pp[k * (D + 2)];
        ls[k] = pp[k * (D + 2) + 1];
    }
    __syncthreads();
    float M = -INFINITY;
    for (int k = 0; k < n_split; k++)
        M = fmaxf(M, ms[k]);
    __syncthreads();
    for (int k = threadIdx.x; k < n_split; k += blockDim.x)
        ms[k] = M > -INFINITY ? expf(ms[k] - M) : 0.0f;
    __syncthreads();
    float L = 0.0f;
    for (int k = 0; k < n_split; k++)
        L += ms[k] * ls[k];
    for (int64_t d = threadIdx.x; d < D; d += blockDim.x) {
        float A = 0.0f;
#pragma unroll 8
        for (int k = 0; k < n_split; k++)
            A += ms[k] * pp[k * (D + 2) + 2 + d];
        out[b.seq[s].tok_start * Hq * D + qh * D + d] = L > 0.0f ? A / L : 0.0f;
    }
}

/* ------------------------------------------------------------------ prefill (plain) */

/* One warp per (row, query head): lane j scores key base+j, then the warp
 * accumulates V for its D/32-element slices. */
template <typename T>
__global__ void attn_prefill_kernel(float *out, const float *q, int64_t ldq, const T *kp,
                                    const T *vp, int64_t P, int64_t Hq, int64_t Hkv, int64_t D,
                                    float scale, int64_t window, kl_batch b)
{
    extern __shared__ float qs_all[]; /* [warps][D] */
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    int64_t task = (int64_t)blockIdx.x * (blockDim.x >> 5) + warp;
    if (task >= b.n_tok * Hq)
        return;
    int64_t row = task / Hq, qh = task % Hq, g = qh / (Hq / Hkv);
    const kl_seq sq = b.seq[b.row_seq[row]];
    int64_t qslot = sq.kv_start + (row - sq.tok_start), lo, hi;
    visible_range(sq, qslot, window, &lo, &hi);
    float *qs = qs_all + (size_t)warp * D;
    for (int64_t d = lane; d < D; d += 32)
        qs[d] = q[row * ldq + qh * D + d];
    __syncwarp();
    const int per = (int)((D + 31) / 32);
    float acc[8];
    for (int e = 0; e < 8; e++)
        acc[e] = 0.0f;
    float m = -INFINITY, l = 0.0f;
    const int64_t row_elems = Hkv * D;
    for (int64_t base = lo; base < hi; base += 32) {
        int64_t j = base + lane;
        float sc = -INFINITY;
        if (j < hi && !(j >= sq.hide_lo && j < sq.hide_hi)) {
            int64_t page = b.blocks[sq.blocks_off + j / P];
            const T *kr = kp + (page * P + j % P) * row_elems + g * D;
            float d = 0.0f;
            for (int64_t e = 0; e < D; e++)
                d += qs[e] * kl_to_f32(kr[e]);
            sc = d * scale;
        }
        float mb = kl_warp_max(sc);
        float mn = fmaxf(m, mb);
        if (mn == -INFINITY)
            continue; /* nothing visible yet */
        float p = sc == -INFINITY ? 0.0f : expf(sc - mn);
        float corr = expf(m - mn);
        l = l * corr + kl_warp_sum(p);
        for (int e = 0; e < per; e++)
            acc[e] *= corr;
        int64_t nk = hi - base < 32 ? hi - base : 32;
        for (int k = 0; k < nk; k++) {
            float pk = __shfl_sync(0xffffffffu, p, k);
            if (pk == 0.0f)
                continue;
            int64_t jj = base + k;
            int64_t page = b.blocks[sq.blocks_off + jj / P];
            const T *vr = vp + (page * P + jj % P) * row_elems + g * D;
            for (int e = 0; e < per; e++) {
                int64_t d = lane + 32 * e;
                if (d < D)
                    acc[e] += pk * kl_to_f32(vr[d]);
            }
        }
        m = mn;
    }
    float inv = l > 0.0f ? 1.0f / l : 0.0f;
    for (int e = 0; e < per; e++) {
        int64_t d = lane + 32 * e;
        if (d < D)
            out[row * Hq * D + qh * D + d] = acc[e] * inv;
    }
}

/* ------------------------------------------------------------------ launchers */

extern "C" cudaError_t kl_kv_append(const kl_kv *kv, const float *k, const float *v, int64_t ldk,
                                    const kl_batch *b, cudaStream_t stream)
{
    int64_t n = b->n_tok * kv->n_kv_heads * kv->head_dim;
    if (n <= 0)
        return cudaSuccess;
    unsigned g = kl_blocks(n, 256);
    if (kv->dtype == KL_BF16)
        kv_append_kernel<<<g, 256, 0, stream>>>((__nv_bfloat16 *)kv->k, (__nv_bfloat16 *)kv->v, k,
                                                v, ldk, kv->page_tokens, kv->n_kv_heads,
                                                kv->head_dim, *b);
    else if (kv->dtype == KL_F16)
        kv_append_kernel<<<g, 256, 0, stream>>>((__half *)kv->k, (__half *)kv->v, k, v, ldk,
                                                kv->page_tokens, kv->n_kv_heads, kv->head_dim, *b);
    else
        kv_append_kernel<<<g, 256, 0, stream>>>((float *)kv->k, (float *)kv->v, k, v, ldk,
                                                kv->page_tokens, kv->n_kv_heads, kv->head_dim, *b);
    return cudaGetLastError();
}

extern "C" {
int kl_attn_splits_old = 0;
}

extern "C" int kl_attn_decode_splits(int n_seq, int64_t n_kv_heads, int sm_count)
{
    int64_t pairs = (int64_t)n_seq * n_kv_heads;
    /* Few (sequence, KV head) pairs: one wave of the tensor-core kernel (two
     * 96 KB blocks per SM). 8 blocks per SM, as before, made 512 blocks at batch 1
     * (1.94 waves of 264): the second wave ran half empty. */
    if (4 * pairs <= (int64_t)sm_count && !kl_attn_splits_old) {
        int64_t want = 2 * (int64_t)sm_count / pairs;
        return (int)(want < 1 ? 1 : want > 64 ? 64 : want);
    }
    int64_t want = (8 * (int64_t)sm_count + pairs - 1) / pairs;
    return (int)(want < 1 ? 1 : want > 64 ? 64 : want);
}

static int p_shift_of(int64_t P)
{
    if (P <= 0 || (P & (P - 1)))
        return -1;
    int s = 0;
    while ((1ll << s) < P)
        s++;
    return s;
}

template <typename T, int D, int G>
static cudaError_t decode_launch(float *out, const float *q, int64_t ldq, const kl_kv *kv,
                                 const kl_batch *b, const kl_mix *p, float *partial, int n_split,
                                 cudaStream_t stream)
{
    constexpr int NG = DEC_THREADS / (D / 8);
    size_t pipe = (size_t)DEC_STAGES * 2 * DEC_TOK * D * sizeof(T);
    size_t comb = (size_t)NG * G * (D + 2) * sizeof(float);
    size_t smem = pipe > comb ? pipe : comb;
    if (!partial && !out) /* prepare only: raise the shared-memory limit (never inside a graph capture) */
        return smem > 48 * 1024 ? cudaFuncSetAttribute(attn_decode_kernel<T, D, G>,
                                                       cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                       (int)smem)
                                : cudaSuccess;
    dim3 grid((unsigned)n_split, (unsigned)kv->n_kv_heads, (unsigned)b->n_seq);
    attn_decode_kernel<T, D, G><<<grid, DEC_THREADS, smem, stream>>>(
        out, q, ldq, (const T *)kv->k, (const T *)kv->v, kv->page_tokens,
        p_shift_of(kv->page_tokens), kv->n_kv_heads, p->scale, p->window, *b, partial);
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess || n_split == 1)
        return e;
    KL_MARK("attention.decode");
    (void)kl_launch(attn_combine_kernel, dim3((unsigned)(b->n_seq * p->n_heads)), dim3(128),
                    2 * n_split * sizeof(float), stream, out, (const float *)partial, n_split,
                    p->n_heads, (int64_t)D, *b);
    return cudaGetLastError();
}

template <typename T, int D>
static cudaError_t decode_g(float *out, const float *q, int64_t ldq, const kl_kv *kv,
                            const kl_batch *b, const kl_mix *p, float *partial, int n_split,
                            cudaStream_t stream)
{
    switch (p->n_heads / p->n_kv_heads) {
    case 1: return decode_launch<T, D, 1>(out, q, ldq, kv, b, p, partial, n_split, stream);
    case 2: return decode_launch<T, D, 2>(out, q, ldq, kv, b, p, partial, n_split, stream);
    case 3: return decode_launch<T, D, 3>(out, q, ldq, kv, b, p, partial, n_split, stream);
    case 4: return decode_launch<T, D, 4>(out, q, ldq, kv, b, p, partial, n_split, stream);
    case 6: return decode_launch<T, D, 6>(out, q, ldq, kv, b, p, partial, n_split, stream);
    case 8: return decode_launch<T, D, 8>(out, q, ldq, kv, b, p, partial, n_split, stream);
    case 16: return decode_launch<T, D, 16>(out, q, ldq, kv, b, p, partial, n_split, stream);
    default: return cudaErrorNotSupported;
    }
}

template <typename T>
static cudaError_t decode_d(float *out, const float *q, int64_t ldq, const kl_kv *kv,
                            const kl_batch *b, const kl_mix *p, float *partial, int n_split,
                            cudaStream_t stream)
{
    switch (p->head_dim) {
    case 32: return decode_g<T, 32>(out, q, ldq, kv, b, p, partial, n_split, stream);
    case 64: return decode_g<T, 64>(out, q, ldq, kv, b, p, partial, n_split, stream);
    case 128: return decode_g<T, 128>(out, q, ldq, kv, b, p, partial, n_split, stream);
    case 256: return decode_g<T, 256>(out, q, ldq, kv, b, p, partial, n_split, stream);
    default: return cudaErrorNotSupported;
    }
}

extern "C" cudaError_t kl_attn_decode(float *out, const float *q, int64_t ldq, const kl_kv *kv,
                                      const kl_batch *b, const kl_mix *p, float *partial,
                                      int n_split, cudaStream_t stream)
{
    if (b->n_seq <= 0 && out)
        return cudaSuccess;
    if (ldq % 4 || ((uintptr_t)q % 16))
        return cudaErrorNotSupported;
    cudaError_t e = kl_attn_decode_mma(out, q, ldq, kv, b, p, partial, n_split, stream);
    if (e == cudaSuccess && out && n_split > 1) {
        KL_MARK("attention.decode");
        (void)kl_launch(attn_combine_kernel, dim3((unsigned)(b->n_seq * p->n_heads)), dim3(128),
                        2 * n_split * sizeof(float), stream, out, (const float *)partial, n_split,
                        p->n_heads, p->head_dim, *b);
        return cudaGetLastError();
    }
    if (e != cudaErrorNotSupported)
        return e;
    if (kv->dtype == KL_BF16)
        return decode_d<__nv_bfloat16>(out, q, ldq, kv, b, p, partial, n_split, stream);
    if (kv->dtype == KL_F16)
        return decode_d<__half>(out, q, ldq, kv, b, p, partial, n_split, stream);
    return decode_d<float>(out, q, ldq, kv, b, p, partial, n_split, stream);
}

extern "C" cudaError_t kl_attn_decode_prepare(const kl_kv *kv, const kl_mix *p)
{
    kl_batch none;
    memset(&none, 0, sizeof none);
    return kl_attn_decode(NULL, NULL, 0, kv, &none, p, NULL, 1, 0);
}

extern "C" cudaError_t kl_attn_prefill(float *out, const float *q, int64_t ldq, const kl_kv *kv,
                                       const kl_batch *b, const kl_mix *p, cudaStream_t stream)
{
    int64_t tasks = b->n_tok * p->n_heads, D = p->head_dim;
    if (tasks <= 0)
        return cudaSuccess;
    if (D > 256)
        return cudaErrorNotSupported;
    const int warps = 4;
    unsigned grid = kl_blocks(tasks, warps);
    size_t smem = (size_t)warps * D * sizeof(float);
    if (kv->dtype == KL_BF16)
        attn_prefill_kernel<<<grid, warps * 32, smem, stream>>>(
            out, q, ldq, (const __nv_bfloat16 *)kv->k, (const __nv_bfloat16 *)kv->v,
            kv->page_tokens, p->n_heads, p->n_kv_heads, D, p->scale, p->window, *b);
    else if (kv->dtype == KL_F16)
        attn_prefill_kernel<<<grid, warps * 32, smem, stream>>>(
            out, q, ldq, (const __half *)kv->k, (const __half *)kv->v, kv->page_tokens, p->n_heads,
            p->n_kv_heads, D, p->scale, p->window, *b);
    else
        attn_prefill_kernel<<<grid, warps * 32, smem, stream>>>(
            out, q, ldq, (const float *)kv->k, (const float *)kv->v, kv->page_tokens, p->n_heads,
            p->n_kv_heads, D, p->scale, p->window, *b);
    return cudaGetLastError();
}
