/* cuda_blas.h - cuBLAS, loaded when the CUDA backend first needs it (dlopen), not when
 * the program starts: linking libcublas costs every process ~0.1 s and ~200 MB at
 * start-up (its static initialisers), even `collage --help` on a machine without a GPU.
 * The table holds the few entry points the backend uses. */
#ifndef CL_CUDA_BLAS_H
#define CL_CUDA_BLAS_H

#include <cublas_v2.h>

typedef struct {
    cublasStatus_t (*create)(cublasHandle_t *h);
    cublasStatus_t (*destroy)(cublasHandle_t h);
    cublasStatus_t (*set_stream)(cublasHandle_t h, cudaStream_t s);
    cublasStatus_t (*set_workspace)(cublasHandle_t h, void *ws, size_t bytes);
    cublasStatus_t (*set_math_mode)(cublasHandle_t h, cublasMath_t mode);
    const char *(*status_string)(cublasStatus_t s);
    cublasStatus_t (*gemm_ex)(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb,
                              int m, int n, int k, const void *alpha, const void *A,
                              cudaDataType at, int lda, const void *B, cudaDataType bt, int ldb,
                              const void *beta, void *C, cudaDataType ct, int ldc,
                              cublasComputeType_t compute, cublasGemmAlgo_t algo);
    cublasStatus_t (*gemm_strided_batched_ex)(
        cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
        const void *alpha, const void *A, cudaDataType at, int lda, long long sa, const void *B,
        cudaDataType bt, int ldb, long long sb, const void *beta, void *C, cudaDataType ct,
        int ldc, long long sc, int batch, cublasComputeType_t compute, cublasGemmAlgo_t algo);
    cublasStatus_t (*saxpy)(cublasHandle_t h, int n, const float *alpha, const float *x,
                            int incx, float *y, int incy);
} cuda_blas_api;

/* The loaded table (loaded once, thread-safe), or NULL with a CL_ERR_BACKEND message
 * naming the library: $COLLAGE_CUBLAS, else libcublas.so.<major> from the loader's
 * path, the toolkit's lib directory the build saw, or lib/ beside the executable. */
const cuda_blas_api *cuda_blas(void);
/* cuda_blas() status string of s ("(cuBLAS not loaded)" before it loads). */
const char *cuda_blas_status(cublasStatus_t s);

#endif
