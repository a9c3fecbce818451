/* cuda_dense.c - the row-wise ops of the op table on the device: embedding,
 * RMSNorms, residual add, SwiGLU, RoPE, row gather, gated norms, argmax. Each
 * op packs its arguments (device pointers and sizes only) and dispatches them;
 * the kernels are in kernels/elementwise.cu, norm.cu and rope.cu. */
#include <string.h>

#include "backend/cuda_internal.h"

/* ------------------------------------------------------------------ embed */

typedef struct {
    float *out;
    const void *table;
    int dtype;
    int64_t dim;
    kl_batch kb;
} embed_args;

static int embed_run(cuda_ctx *c, const void *p)
{
    const embed_args *a = p;
    CU_LAUNCH(kl_embed(a->out, a->table, a->dtype, a->dim, a->kb.tokens, a->kb.n_tok, c->stream));
    return CL_OK;
}

static int cuda_embed(cl_backend *b, float *out, const cl_bweight *table, const cl_batch *batch)
{
    cuda_ctx *c = cuda_of(b);
    (void)batch;
    embed_args a;
    memset(&a, 0, sizeof a);
    a.out = out;
    a.table = table->data;
    a.dtype = cuda_kdtype(table->dtype);
    a.dim = table->cols;
    memcpy(&a.kb, &c->kb, sizeof a.kb); /* padding bytes too: args are compared bytewise */
    return cuda_dispatch(c, "embed", embed_run, &a, sizeof a);
}

/* ------------------------------------------------------------------ norms */

typedef struct {
    float *out;
    const float *x, *w, *z;
    int64_t ld, ldz, rows, heads, dim;
    float eps;
    int kind;   /* 0 rmsnorm, 1 head, 2 gated m2, 3 gated fla */
    void *out16; /* bf16 copy of the result for the next projection (or NULL) */
} norm_args;

static int norm_run(cuda_ctx *c, const void *p)
{
    const norm_args *a = p;
    int64_t cols = a->kind == 0 ? a->dim : a->heads * a->dim;
    switch (a->kind) {
    case 0:
        CU_LAUNCH(kl_rmsnorm(a->out, a->x, a->w, a->rows, a->dim, a->eps, a->out16, c->stream));
        break;
    case 1:
        CU_LAUNCH(kl_head_rmsnorm(a->out, a->ld, a->w, a->rows, a->heads, a->dim, a->eps,
                                  c->stream));
        break;
    case 2:
        CU_LAUNCH(kl_gated_norm_m2(a->out, a->z, a->ldz, a->w, a->rows, a->heads, a->dim, a->eps,
                                   a->out16, c->stream));
        break;
    default:
        CU_LAUNCH(kl_gated_norm_fla(a->out, a->z, a->ldz, a->w, a->rows, a->heads, a->dim,
                                    a->eps, a->out16, c->stream));
        break;
    }
    if (a->out16)
        cuda_act16_set(c, a->out, a->out16, a->rows, cols, cols);
    return CL_OK;
}

static int norm_dispatch(cl_backend *b, const char *name, norm_args *a)
{
    cuda_ctx *c = cuda_of(b);
    CL_TRY(cuda_gemm_flush(c)); /* before act16 may move */
    if (c->bf16_gemms && a->kind != 1) { /* the result feeds a bf16 projection */
        int64_t cols = a->kind == 0 ? a->dim : a->heads * a->dim;
        CL_TRY(cuda_buf_reserve(c, &c->act16, (size_t)(a->rows * cols) * 2));
        a->out16 = c->act16.p;
    }
    return cuda_dispatch(c, name, norm_run, a, sizeof *a);
}

static int cuda_rmsnorm(cl_backend *b, float *out, const float *x, const cl_bweight *w,
                        int64_t rows, int64_t dim, float eps)
{
    norm_args a;
    memset(&a, 0, sizeof a);
    a.out = out;
    a.x = x;
    a.w = w->data;
    a.rows = rows;
    a.dim = dim;
    a.eps = eps;
    a.kind = 0;
    return norm_dispatch(b, "rmsnorm", &a);
}

static int cuda_head_rmsnorm(cl_backend *b, float *x, int64_t ld, const cl_bweight *w,
                             int64_t rows, int64_t heads, int64_t dim, float eps)
{
    norm_args a;
    memset(&a, 0, sizeof a);
    a.out = x;
    a.ld = ld;
    a.w = w->data;
    a.rows = rows;
    a.heads = heads;
    a.dim = dim;
    a.eps = eps;
    a.kind = 1;
    return norm_dispatch(b, "head_rmsnorm", &a);
}

static int cuda_gated_norm_m2(cl_backend *b, float *y, const float *z, int64_t ldz,
                              const cl_bweight *w, int64_t rows, int64_t heads, int64_t dim,
                              float eps)
{
    norm_args a;
    memset(&a, 0, sizeof a);
    a.out = y;
    a.z = z;
    a.ldz = ldz;
    a.w = w->data;
    a.rows = rows;
    a.heads = heads;
    a.dim = dim;
    a.eps = eps;
    a.kind = 2;
    return norm_dispatch(b, "gated_norm_m2", &a);
}

static int cuda_gated_norm_fla(cl_backend *b, float *o, const float *g, int64_t ldg,
                               const cl_bweight *w, int64_t rows, int64_t heads, int64_t dim,
                               float eps)
{
    norm_args a;
    memset(&a, 0, sizeof a);
    a.out = o;
    a.z = g;
    a.ldz = ldg;
    a.w = w->data;
    a.rows = rows;
    a.heads = heads;
    a.dim = dim;
    a.eps = eps;
    a.kind = 3;
    return norm_dispatch(b, "gated_norm_fla", &a);
}

/* ------------------------------------------------------------ elementwise */

typedef struct {
    float *x;
    const float *y;
    int64_t n, rows, inter;
    int kind; /* 0 add, 1 swiglu */
    void *out16; /* swiglu: bf16 copy for the down projection (or NULL) */
} ew_args;

static int ew_run(cuda_ctx *c, const void *p)
{
    const ew_args *a = p;
    if (a->kind == 0) {
        CU_LAUNCH(kl_add(a->x, a->y, a->n, c->stream));
    } else {
        CU_LAUNCH(kl_swiglu(a->x, a->y, a->rows, a->inter, a->out16, c->stream));
        if (a->out16)
            cuda_act16_set(c, a->x, a->out16, a->rows, a->inter, a->inter);
    }
    return CL_OK;
}

static int cuda_add(cl_backend *b, float *x, const float *y, int64_t n)
{
    ew_args a;
    memset(&a, 0, sizeof a);
    a.x = x;
    a.y = y;
    a.n = n;
    return cuda_dispatch(cuda_of(b), "add", ew_run, &a, sizeof a);
}

static int cuda_swiglu(cl_backend *b, float *out, const float *gu, int64_t rows, int64_t inter)
{
    ew_args a;
    memset(&a, 0, sizeof a);
    a.x = out;
    a.y = gu;
    a.rows = rows;
    a.inter = inter;
    a.kind = 1;
    cuda_ctx *c = cuda_of(b);
    CL_TRY(cuda_gemm_flush(c)); /* before act16 may move */
    if (c->bf16_gemms) {
        CL_TRY(cuda_buf_reserve(c, &c->act16, (size_t)(rows * inter) * 2));
        a.out16 = c->act16.p;
    }
    return cuda_dispatch(c, "swiglu", ew_run, &a, sizeof a);
}

typedef struct {
    float *x;
    int64_t ld, heads, dim;
    double theta;
    kl_batch kb;
} rope_args;

static int rope_run(cuda_ctx *c, const void *p)
{
    const rope_args *a = p;
    CU_LAUNCH(kl_rope(a->x, a->ld, a->kb.positions, a->kb.n_tok, a->heads, a->dim, a->theta,
                      c->stream));
    return CL_OK;
}

static int cuda_rope(cl_backend *b, float *x, int64_t ld, const cl_batch *batch, int64_t heads,
                     int64_t dim, double theta)
{
    cuda_ctx *c = cuda_of(b);
    (void)batch;
    rope_args a;
    memset(&a, 0, sizeof a);
    a.x = x;
    a.ld = ld;
    a.heads = heads;
    a.dim = dim;
    a.theta = theta;
    memcpy(&a.kb, &c->kb, sizeof a.kb); /* padding bytes too: args are compared bytewise */
    return cuda_dispatch(c, "rope", rope_run, &a, sizeof a);
}

/* ------------------------------------------------------------------ gather */

typedef struct {
    float *out;
    const float *x;
    int64_t cols, n;
    const int64_t *rows_dev; /* NULL: x is already the first row of a contiguous range */
} gather_args;

static int gather_run(cuda_ctx *c, const void *p)
{
    const gather_args *a = p;
    if (!a->rows_dev) {
        if (a->out != a->x)
            CU_CHECK(cudaMemcpyAsync(a->out, a->x, (size_t)(a->n * a->cols) * sizeof(float),
                                     cudaMemcpyDeviceToDevice, c->stream));
        return CL_OK;
    }
    CU_LAUNCH(kl_gather_rows(a->out, a->x, a->cols, a->rows_dev, a->n, c->stream));
    return CL_OK;
}

static int cuda_gather_rows(cl_backend *b, float *out, const float *x, int64_t cols,
                            const int64_t *rows_host, int64_t n)
{
    cuda_ctx *c = cuda_of(b);
    gather_args a;
    memset(&a, 0, sizeof a);
    a.out = out;
    a.cols = cols;
    a.n = n;
    int contiguous = n > 0;
    for (int64_t i = 1; i < n && contiguous; i++)
        contiguous = rows_host[i] == rows_host[0] + i;
    if (contiguous) {
        const float *src = x + rows_host[0] * cols;
        /* overlapping ranges (the CPU's memmove) are not expected in a forward */
        if (src != out && src < out + n * cols && out < src + n * cols)
            contiguous = 0;
        a.x = src;
    }
    if (!contiguous) { /* an index list from the host: not part of a graph */
        CL_TRY(cuda_flush(c));
        CL_TRY(cuda_buf_reserve(c, &c->idx, (size_t)n * sizeof(int64_t)));
        const void *parts[1] = {rows_host};
        size_t sz[1] = {(size_t)n * sizeof(int64_t)};
        CL_TRY(cuda_upload(c, c->idx.p, parts, sz, 1));
        a.x = x;
        a.rows_dev = c->idx.p;
        if (n > 0 && out < x + cols * n && x < out + cols * n) {
            /* in place: gather through a scratch copy */
            CL_TRY(cuda_buf_reserve(c, &c->attn_part, (size_t)(n * cols) * sizeof(float)));
            a.out = c->attn_part.p;
            CL_TRY(cuda_dispatch(c, "gather_rows", gather_run, &a, sizeof a));
            CU_CHECK(cudaMemcpyAsync(out, c->attn_part.p, (size_t)(n * cols) * sizeof(float),
                                     cudaMemcpyDeviceToDevice, c->stream));
            return CL_OK;
        }
    }
    return cuda_dispatch(c, "gather_rows", gather_run, &a, sizeof a);
}

/* ------------------------------------------------------------------ argmax */

typedef struct {
    int32_t *ids;
    const float *logits;
    int64_t rows, V;
} argmax_args;

static int argmax_run(cuda_ctx *c, const void *p)
{
    const argmax_args *a = p;
    CU_LAUNCH(kl_argmax(a->ids, a->logits, a->rows, a->V, c->stream));
    return CL_OK;
}

static int cuda_argmax(cl_backend *b, int32_t *ids_host, const float *logits, int64_t rows,
                       int64_t V)
{
    cuda_ctx *c = cuda_of(b);
    if (rows <= 0)
        return CL_OK;
    if ((size_t)rows > c->ids_cap) {
        CL_TRY(cuda_flush(c));
        CU_CHECK(cudaStreamSynchronize(c->stream));
        cudaFree(c->ids_dev);
        if (c->ids_pinned)
            cudaFreeHost(c->ids_pinned);
        c->ids_dev = NULL;
        c->ids_pinned = NULL;
        c->ids_cap = 0;
        CU_CHECK(cudaMalloc((void **)&c->ids_dev, (size_t)rows * sizeof(int32_t)));
        CU_CHECK(cudaMallocHost((void **)&c->ids_pinned, (size_t)rows * sizeof(int32_t)));
        c->ids_cap = (size_t)rows;
    }
    argmax_args a = {c->ids_dev, logits, rows, V};
    CL_TRY(cuda_dispatch(c, "argmax", argmax_run, &a, sizeof a));
    CL_TRY(cuda_flush(c));
    CU_CHECK(cudaMemcpyAsync(c->ids_pinned, c->ids_dev, (size_t)rows * sizeof(int32_t),
                             cudaMemcpyDeviceToHost, c->stream));
    CU_CHECK(cudaStreamSynchronize(c->stream));
    memcpy(ids_host, c->ids_pinned, (size_t)rows * sizeof(int32_t));
    return CL_OK;
}

void cuda_dense_ops(cl_backend_ops *o)
{
    o->embed = cuda_embed;
    o->rmsnorm = cuda_rmsnorm;
    o->head_rmsnorm = cuda_head_rmsnorm;
    o->add = cuda_add;
    o->swiglu = cuda_swiglu;
    o->rope = cuda_rope;
    o->gather_rows = cuda_gather_rows;
    o->gated_norm_m2 = cuda_gated_norm_m2;
    o->gated_norm_fla = cuda_gated_norm_fla;
    o->argmax = cuda_argmax;
}
