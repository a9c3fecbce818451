/* cuda_gemm.c - the projections: out[t, n] = sum_k x[t, k] W[n, k].
 *
 *  - fp32 weights (fp32 checkpoints): cuBLAS fp32 GEMM, pedantic compute (no TF32),
 *    the path that must match the CPU backend to 1e-4;
 *  - bf16 weights, at most KL_SMALL_MAX_ROWS rows (small decode batches):
 *    kernels/gemm_small.cu streams W from global memory straight into the
 *    tensor-core operand registers; X is the bf16 copy a norm left (act16) or
 *    the fp32 activations themselves (no conversion pass);
 *  - bf16 weights, at most 128 rows (decode batches up to the memory-full
 *    batch): the fp32 activations are converted to bf16 once (consecutive
 *    projections of the same input reuse the conversion) and kernels/
 *    gemm_wgmma.cu streams W through the warpgroup tensor instructions;
 *    gemm_skinny.cu (mma.sync) where wgmma is not built, and for A/B runs
 *    (COLLAGE_CUDA_GEMM=skinny); cuBLAS reached 0.8-2 TB/s on these shapes;
 *  - f16 weights, at most KL_GEMV_MAX_ROWS rows: kernels/gemv.cu (fp32 x);
 *  - 16-bit weights, more rows: the same conversion, then cuBLAS runs a 16-bit
 *    GEMM with fp32 accumulation and fp32 output.
 * In cuBLAS's column-major terms: out^T [N x rows] = W^T(op T of the [K x N]
 * column-major view of W) * x^T [K x rows].
 *
 * Merged projections: forward.c calls one matmul per weight (q, k, v, ...). A
 * projection is held back; when the next one reads the same input and its
 * weight rows and output columns continue the held one's (weights stored back
 * to back, outputs side by side), the two become one product. Any other op, or
 * a flush, dispatches the held one first. With weights laid out in the order
 * forward.c uses them (random models; uploads of 16-bit matrices go to slabs in
 * upload order, which keeps gate|up and q|k|v adjacent), a GKA layer's seven
 * input projections are one GEMM: fewer launches and longer weight streams. */
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
    int path;    /* MM_* */
} matmul_args;

enum { MM_CUBLAS = 0, MM_GEMV, MM_SKINNY, MM_SMALL, MM_WGMMA };

static int matmul_path(cuda_ctx *c, const matmul_args *a)
{
    const float one = 1.0f, zero = 0.0f;
    if (a->dtype == CL_F32) {
        CUBLAS_CHECK(cuda_blas()->gemm_ex(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, (int)a->N, (int)a->rows,
                                  (int)a->K, &one, a->w, CUDA_R_32F, (int)a->K, a->x, CUDA_R_32F,
                                  (int)a->ldx, &zero, a->out, CUDA_R_32F, (int)a->ldo,
                                  CUBLAS_COMPUTE_32F_PEDANTIC, CUBLAS_GEMM_DEFAULT));
        return CL_OK;
    }
    int kd = cuda_kdtype((cl_dtype)a->dtype);
    if (a->path == MM_GEMV) {
        CU_LAUNCH(kl_gemv(a->out, a->ldo, a->x, a->ldx, a->w, kd, a->N, a->K, a->rows,
                          c->stream));
        return CL_OK;
    }
    int cached = c->act16_src == a->x && c->act16_buf == a->act16 && c->act16_rows == a->rows &&
                 c->act16_ld == a->ldx && c->act16_cols == a->K && c->act16_dtype == kd;
    if (a->path == MM_SMALL) {
        /* the bf16 copy when a norm left one, else the fp32 rows as they are */
        cudaError_t e = cached ? kl_gemm_small(a->out, a->ldo, a->act16, 1, a->K, a->w, a->N,
                                               a->K, a->rows, c->stream)
                               : kl_gemm_small(a->out, a->ldo, a->x, 0, a->ldx, a->w, a->N,
                                               a->K, a->rows, c->stream);
        if (e != cudaErrorNotSupported) {
            CU_LAUNCH(e);
            return CL_OK;
        }
        cudaGetLastError();
    }
    if (!cached) {
        CU_LAUNCH(kl_convert(a->act16, kd, a->x, a->rows, a->K, a->ldx, c->stream));
        KL_MARK("matmul.convert");
        c->act16_src = a->x;
        c->act16_buf = a->act16;
        c->act16_rows = a->rows;
        c->act16_ld = a->ldx;
        c->act16_cols = a->K;
        c->act16_dtype = kd;
    }
    if (a->path == MM_WGMMA) {
        cudaError_t e = kl_gemm_wgmma(a->out, a->ldo, a->act16, a->w, a->N, a->K, a->rows,
                                      c->sm_count, c->stream);
        if (e != cudaErrorNotSupported) {
            CU_LAUNCH(e);
            return CL_OK;
        }
        cudaGetLastError();
    }
    if (a->path != MM_CUBLAS) {
        CU_LAUNCH(kl_gemm_skinny(a->out, a->ldo, a->act16, a->w, a->N, a->K, a->rows, c->sm_count,
                                 c->stream));
        return CL_OK;
    }
    cudaDataType_t t = kd == KL_BF16 ? CUDA_R_16BF : CUDA_R_16F;
    CUBLAS_CHECK(cuda_blas()->gemm_ex(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, (int)a->N, (int)a->rows,
                              (int)a->K, &one, a->w, t, (int)a->K, a->act16, t, (int)a->K, &zero,
                              a->out, CUDA_R_32F, (int)a->ldo, CUBLAS_COMPUTE_32F,
                              CUBLAS_GEMM_DEFAULT));
    return CL_OK;
}

static int matmul_run(cuda_ctx *c, const void *p)
{
    const matmul_args *a = p;
    CL_TRY(matmul_path(c, a));
    /* the output may overwrite the rows a cached bf16 conversion came from:
     * forget the conversion then */
    if (c->act16_src) {
        const float *lo = (const float *)c->act16_src;
        const float *hi = lo + (c->act16_rows - 1) * c->act16_ld + c->act16_cols;
        if (a->out < hi && lo < a->out + (a->rows - 1) * a->ldo + a->N)
            c->act16_src = NULL;
    }
    return CL_OK;
}

void cuda_act16_set(cuda_ctx *c, const void *src, const void *buf, int64_t rows, int64_t ld,
                    int64_t cols)
{
    c->act16_src = src;
    c->act16_buf = buf;
    c->act16_rows = rows;
    c->act16_ld = ld;
    c->act16_cols = cols;
    c->act16_dtype = KL_BF16;
}

/* Chooses the path, reserves the conversion buffer and dispatches. */
static int matmul_dispatch(cuda_ctx *c, matmul_args *a)
{
    const char *name = "matmul_f32";
    if (a->dtype != CL_F32) {
        int aligned = a->K % 8 == 0 && ((uintptr_t)a->w % 16) == 0;
        int bf16 = a->dtype == CL_BF16 && aligned, m = c->gemm_mode;
        /* decode batches (docs/GPU-NOTES.md, kernel table and A/B runs): up to 8
         * rows gemm_small (alone, cuBLAS streams the large matrices faster, 4.2-4.4
         * vs 3.9 TB/s, but in the decode graph gemm_small's programmatic launch
         * overlaps each call with its neighbours: batch-1 step 5.61 ms all small,
         * 5.82 small + cuBLAS, 5.95 all cuBLAS); more rows cuBLAS (default math;
         * 3.0-3.9 TB/s at 101 rows, where gemm_skinny and gemm_wgmma reached
         * 1.0-1.7) */
        int small = a->rows <= KL_GEMV_MAX_ROWS;
        if (bf16 && a->rows <= KL_SMALL_MAX_ROWS &&
                 (m == CUDA_GEMM_SMALL || (m == CUDA_GEMM_AUTO && small)))
            a->path = MM_SMALL;
        else if (bf16 && a->rows <= KL_SKINNY_MAX_ROWS && m == CUDA_GEMM_WGMMA &&
                 kl_gemm_wgmma_available())
            a->path = MM_WGMMA;
        else if (bf16 && a->rows <= KL_SKINNY_MAX_ROWS && m == CUDA_GEMM_SKINNY)
            a->path = MM_SKINNY;
        else if (a->dtype != CL_BF16 && a->rows <= KL_GEMV_MAX_ROWS && aligned &&
                 a->ldx % 4 == 0 && ((uintptr_t)a->x % 16) == 0)
            a->path = MM_GEMV; /* f16 checkpoints */
        else
            a->path = MM_CUBLAS;
        if (a->path != MM_GEMV) {
            CL_TRY(cuda_buf_reserve(c, &c->act16, (size_t)(a->rows * a->K) * 2));
            a->act16 = c->act16.p;
        }
        static const char *names[] = {"matmul", "matmul_gemv", "matmul_skinny", "matmul_small",
                                      "matmul_wgmma"};
        name = names[a->path];
    }
    return cuda_dispatch(c, name, matmul_run, a, sizeof *a);
}

int cuda_gemm_flush(cuda_ctx *c)
{
    if (!c->has_pend)
        return CL_OK;
    matmul_args a;
    memcpy(&a, c->pend, sizeof a);
    c->has_pend = 0;
    return matmul_dispatch(c, &a);
}

static int cuda_matmul(cl_backend *b, float *out, int64_t ldo, const float *x, int64_t ldx,
                       const cl_bweight *w, int64_t rows)
{
    cuda_ctx *c = cuda_of(b);
    if (rows <= 0)
        return CL_OK;
    if (c->n_held) /* ops held for fusion come first */
        CL_TRY(cuda_held_flush(c));
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
    if (w->dtype == CL_BF16)
        c->bf16_gemms = 1;
    if (c->has_pend) {
        matmul_args *p = (matmul_args *)c->pend;
        size_t es = cl_dtype_size((cl_dtype)p->dtype);
        if (p->x == a.x && p->ldx == a.ldx && p->rows == a.rows && p->K == a.K &&
            p->dtype == a.dtype && p->ldo == a.ldo && p->dtype != CL_F32 &&
            (const char *)p->w + (size_t)(p->N * p->K) * es == (const char *)a.w &&
            p->out + p->N == a.out) {
            p->N += a.N; /* one product now */
            return CL_OK;
        }
        CL_TRY(cuda_gemm_flush(c));
    }
    _Static_assert(sizeof(matmul_args) <= sizeof(((cuda_ctx *)0)->pend), "pend too small");
    memcpy(c->pend, &a, sizeof a);
    c->has_pend = 1;
    return CL_OK;
}

void cuda_gemm_ops(cl_backend_ops *o) { o->matmul = cuda_matmul; }
