/* ceilings.c - see ceilings.h. Uses the CUDA runtime and cuBLAS directly, on a stream
 * of its own: the numbers do not depend on the backend under test. */
#include "ceilings.h"

#include "common/status.h"

#ifdef COLLAGE_HAVE_CUDA
#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <stdlib.h>

#include "backend/cuda_blas.h"
#include "kernels.h"

typedef struct {
    cudaStream_t stream;
    cublasHandle_t blas;
} stream_blas;

static void sb_close(stream_blas *sb)
{
    if (sb->blas)
        cuda_blas()->destroy(sb->blas);
    if (sb->stream)
        cudaStreamDestroy(sb->stream);
    sb->blas = NULL;
    sb->stream = NULL;
}

static int sb_open(stream_blas *sb, int with_blas)
{
    sb->stream = NULL;
    sb->blas = NULL;
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess || n <= 0) {
        cudaGetLastError();
        return cl_err(CL_ERR_UNSUPPORTED, "no CUDA device is visible");
    }
    if (cudaStreamCreateWithFlags(&sb->stream, cudaStreamNonBlocking) != cudaSuccess)
        return cl_err(CL_ERR_BACKEND, "cuda: cannot create a stream");
    const cuda_blas_api *blas = with_blas ? cuda_blas() : NULL;
    if (with_blas && !blas) {
        sb_close(sb);
        return CL_ERR_BACKEND;
    }
    if (with_blas && (blas->create(&sb->blas) != CUBLAS_STATUS_SUCCESS ||
                      blas->set_stream(sb->blas, sb->stream) != CUBLAS_STATUS_SUCCESS)) {
        sb_close(sb);
        return cl_err(CL_ERR_BACKEND, "cublas: cannot create a handle");
    }
    return CL_OK;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int bench_gpu_copy_gbps(size_t bytes, int reps, double *gbps)
{
    stream_blas sb;
    CL_TRY(sb_open(&sb, 0));
    void *src = NULL, *dst = NULL;
    cudaEvent_t e0 = NULL, e1 = NULL;
    double *ms = calloc((size_t)(reps > 0 ? reps : 1), sizeof *ms);
    int rc = CL_OK;
    if (!ms || cudaMalloc(&src, bytes) != cudaSuccess || cudaMalloc(&dst, bytes) != cudaSuccess) {
        cudaGetLastError();
        rc = cl_err(CL_ERR_NOMEM, "cuda: no room for a %zu-byte copy test", bytes);
        goto out;
    }
    if (kl_fill_random(src, KL_F32, (int64_t)(bytes / 4), 12345, 0, KL_RNG_NORMAL, 1.0f, 0.0f,
                       sb.stream) != cudaSuccess ||
        cudaEventCreate(&e0) != cudaSuccess || cudaEventCreate(&e1) != cudaSuccess) {
        rc = cl_err(CL_ERR_BACKEND, "cuda: copy test setup failed");
        goto out;
    }
    for (int i = -2; i < reps; i++) { /* two warm-ups */
        cudaEventRecord(e0, sb.stream);
        cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, sb.stream);
        cudaEventRecord(e1, sb.stream);
        if (cudaEventSynchronize(e1) != cudaSuccess) {
            rc = cl_err(CL_ERR_BACKEND, "cuda: copy test failed");
            goto out;
        }
        float t = 0;
        cudaEventElapsedTime(&t, e0, e1);
        if (i >= 0)
            ms[i] = t;
    }
    qsort(ms, (size_t)reps, sizeof *ms, cmp_double);
    *gbps = 2.0 * (double)bytes / (ms[reps / 2] * 1e-3) / 1e9;
out:
    if (e0)
        cudaEventDestroy(e0);
    if (e1)
        cudaEventDestroy(e1);
    cudaFree(src);
    cudaFree(dst);
    free(ms);
    cudaGetLastError();
    sb_close(&sb);
    return rc;
}

int bench_gpu_gemm_tflops(int n, int reps, double *tflops)
{
    stream_blas sb;
    CL_TRY(sb_open(&sb, 1));
    size_t elems = (size_t)n * (size_t)n;
    void *A = NULL, *B = NULL, *C = NULL;
    cudaEvent_t e0 = NULL, e1 = NULL;
    double *ms = calloc((size_t)(reps > 0 ? reps : 1), sizeof *ms);
    int rc = CL_OK;
    if (!ms || cudaMalloc(&A, elems * 2) != cudaSuccess ||
        cudaMalloc(&B, elems * 2) != cudaSuccess || cudaMalloc(&C, elems * 2) != cudaSuccess) {
        cudaGetLastError();
        rc = cl_err(CL_ERR_NOMEM, "cuda: no room for a %d^3 GEMM test", n);
        goto out;
    }
    kl_fill_random(A, KL_BF16, (int64_t)elems, 1, 0, KL_RNG_NORMAL, 1.0f, 0.0f, sb.stream);
    kl_fill_random(B, KL_BF16, (int64_t)elems, 2, 0, KL_RNG_NORMAL, 1.0f, 0.0f, sb.stream);
    cudaEventCreate(&e0);
    cudaEventCreate(&e1);
    const float one = 1.0f, zero = 0.0f;
    for (int i = -3; i < reps; i++) {
        cudaEventRecord(e0, sb.stream);
        cublasStatus_t st = cuda_blas()->gemm_ex(sb.blas, CUBLAS_OP_T, CUBLAS_OP_N, n, n, n, &one, A,
                                         CUDA_R_16BF, n, B, CUDA_R_16BF, n, &zero, C,
                                         CUDA_R_16BF, n, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
        cudaEventRecord(e1, sb.stream);
        if (st != CUBLAS_STATUS_SUCCESS || cudaEventSynchronize(e1) != cudaSuccess) {
            rc = cl_err(CL_ERR_BACKEND, "cuda: GEMM test failed (%s)", cuda_blas_status(st));
            goto out;
        }
        float t = 0;
        cudaEventElapsedTime(&t, e0, e1);
        if (i >= 0)
            ms[i] = t;
    }
    qsort(ms, (size_t)reps, sizeof *ms, cmp_double);
    *tflops = 2.0 * (double)n * n * n / (ms[reps / 2] * 1e-3) / 1e12;
out:
    if (e0)
        cudaEventDestroy(e0);
    if (e1)
        cudaEventDestroy(e1);
    cudaFree(A);
    cudaFree(B);
    cudaFree(C);
    free(ms);
    cudaGetLastError();
    sb_close(&sb);
    return rc;
}

#else

int bench_gpu_copy_gbps(size_t bytes, int reps, double *gbps)
{
    (void)bytes;
    (void)reps;
    *gbps = 0;
    return cl_err(CL_ERR_UNSUPPORTED, "this build has no CUDA backend");
}

int bench_gpu_gemm_tflops(int n, int reps, double *tflops)
{
    (void)n;
    (void)reps;
    *tflops = 0;
    return cl_err(CL_ERR_UNSUPPORTED, "this build has no CUDA backend");
}

#endif
