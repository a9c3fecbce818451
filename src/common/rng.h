/* rng.h - counter-based random numbers: value i of stream `key` is a pure
 * function of (key, i), so tensors can be generated in any order, in pieces, or
 * on the GPU with the same formula (kernels/rng.cuh mirrors this file). */
#ifndef CL_RNG_H
#define CL_RNG_H

#include <math.h>
#include <stdint.h>

static inline uint64_t cl_mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* Key of a named stream (FNV-1a of the name mixed with the seed). */
static inline uint64_t cl_rng_key(uint64_t seed, const char *name)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *name; name++)
        h = (h ^ (unsigned char)*name) * 0x100000001b3ull;
    return cl_mix64(h ^ cl_mix64(seed));
}

/* Uniform in [0, 1). */
static inline float cl_rng_uniform(uint64_t key, uint64_t i)
{
    return (float)(cl_mix64(key ^ (i * 0xd1b54a32d192ed03ull)) >> 40) * (1.0f / 16777216.0f);
}

/* Standard normal (Box-Muller on two uniforms of the same counter). */
static inline float cl_rng_normal(uint64_t key, uint64_t i)
{
    uint64_t r = cl_mix64(key ^ (i * 0xd1b54a32d192ed03ull));
    float u1 = ((float)(r >> 40) + 1.0f) * (1.0f / 16777217.0f); /* (0, 1] */
    float u2 = (float)(r & 0xffffff) * (1.0f / 16777216.0f);
    return sqrtf(-2.0f * logf(u1)) * cosf(6.28318530718f * u2);
}

/* Kinds of values drawn from a stream (kernels/rng.cu draws the same ones):
 * a * N(0,1) + b, a * U[0,1) + b, Mamba2 A_log = log U[1, 16], dt_bias =
 * softplus^-1 of a log-uniform dt in [1e-3, 1e-1], or the constant b. */
enum { CL_RNG_NORMAL = 0, CL_RNG_UNIFORM, CL_RNG_A_LOG, CL_RNG_DT_BIAS, CL_RNG_CONST };

static inline float cl_rng_value(int kind, uint64_t key, uint64_t i, float a, float b)
{
    switch (kind) {
    case CL_RNG_NORMAL: return a * cl_rng_normal(key, i) + b;
    case CL_RNG_UNIFORM: return a * cl_rng_uniform(key, i) + b;
    case CL_RNG_A_LOG: return logf(1.0f + 15.0f * cl_rng_uniform(key, i));
    case CL_RNG_DT_BIAS: {
        float dt = expf(logf(1e-3f) + cl_rng_uniform(key, i) * (logf(1e-1f) - logf(1e-3f)));
        return dt + logf(-expm1f(-dt));
    }
    default: return b;
    }
}

#endif
