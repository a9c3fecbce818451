/* elementwise.cu - the memory-bound one-pass ops: dtype conversion of GEMM
 * inputs, residual add, SwiGLU, row gather, embedding lookup, argmax. */
#include <float.h>

#include "common.cuh"

template <typename T>
__global__ void convert_kernel(T *dst, const float *src, int64_t rows, int64_t cols,
                               int64_t ld_src)
{
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= rows * cols)
        return;
    int64_t r = i / cols, c = i - r * cols;
    dst[i] = kl_from_f32<T>(src[r * ld_src + c]);
}

/* Packed rows of 4: one float4 in, 4 values out. */
template <typename T>
__global__ void convert4_kernel(T *dst, const float *src, int64_t rows, int64_t cols4,
                                int64_t ld4)
{
    kl_pdl_wait();
    kl_pdl_trigger();
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= rows * cols4)
        return;
    int64_t r = i / cols4, c = i - r * cols4;
    float4 v = reinterpret_cast<const float4 *>(src)[r * ld4 + c];
    T *d = dst + 4 * i;
    d[0] = kl_from_f32<T>(v.x);
    d[1] = kl_from_f32<T>(v.y);
    d[2] = kl_from_f32<T>(v.z);
    d[3] = kl_from_f32<T>(v.w);
}

__global__ void add_kernel(float *x, const float *y, int64_t n)
{
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        x[i] += y[i];
}

__global__ void swiglu_kernel(float *out, const float *gu, int64_t rows, int64_t inter,
                              __nv_bfloat16 *out16)
{
    kl_pdl_wait();
    kl_pdl_trigger();
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= rows * inter)
        return;
    int64_t r = i / inter, c = i - r * inter;
    const float *g = gu + r * 2 * inter;
    float v = kl_silu(g[c]) * g[inter + c];
    out[i] = v;
    if (out16)
        out16[i] = __float2bfloat16_rn(v);
}

/* 4 values per thread (inter % 4 == 0, 16-byte aligned rows): the prefill form,
 * one float4 of gate, one of up, one out and 8 bytes of bf16 copy per thread. */
__global__ void swiglu4_kernel(float *out, const float *gu, int64_t rows, int inter4,
                               __nv_bfloat16 *out16)
{
    kl_pdl_wait();
    kl_pdl_trigger();
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= rows * inter4)
        return;
    int64_t r = i / inter4, c = i - r * inter4;
    const float4 *g = reinterpret_cast<const float4 *>(gu) + r * 2 * inter4;
    float4 a = g[c], u = g[inter4 + c];
    float4 v = make_float4(kl_silu(a.x) * u.x, kl_silu(a.y) * u.y, kl_silu(a.z) * u.z,
                           kl_silu(a.w) * u.w);
    reinterpret_cast<float4 *>(out)[i] = v;
    if (out16) {
        __nv_bfloat162 lo = __floats2bfloat162_rn(v.x, v.y), hi = __floats2bfloat162_rn(v.z, v.w);
        reinterpret_cast<uint2 *>(out16)[i] =
            make_uint2(*reinterpret_cast<uint32_t *>(&lo), *reinterpret_cast<uint32_t *>(&hi));
    }
}

__global__ void gather_kernel(float *out, const float *x, int64_t cols, const int64_t *rows,
                              int64_t n)
{
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n * cols)
        return;
    int64_t r = i / cols, c = i - r * cols;
    out[i] = x[rows[r] * cols + c];
}

template <typename T>
__global__ void embed_kernel(float *out, const T *table, int64_t dim, const int32_t *tokens,
                             int64_t n)
{
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n * dim)
        return;
    int64_t r = i / dim, c = i - r * dim;
    out[i] = kl_to_f32(table[(int64_t)tokens[r] * dim + c]);
}

/* One block per row: each thread keeps its best (value, first index), then a
 * tree over the block; ties keep the lower index, as the CPU's strict '>' does. */
__global__ void argmax_kernel(int32_t *ids, const float *logits, int64_t V)
{
    __shared__ float bv[1024];
    __shared__ int32_t bi[1024];
    const float *x = logits + (int64_t)blockIdx.x * V;
    float best = -FLT_MAX;
    int32_t idx = 0x7fffffff;
    for (int64_t i = threadIdx.x; i < V; i += blockDim.x) {
        float v = x[i];
        if (v > best) {
            best = v;
            idx = (int32_t)i;
        }
    }
    bv[threadIdx.x] = best;
    bi[threadIdx.x] = idx;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if ((int)threadIdx.x < s) {
            float ov = bv[threadIdx.x + s];
            int32_t oi = bi[threadIdx.x + s];
            if (ov > bv[threadIdx.x] || (ov == bv[threadIdx.x] && oi < bi[threadIdx.x])) {
                bv[threadIdx.x] = ov;
                bi[threadIdx.x] = oi;
            }
        }
        __syncthreads();
    }
    if (threadIdx.x == 0)
        ids[blockIdx.x] = bi[0] == 0x7fffffff ? 0 : bi[0];
}

/* ------------------------------------------------------------------ launchers */

extern "C" {
void (*kl_mark)(const char *name) = NULL;
int kl_pdl = 0;
}

extern "C" cudaError_t kl_convert(void *dst, int dtype, const float *src, int64_t rows,
                                  int64_t cols, int64_t ld_src, cudaStream_t stream)
{
    int64_t n = rows * cols;
    if (n <= 0)
        return cudaSuccess;
    const int th = 256;
    int vec = cols % 4 == 0 && ld_src % 4 == 0 && ((uintptr_t)src % 16) == 0;
    if (dtype == KL_BF16) {
        if (vec)
            (void)kl_launch(convert4_kernel<__nv_bfloat16>, dim3(kl_blocks(n / 4, th)), dim3(th),
                            0, stream, (__nv_bfloat16 *)dst, src, rows, cols / 4, ld_src / 4);
        else
            convert_kernel<<<kl_blocks(n, th), th, 0, stream>>>((__nv_bfloat16 *)dst, src, rows,
                                                                cols, ld_src);
    } else if (dtype == KL_F16) {
        if (vec)
            (void)kl_launch(convert4_kernel<__half>, dim3(kl_blocks(n / 4, th)), dim3(th), 0,
                            stream, (__half *)dst, src, rows, cols / 4, ld_src / 4);
        else
            convert_kernel<<<kl_blocks(n, th), th, 0, stream>>>((__half *)dst, src, rows, cols,
                                                                ld_src);
    } else {
        convert_kernel<<<kl_blocks(n, th), th, 0, stream>>>((float *)dst, src, rows, cols,
                                                            ld_src);
    }
    return cudaGetLastError();
}

extern "C" cudaError_t kl_add(float *x, const float *y, int64_t n, cudaStream_t stream)
{
    if (n <= 0)
        return cudaSuccess;
    add_kernel<<<kl_blocks(n, 256), 256, 0, stream>>>(x, y, n);
    return cudaGetLastError();
}

extern "C" cudaError_t kl_swiglu(float *out, const float *gu, int64_t rows, int64_t inter,
                                 void *out16, cudaStream_t stream)
{
    if (rows * inter <= 0)
        return cudaSuccess;
    if (inter % 4 == 0 && inter / 4 < 0x7fffffff &&
        ((uintptr_t)out | (uintptr_t)gu) % 16 == 0 && (uintptr_t)out16 % 8 == 0)
        return kl_launch(swiglu4_kernel, dim3(kl_blocks(rows * inter / 4, 256)), dim3(256), 0,
                         stream, out, gu, rows, (int)(inter / 4), (__nv_bfloat16 *)out16);
    (void)kl_launch(swiglu_kernel, dim3(kl_blocks(rows * inter, 256)), dim3(256), 0, stream, out,
                    gu, rows, inter, (__nv_bfloat16 *)out16);
    return cudaGetLastError();
}

extern "C" cudaError_t kl_gather_rows(float *out, const float *x, int64_t cols,
                                      const int64_t *rows, int64_t n, cudaStream_t stream)
{
    if (n * cols <= 0)
        return cudaSuccess;
    gather_kernel<<<kl_blocks(n * cols, 256), 256, 0, stream>>>(out, x, cols, rows, n);
    return cudaGetLastError();
}

extern "C" cudaError_t kl_embed(float *out, const void *table, int dtype, int64_t dim,
                                const int32_t *tokens, int64_t n, cudaStream_t stream)
{
    if (n * dim <= 0)
        return cudaSuccess;
    unsigned g = kl_blocks(n * dim, 256);
    if (dtype == KL_BF16)
        embed_kernel<<<g, 256, 0, stream>>>(out, (const __nv_bfloat16 *)table, dim, tokens, n);
    else if (dtype == KL_F16)
        embed_kernel<<<g, 256, 0, stream>>>(out, (const __half *)table, dim, tokens, n);
    else
        embed_kernel<<<g, 256, 0, stream>>>(out, (const float *)table, dim, tokens, n);
    return cudaGetLastError();
}

extern "C" cudaError_t kl_argmax(int32_t *ids, const float *logits, int64_t rows, int64_t V,
                                 cudaStream_t stream)
{
    if (rows <= 0)
        return cudaSuccess;
    argmax_kernel<<<(unsigned)rows, 1024, 0, stream>>>(ids, logits, V);
    return cudaGetLastError();
}
