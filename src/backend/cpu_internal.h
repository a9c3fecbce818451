/* cpu_internal.h - shared pieces of the CPU backend (not a public contract). */
#ifndef CL_CPU_INTERNAL_H
#define CL_CPU_INTERNAL_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "backend/backend.h"

/* Backend ops implemented in the cpu_*.c files. */
int cpu_attention(cl_backend *b, float *out, const float *q, int64_t ldq, const float *k,
                  const float *v, int64_t ldk, const cl_kv_layer *kv, const cl_batch *batch,
                  const cl_mixer_params *p);
int cpu_conv1d(cl_backend *b, float *out, const float *x, int64_t ldx, const cl_bweight *w,
               const cl_bweight *bias, const cl_ssm_layer *s, const cl_batch *batch);
int cpu_mamba2(cl_backend *b, float *y, const float *xbc, const float *dt_raw, int64_t lddt,
               const cl_bweight *dt_bias, const cl_bweight *a_log, const cl_bweight *d_skip,
               const cl_ssm_layer *s, const cl_batch *batch, const cl_mixer_params *p);
int cpu_gdn(cl_backend *b, float *o, const float *qkv, const float *beta_raw,
            const float *gk_raw, int64_t ldg, const cl_bweight *a_log, const cl_bweight *dt_bias,
            const cl_ssm_layer *s, const cl_batch *batch, const cl_mixer_params *p);
int cpu_gka(cl_backend *b, float *o, const float *qkv, const float *a_raw, const float *b_raw,
            const float *alpha_raw, int64_t ldg, const cl_bweight *b_bias,
            const cl_bweight *alpha_bias, const cl_bweight *a_log, const cl_bweight *dt_bias,
            const cl_ssm_layer *s, const cl_batch *batch, const cl_mixer_params *p);

/* Chunk length of the chunked (parallel) SSM forms on the CPU. */
#define CPU_SSM_CHUNK 64

static inline float cpu_silu(float x) { return x / (1.0f + expf(-x)); }
static inline float cpu_sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }
/* torch softplus with threshold 20 (spec MODEL.md §3.6) */
static inline float cpu_softplus(float x) { return x > 20.0f ? x : log1pf(expf(x)); }

static inline float cpu_dot(const float *a, const float *b, int64_t n)
{
    float s = 0.0f;
    for (int64_t i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

/* C[m x n] (ldc) (+)= A[m x k] (lda) * B[k x n] (ldb), all row-major, plain loops
 * written for auto-vectorisation; for the small per-head products inside OpenMP
 * regions (OpenBLAS is not called from parallel regions). */
void cpu_gemm_nn(int64_t m, int64_t n, int64_t k, const float *A, int64_t lda, const float *B,
                 int64_t ldb, float *C, int64_t ldc, int accumulate);
/* C[m x n] (+)= A[m x k] * B[n x k]^T */
void cpu_gemm_nt(int64_t m, int64_t n, int64_t k, const float *A, int64_t lda, const float *B,
                 int64_t ldb, float *C, int64_t ldc, int accumulate);
/* C[m x n] (+)= A[k x m]^T * B[k x n] */
void cpu_gemm_tn(int64_t m, int64_t n, int64_t k, const float *A, int64_t lda, const float *B,
                 int64_t ldb, float *C, int64_t ldc, int accumulate);

/* Pointer to an fp32 weight's data (the CPU backend uploads everything as fp32). */
static inline const float *cpu_w(const cl_bweight *w) { return (const float *)w->data; }

#endif
