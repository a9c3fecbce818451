/* rope.cu - rotate-half RoPE (spec MODEL.md §3.7). inv_freq and the phase are
 * computed as the CPU backend does (inv_freq in double then rounded to fp32,
 * phase = fp32 position * inv_freq in fp32, cos/sin of that phase in double),
 * so fp32 models agree to the last bits. One thread per (row, frequency), all
 * heads of the row. */
#include "common.cuh"

__global__ void rope_kernel(float *x, int64_t ld, const int64_t *positions, int64_t rows,
                            int64_t heads, int64_t dim, double theta)
{
    int64_t half = dim / 2;
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= rows * half)
        return;
    int64_t t = i / half, j = i - t * half;
    float inv = (float)(1.0 / pow(theta, (double)(2 * j) / (double)dim));
    float ph = (float)positions[t] * inv;
    float cs = (float)cos((double)ph), sn = (float)sin((double)ph);
    float *row = x + t * ld;
    for (int64_t h = 0; h < heads; h++) {
        float *v = row + h * dim;
        float a = v[j], c = v[j + half];
        v[j] = a * cs - c * sn;
        v[j + half] = c * cs + a * sn;
    }
}

extern "C" cudaError_t kl_rope(float *x, int64_t ld, const int64_t *positions, int64_t rows,
                               int64_t heads, int64_t dim, double theta, cudaStream_t stream)
{
    int64_t n = rows * (dim / 2);
    if (n <= 0)
        return cudaSuccess;
    rope_kernel<<<kl_blocks(n, 128), 128, 0, stream>>>(x, ld, positions, rows, heads, dim, theta);
    return cudaGetLastError();
}

/* ------------------------------------------------- fused attention input prep */

/* The attention layer's per-token prologue in one kernel: q/k head RMSNorms,
 * RoPE of q and k, and the append of k and v to the paged KV cache (what
 * head_rmsnorm x2, rope x2 and kv_append do in five launches; a decode step
 * runs it 18 times at 8B shape, where each of those launches is a few us of
 * latency for a few KB of data). Block (row, group of 8 heads) of the
 * Hq + 2 Hkv head vectors (q heads, then k, then v); one warp per head, E = D/32
 * values per lane at d = lane + 32 e. Arithmetic as in head_rmsnorm_kernel and
 * rope_kernel (the same sums in the same order, the same double-precision
 * phases), so fp32 models agree with the unfused ops bit for bit. */
template <typename T, int E>
__global__ void __launch_bounds__(256) qk_prep_kernel(float *q, int64_t ld, const float *wq,
                                                      const float *wk, int64_t Hq, int64_t Hkv,
                                                      float eps, double theta, T *kc, T *vc,
                                                      int64_t P, kl_batch b)
{
    constexpr int D = 32 * E, HALF = D / 2;
    __shared__ float cs_s[HALF], sn_s[HALF];
    kl_pdl_wait();
    kl_pdl_trigger();
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int64_t row = blockIdx.x, h = (int64_t)blockIdx.y * 8 + warp, nh = Hq + 2 * Hkv;
    /* q | k | v heads are adjacent in the row (the q/k/v projection's layout) */
    float *p = q + row * ld + h * D;
    float x[E];
    if (h < nh)
#pragma unroll
        for (int e = 0; e < E; e++)
            x[e] = p[lane + 32 * e];
    const int64_t pos = b.positions[row];
    for (int j = threadIdx.x; j < HALF; j += blockDim.x) {
        float inv = (float)(1.0 / pow(theta, (double)(2 * j) / (double)D));
        float ph = (float)pos * inv;
        cs_s[j] = (float)cos((double)ph);
        sn_s[j] = (float)sin((double)ph);
    }
    __syncthreads();
    if (h >= nh)
        return;
    if (h < Hq + Hkv) {
        float ss = 0.0f;
#pragma unroll
        for (int e = 0; e < E; e++)
            ss += x[e] * x[e];
        ss = kl_warp_sum(ss);
        const float inv = 1.0f / sqrtf(ss / (float)D + eps);
        const float *w = h < Hq ? wq : wk;
#pragma unroll
        for (int e = 0; e < E; e++)
            x[e] = w[lane + 32 * e] * (x[e] * inv);
        if (E == 1) { /* pairs (lane, lane + 16) across lanes */
            const float o = __shfl_xor_sync(0xffffffffu, x[0], 16);
            const float cs = cs_s[lane & 15], sn = sn_s[lane & 15];
            x[0] = lane < 16 ? x[0] * cs - o * sn : x[0] * cs + o * sn;
        } else {
#pragma unroll
            for (int e = 0; e < E / 2; e++) {
                const int j = lane + 32 * e;
                const float a = x[e], c = x[e + E / 2], cs = cs_s[j], sn = sn_s[j];
                x[e] = a * cs - c * sn;
                x[e + E / 2] = c * cs + a * sn;
            }
        }
#pragma unroll
        for (int e = 0; e < E; e++)
            p[lane + 32 * e] = x[e];
        if (h < Hq)
            return;
    }
    /* k or v head: its slot in the cache */
    const kl_seq sq = b.seq[b.row_seq[row]];
    const int64_t slot = sq.kv_start + (row - sq.tok_start);
    const int64_t page = b.blocks[sq.blocks_off + slot / P];
    const int64_t kvh = h < Hq + Hkv ? h - Hq : h - Hq - Hkv;
    T *dst = (h < Hq + Hkv ? kc : vc) + ((page * P + slot % P) * Hkv + kvh) * D;
#pragma unroll
    for (int e = 0; e < E; e++)
        dst[lane + 32 * e] = kl_from_f32<T>(x[e]);
}

template <typename T>
static cudaError_t qk_prep_t(float *q, int64_t ld, const float *wq, const float *wk, int64_t rows,
                             int64_t Hq, int64_t Hkv, int64_t D, float eps, double theta,
                             const kl_kv *kv, const kl_batch *b, cudaStream_t stream)
{
    dim3 grid((unsigned)rows, (unsigned)((Hq + 2 * Hkv + 7) / 8));
    T *kc = (T *)kv->k, *vc = (T *)kv->v;
    switch (D) {
    case 32:
        return kl_launch(qk_prep_kernel<T, 1>, grid, dim3(256), 0, stream, q, ld, wq, wk, Hq, Hkv,
                         eps, theta, kc, vc, kv->page_tokens, *b);
    case 64:
        return kl_launch(qk_prep_kernel<T, 2>, grid, dim3(256), 0, stream, q, ld, wq, wk, Hq, Hkv,
                         eps, theta, kc, vc, kv->page_tokens, *b);
    case 128:
        return kl_launch(qk_prep_kernel<T, 4>, grid, dim3(256), 0, stream, q, ld, wq, wk, Hq, Hkv,
                         eps, theta, kc, vc, kv->page_tokens, *b);
    case 256:
        return kl_launch(qk_prep_kernel<T, 8>, grid, dim3(256), 0, stream, q, ld, wq, wk, Hq, Hkv,
                         eps, theta, kc, vc, kv->page_tokens, *b);
    default: return cudaErrorNotSupported;
    }
}

extern "C" cudaError_t kl_qk_prep(float *q, int64_t ld, const float *wq, const float *wk,
                                  int64_t rows, int64_t Hq, int64_t Hkv, int64_t D, float eps,
                                  double theta, const kl_kv *kv, const kl_batch *b,
                                  cudaStream_t stream)
{
    if (rows <= 0)
        return cudaSuccess;
    if (kv->head_dim != D || kv->n_kv_heads != Hkv || kv->page_tokens <= 0 || rows > 0x7fffffff)
        return cudaErrorNotSupported;
    if (kv->dtype == KL_BF16)
        return qk_prep_t<__nv_bfloat16>(q, ld, wq, wk, rows, Hq, Hkv, D, eps, theta, kv, b,
                                        stream);
    if (kv->dtype == KL_F16)
        return qk_prep_t<__half>(q, ld, wq, wk, rows, Hq, Hkv, D, eps, theta, kv, b, stream);
    return qk_prep_t<float>(q, ld, wq, wk, rows, Hq, Hkv, D, eps, theta, kv, b, stream);
}
