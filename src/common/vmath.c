/* vmath.c - see vmath.h. Built with -O3 -fno-trapping-math -ffp-contract=off
 * (src/common/CMakeLists.txt): without the first two GCC keeps the clamps as branches
 * and the loops scalar.
 *
 * vexpf has no calls and no branches, so loops over it vectorise: Cody-Waite range
 * reduction x = n ln2 + r (|r| <= ln2 / 2), Taylor terms to r^7 for e^r, and 2^n built in
 * the exponent bits. */
#include "common/vmath.h"

#include <math.h>

static inline float vexpf(float x)
{
    const float shifter = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
    float xc = x > 88.0f ? 88.0f : x;
    xc = xc < CL_VEXP_MIN ? CL_VEXP_MIN : xc;
    float t = xc * 1.44269504088896341f + shifter;
    float n = t - shifter;
    float r = xc - n * 0.693359375f; /* ln 2 in two parts: the first is exact in n * it */
    r = r - n * -2.12194440e-4f;
    /* e^r = 1 + r + r^2 (1/2 + r/6 + ...) (Taylor terms to r^7) */
    float p = 1.9841270e-4f;
    p = p * r + 1.3888889e-3f;
    p = p * r + 8.3333333e-3f;
    p = p * r + 4.1666667e-2f;
    p = p * r + 1.6666667e-1f;
    p = p * r + 0.5f;
    p = p * r * r + r + 1.0f;
    union {
        float f;
        uint32_t u;
    } ts = {t}, sc;
    sc.u = (ts.u - 0x4B400000u + 127u) << 23; /* 2^n: n from t's low bits (unsigned: NaN wraps) */
    float y = p * sc.f;
    y = x < CL_VEXP_MIN ? 0.0f : y;
    return x == x ? y : x;
}

/* The same bits on every machine: no fused multiply-adds (-ffp-contract=off) and sums
 * in eight fixed lanes, whatever the vector width of the clone that runs (AVX2 where
 * the CPU has it, else SSE2). */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define CLONES /* other machines: their compiler's default vector width */
#endif

CLONES float cl_vdiv_max(float *x, float d, int64_t n)
{
    if (d != 1.0f)
        for (int64_t i = 0; i < n; i++)
            x[i] /= d;
    float lane[8], mx = -INFINITY;
    for (int l = 0; l < 8; l++)
        lane[l] = -INFINITY;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) /* eight lanes: GCC vectorises no float max reduction */
        for (int l = 0; l < 8; l++)
            lane[l] = x[i + l] > lane[l] ? x[i + l] : lane[l];
    for (; i < n; i++)
        mx = x[i] > mx ? x[i] : mx;
    for (int l = 0; l < 8; l++)
        mx = lane[l] > mx ? lane[l] : mx;
    return mx;
}

CLONES double cl_vexp_shifted(const float *x, float shift, float *out, int64_t n,
                              double *block_sums)
{
    double sum = 0;
    for (int64_t b = 0; b < n; b += CL_VEXP_BLOCK) { /* float lanes per block, total in double */
        int64_t e = b + CL_VEXP_BLOCK < n ? b + CL_VEXP_BLOCK : n;
        for (int64_t i = b; i < e; i++)
            out[i] = vexpf(x[i] - shift);
        float lane[8] = {0};
        int64_t i = b;
        for (; i + 8 <= e; i += 8)
            for (int l = 0; l < 8; l++)
                lane[l] += out[i + l];
        for (int l = 0; i < e; i++, l++)
            lane[l] += out[i];
        float part = ((lane[0] + lane[1]) + (lane[2] + lane[3])) +
                     ((lane[4] + lane[5]) + (lane[6] + lane[7]));
        if (block_sums)
            block_sums[b / CL_VEXP_BLOCK] = (double)part;
        sum += (double)part;
    }
    return sum;
}
