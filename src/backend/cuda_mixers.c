/* cuda_mixers.c - attention and the SSM layers on the device: argument packing,
 * scratch sizing (done when the op is called, so a recorded decode step carries
 * the scratch pointers it will use), and the choice of kernel: decode kernels
 * for batches of one token per sequence, chunked forms otherwise. Kernels in
 * kernels/attention*.cu, conv.cu, mamba2.cu, gdn.cu, gka.cu. */
#include <string.h>

#include "backend/cuda_internal.h"

/* Argument structs are filled in place, never returned by value: a recorded
 * decode step is matched by its argument bytes, and a struct copy need not
 * carry its padding bytes (a copied kl_mix made every step look new). */
static void mix_fill(kl_mix *m, const cl_mixer_params *p)
{
    memset(m, 0, sizeof *m);
    m->n_heads = p->n_heads;
    m->n_kv_heads = p->n_kv_heads;
    m->head_dim = p->head_dim;
    m->scale = p->scale;
    m->window = p->window;
    m->allow_neg_eigval = p->allow_neg_eigval;
    m->num_iter = p->num_iter;
    m->ridge = p->ridge_strength;
    m->use_alpha = p->use_alpha;
}

static void ssm_fill(kl_ssm *k, const cl_ssm_layer *s)
{
    memset(k, 0, sizeof *k);
    k->conv = s->conv;
    k->state = s->state;
    k->state2 = s->state2;
    k->log_decay = s->log_decay;
    k->trans = s->trans;
    k->conv_channels = s->conv_channels;
    k->conv_width = s->conv_width;
    k->n_heads = s->n_heads;
    k->head_dim = s->head_dim;
}

/* The batch as the kernels see it, byte for byte (padding included). */
static void kb_fill(kl_batch *dst, const cuda_ctx *c) { memcpy(dst, &c->kb, sizeof *dst); }

static const float *wptr(const cl_bweight *w) { return w && w->data ? w->data : NULL; }

/* -------------------------------------------------------------- attention */

typedef struct {
    float *out;
    const float *q, *k, *v;
    int64_t ldq, ldk;
    kl_kv kv;
    kl_batch kb;
    kl_mix mix;
    float *partial;
    int n_split;
    int fused;        /* 1: q/k norms + RoPE + KV append in one kernel (qk below) */
    int pad_;
    cuda_qk_fuse qk;
} attn_args;

static int attn_run(cuda_ctx *c, const void *p)
{
    const attn_args *a = p;
    if (a->fused) {
        /* q, k, v rows are the projection's output (writable; const in attn_args only) */
        float *q = (float *)a->q;
        int64_t D = a->mix.head_dim, T = a->kb.n_tok;
        cudaError_t e = kl_qk_prep(q, a->ldq, a->qk.wq, a->qk.wk, T, a->mix.n_heads,
                                   a->mix.n_kv_heads, D, a->qk.eps, a->qk.theta, &a->kv, &a->kb,
                                   c->stream);
        if (e == cudaErrorNotSupported) { /* the five unfused kernels */
            cudaGetLastError();
            float *k = (float *)a->k;
            CU_LAUNCH(kl_head_rmsnorm(q, a->ldq, a->qk.wq, T, a->mix.n_heads, D, a->qk.eps,
                                      c->stream));
            CU_LAUNCH(kl_head_rmsnorm(k, a->ldq, a->qk.wk, T, a->mix.n_kv_heads, D, a->qk.eps,
                                      c->stream));
            CU_LAUNCH(kl_rope(q, a->ldq, a->kb.positions, T, a->mix.n_heads, D, a->qk.theta,
                              c->stream));
            CU_LAUNCH(kl_rope(k, a->ldq, a->kb.positions, T, a->mix.n_kv_heads, D, a->qk.theta,
                              c->stream));
            e = kl_kv_append(&a->kv, a->k, a->v, a->ldk, &a->kb, c->stream);
        }
        CU_LAUNCH(e);
        KL_MARK("attention.qk_prep");
    } else {
        CU_LAUNCH(kl_kv_append(&a->kv, a->k, a->v, a->ldk, &a->kb, c->stream));
        KL_MARK("attention.append");
    }
    if (a->kb.decode) {
        cudaError_t e = kl_attn_decode(a->out, a->q, a->ldq, &a->kv, &a->kb, &a->mix, a->partial,
                                       a->n_split, c->stream);
        if (e != cudaErrorNotSupported) {
            CU_LAUNCH(e);
            return CL_OK;
        }
        cudaGetLastError();
    } else if (a->kv.dtype == KL_BF16) {
        cudaError_t e = kl_attn_prefill_mma(a->out, a->q, a->ldq, &a->kv, &a->kb, &a->mix,
                                            c->stream);
        if (e != cudaErrorNotSupported) {
            CU_LAUNCH(e);
            return CL_OK;
        }
        cudaGetLastError();
    }
    CU_LAUNCH(kl_attn_prefill(a->out, a->q, a->ldq, &a->kv, &a->kb, &a->mix, c->stream));
    return CL_OK;
}

static int cuda_attention(cl_backend *b, float *out, const float *q, int64_t ldq, const float *k,
                          const float *v, int64_t ldk, const cl_kv_layer *kv,
                          const cl_batch *batch, const cl_mixer_params *p)
{
    cuda_ctx *c = cuda_of(b);
    (void)batch;
    CL_TRY(cuda_batch_blocks(c, kv->page_tokens));
    attn_args a;
    memset(&a, 0, sizeof a);
    a.out = out;
    a.q = q;
    a.k = k;
    a.v = v;
    a.ldq = ldq;
    a.ldk = ldk;
    a.kv.k = kv->k;
    a.kv.v = kv->v;
    a.kv.page_tokens = kv->page_tokens;
    a.kv.n_kv_heads = kv->n_kv_heads;
    a.kv.head_dim = kv->head_dim;
    a.kv.dtype = cuda_kdtype(kv->kv_dtype);
    kb_fill(&a.kb, c);
    mix_fill(&a.mix, p);
    /* the held q/k norms and RoPEs of this layer run fused with the KV append */
    if (c->n_held && ldk == ldq && k == q + p->n_heads * p->head_dim &&
        v == k + p->n_kv_heads * p->head_dim && kv->head_dim == p->head_dim &&
        kv->n_kv_heads == p->n_kv_heads &&
        cuda_take_qk(c, q, ldq, c->kb.n_tok, p->n_heads, p->n_kv_heads, p->head_dim, &a.qk))
        a.fused = 1;
    if (c->kb.decode) {
        if (kl_attn_decode_prepare(&a.kv, &a.mix) == cudaErrorNotSupported)
            return cl_err(CL_ERR_UNSUPPORTED,
                          "cuda attention decode: head_dim %lld with %lld query heads per KV head "
                          "is not yet supported (head_dim 32/64/128/256, groups 1-4, 6, 8, 16)",
                          (long long)p->head_dim, (long long)(p->n_heads / p->n_kv_heads));
        CU_CHECK(kl_attn_decode_prepare(&a.kv, &a.mix));
        a.n_split = kl_attn_decode_splits(c->kb.n_seq, p->n_kv_heads, c->sm_count);
        size_t bytes = (size_t)c->kb.n_seq * (size_t)p->n_heads * (size_t)a.n_split *
                       (size_t)(p->head_dim + 2) * sizeof(float);
        CL_TRY(cuda_buf_reserve(c, &c->attn_part, bytes));
        a.partial = c->attn_part.p;
    }
    return cuda_dispatch(c, "attention", attn_run, &a, sizeof a);
}

/* ------------------------------------------------------------------- conv */

typedef struct {
    float *out;
    const float *x, *w, *bias;
    int64_t ldx;
    kl_ssm s;
    kl_batch kb;
} conv_args;

static int conv_run(cuda_ctx *c, const void *p)
{
    const conv_args *a = p;
    CU_LAUNCH(kl_conv1d(a->out, a->x, a->ldx, a->w, a->bias, &a->s, &a->kb, c->stream));
    return CL_OK;
}

static int cuda_conv1d(cl_backend *b, float *out, const float *x, int64_t ldx,
                       const cl_bweight *w, const cl_bweight *bias, const cl_ssm_layer *s,
                       const cl_batch *batch)
{
    cuda_ctx *c = cuda_of(b);
    (void)batch;
    conv_args a;
    memset(&a, 0, sizeof a);
    a.out = out;
    a.x = x;
    a.ldx = ldx;
    a.w = w->data;
    a.bias = wptr(bias);
    ssm_fill(&a.s, s);
    kb_fill(&a.kb, c);
    return cuda_dispatch(c, "conv1d", conv_run, &a, sizeof a);
}

/* -------------------------------------------------------------------- SSM */

/* The first member of every SSM op's arguments. */
typedef struct {
    float *out;          /* y [T, Hq*D] (M2) / o [T, H*D] */
    const float *in;     /* post-conv rows: M2 xbc = x | B | C; GDN/GKA q | k | v */
    int64_t ld_gate;     /* row stride of the per-head gate inputs (M2 lddt, GDN/GKA ldg) */
    kl_ssm s;
    kl_batch kb;
    kl_mix mix;
    void *scratch;       /* the chunked forms' scratch (NULL for decode batches) */
} ssm_common;

typedef struct {
    ssm_common c;
    const float *dt_raw;                  /* [T, H] at ld_gate */
    const float *dt_bias, *a_log, *d_skip; /* [H] each */
} m2_args;

typedef struct {
    ssm_common c;
    const float *beta_raw, *gk_raw; /* [T, H] at ld_gate */
    const float *a_log, *dt_bias;   /* [H] each */
} gdn_args;

typedef struct {
    ssm_common c;
    const float *a_raw, *b_raw, *alpha_raw;              /* [T, H] at ld_gate */
    const float *b_bias, *alpha_bias, *a_log, *dt_bias; /* [H] each (alpha_bias NULL
                                                            without the alpha blend) */
} gka_args;

/* Fills the parts every SSM op has; the caller zeroes its whole op struct first
 * (recorded decode steps are matched by their argument bytes, padding included). */
static void ssm_common_fill(ssm_common *a, cuda_ctx *c, float *out, const float *in,
                            int64_t ld_gate, const cl_ssm_layer *s, const cl_mixer_params *p)
{
    a->out = out;
    a->in = in;
    a->ld_gate = ld_gate;
    ssm_fill(&a->s, s);
    kb_fill(&a->kb, c);
    mix_fill(&a->mix, p);
}

/* The SSM kernels have decode forms for head dims 32, 64 and 128 only; any other
 * would launch nothing at decode (kl_mamba2 / kl_gdn return success for a decode
 * batch they have no kernel for), so it is refused for every batch. */
static int ssm_head_dim(const char *op, int64_t D)
{
    if (D == 32 || D == 64 || D == 128)
        return CL_OK;
    return cl_err(CL_ERR_UNSUPPORTED,
                  "cuda %s: head_dim %lld is not yet supported (32, 64 or 128)", op,
                  (long long)D);
}

/* Chunked (prefill) batches need scratch: `floats` of it, sized when the op is called. */
static int ssm_scratch(cuda_ctx *c, ssm_common *a, size_t floats)
{
    if (c->kb.decode || c->kb.n_chunks <= 0)
        return CL_OK;
    CL_TRY(cuda_buf_reserve(c, &c->ssm, floats * sizeof(float)));
    a->scratch = c->ssm.p;
    return CL_OK;
}

static int m2_run(cuda_ctx *c, const void *p)
{
    const m2_args *a = p;
    CU_LAUNCH(kl_mamba2(a->c.out, a->c.in, a->dt_raw, a->c.ld_gate, a->dt_bias, a->a_log,
                        a->d_skip, &a->c.s, &a->c.kb, &a->c.mix, a->c.scratch, c->stream));
    return CL_OK;
}

static int gdn_run(cuda_ctx *c, const void *p)
{
    const gdn_args *a = p;
    CU_LAUNCH(kl_gdn(a->c.out, a->c.in, a->beta_raw, a->gk_raw, a->c.ld_gate, a->a_log,
                     a->dt_bias, &a->c.s, &a->c.kb, &a->c.mix, a->c.scratch, c->stream));
    return CL_OK;
}

static int gka_run(cuda_ctx *c, const void *p)
{
    const gka_args *a = p;
    CU_LAUNCH(kl_gka(a->c.out, a->c.in, a->a_raw, a->b_raw, a->alpha_raw, a->c.ld_gate,
                     a->b_bias, a->alpha_bias, a->a_log, a->dt_bias, &a->c.s, &a->c.kb,
                     &a->c.mix, a->c.scratch, c->stream));
    return CL_OK;
}

static int cuda_mamba2(cl_backend *b, float *y, const float *xbc, const float *dt_raw,
                       int64_t lddt, const cl_bweight *dt_bias, const cl_bweight *a_log,
                       const cl_bweight *d_skip, const cl_ssm_layer *s, const cl_batch *batch,
                       const cl_mixer_params *p)
{
    cuda_ctx *c = cuda_of(b);
    (void)batch;
    CL_TRY(ssm_head_dim("mamba2", p->head_dim));
    m2_args a;
    memset(&a, 0, sizeof a);
    ssm_common_fill(&a.c, c, y, xbc, lddt, s, p);
    a.dt_raw = dt_raw;
    a.dt_bias = wptr(dt_bias);
    a.a_log = wptr(a_log);
    a.d_skip = wptr(d_skip);
    CL_TRY(ssm_scratch(c, &a.c, kl_m2_scratch_floats(c->kb.n_chunks, p->n_heads, p->head_dim)));
    return cuda_dispatch(c, "mamba2", m2_run, &a, sizeof a);
}

static int cuda_gdn(cl_backend *b, float *o, const float *qkv, const float *beta_raw,
                    const float *gk_raw, int64_t ldg, const cl_bweight *a_log,
                    const cl_bweight *dt_bias, const cl_ssm_layer *s, const cl_batch *batch,
                    const cl_mixer_params *p)
{
    cuda_ctx *c = cuda_of(b);
    (void)batch;
    CL_TRY(ssm_head_dim("gdn", p->head_dim));
    gdn_args a;
    memset(&a, 0, sizeof a);
    ssm_common_fill(&a.c, c, o, qkv, ldg, s, p);
    a.beta_raw = beta_raw;
    a.gk_raw = gk_raw;
    a.a_log = wptr(a_log);
    a.dt_bias = wptr(dt_bias);
    CL_TRY(ssm_scratch(c, &a.c, kl_gdn_scratch_floats(c->kb.n_chunks, p->n_heads, p->head_dim)));
    return cuda_dispatch(c, "gdn", gdn_run, &a, sizeof a);
}

static int cuda_gka(cl_backend *b, float *o, const float *qkv, const float *a_raw,
                    const float *b_raw, const float *alpha_raw, int64_t ldg,
                    const cl_bweight *b_bias, const cl_bweight *alpha_bias,
                    const cl_bweight *a_log, const cl_bweight *dt_bias, const cl_ssm_layer *s,
                    const cl_batch *batch, const cl_mixer_params *p)
{
    cuda_ctx *c = cuda_of(b);
    (void)batch;
    CL_TRY(ssm_head_dim("gka", p->head_dim));
    gka_args a;
    memset(&a, 0, sizeof a);
    ssm_common_fill(&a.c, c, o, qkv, ldg, s, p);
    a.a_raw = a_raw;
    a.b_raw = b_raw;
    a.alpha_raw = alpha_raw;
    a.b_bias = wptr(b_bias);
    a.alpha_bias = p->use_alpha ? wptr(alpha_bias) : NULL;
    a.a_log = wptr(a_log);
    a.dt_bias = wptr(dt_bias);
    CL_TRY(ssm_scratch(c, &a.c, kl_gka_scratch_floats(c->kb.n_chunks, p->n_heads, p->head_dim,
                                                      p->num_iter)));
    return cuda_dispatch(c, "gka", gka_run, &a, sizeof a);
}

void cuda_mixer_ops(cl_backend_ops *o)
{
    o->attention = cuda_attention;
    o->conv1d = cuda_conv1d;
    o->mamba2 = cuda_mamba2;
    o->gdn = cuda_gdn;
    o->gka = cuda_gka;
}
