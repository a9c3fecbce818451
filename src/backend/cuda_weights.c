/* cuda_weights.c - weight upload of the CUDA backend: 16-bit matrices packed back to
 * back in slabs (projections of one input then run as one product), fp32 vectors, and
 * random fills for models made in device memory. */
#include <stdlib.h>
#include <string.h>

#include "backend/cuda_internal.h"


#define SLAB_BYTES ((size_t)1 << 30)

/* Space for a 16-bit matrix in the current slab (256-byte aligned), or a new slab. */
static void *slab_alloc(cuda_ctx *c, size_t bytes)
{
    size_t off = (c->slab_off + 255) & ~(size_t)255;
    if (!c->n_slabs || off + bytes > c->slab_size) {
        size_t size = bytes > SLAB_BYTES ? bytes : SLAB_BYTES;
        void **l = realloc(c->slabs, (c->n_slabs + 1) * sizeof *l);
        if (!l)
            return NULL;
        c->slabs = l;
        void *p = NULL;
        if (cudaMalloc(&p, size) != cudaSuccess) {
            cudaGetLastError();
            /* the last slab of a model: exactly what is left to place */
            if (size == bytes || cudaMalloc(&p, bytes) != cudaSuccess) {
                cudaGetLastError();
                return NULL;
            }
            size = bytes;
        }
        c->slabs[c->n_slabs++] = p;
        c->slab_size = size;
        off = 0;
    }
    c->slab_off = off + bytes;
    return (char *)c->slabs[c->n_slabs - 1] + off;
}

static int cuda_weight_upload(cl_backend *b, const cl_tensor_view *t, int matrix, cl_bweight *out)
{
    cuda_ctx *c = cuda_of(b);
    CL_TRY(cuda_flush(c));
    memset(out, 0, sizeof *out);
    int64_t rows = t->rows, cols = t->cols, ld = t->ld ? t->ld : t->cols;
    size_t n = (size_t)(rows * cols);
    /* 16-bit checkpoints keep their type for matrices and the embedding table
     * (half the memory and bytes moved); vectors are fp32 for the kernels */
    int keep = (t->dtype == CL_BF16 || t->dtype == CL_F16) && (matrix || rows > 1);
    cl_dtype dt = keep ? t->dtype : CL_F32;
    size_t bytes = n * cl_dtype_size(dt), es = cl_dtype_size(t->dtype);
    void *p = NULL;
    int slab = matrix && keep && bytes > 0;
    if (slab ? !(p = slab_alloc(c, bytes)) : cudaMalloc(&p, bytes ? bytes : 1) != cudaSuccess) {
        cudaGetLastError();
        return cl_err(CL_ERR_NOMEM, "out of device memory for tensor '%s' (%zu bytes)", t->name,
                      bytes);
    }
    int rc = CL_OK;
    if ((keep || t->dtype == CL_F32) && ld == cols) {
        if (cudaMemcpy(p, t->data, bytes, cudaMemcpyHostToDevice) != cudaSuccess)
            rc = cl_err(CL_ERR_BACKEND, "copying tensor '%s' to the device: %s", t->name,
                        cudaGetErrorString(cudaGetLastError()));
    } else if (keep || t->dtype == CL_F32) { /* a column block of a larger matrix */
        if (cudaMemcpy2D(p, (size_t)cols * es, t->data, (size_t)ld * es, (size_t)cols * es,
                         (size_t)rows, cudaMemcpyHostToDevice) != cudaSuccess)
            rc = cl_err(CL_ERR_BACKEND, "copying tensor '%s' to the device: %s", t->name,
                        cudaGetErrorString(cudaGetLastError()));
    } else {
        float *tmp = malloc(bytes ? bytes : 1);
        if (!tmp) {
            rc = cl_err(CL_ERR_NOMEM, "out of memory converting tensor '%s'", t->name);
        } else {
            for (int64_t r = 0; r < rows; r++)
                cl_convert_to_f32(tmp + r * cols, (const char *)t->data + (size_t)(r * ld) * es,
                                  t->dtype, (size_t)cols);
            if (cudaMemcpy(p, tmp, bytes, cudaMemcpyHostToDevice) != cudaSuccess)
                rc = cl_err(CL_ERR_BACKEND, "copying tensor '%s' to the device: %s", t->name,
                            cudaGetErrorString(cudaGetLastError()));
            free(tmp);
        }
    }
    if (rc != CL_OK) {
        if (!slab)
            cudaFree(p);
        return rc;
    }
    *out = (cl_bweight){p, dt, rows, cols, !slab}; /* slab members go with the backend */
    return CL_OK;
}

static int cuda_weight_from_f32(cl_backend *b, const float *host, int64_t rows, int64_t cols,
                                cl_bweight *out)
{
    cuda_ctx *c = cuda_of(b);
    CL_TRY(cuda_flush(c));
    memset(out, 0, sizeof *out);
    size_t bytes = (size_t)(rows * cols) * sizeof(float);
    void *p = NULL;
    if (cudaMalloc(&p, bytes ? bytes : 1) != cudaSuccess) {
        cudaGetLastError();
        return cl_err(CL_ERR_NOMEM, "out of device memory (weights, %zu bytes)", bytes);
    }
    if (bytes && cudaMemcpy(p, host, bytes, cudaMemcpyHostToDevice) != cudaSuccess) {
        cudaFree(p);
        return cl_err(CL_ERR_BACKEND, "copying weights to the device: %s",
                      cudaGetErrorString(cudaGetLastError()));
    }
    *out = (cl_bweight){p, CL_F32, rows, cols, 1};
    return CL_OK;
}

static void cuda_weight_free(cl_backend *b, cl_bweight *w)
{
    if (w->owned && w->data) {
        cuda_flush(cuda_of(b));
        cudaFree(w->data);
    }
    memset(w, 0, sizeof *w);
}

static cl_dtype cuda_matrix_dtype(cl_backend *b, cl_dtype weights)
{
    (void)b;
    return weights == CL_BF16 || weights == CL_F16 ? weights : CL_F32;
}

static cl_dtype cuda_kv_dtype(cl_backend *b, cl_dtype weights)
{
    (void)b;
    return weights == CL_F32 ? CL_F32 : CL_BF16;
}

static int cuda_fill_random(cl_backend *b, void *dst, cl_dtype dtype, size_t n, uint64_t key,
                            uint64_t first, int kind, float a, float bias, cl_dtype round_to)
{
    /* stored in dtype: rounding through a 16-bit round_to is what storing does when
     * they agree; an fp32 buffer asked to hold 16-bit values is not needed here */
    if (round_to != CL_F32 && round_to != dtype)
        return cl_err(CL_ERR_UNSUPPORTED, "cuda fill_random: rounding %s values into %s",
                      cl_dtype_name(round_to), cl_dtype_name(dtype));
    cuda_ctx *c = cuda_of(b);
    CL_TRY(cuda_flush(c));
    CU_CHECK(kl_fill_random(dst, cuda_kdtype(dtype), (int64_t)n, key, first, kind, a, bias,
                            c->stream));
    return CL_OK;
}

void cuda_weight_ops(cl_backend_ops *o)
{
    o->weight_upload = cuda_weight_upload;
    o->weight_from_f32 = cuda_weight_from_f32;
    o->weight_free = cuda_weight_free;
    o->fill_random = cuda_fill_random;
    o->matrix_dtype = cuda_matrix_dtype;
    o->kv_dtype = cuda_kv_dtype;
}
