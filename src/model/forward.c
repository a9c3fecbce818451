/* forward.c - embed -> for each layer: RMSNorm -> mixer -> residual -> RMSNorm ->
 * SwiGLU MLP -> residual -> final norm -> lm_head (spec MODEL.md §4-9). */
#include "model/forward.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/status.h"

/* Widths of the per-row scratch regions. */
typedef struct {
    int64_t dm, a, bw, c;
} widths;

static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

/* Row layout of the GDN/GKA projection buffer:
 * q | k | v | gate (H*D) | beta (H) | decay (H) | alpha (H) */
static int64_t lin_width(const cl_config *c)
{
    int64_t D = c->head_dim, H = c->num_heads;
    return (c->num_heads + 2 * c->num_kv_heads) * D + H * D + 3 * H;
}

static widths scratch_widths(const cl_config *c)
{
    int64_t D = c->head_dim, qkv = (c->num_heads + 2 * c->num_kv_heads) * D;
    widths w;
    w.dm = c->hidden_size;
    w.a = max64(2 * c->intermediate_size, qkv);
    w.a = max64(w.a, lin_width(c));
    if (c->n_ssm_layers)
        w.a = max64(w.a, 2 * c->m2.d_inner + 2 * c->m2.d_xb + c->m2.nheads);
    w.bw = max64(c->intermediate_size, qkv);
    w.bw = max64(w.bw, c->m2.conv_dim);
    w.c = max64(c->num_heads * D, c->hidden_size);
    return w;
}

static int ensure_scratch(cl_model *m, size_t floats)
{
    if (m->scratch_floats >= floats)
        return CL_OK;
    if (m->scratch)
        m->b->ops->free(m->b, m->scratch);
    m->scratch = m->b->ops->alloc(m->b, floats * sizeof(float));
    m->scratch_floats = m->scratch ? floats : 0;
    if (!m->scratch)
        return cl_err(CL_ERR_NOMEM, "out of memory for activations (%zu floats)", floats);
    return CL_OK;
}

typedef struct {
    float *h, *xn, *a, *bb, *c;
    widths w;
} bufs;

/* Sum of the ranks' partial results (row-parallel projections, the embedding);
 * nothing to do without a tensor-parallel group. */
static int all_reduce(cl_model *m, float *x, int64_t n)
{
    return m->comm ? cl_comm_all_reduce(m->comm, x, (size_t)n) : CL_OK;
}

/* LM head: full logits [rows, V] into `logits`. A rank model holds the rows of its
 * vocabulary slice: each computes its [rows, V / n] block into `part`, the blocks are
 * gathered ([n][rows][V / n] in `gath`) and interleaved into [rows][V]. */
static int lm_head(cl_model *m, float *logits, float *gath, float *part, const float *x,
                   int64_t rows)
{
    const cl_backend_ops *o = m->b->ops;
    int64_t Dm = m->cfg->hidden_size, V = m->cfg->vocab_size;
    if (!m->comm)
        return o->matmul(m->b, logits, V, x, Dm, &m->lm_head, rows);
    int64_t n = cl_comm_size(m->comm), Vl = m->lm_head.rows;
    CL_TRY(o->matmul(m->b, part, Vl, x, Dm, &m->lm_head, rows));
    CL_TRY(cl_comm_all_gather(m->comm, part, (size_t)(rows * Vl), gath));
    int64_t *order = malloc((size_t)(rows * n) * sizeof *order);
    if (!order)
        return cl_err(CL_ERR_NOMEM, "out of memory");
    for (int64_t t = 0; t < rows; t++)
        for (int64_t r = 0; r < n; r++)
            order[t * n + r] = r * rows + t; /* row t's block r is row (r, t) of gath */
    int rc = o->gather_rows(m->b, logits, gath, Vl, order, rows * n);
    free(order);
    return rc;
}

static int attention_layer(cl_model *m, const cl_layer_bw *lb, cl_cache *cache, cl_batch *bt,
                           const bufs *s, int swa)
{
    const cl_config *cf = m->cfg;
    cl_backend *b = m->b;
    const cl_backend_ops *o = b->ops;
    int64_t T = bt->n_tok, D = cf->head_dim, Hq = cf->num_heads, Hkv = cf->num_kv_heads;
    int64_t W = (Hq + 2 * Hkv) * D;
    float *q = s->a, *k = s->a + Hq * D, *v = k + Hkv * D;
    CL_TRY(o->matmul(b, q, W, s->xn, cf->hidden_size, &lb->w[CL_W_Q], T));
    CL_TRY(o->matmul(b, k, W, s->xn, cf->hidden_size, &lb->w[CL_W_K], T));
    CL_TRY(o->matmul(b, v, W, s->xn, cf->hidden_size, &lb->w[CL_W_V], T));
    float eps = (float)cf->rms_norm_eps;
    CL_TRY(o->head_rmsnorm(b, q, W, &lb->w[CL_W_Q_NORM], T, Hq, D, eps));
    CL_TRY(o->head_rmsnorm(b, k, W, &lb->w[CL_W_K_NORM], T, Hkv, D, eps));
    CL_TRY(o->rope(b, q, W, bt, Hq, D, cf->rope_theta));
    CL_TRY(o->rope(b, k, W, bt, Hkv, D, cf->rope_theta));
    cl_mixer_params p = {0};
    p.n_heads = Hq;
    p.n_kv_heads = Hkv;
    p.head_dim = D;
    p.scale = (float)(1.0 / sqrt((double)D));
    p.window = swa ? cf->swa.window : 0;
    CL_TRY(o->attention(b, s->c, q, W, k, v, W, &cache->kv[lb->attn_index], bt, &p));
    return o->matmul(b, s->xn, cf->hidden_size, s->c, Hq * D, &lb->w[CL_W_O], T);
}

static int mamba2_layer(cl_model *m, const cl_layer_bw *lb, cl_cache *cache, cl_batch *bt,
                        const bufs *s)
{
    const cl_config *cf = m->cfg;
    const cl_m2_config *mc = &cf->m2;
    cl_backend *b = m->b;
    const cl_backend_ops *o = b->ops;
    int64_t T = bt->n_tok, D = cf->head_dim;
    int64_t Wm = 2 * mc->d_inner + 2 * mc->d_xb + mc->nheads;
    float *z = s->a, *xbc = s->a + mc->d_inner, *dt = xbc + mc->conv_dim;
    CL_TRY(o->matmul(b, s->a, Wm, s->xn, cf->hidden_size, &lb->w[CL_W_M2_IN], T));
    /* B/C norms before the conv (§7.1 step 2) */
    if (mc->use_qk_norm) {
        float eps = (float)mc->bc_norm_eps;
        CL_TRY(o->head_rmsnorm(b, xbc + mc->d_xb, Wm, &lb->w[CL_W_B_NORM], T, cf->num_kv_heads,
                               D, eps));
        CL_TRY(o->head_rmsnorm(b, xbc + 2 * mc->d_xb, Wm, &lb->w[CL_W_C_NORM], T, cf->num_heads,
                               D, eps));
    }
    const cl_ssm_layer *sl = &cache->ssm[lb->ssm_index];
    CL_TRY(o->conv1d(b, s->bb, xbc, Wm, &lb->conv, &lb->w[CL_W_CONV_BIAS], sl, bt));
    cl_mixer_params p = {0};
    p.n_heads = cf->num_heads;
    p.n_kv_heads = cf->num_kv_heads;
    p.head_dim = D;
    CL_TRY(o->mamba2(b, s->c, s->bb, dt, Wm, &lb->w[CL_W_DT_BIAS], &lb->w[CL_W_A_LOG],
                     &lb->w[CL_W_M2_D], sl, bt, &p));
    CL_TRY(o->gated_norm_m2(b, s->c, z, Wm, &lb->w[CL_W_M2_NORM], T, cf->num_heads, D,
                            (float)mc->gated_norm_eps));
    return o->matmul(b, s->xn, cf->hidden_size, s->c, mc->d_inner, &lb->w[CL_W_O], T);
}

static int linear_layer(cl_model *m, const cl_layer_bw *lb, cl_cache *cache, cl_batch *bt,
                        const bufs *s, int gka)
{
    const cl_config *cf = m->cfg;
    cl_backend *b = m->b;
    const cl_backend_ops *o = b->ops;
    int64_t T = bt->n_tok, D = cf->head_dim, Hq = cf->num_heads, Hkv = cf->num_kv_heads, H = Hq;
    int64_t Wl = lin_width(cf), C = (Hq + 2 * Hkv) * D, Dm = cf->hidden_size;
    float *q = s->a, *k = q + Hq * D, *v = k + Hkv * D, *gate = q + C, *beta = gate + H * D,
          *decay = beta + H, *alpha = decay + H;
    CL_TRY(o->matmul(b, q, Wl, s->xn, Dm, &lb->w[CL_W_Q], T));
    CL_TRY(o->matmul(b, k, Wl, s->xn, Dm, &lb->w[CL_W_K], T));
    CL_TRY(o->matmul(b, v, Wl, s->xn, Dm, &lb->w[CL_W_V], T));
    CL_TRY(o->matmul(b, gate, Wl, s->xn, Dm, &lb->w[CL_W_GATE], T));
    CL_TRY(o->matmul(b, beta, Wl, s->xn, Dm, &lb->w[CL_W_BETA], T));
    CL_TRY(o->matmul(b, decay, Wl, s->xn, Dm, &lb->w[CL_W_DECAY], T));
    if (gka && cf->gka.use_alpha_connection)
        CL_TRY(o->matmul(b, alpha, Wl, s->xn, Dm, &lb->w[CL_W_ALPHA], T));
    const cl_ssm_layer *sl = &cache->ssm[lb->ssm_index];
    CL_TRY(o->conv1d(b, s->bb, q, Wl, &lb->conv, NULL, sl, bt));
    cl_mixer_params p = {0};
    p.n_heads = Hq;
    p.n_kv_heads = Hkv;
    p.head_dim = D;
    p.scale = (float)(1.0 / sqrt((double)D));
    float eps;
    if (gka) {
        p.num_iter = m->gka_num_iter;
        p.ridge_strength = (float)cf->gka.ridge_strength;
        p.use_alpha = cf->gka.use_alpha_connection;
        if (!cf->gka.gla_rescale)
            p.scale = 1.0f;
        CL_TRY(o->gka(b, s->c, s->bb, decay, beta, alpha, Wl, &lb->w[CL_W_BETA_BIAS],
                      &lb->w[CL_W_ALPHA_BIAS], &lb->w[CL_W_A_LOG], &lb->w[CL_W_DT_BIAS], sl, bt,
                      &p));
        eps = (float)cf->gka.norm_eps;
    } else {
        p.allow_neg_eigval = cf->gdn.allow_neg_eigval;
        CL_TRY(o->gdn(b, s->c, s->bb, beta, decay, Wl, &lb->w[CL_W_A_LOG], &lb->w[CL_W_DT_BIAS],
                      sl, bt, &p));
        eps = (float)cf->gdn.norm_eps;
    }
    CL_TRY(o->gated_norm_fla(b, s->c, gate, Wl, &lb->w[CL_W_O_NORM], T, H, D, eps));
    return o->matmul(b, s->xn, Dm, s->c, H * D, &lb->w[CL_W_O], T);
}

static int save_hidden(cl_model *m, const cl_forward_out *out, int idx, const float *h, int64_t T)
{
    if (!out || !out->hidden)
        return CL_OK;
    size_t n = (size_t)(T * m->cfg->hidden_size);
    return m->b->ops->to_host(m->b, out->hidden + (size_t)idx * n, h, n * sizeof(float));
}

/* ---- non-finite values ------------------------------------------------------
 * The normal path checks only the logits it copies to the host anyway. When they
 * hold NaN/Inf, the tokens of the failing row's sequence are run again through
 * the model in a scratch state with a probe that copies the hidden state to the
 * host after every stage, to name the first stage and token that go non-finite. */

typedef struct {
    float *host;        /* [T, Dm] */
    int64_t first_tok;  /* the sequence index of batch row 0 */
    int found;
    int64_t layer;      /* -1: embeddings, num_layers: final norm / lm_head */
    const char *stage;
    int64_t token;
} finite_probe;

#define PROBE_FOUND (-1) /* internal: run() stops at the first non-finite stage */

static int64_t first_nonfinite_row(const float *x, int64_t rows, int64_t width)
{
    for (int64_t r = 0; r < rows; r++) {
        const float *row = x + r * width;
        int bad = 0;
        for (int64_t i = 0; i < width; i++)
            bad |= !isfinite(row[i]);
        if (bad)
            return r;
    }
    return -1;
}

/* Copies rows x width floats at dev to the host and records the first bad row. */
static int probe_check(cl_model *m, finite_probe *p, const float *dev, int64_t rows,
                       int64_t width, int64_t layer, const char *stage)
{
    if (!p)
        return CL_OK;
    CL_TRY(m->b->ops->to_host(m->b, p->host, dev, (size_t)(rows * width) * sizeof(float)));
    int64_t r = first_nonfinite_row(p->host, rows, width);
    if (r < 0)
        return CL_OK;
    p->found = 1;
    p->layer = layer;
    p->stage = stage;
    p->token = p->first_tok + r;
    return PROBE_FOUND;
}

static const char *mixer_stage(cl_layer_type t)
{
    switch (t) {
    case CL_LAYER_ATTN: return "attention";
    case CL_LAYER_SWA: return "SWA attention";
    case CL_LAYER_M2: return "M2 mixer";
    case CL_LAYER_GDN: return "GDN mixer";
    case CL_LAYER_GKA: return "GKA mixer";
    default: return "mixer";
    }
}

static int run(cl_model *m, cl_cache *c, cl_batch *bt, const cl_forward_out *out,
               finite_probe *probe)
{
    const cl_config *cf = m->cfg;
    cl_backend *b = m->b;
    const cl_backend_ops *o = b->ops;
    int64_t T = bt->n_tok, Dm = cf->hidden_size;
    widths w = scratch_widths(cf);
    int64_t nlog = out ? out->n_logit_rows : 0;
    /* logits: [nlog, V]; a rank model also its block and the gathered blocks */
    size_t logit_floats = (size_t)nlog * (size_t)cf->vocab_size;
    if (m->comm)
        logit_floats = 2 * logit_floats + (size_t)nlog * (size_t)m->lm_head.rows;
    size_t need = (size_t)T * (size_t)(2 * w.dm + w.a + w.bw + w.c) + logit_floats;
    CL_TRY(ensure_scratch(m, need));
    bufs s;
    s.w = w;
    s.h = m->scratch;
    s.xn = s.h + T * w.dm;
    s.a = s.xn + T * w.dm;
    s.bb = s.a + T * w.a;
    s.c = s.bb + T * w.bw;
    float *logits = s.c + T * w.c;

    float *gath = logits + nlog * cf->vocab_size, *part = gath + nlog * cf->vocab_size;

    CL_TRY(o->batch_prepare(b, bt));
    int rc = o->embed(b, s.h, &m->embed, bt);
    if (rc == CL_OK) /* vocabulary-parallel: zero rows for other ranks' tokens */
        rc = all_reduce(m, s.h, T * Dm);
    if (rc == CL_OK)
        rc = save_hidden(m, out, 0, s.h, T);
    if (rc == CL_OK)
        rc = probe_check(m, probe, s.h, T, Dm, -1, "embeddings");
    float eps = (float)cf->rms_norm_eps;
    for (int64_t l = 0; l < cf->num_layers && rc == CL_OK; l++) {
        const cl_layer_bw *lb = &m->layers[l];
        rc = o->rmsnorm(b, s.xn, s.h, &lb->w[CL_W_IN_NORM], T, Dm, eps);
        if (rc != CL_OK)
            break;
        switch (cf->layer_types[l]) {
        case CL_LAYER_ATTN: rc = attention_layer(m, lb, c, bt, &s, 0); break;
        case CL_LAYER_SWA: rc = attention_layer(m, lb, c, bt, &s, 1); break;
        case CL_LAYER_M2: rc = mamba2_layer(m, lb, c, bt, &s); break;
        case CL_LAYER_GDN: rc = linear_layer(m, lb, c, bt, &s, 0); break;
        case CL_LAYER_GKA: rc = linear_layer(m, lb, c, bt, &s, 1); break;
        default: rc = cl_err(CL_ERR_UNSUPPORTED, "layer %lld: type not yet supported", (long long)l);
        }
        if (rc == CL_OK) /* o_proj / out_proj is row-parallel */
            rc = all_reduce(m, s.xn, T * Dm);
        if (rc == CL_OK)
            rc = o->add(b, s.h, s.xn, T * Dm);
        if (rc == CL_OK)
            rc = probe_check(m, probe, s.h, T, Dm, l, mixer_stage(cf->layer_types[l]));
        /* MLP */
        if (rc == CL_OK)
            rc = o->rmsnorm(b, s.xn, s.h, &lb->w[CL_W_POST_NORM], T, Dm, eps);
        int64_t I = cf->intermediate_size;
        if (rc == CL_OK)
            rc = o->matmul(b, s.a, 2 * I, s.xn, Dm, &lb->w[CL_W_MLP_GATE], T);
        if (rc == CL_OK)
            rc = o->matmul(b, s.a + I, 2 * I, s.xn, Dm, &lb->w[CL_W_MLP_UP], T);
        if (rc == CL_OK)
            rc = o->swiglu(b, s.bb, s.a, T, I);
        if (rc == CL_OK)
            rc = o->matmul(b, s.xn, Dm, s.bb, I, &lb->w[CL_W_MLP_DOWN], T);
        if (rc == CL_OK) /* down_proj is row-parallel */
            rc = all_reduce(m, s.xn, T * Dm);
        if (rc == CL_OK)
            rc = o->add(b, s.h, s.xn, T * Dm);
        if (rc == CL_OK)
            rc = save_hidden(m, out, (int)l + 1, s.h, T);
        if (rc == CL_OK)
            rc = probe_check(m, probe, s.h, T, Dm, l, "MLP");
    }
    if (rc == CL_OK && ((out && out->hidden) || probe)) {
        rc = o->rmsnorm(b, s.xn, s.h, &m->norm, T, Dm, eps);
        if (rc == CL_OK)
            rc = save_hidden(m, out, (int)cf->num_layers + 1, s.xn, T);
        if (rc == CL_OK)
            rc = probe_check(m, probe, s.xn, T, Dm, cf->num_layers, "final norm");
    }
    if (rc == CL_OK && nlog > 0) {
        rc = o->gather_rows(b, s.xn, s.h, Dm, out->logit_rows, nlog);
        if (rc == CL_OK)
            rc = o->rmsnorm(b, s.xn, s.xn, &m->norm, nlog, Dm, eps);
        if (rc == CL_OK)
            rc = lm_head(m, logits, gath, part, s.xn, nlog);
        if (rc == CL_OK && out->argmax_ids)
            rc = o->argmax(b, out->argmax_ids, logits, nlog, cf->vocab_size);
        if (rc == CL_OK && out->logits)
            rc = o->to_host(b, out->logits, logits,
                            (size_t)(nlog * cf->vocab_size) * sizeof(float));
    }
    o->batch_release(b, bt);
    return rc;
}

/* The diagnostic: sequence `seq` of bt again, up to batch row `row`, from an
 * empty state in scratch slot `slot` with pages `pages` (the caller's); fills p
 * (p->found = 0 if everything stays finite). */
static int diagnose(cl_model *m, cl_cache *c, const cl_batch *bt, int seq, int64_t row,
                    int32_t slot, int32_t *pages, finite_probe *p)
{
    const cl_batch_seq *bs = &bt->seq[seq];
    int64_t n = row - bs->tok_start + 1, V = m->cfg->vocab_size;
    float *logits = malloc((size_t)V * sizeof *logits);
    p->host = malloc((size_t)(n * m->cfg->hidden_size) * sizeof(float));
    p->first_tok = bs->kv_start;
    int rc = logits && p->host ? CL_OK : cl_err(CL_ERR_NOMEM, "out of memory");
    if (rc == CL_OK) {
        cl_batch_seq one = {0, n, 0, pages, slot, 0, 0};
        cl_batch b1 = {1, n, &one, bt->tokens + bs->tok_start, bt->positions + bs->tok_start,
                       NULL};
        int64_t last = n - 1;
        cl_forward_out fo = {&last, 1, logits, NULL, NULL};
        rc = run(m, c, &b1, &fo, p);
        if (rc == CL_OK && first_nonfinite_row(logits, 1, V) == 0) {
            p->found = 1;
            p->layer = m->cfg->num_layers;
            p->stage = "lm_head";
            p->token = bs->kv_start + last;
        }
        if (rc == PROBE_FOUND)
            rc = CL_OK;
    }
    free(logits);
    free(p->host);
    p->host = NULL;
    return rc;
}

static int seq_of_row(const cl_batch *bt, int64_t row)
{
    int seq = 0;
    while (seq + 1 < bt->n_seq && row >= bt->seq[seq + 1].tok_start)
        seq++;
    return seq;
}

/* The error for non-finite logits in batch row `row`, naming where they start (on a
 * rank model: every rank runs it, with the same result). */
static int explain(cl_model *m, cl_cache *c, const cl_batch *bt, int64_t row, int32_t slot,
                   int32_t *pages)
{
    int seq = seq_of_row(bt, row);
    int64_t token = bt->seq[seq].kv_start + (row - bt->seq[seq].tok_start);
    finite_probe p = {0};
    int rc = diagnose(m, c, bt, seq, row, slot, pages, &p);
    if (rc != CL_OK) {
        char why[512]; /* cl_err must not read the buffer it writes */
        snprintf(why, sizeof why, "%s", cl_errmsg());
        return cl_err(CL_ERR_RANGE, "non-finite logits at token %lld (no layer found: %s)",
                      (long long)token, why);
    }
    if (!p.found)
        return cl_err(CL_ERR_RANGE,
                      "non-finite logits at token %lld; the same tokens from an empty state "
                      "stay finite, so they come from the state before this call",
                      (long long)token);
    if (p.layer < 0)
        return cl_err(CL_ERR_RANGE,
                      "non-finite values in the embeddings (model.embed_tokens.weight) at token "
                      "%lld",
                      (long long)p.token);
    if (p.layer == m->cfg->num_layers)
        return cl_err(CL_ERR_RANGE, "non-finite values after the %s at token %lld", p.stage,
                      (long long)p.token);
    return cl_err(CL_ERR_RANGE, "non-finite values after layer %lld (%s) at token %lld",
                  (long long)p.layer, p.stage, (long long)p.token);
}

/* ---- tensor parallelism: the same work on every rank's thread ---- */

typedef struct {
    cl_model *m;
    cl_cache *c;
    cl_batch *bt;              /* [tp] each rank's batch (its token ids) */
    const cl_forward_out *out; /* rank 0's; the others copy nothing to the host */
    int64_t row;               /* explain: the batch row */
    int32_t slot, *pages;
} tp_job;

static int rank_run(void *user, int r)
{
    tp_job *j = user;
    cl_forward_out o = {0};
    if (j->out) {
        o = *j->out;
        if (r > 0)
            o.logits = NULL, o.argmax_ids = NULL, o.hidden = NULL;
    }
    return run(j->m->shard[r], j->c->shard[r], &j->bt[r], j->out ? &o : NULL, NULL);
}

static int rank_explain(void *user, int r)
{
    tp_job *j = user;
    return explain(j->m->shard[r], j->c->shard[r], &j->bt[r], j->row, j->slot, j->pages);
}

static void rank_failed(void *user, int r) { cl_comm_abort(((tp_job *)user)->m->comms[r]); }

/* Runs fn on every rank; after a failure the group is made usable again. */
static int fan_out(tp_job *j, cl_rank_fn fn)
{
    int rc = cl_ranks_run(j->m->ranks, fn, j, rank_failed);
    if (rc != CL_OK)
        for (int r = 0; r < j->m->tp; r++)
            cl_comm_recover(j->m->comms[r]);
    return rc;
}

/* Each rank's batch: its embedding holds ids [lo, lo + V / n) and one zero row after
 * them, which the other ranks' ids map to. */
static int rank_batches(cl_model *m, const cl_batch *bt, cl_batch *rb, int32_t *ids)
{
    for (int r = 0; r < m->tp; r++) {
        const cl_model *sh = m->shard[r];
        int64_t lo = sh->vocab_lo, Vl = sh->embed.rows - 1;
        int32_t *mine = ids + (size_t)r * (size_t)bt->n_tok;
        for (int64_t t = 0; t < bt->n_tok; t++) {
            int64_t id = (int64_t)bt->tokens[t] - lo;
            mine[t] = (int32_t)(id >= 0 && id < Vl ? id : Vl);
        }
        rb[r] = *bt;
        rb[r].tokens = mine;
        rb[r].dev = NULL;
    }
    return CL_OK;
}

/* The error for non-finite logits in batch row `row` (rb: the ranks' batches when
 * sharded): a scratch slot and pages, the diagnostic, the message. */
static int nonfinite_error(cl_model *m, cl_cache *c, const cl_batch *bt, cl_batch *rb,
                           int64_t row)
{
    const cl_batch_seq *bs = &bt->seq[seq_of_row(bt, row)];
    int64_t n = row - bs->tok_start + 1;
    int64_t n_pages = (n + c->o.page_tokens - 1) / c->o.page_tokens;
    int32_t slot = -1, *pages = malloc((size_t)n_pages * sizeof *pages);
    int rc = pages ? CL_OK : cl_err(CL_ERR_NOMEM, "out of memory");
    int have_pages = 0;
    if (rc == CL_OK)
        rc = cl_cache_alloc_slot(c, &slot);
    if (rc == CL_OK && (rc = cl_cache_alloc_pages(c, n_pages, pages)) == CL_OK)
        have_pages = 1;
    if (rc == CL_OK && m->shard) {
        tp_job j = {m, c, rb, NULL, row, slot, pages};
        rc = fan_out(&j, rank_explain);
    } else if (rc == CL_OK) {
        rc = explain(m, c, bt, row, slot, pages);
    }
    if (have_pages)
        cl_cache_release_pages(c, pages, n_pages);
    cl_cache_release_slot(c, slot);
    free(pages);
    return rc;
}

int cl_forward(cl_model *m, cl_cache *c, cl_batch *bt, const cl_forward_out *out)
{
    const cl_config *cf = m->cfg;
    if (bt->n_tok <= 0)
        return CL_OK;
    for (int64_t t = 0; t < bt->n_tok; t++)
        if (bt->tokens[t] < 0 || bt->tokens[t] >= cf->vocab_size)
            return cl_err(CL_ERR_RANGE, "token id %d out of range [0, %lld)", bt->tokens[t],
                          (long long)cf->vocab_size);
    if ((m->shard != NULL) != (c->shard != NULL))
        return cl_err(CL_ERR_ARG, "forward: the cache is not of this model");
    cl_batch *rb = NULL;
    int32_t *ids = NULL;
    int rc = CL_OK;
    if (m->shard) {
        rb = malloc((size_t)m->tp * sizeof *rb);
        ids = malloc((size_t)m->tp * (size_t)bt->n_tok * sizeof *ids);
        rc = rb && ids ? rank_batches(m, bt, rb, ids) : cl_err(CL_ERR_NOMEM, "out of memory");
        if (rc == CL_OK) {
            tp_job j = {m, c, rb, out, 0, -1, NULL};
            rc = fan_out(&j, rank_run);
        }
    } else {
        rc = run(m, c, bt, out, NULL);
    }
    if (rc == CL_OK && out && out->logits && out->n_logit_rows > 0) {
        int64_t r = first_nonfinite_row(out->logits, out->n_logit_rows, cf->vocab_size);
        if (r >= 0)
            rc = nonfinite_error(m, c, bt, rb, out->logit_rows[r]);
    }
    free(rb);
    free(ids);
    return rc;
}
