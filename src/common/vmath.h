/* vmath.h - the sampler's passes over a 151K-token vocabulary at vector speed: scale and
 * max, e^x with block sums. libm's expf is a call per element and keeps such loops
 * scalar (0.5 ms a row); these run 4-8 floats at a time, with the same bits on every
 * x86-64 machine (a seeded draw must not depend on which machine it ran on).
 *
 * e^x: relative error within 3e-7 (libm's expf: 1.2e-7, its last bit) for
 * CL_VEXP_MIN <= x <= 88; exactly 0 below CL_VEXP_MIN, -inf included, so masked tokens
 * keep probability 0; e^0 is exactly 1; NaN stays NaN. */
#ifndef CL_VMATH_H
#define CL_VMATH_H

#include <stdint.h>

/* below this e^x is under the smallest normal float: taken as 0 */
#define CL_VEXP_MIN (-87.33f)

/* cl_vexp_shifted sums per block of this many elements */
#define CL_VEXP_BLOCK 1024

/* x[i] /= d for i < n; returns the largest x[i] (NaN ignored; -inf when n is 0 or all
 * are NaN). */
float cl_vdiv_max(float *x, float d, int64_t n);

/* out[i] = e^(x[i] - shift) for i < n; block_sums[b] (when not NULL) = the sum of
 * out[b * CL_VEXP_BLOCK, (b + 1) * CL_VEXP_BLOCK); returns the total (in double). */
double cl_vexp_shifted(const float *x, float shift, float *out, int64_t n, double *block_sums);

#endif
