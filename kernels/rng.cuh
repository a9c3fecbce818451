/* rng.cuh - the counter-based generator of src/common/rng.h on the device (same
 * constants, same formulas): value i of stream `key` is a pure function of
 * (key, i), so a random model generated here holds the weights `collage
 * mkmodel` writes for the same preset and seed (up to the last ulp of the
 * device's logf/cosf). Keys are computed on the host with cl_rng_key. */
#pragma once

#include <stdint.h>

__device__ __forceinline__ uint64_t kl_mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* Uniform in [0, 1). */
__device__ __forceinline__ float kl_rng_uniform(uint64_t key, uint64_t i)
{
    return (float)(kl_mix64(key ^ (i * 0xd1b54a32d192ed03ull)) >> 40) * (1.0f / 16777216.0f);
}

/* Standard normal (Box-Muller on two uniforms of the same counter). */
__device__ __forceinline__ float kl_rng_normal(uint64_t key, uint64_t i)
{
    uint64_t r = kl_mix64(key ^ (i * 0xd1b54a32d192ed03ull));
    float u1 = ((float)(r >> 40) + 1.0f) * (1.0f / 16777217.0f);
    float u2 = (float)(r & 0xffffff) * (1.0f / 16777216.0f);
    return sqrtf(-2.0f * logf(u1)) * cosf(6.28318530718f * u2);
}
