/* Row-major matrix products for the per-head SSM math (see cpu_internal.h).
 * OpenBLAS runs single-threaded (cpu.c), so it is safe and fast to call it from
 * inside the OpenMP regions that spread heads over threads; tiny products stay in
 * plain loops, where a library call costs more than the arithmetic. */
#include <cblas.h>
#include <string.h>

#include "backend/cpu_internal.h"

#define SMALL_GEMM 4096 /* m*n*k below which plain loops win */

void cpu_gemm_nn(int64_t m, int64_t n, int64_t k, const float *A, int64_t lda, const float *B,
                 int64_t ldb, float *C, int64_t ldc, int accumulate)
{
    if (m * n * k >= SMALL_GEMM) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m, (int)n, (int)k, 1.0f, A,
                    (int)lda, B, (int)ldb, accumulate ? 1.0f : 0.0f, C, (int)ldc);
        return;
    }
    for (int64_t i = 0; i < m; i++) {
        float *c = C + i * ldc;
        if (!accumulate)
            memset(c, 0, (size_t)n * sizeof *c);
        const float *a = A + i * lda;
        for (int64_t p = 0; p < k; p++) {
            float av = a[p];
            if (av == 0.0f)
                continue;
            const float *bp = B + p * ldb;
            for (int64_t j = 0; j < n; j++)
                c[j] += av * bp[j];
        }
    }
}

void cpu_gemm_nt(int64_t m, int64_t n, int64_t k, const float *A, int64_t lda, const float *B,
                 int64_t ldb, float *C, int64_t ldc, int accumulate)
{
    if (m * n * k >= SMALL_GEMM) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)n, (int)k, 1.0f, A,
                    (int)lda, B, (int)ldb, accumulate ? 1.0f : 0.0f, C, (int)ldc);
        return;
    }
    for (int64_t i = 0; i < m; i++) {
        const float *a = A + i * lda;
        float *c = C + i * ldc;
        for (int64_t j = 0; j < n; j++) {
            float s = cpu_dot(a, B + j * ldb, k);
            c[j] = accumulate ? c[j] + s : s;
        }
    }
}

void cpu_gemm_tn(int64_t m, int64_t n, int64_t k, const float *A, int64_t lda, const float *B,
                 int64_t ldb, float *C, int64_t ldc, int accumulate)
{
    if (m * n * k >= SMALL_GEMM) {
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)m, (int)n, (int)k, 1.0f, A,
                    (int)lda, B, (int)ldb, accumulate ? 1.0f : 0.0f, C, (int)ldc);
        return;
    }
    if (!accumulate)
        for (int64_t i = 0; i < m; i++)
            memset(C + i * ldc, 0, (size_t)n * sizeof *C);
    for (int64_t p = 0; p < k; p++) {
        const float *a = A + p * lda, *bp = B + p * ldb;
        for (int64_t i = 0; i < m; i++) {
            float av = a[i];
            if (av == 0.0f)
                continue;
            float *c = C + i * ldc;
            for (int64_t j = 0; j < n; j++)
                c[j] += av * bp[j];
        }
    }
}
