/* rng.cu - fills tensors on the device from the counter-based generator
 * (rng.cuh): random-weight models for benchmarks without a checkpoint, and
 * random KV / SSM state for pure-decode benchmarks. */
#include "common.cuh"
#include "rng.cuh"

__device__ float rng_value(int kind, uint64_t key, uint64_t i, float a, float b)
{
    switch (kind) {
    case KL_RNG_NORMAL: return a * kl_rng_normal(key, i) + b;
    case KL_RNG_UNIFORM: return a * kl_rng_uniform(key, i) + b;
    case KL_RNG_A_LOG: return logf(1.0f + 15.0f * kl_rng_uniform(key, i)); /* A in [1, 16] */
    case KL_RNG_DT_BIAS: {
        /* dt log-uniform in [1e-3, 1e-1]; dt_bias = softplus^-1(dt) (as mkmodel) */
        float dt = expf(logf(1e-3f) + kl_rng_uniform(key, i) * (logf(1e-1f) - logf(1e-3f)));
        return dt + logf(-expm1f(-dt));
    }
    default: return b;
    }
}

template <typename T>
__global__ void fill_kernel(T *dst, int64_t n, uint64_t key, uint64_t first, int kind, float a,
                            float b)
{
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        dst[i] = kl_from_f32<T>(rng_value(kind, key, first + (uint64_t)i, a, b));
}

extern "C" cudaError_t kl_fill_random(void *dst, int dtype, int64_t n, uint64_t key,
                                      uint64_t first, int kind, float a, float b,
                                      cudaStream_t stream)
{
    if (n <= 0)
        return cudaSuccess;
    int64_t blocks = (n + 255) / 256;
    unsigned grid = (unsigned)(blocks < 65536 ? blocks : 65536);
    if (dtype == KL_BF16)
        fill_kernel<<<grid, 256, 0, stream>>>((__nv_bfloat16 *)dst, n, key, first, kind, a, b);
    else if (dtype == KL_F16)
        fill_kernel<<<grid, 256, 0, stream>>>((__half *)dst, n, key, first, kind, a, b);
    else
        fill_kernel<<<grid, 256, 0, stream>>>((float *)dst, n, key, first, kind, a, b);
    return cudaGetLastError();
}
