/* cuda_gemm.c - the projections: out[t, n] = sum_k x[t, k] W[n, k].
 *
 *  - fp32 weights (fp32 checkpoints): cuBLAS fp32 GEMM, pedantic compute (no TF32),
 *    the path that must match the CPU backend to 1e-4;
 *  - bf16 / f16 weights, at most KL_GEMV_MAX_ROWS rows (decode at small batch):
 *    kernels/gemv.cu, which streams W at the bandwidth limit and reads the fp32
 *    activations directly;
 *  - bf16 / f16 weights, more rows: the fp32 activations are converted once to
 *    the weight type (consecutive projections of the same input, q/k/v or
 *    gate/up, reuse the conversion) and cuBLAS runs a 16-bit GEMM with fp32
 *    accumulation and fp32 output.
 * In cuBLAS's column-major terms: out^T [N x rows] = W^T(op T of the [K x N]
 * column-major view of W) * x^T [K x rows]. */
#include <string.h>

#include "backend/cuda_internal.h"

typedef struct {
    float *out;
    int64_t ldo;
    const float *x;
    int64_t ldx;
    const void *w;
    int dtype; /* cl_dtype of w */
    int64_t N, K, rows;
    void *act16; /* conversion buffer (16-bit path) */
} matmul_args;

static int matmul_run(cuda_ctx *c, const void *p)
{
    const matmul_args *a = p;
    const float one = 1.0f, zero = 0.0f;
    if (a->dtype == CL_F32) {
        CUBLAS_CHECK(cublasGemmEx(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, (int)a->N, (int)a->rows,
                                  (int)a->K, &one, a->w, CUDA_R_32F, (int)a->K, a->x, CUDA_R_32F,
                                  (int)a->ldx, &zero, a->out, CUDA_R_32F, (int)a->ldo,
                                  CUBLAS_COMPUTE_32F_PEDANTIC, CUBLAS_GEMM_DEFAULT));
        return CL_OK;
    }
    int kd = cuda_kdtype((cl_dtype)a->dtype);
    if (!a->act16) {
        CU_LAUNCH(kl_gemv(a->out, a->ldo, a->x, a->ldx, a->w, kd, a->N, a->K, a->rows,
                          c->stream));
        return CL_OK;
    }
    int cached = c->act16_src == a->x && c->act16.p == a->act16 && c->act16_rows == a->rows &&
                 c->act16_ld == a->ldx && c->act16_cols == a->K && c->act16_dtype == kd;
    if (!cached) {
        CU_LAUNCH(kl_convert(a->act16, kd, a->x, a->rows, a->K, a->ldx, c->stream));
        c->act16_src = a->x;
        c->act16_rows = a->rows;
        c->act16_ld = a->ldx;
        c->act16_cols = a->K;
        c->act16_dtype = kd;
    }
    cudaDataType_t t = kd == KL_BF16 ? CUDA_R_16BF : CUDA_R_16F;
    CUBLAS_CHECK(cublasGemmEx(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, (int)a->N, (int)a->rows,
                              (int)a->K, &one, a->w, t, (int)a->K, a->act16, t, (int)a->K, &zero,
                              a->out, CUDA_R_32F, (int)a->ldo, CUBLAS_COMPUTE_32F,
                              CUBLAS_GEMM_DEFAULT));
    /* the output may overlap the converted input's source: forget the conversion then */
    const float *lo = a->x, *hi = a->x + (a->rows - 1) * a->ldx + a->K;
    if (a->out < hi && lo < a->out + (a->rows - 1) * a->ldo + a->N)
        c->act16_src = NULL;
    return CL_OK;
}

static int cuda_matmul(cl_backend *b, float *out, int64_t ldo, const float *x, int64_t ldx,
                       const cl_bweight *w, int64_t rows)
{
    cuda_ctx *c = cuda_of(b);
    if (rows <= 0)
        return CL_OK;
    matmul_args a;
    memset(&a, 0, sizeof a);
    a.out = out;
    a.ldo = ldo;
    a.x = x;
    a.ldx = ldx;
    a.w = w->data;
    a.dtype = (int)w->dtype;
    a.N = w->rows;
    a.K = w->cols;
    a.rows = rows;
    if (w->dtype != CL_F32) {
        int gemv = rows <= KL_GEMV_MAX_ROWS && a.K % 8 == 0 && ldx % 4 == 0 &&
                   ((uintptr_t)x % 16) == 0 && ((uintptr_t)w->data % 16) == 0;
        if (!gemv) {
            CL_TRY(cuda_buf_reserve(c, &c->act16, (size_t)(rows * a.K) * 2));
            a.act16 = c->act16.p;
        }
    }
    const char *name = w->dtype == CL_F32 ? "matmul_f32" : a.act16 ? "matmul" : "matmul_gemv";
    return cuda_dispatch(c, name, matmul_run, &a, sizeof a);
}

void cuda_gemm_ops(cl_backend_ops *o) { o->matmul = cuda_matmul; }
