/* common.cuh - small device helpers shared by the kernels: element conversion,
 * warp/block reductions, and the scalar functions of spec/MODEL.md §3.6 written
 * exactly as the CPU backend writes them (so fp32 models match to rounding). */
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>

#include "kernels.h"

#define KL_DEV __device__ __forceinline__

KL_DEV float kl_to_f32(float x) { return x; }
KL_DEV float kl_to_f32(__nv_bfloat16 x) { return __bfloat162float(x); }
KL_DEV float kl_to_f32(__half x) { return __half2float(x); }

template <typename T> KL_DEV T kl_from_f32(float x);
template <> KL_DEV float kl_from_f32<float>(float x) { return x; }
template <> KL_DEV __nv_bfloat16 kl_from_f32<__nv_bfloat16>(float x) { return __float2bfloat16_rn(x); }
template <> KL_DEV __half kl_from_f32<__half>(float x) { return __float2half_rn(x); }

KL_DEV float kl_silu(float x) { return x / (1.0f + expf(-x)); }
KL_DEV float kl_sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }
/* torch softplus with threshold 20 (spec MODEL.md §3.6) */
KL_DEV float kl_softplus(float x) { return x > 20.0f ? x : log1pf(expf(x)); }

KL_DEV float kl_warp_sum(float v)
{
#pragma unroll
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

KL_DEV float kl_warp_max(float v)
{
#pragma unroll
    for (int o = 16; o > 0; o >>= 1)
        v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

/* Sum over the block (blockDim.x a multiple of 32, <= 1024); every thread gets it.
 * `red` is 32 floats of shared memory; the call synchronises twice. */
KL_DEV float kl_block_sum(float v, float *red)
{
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = kl_warp_sum(v);
    __syncthreads();
    if (lane == 0)
        red[warp] = v;
    __syncthreads();
    float t = lane < nw ? red[lane] : 0.0f;
    return kl_warp_sum(t);
}

/* 8 bf16 / f16 values of a 16-byte load to fp32. */
template <typename T> KL_DEV void kl_unpack8(const uint4 &u, float *f);
template <> KL_DEV void kl_unpack8<__nv_bfloat16>(const uint4 &u, float *f)
{
    const __nv_bfloat162 *h = reinterpret_cast<const __nv_bfloat162 *>(&u);
#pragma unroll
    for (int i = 0; i < 4; i++) {
        float2 t = __bfloat1622float2(h[i]);
        f[2 * i] = t.x;
        f[2 * i + 1] = t.y;
    }
}
template <> KL_DEV void kl_unpack8<__half>(const uint4 &u, float *f)
{
    const __half2 *h = reinterpret_cast<const __half2 *>(&u);
#pragma unroll
    for (int i = 0; i < 4; i++) {
        float2 t = __half22float2(h[i]);
        f[2 * i] = t.x;
        f[2 * i + 1] = t.y;
    }
}

/* Programmatic dependent launch (sm_90). A kernel launched through kl_launch
 * while kl_pdl is set may start while the kernel before it in the stream is
 * still finishing; it must call kl_pdl_wait() before it reads anything an
 * earlier kernel wrote or writes anything an earlier kernel reads (weights,
 * which nothing writes, may be fetched before). kl_pdl_trigger() lets the next
 * kernel's blocks start (once all of this kernel's blocks have called it or
 * exited); the kernels call it right after their wait. Triggering before the
 * wait instead (dependents launched a kernel earlier) made the batch-1 decode
 * step 3-8% slower: blocks spinning in their wait took SM slots from the tail
 * of the kernels they waited for. Both are no-ops in a kernel launched without
 * the attribute. */
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
KL_DEV void kl_pdl_wait() { asm volatile("griddepcontrol.wait;\n" ::: "memory"); }
KL_DEV void kl_pdl_trigger() { asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory"); }
#else /* before Hopper there is no programmatic dependent launch (kl_pdl stays 0) */
KL_DEV void kl_pdl_wait() {}
KL_DEV void kl_pdl_trigger() {}
#endif

/* Launches `kernel` with the programmatic-serialization attribute when kl_pdl
 * is set (only for kernels that call kl_pdl_wait first). */
template <typename... KArgs, typename... Args>
static inline cudaError_t kl_launch(void (*kernel)(KArgs...), dim3 grid, dim3 block, size_t smem,
                                    cudaStream_t stream, Args... args)
{
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = grid;
    cfg.blockDim = block;
    cfg.dynamicSmemBytes = smem;
    cfg.stream = stream;
    cudaLaunchAttribute at[1];
    at[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    at[0].val.programmaticStreamSerializationAllowed = 1;
    cfg.attrs = at;
    cfg.numAttrs = kl_pdl ? 1 : 0;
    return cudaLaunchKernelEx(&cfg, kernel, args...);
}

static inline unsigned kl_blocks(int64_t n, int threads)
{
    return (unsigned)((n + threads - 1) / threads);
}
