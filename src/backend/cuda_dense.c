/* cuda_dense.c - the row-wise ops of the op table on the device: embedding,
 * RMSNorms, residual add, SwiGLU, RoPE, row gather, gated norms, argmax. Each
 * op packs its arguments (device pointers and sizes only) and dispatches them;
 * the kernels are in kernels/elementwise.cu, norm.cu and rope.cu.
 *
 * Fusion (COLLAGE_CUDA_FUSE, default on): forward.c calls one op per step, and
 * at decode each op is a launch of a few us for a few KB. Some ops are held
 * back instead of dispatched: a residual add (the RMSNorm after it, when it
 * normalises the sum, becomes one add+norm kernel), and the q/k head norms and
 * RoPEs of an attention layer (the attention op then runs them with its KV
 * append, cuda_take_qk). Any other op, a matmul or a flush dispatches the
 * held ops first, unchanged and in order. */
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

/* ------------------------------------------------------------------ held ops */

/* x += y (n values); held for fusion with the RMSNorm after it (cuda_rmsnorm). */
typedef struct {
    float *x;
    const float *y;
    int64_t n;
} add_args;

typedef struct {
    float *x;
    int64_t ld, heads, dim;
    double theta;
    kl_batch kb;
} rope_args;

int cuda_held_flush(cuda_ctx *c)
{
    int n = c->n_held;
    c->n_held = 0; /* cuda_dispatch below must not flush them again */
    for (int i = 0; i < n; i++) {
        const cuda_held_op *h = &c->held[i];
        CL_TRY(cuda_dispatch(c, h->name, h->fn, h->args, h->size));
    }
    return CL_OK;
}

/* Holds an op (after dispatching a held projection, so that order is kept). */
static int hold(cuda_ctx *c, int kind, const char *name, cuda_run_fn fn, const void *args,
                size_t size)
{
    CL_TRY(cuda_gemm_flush(c));
    if (c->n_held == CUDA_HELD_MAX || size > CUDA_HELD_BYTES)
        CL_TRY(cuda_held_flush(c));
    if (size > CUDA_HELD_BYTES)
        return cuda_dispatch(c, name, fn, args, size);
    cuda_held_op *h = &c->held[c->n_held++];
    h->fn = fn;
    h->name = name;
    h->size = size;
    h->kind = kind;
    memcpy(h->args, args, size);
    return CL_OK;
}

/* ------------------------------------------------------------------ norms */

/* The norms of the op table, and the residual add fused with the RMSNorm after it. */
typedef enum {
    NORM_RMS,       /* out = rmsnorm(x) * w, rows of dim */
    NORM_HEAD,      /* in place on rows x heads vectors of dim at row stride ld */
    NORM_GATED_M2,  /* Mamba2: out = rmsnorm_head(out * silu(gate)) * w */
    NORM_GATED_FLA, /* GDN/GKA: out = rmsnorm_head(out) * w * gate * sigmoid(gate) */
    NORM_ADD_RMS,   /* x += addend, then out = rmsnorm(x) * w */
} norm_kind;

typedef struct {
    float *out;
    const float *x, *w;
    const float *gate;    /* NORM_GATED_*: gate rows at stride ld_gate */
    int64_t ld, ld_gate, rows, heads, dim;
    float eps;
    norm_kind kind;
    void *out16;          /* bf16 copy of the result for the next projection (or NULL) */
    const float *addend;  /* NORM_ADD_RMS: added to x first */
} norm_args;

/* Columns of a norm's result rows. */
static int64_t norm_cols(const norm_args *a)
{
    return a->kind == NORM_RMS || a->kind == NORM_ADD_RMS ? a->dim : a->heads * a->dim;
}

static int norm_run(cuda_ctx *c, const void *p)
{
    const norm_args *a = p;
    int64_t cols = norm_cols(a);
    cudaError_t e;
    switch (a->kind) {
    case NORM_ADD_RMS:
        /* the residual stream x is the add's output: writable (const only in norm_args) */
        e = kl_add_rmsnorm((float *)a->x, a->addend, a->out, a->w, a->rows, a->dim, a->eps,
                           a->out16, c->stream);
        if (e != cudaErrorNotSupported) {
            CU_LAUNCH(e);
            break;
        }
        cudaGetLastError();
        CU_LAUNCH(kl_add((float *)a->x, a->addend, a->rows * a->dim, c->stream));
        CU_LAUNCH(kl_rmsnorm(a->out, a->x, a->w, a->rows, a->dim, a->eps, a->out16, c->stream));
        break;
    case NORM_RMS:
        CU_LAUNCH(kl_rmsnorm(a->out, a->x, a->w, a->rows, a->dim, a->eps, a->out16, c->stream));
        break;
    case NORM_HEAD:
        CU_LAUNCH(kl_head_rmsnorm(a->out, a->ld, a->w, a->rows, a->heads, a->dim, a->eps,
                                  c->stream));
        break;
    case NORM_GATED_M2:
        CU_LAUNCH(kl_gated_norm_m2(a->out, a->gate, a->ld_gate, a->w, a->rows, a->heads, a->dim,
                                   a->eps, a->out16, c->stream));
        break;
    case NORM_GATED_FLA:
        CU_LAUNCH(kl_gated_norm_fla(a->out, a->gate, a->ld_gate, a->w, a->rows, a->heads, a->dim,
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
    if (c->bf16_gemms && a->kind != NORM_HEAD) { /* the result feeds a bf16 projection */
        int64_t cols = norm_cols(a);
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
    a.kind = NORM_RMS;
    cuda_ctx *c = cuda_of(b);
    if (c->n_held == 1 && c->held[0].kind == CUDA_HELD_ADD) {
        const add_args *ad = (const add_args *)c->held[0].args;
        if (ad->x == x && ad->n == rows * dim && out != x) {
            /* this norm reads the sum the held add makes: one pass for both */
            a.kind = NORM_ADD_RMS;
            a.addend = ad->y;
            c->n_held = 0;
            return norm_dispatch(b, "add_rmsnorm", &a);
        }
    }
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
    a.kind = NORM_HEAD;
    cuda_ctx *c = cuda_of(b);
    /* q and k norms of an attention layer: held for cuda_take_qk */
    if (c->fuse && (c->n_held == 0 || (c->n_held == 1 && c->held[0].kind == CUDA_HELD_HEAD_NORM)))
        return hold(c, CUDA_HELD_HEAD_NORM, "head_rmsnorm", norm_run, &a, sizeof a);
    return norm_dispatch(b, "head_rmsnorm", &a);
}

static int cuda_gated_norm_m2(cl_backend *b, float *y, const float *z, int64_t ldz,
                              const cl_bweight *w, int64_t rows, int64_t heads, int64_t dim,
                              float eps)
{
    norm_args a;
    memset(&a, 0, sizeof a);
    a.out = y;
    a.gate = z;
    a.ld_gate = ldz;
    a.w = w->data;
    a.rows = rows;
    a.heads = heads;
    a.dim = dim;
    a.eps = eps;
    a.kind = NORM_GATED_M2;
    return norm_dispatch(b, "gated_norm_m2", &a);
}

static int cuda_gated_norm_fla(cl_backend *b, float *o, const float *g, int64_t ldg,
                               const cl_bweight *w, int64_t rows, int64_t heads, int64_t dim,
                               float eps)
{
    norm_args a;
    memset(&a, 0, sizeof a);
    a.out = o;
    a.gate = g;
    a.ld_gate = ldg;
    a.w = w->data;
    a.rows = rows;
    a.heads = heads;
    a.dim = dim;
    a.eps = eps;
    a.kind = NORM_GATED_FLA;
    return norm_dispatch(b, "gated_norm_fla", &a);
}

/* ------------------------------------------------------------ elementwise */

/* out[t, i] = silu(gu[t, i]) * gu[t, inter + i] */
typedef struct {
    float *out;
    const float *gu;
    int64_t rows, inter;
    void *out16; /* bf16 copy for the down projection (or NULL) */
} swiglu_args;

static int add_run(cuda_ctx *c, const void *p)
{
    const add_args *a = p;
    CU_LAUNCH(kl_add(a->x, a->y, a->n, c->stream));
    return CL_OK;
}

static int swiglu_run(cuda_ctx *c, const void *p)
{
    const swiglu_args *a = p;
    CU_LAUNCH(kl_swiglu(a->out, a->gu, a->rows, a->inter, a->out16, c->stream));
    if (a->out16)
        cuda_act16_set(c, a->out, a->out16, a->rows, a->inter, a->inter);
    return CL_OK;
}

static int cuda_add(cl_backend *b, float *x, const float *y, int64_t n)
{
    add_args a;
    memset(&a, 0, sizeof a);
    a.x = x;
    a.y = y;
    a.n = n;
    cuda_ctx *c = cuda_of(b);
    if (c->fuse) { /* the RMSNorm after a residual add usually reads the sum */
        if (c->n_held)
            CL_TRY(cuda_held_flush(c));
        return hold(c, CUDA_HELD_ADD, "add", add_run, &a, sizeof a);
    }
    return cuda_dispatch(c, "add", add_run, &a, sizeof a);
}

static int cuda_swiglu(cl_backend *b, float *out, const float *gu, int64_t rows, int64_t inter)
{
    swiglu_args a;
    memset(&a, 0, sizeof a);
    a.out = out;
    a.gu = gu;
    a.rows = rows;
    a.inter = inter;
    cuda_ctx *c = cuda_of(b);
    CL_TRY(cuda_gemm_flush(c)); /* before act16 may move */
    if (c->bf16_gemms) {
        CL_TRY(cuda_buf_reserve(c, &c->act16, (size_t)(rows * inter) * 2));
        a.out16 = c->act16.p;
    }
    return cuda_dispatch(c, "swiglu", swiglu_run, &a, sizeof a);
}

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
    if (c->fuse && (c->n_held == 2 || c->n_held == 3) &&
        c->held[0].kind == CUDA_HELD_HEAD_NORM && c->held[1].kind == CUDA_HELD_HEAD_NORM)
        return hold(c, CUDA_HELD_ROPE, "rope", rope_run, &a, sizeof a);
    return cuda_dispatch(c, "rope", rope_run, &a, sizeof a);
}

int cuda_take_qk(cuda_ctx *c, const float *q, int64_t ld, int64_t rows, int64_t Hq, int64_t Hkv,
                 int64_t D, cuda_qk_fuse *f)
{
    if (c->n_held != 4 || c->held[0].kind != CUDA_HELD_HEAD_NORM ||
        c->held[1].kind != CUDA_HELD_HEAD_NORM || c->held[2].kind != CUDA_HELD_ROPE ||
        c->held[3].kind != CUDA_HELD_ROPE || !(D == 32 || D == 64 || D == 128 || D == 256))
        return 0;
    const norm_args *nq = (const norm_args *)c->held[0].args;
    const norm_args *nk = (const norm_args *)c->held[1].args;
    const rope_args *rq = (const rope_args *)c->held[2].args;
    const rope_args *rk = (const rope_args *)c->held[3].args;
    const float *k = q + Hq * D;
    if (nq->out != q || nq->ld != ld || nq->rows != rows || nq->heads != Hq || nq->dim != D ||
        nk->out != k || nk->ld != ld || nk->rows != rows || nk->heads != Hkv || nk->dim != D ||
        nk->eps != nq->eps || rq->x != q || rq->ld != ld || rq->heads != Hq || rq->dim != D ||
        rk->x != k || rk->ld != ld || rk->heads != Hkv || rk->dim != D ||
        rk->theta != rq->theta || rq->kb.n_tok != rows || rk->kb.n_tok != rows)
        return 0;
    memset(f, 0, sizeof *f);
    f->wq = nq->w;
    f->wk = nk->w;
    f->eps = nq->eps;
    f->theta = rq->theta;
    c->n_held = 0;
    return 1;
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
