/* norm.cu - RMSNorm of the residual stream (spec §3.1), per-head RMSNorm (q/k
 * norms, Mamba2 B/C norms), and the two gated norms: Mamba2's (gate first,
 * §3.3) and fla's FusedRMSNormGated (norm first, §3.2). Sums of squares are
 * fp32 tree sums. */
#include "common.cuh"

/* One block per row. */
__global__ void rmsnorm_kernel(float *out, const float *x, const float *w, int64_t dim, float eps,
                               __nv_bfloat16 *out16)
{
    __shared__ float red[32];
    kl_pdl_wait();
    kl_pdl_trigger();
    const float *xr = x + (int64_t)blockIdx.x * dim;
    float *o = out + (int64_t)blockIdx.x * dim;
    float ss = 0.0f;
    for (int64_t i = threadIdx.x; i < dim; i += blockDim.x)
        ss += xr[i] * xr[i];
    ss = kl_block_sum(ss, red);
    float inv = 1.0f / sqrtf(ss / (float)dim + eps);
    __nv_bfloat16 *o16 = out16 ? out16 + (int64_t)blockIdx.x * dim : NULL;
    for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) {
        float v = w[i] * (xr[i] * inv);
        o[i] = v;
        if (o16)
            o16[i] = __float2bfloat16_rn(v);
    }
}

/* Residual add then RMSNorm of the sum, one block per row (the pair every layer
 * runs twice): x += y; out = rmsnorm(x) * w (+ bf16 copy). The row stays in
 * registers (VPT float4 per thread), so x is read once and written once. */
template <int VPT>
__global__ void add_rmsnorm_kernel(float *x, const float *y, float *out, const float *w,
                                   int64_t dim, float eps, __nv_bfloat16 *out16)
{
    __shared__ float red[32];
    const int64_t base = (int64_t)blockIdx.x * dim;
    const int d4 = (int)(dim / 4);
    /* the weights before the dependency wait (nothing writes them) */
    float4 wv[VPT];
#pragma unroll
    for (int i = 0; i < VPT; i++) {
        const int c = threadIdx.x + i * blockDim.x;
        wv[i] = c < d4 ? reinterpret_cast<const float4 *>(w)[c] : make_float4(0.f, 0.f, 0.f, 0.f);
    }
    kl_pdl_wait();
    kl_pdl_trigger();
    float4 v[VPT];
    float ss = 0.0f;
#pragma unroll
    for (int i = 0; i < VPT; i++) {
        const int c = threadIdx.x + i * blockDim.x;
        v[i] = make_float4(0.f, 0.f, 0.f, 0.f);
        if (c < d4) {
            float4 a = reinterpret_cast<const float4 *>(x + base)[c];
            float4 b = reinterpret_cast<const float4 *>(y + base)[c];
            v[i] = make_float4(a.x + b.x, a.y + b.y, a.z + b.z, a.w + b.w);
            reinterpret_cast<float4 *>(x + base)[c] = v[i];
            ss += v[i].x * v[i].x + v[i].y * v[i].y + v[i].z * v[i].z + v[i].w * v[i].w;
        }
    }
    ss = kl_block_sum(ss, red);
    const float inv = 1.0f / sqrtf(ss / (float)dim + eps);
#pragma unroll
    for (int i = 0; i < VPT; i++) {
        const int c = threadIdx.x + i * blockDim.x;
        if (c < d4) {
            float4 o = make_float4(wv[i].x * (v[i].x * inv), wv[i].y * (v[i].y * inv),
                                   wv[i].z * (v[i].z * inv), wv[i].w * (v[i].w * inv));
            reinterpret_cast<float4 *>(out + base)[c] = o;
            if (out16) {
                __nv_bfloat162 lo = __floats2bfloat162_rn(o.x, o.y);
                __nv_bfloat162 hi = __floats2bfloat162_rn(o.z, o.w);
                uint2 pk = make_uint2(*reinterpret_cast<uint32_t *>(&lo),
                                      *reinterpret_cast<uint32_t *>(&hi));
                reinterpret_cast<uint2 *>(out16 + base)[c] = pk;
            }
        }
    }
}

/* One warp per (row, head) vector. */
__global__ void head_rmsnorm_kernel(float *x, int64_t ld, const float *w, int64_t rows,
                                    int64_t heads, int64_t dim, float eps)
{
    int64_t v = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    int lane = threadIdx.x & 31;
    if (v >= rows * heads)
        return;
    float *p = x + (v / heads) * ld + (v % heads) * dim;
    float ss = 0.0f;
    for (int64_t i = lane; i < dim; i += 32)
        ss += p[i] * p[i];
    ss = kl_warp_sum(ss);
    float inv = 1.0f / sqrtf(ss / (float)dim + eps);
    for (int64_t i = lane; i < dim; i += 32)
        p[i] = w[i] * (p[i] * inv);
}

/* Mamba2: u = y * silu(z), then per head u * rstd(u) * w[h*dim + i]. */
__global__ void gated_norm_m2_kernel(float *y, const float *z, int64_t ldz, const float *w,
                                     int64_t rows, int64_t heads, int64_t dim, float eps,
                                     __nv_bfloat16 *y16)
{
    kl_pdl_wait();
    kl_pdl_trigger();
    int64_t v = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    int lane = threadIdx.x & 31;
    if (v >= rows * heads)
        return;
    int64_t r = v / heads, h = v % heads;
    float *p = y + r * heads * dim + h * dim;
    const float *zz = z + r * ldz + h * dim;
    float ss = 0.0f;
    for (int64_t i = lane; i < dim; i += 32) {
        float u = p[i] * kl_silu(zz[i]);
        p[i] = u;
        ss += u * u;
    }
    ss = kl_warp_sum(ss);
    float inv = 1.0f / sqrtf(ss / (float)dim + eps);
    for (int64_t i = lane; i < dim; i += 32) {
        float v = p[i] * inv * w[h * dim + i];
        p[i] = v;
        if (y16)
            y16[r * heads * dim + h * dim + i] = __float2bfloat16_rn(v);
    }
}

/* fla: o = o * rstd(o) * w[i] * silu(g). */
__global__ void gated_norm_fla_kernel(float *o, const float *g, int64_t ldg, const float *w,
                                      int64_t rows, int64_t heads, int64_t dim, float eps,
                                      __nv_bfloat16 *o16)
{
    kl_pdl_wait();
    kl_pdl_trigger();
    int64_t v = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    int lane = threadIdx.x & 31;
    if (v >= rows * heads)
        return;
    int64_t r = v / heads, h = v % heads;
    float *p = o + r * heads * dim + h * dim;
    const float *gg = g + r * ldg + h * dim;
    float ss = 0.0f;
    for (int64_t i = lane; i < dim; i += 32)
        ss += p[i] * p[i];
    ss = kl_warp_sum(ss);
    float inv = 1.0f / sqrtf(ss / (float)dim + eps);
    for (int64_t i = lane; i < dim; i += 32) {
        float v = p[i] * inv * w[i] * kl_silu(gg[i]);
        p[i] = v;
        if (o16)
            o16[r * heads * dim + h * dim + i] = __float2bfloat16_rn(v);
    }
}

/* ------------------------------------------------------------------ launchers */

extern "C" cudaError_t kl_rmsnorm(float *out, const float *x, const float *w, int64_t rows,
                                  int64_t dim, float eps, void *out16, cudaStream_t stream)
{
    if (rows <= 0)
        return cudaSuccess;
    int th = dim >= 1024 ? 512 : dim >= 256 ? 256 : 64;
    return kl_launch(rmsnorm_kernel, dim3((unsigned)rows), dim3(th), 0, stream, out, x, w, dim,
                     eps, (__nv_bfloat16 *)out16);
}

extern "C" cudaError_t kl_add_rmsnorm(float *x, const float *y, float *out, const float *w,
                                      int64_t rows, int64_t dim, float eps, void *out16,
                                      cudaStream_t stream)
{
    if (rows <= 0)
        return cudaSuccess;
    /* float4 rows, at most 4 float4 per thread of <= 1024 threads */
    if (dim % 4 || ((uintptr_t)x | (uintptr_t)y | (uintptr_t)out | (uintptr_t)w) % 16 ||
        ((uintptr_t)out16 % 8) || dim > 4 * 4 * 1024)
        return cudaErrorNotSupported;
    const int d4 = (int)(dim / 4);
    int th = (d4 + 3) / 4;
    th = (th + 31) / 32 * 32;
    if (th < 64)
        th = 64;
    return kl_launch(add_rmsnorm_kernel<4>, dim3((unsigned)rows), dim3(th), 0, stream, x, y, out,
                     w, dim, eps, (__nv_bfloat16 *)out16);
}

static unsigned warp_blocks(int64_t vectors) { return kl_blocks(vectors * 32, 256); }

extern "C" cudaError_t kl_head_rmsnorm(float *x, int64_t ld, const float *w, int64_t rows,
                                       int64_t heads, int64_t dim, float eps, cudaStream_t stream)
{
    if (rows * heads <= 0)
        return cudaSuccess;
    head_rmsnorm_kernel<<<warp_blocks(rows * heads), 256, 0, stream>>>(x, ld, w, rows, heads, dim,
                                                                       eps);
    return cudaGetLastError();
}

extern "C" cudaError_t kl_gated_norm_m2(float *y, const float *z, int64_t ldz, const float *w,
                                        int64_t rows, int64_t heads, int64_t dim, float eps,
                                        void *y16, cudaStream_t stream)
{
    if (rows * heads <= 0)
        return cudaSuccess;
    return kl_launch(gated_norm_m2_kernel, dim3(warp_blocks(rows * heads)), dim3(256), 0, stream,
                     y, z, ldz, w, rows, heads, dim, eps, (__nv_bfloat16 *)y16);
}

extern "C" cudaError_t kl_gated_norm_fla(float *o, const float *g, int64_t ldg, const float *w,
                                         int64_t rows, int64_t heads, int64_t dim, float eps,
                                         void *o16, cudaStream_t stream)
{
    if (rows * heads <= 0)
        return cudaSuccess;
    return kl_launch(gated_norm_fla_kernel, dim3(warp_blocks(rows * heads)), dim3(256), 0, stream,
                     o, g, ldg, w, rows, heads, dim, eps, (__nv_bfloat16 *)o16);
}
