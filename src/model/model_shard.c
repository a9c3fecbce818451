/* model_shard.c - a checkpoint loaded as tensor-parallel rank models (model.h).
 *
 * Each rank gets its own backend (CUDA: device = rank) on its own thread and its
 * slice of every weight, cut from the full checkpoint at load (shard.h):
 *   column-parallel (output rows split): q/k/v, gate, beta/decay/alpha, Mamba2
 *     in_proj (z | x | B | C | dt, each part split), MLP gate/up, the fused convs;
 *   row-parallel (input columns split, followed by an all-reduce in forward.c):
 *     o_proj / out_proj, MLP down_proj;
 *   per-head vectors split (dt_bias, A_log, D, biases, the Mamba2 gated norm);
 *   norms of one head or of the hidden size replicated;
 *   vocabulary-parallel embedding (each rank's rows plus one zero row that tokens of
 *     other ranks map to) and lm_head (each rank's rows; forward.c gathers the logits).
 */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/status.h"
#include "model/model.h"
#include "model/shard.h"

typedef enum { KEEP = 0, ROWS, COLS } split_kind;

/* How role r of a layer of type t splits (segments of the split dimension). */
static split_kind role_split(const cl_config *cf, cl_layer_type t, cl_wrole r,
                             cl_shard_segs *s)
{
    int64_t Hq = cf->num_heads, Hkv = cf->num_kv_heads, D = cf->head_dim;
    switch (r) {
    case CL_W_MLP_GATE:
    case CL_W_MLP_UP:
        *s = (cl_shard_segs){1, {cf->intermediate_size}, {1}};
        return ROWS;
    case CL_W_MLP_DOWN:
        *s = (cl_shard_segs){1, {cf->intermediate_size}, {1}};
        return COLS;
    case CL_W_Q:
    case CL_W_GATE:
        *s = (cl_shard_segs){1, {Hq}, {D}};
        return ROWS;
    case CL_W_K:
    case CL_W_V:
        *s = (cl_shard_segs){1, {Hkv}, {D}};
        return ROWS;
    case CL_W_O:
    case CL_W_M2_NORM:
        *s = (cl_shard_segs){1, {Hq}, {D}};
        return COLS;
    case CL_W_BETA:
    case CL_W_DECAY:
    case CL_W_ALPHA:
        *s = (cl_shard_segs){1, {Hq}, {1}};
        return ROWS;
    case CL_W_BETA_BIAS:
    case CL_W_ALPHA_BIAS:
    case CL_W_DT_BIAS:
    case CL_W_A_LOG:
    case CL_W_M2_D:
        *s = (cl_shard_segs){1, {Hq}, {1}};
        return COLS;
    case CL_W_M2_IN: /* z | x | B | C | dt (spec MODEL.md §7.1 step 1) */
        *s = (cl_shard_segs){5, {Hq, Hkv, Hkv, Hq, Hq}, {D, D, D, D, 1}};
        return ROWS;
    case CL_W_CONV_BIAS:
        cl_shard_conv_segs(cf, t, s);
        return COLS;
    default:
        return KEEP; /* norms (hidden size or one head) */
    }
}

/* Keeps a host buffer alive as long as the rank model (the backend may alias it). */
static int keep_buf(cl_model *sh, void *buf)
{
    void **nb = realloc(sh->host_bufs, (size_t)(sh->n_host_bufs + 1) * sizeof *nb);
    if (!nb) {
        free(buf);
        return cl_err(CL_ERR_NOMEM, "out of memory");
    }
    sh->host_bufs = nb;
    sh->host_bufs[sh->n_host_bufs++] = buf;
    return CL_OK;
}

/* Uploads rank sh->rank's slice of t (plus `zero_rows` zero rows at the end). A slice
 * lives as long as the rank model when the backend aliases it (the CPU with fp32), else
 * only until the upload (a device or converted copy). */
static int upload_slice(cl_model *sh, int n, const cl_st_tensor *t, int matrix, split_kind k,
                        const cl_shard_segs *s, int64_t zero_rows, cl_bweight *out)
{
    int64_t rows = t->ndim >= 2 ? t->shape[0] : 1, cols = cl_st_numel(t) / rows;
    cl_tensor_view v = {t->data, t->dtype, rows, cols, 0, t->name};
    void *buf = NULL;
    if (k != KEEP || zero_rows) {
        size_t es = cl_dtype_size(t->dtype);
        int64_t lr = k == ROWS ? cl_shard_local_width(s, n) : rows;
        int64_t lc = k == COLS ? cl_shard_local_width(s, n) : cols;
        buf = calloc((size_t)((lr + zero_rows) * lc) * es + 1, 1);
        if (!buf)
            return cl_err(CL_ERR_NOMEM, "out of memory slicing tensor '%s'", t->name);
        if (k == ROWS) /* one "row" of `rows` elements of a whole tensor row each */
            cl_shard_copy(s, n, sh->rank, (size_t)cols * es, 1, (void *)t->data, buf, 0);
        else if (k == COLS)
            cl_shard_copy(s, n, sh->rank, es, rows, (void *)t->data, buf, 0);
        else
            memcpy(buf, t->data, (size_t)(rows * cols) * es);
        v = (cl_tensor_view){buf, t->dtype, lr + zero_rows, lc, 0, t->name};
    }
    int rc = sh->b->ops->weight_upload(sh->b, &v, matrix, out);
    if (rc != CL_OK) {
        free(buf);
        return cl_err_prefix(rc, "%s", t->file);
    }
    if (!buf || out->data != buf) {
        free(buf);
        return CL_OK;
    }
    return keep_buf(sh, buf);
}

/* The fused depthwise conv of an SSM layer ([C, W] fp32), rank's channels. */
static int upload_conv(cl_model *m, cl_model *sh, int n, int64_t l, cl_layer_bw *lb)
{
    const cl_layer_weights *lw = &m->ck.w.layers[l];
    cl_layer_type t = m->cfg->layer_types[l];
    int64_t C = cl_config_conv_channels(m->cfg, t);
    const cl_st_tensor *parts[3] = {lw->t[CL_W_CONV], NULL, NULL};
    int np = 1;
    if (t != CL_LAYER_M2) {
        parts[0] = lw->t[CL_W_Q_CONV];
        parts[1] = lw->t[CL_W_K_CONV];
        parts[2] = lw->t[CL_W_V_CONV];
        np = 3;
    }
    int64_t W = parts[0]->shape[2];
    cl_shard_segs s;
    cl_shard_conv_segs(m->cfg, t, &s);
    int64_t lc = cl_shard_local_width(&s, n);
    float *full = malloc((size_t)(C * W) * sizeof *full);
    float *local = malloc((size_t)(lc * W) * sizeof *local);
    int rc = full && local ? CL_OK : cl_err(CL_ERR_NOMEM, "out of memory");
    if (rc == CL_OK) {
        int64_t off = 0;
        for (int i = 0; i < np; i++) {
            cl_st_read_f32(parts[i], full + off * W);
            off += parts[i]->shape[0];
        }
        cl_shard_copy(&s, n, sh->rank, (size_t)W * sizeof(float), 1, full, local, 0);
        rc = sh->b->ops->weight_from_f32(sh->b, local, lc, W, &lb->conv);
    }
    free(full);
    free(local);
    return rc;
}

typedef struct {
    cl_model *m;
    const cl_model_opts *opts;
    int n, threads;
} load_job;

/* On rank r's thread: its backend (CUDA: device r). Serial: backends are made one at
 * a time. */
static int rank_backend(void *user, int r)
{
    load_job *j = user;
    return cl_backend_create_device(j->opts->backend, j->threads, r, &j->m->shard[r]->b);
}

/* On rank r's thread: its slice of every weight. */
static int rank_weights(void *user, int r)
{
    load_job *j = user;
    cl_model *m = j->m, *sh = m->shard[r];
    const cl_config *cf = m->cfg;
    int n = j->n;
    int64_t V = cf->vocab_size;
    cl_shard_segs vs = {1, {V}, {1}};
    sh->vocab_lo = cl_shard_first(V, n, r);
    CL_TRY(upload_slice(sh, n, m->ck.w.embed, 0, ROWS, &vs, 1, &sh->embed));
    CL_TRY(upload_slice(sh, n, m->ck.w.norm, 0, KEEP, &vs, 0, &sh->norm));
    CL_TRY(upload_slice(sh, n, m->ck.w.lm_head, 1, ROWS, &vs, 0, &sh->lm_head));
    int n_attn = 0, n_ssm = 0;
    for (int64_t l = 0; l < cf->num_layers; l++) {
        cl_layer_bw *lb = &sh->layers[l];
        cl_layer_type t = cf->layer_types[l];
        lb->attn_index = cl_layer_is_attention(t) ? n_attn++ : -1;
        lb->ssm_index = cl_layer_is_ssm(t) ? n_ssm++ : -1;
        for (int i = 0; i < CL_W_ROLE_COUNT; i++) {
            int role = cl_model_upload_order[i];
            const cl_st_tensor *st = m->ck.w.layers[l].t[role];
            if (!st || role == CL_W_CONV || role == CL_W_Q_CONV || role == CL_W_K_CONV ||
                role == CL_W_V_CONV)
                continue;
            cl_shard_segs s = {0};
            split_kind k = role_split(cf, t, (cl_wrole)role, &s);
            CL_TRY(upload_slice(sh, n, st, cl_wrole_is_matrix((cl_wrole)role), k, &s, 0,
                                &lb->w[role]));
        }
        if (cl_layer_is_ssm(t))
            CL_TRY(upload_conv(m, sh, n, l, lb));
        if (r == 0)
            cl_progress("loading model", (uint64_t)(l + 1), (uint64_t)cf->num_layers);
    }
    return CL_OK;
}

int cl_model_load_shards(cl_model *m, const cl_model_opts *opts, int n)
{
    CL_TRY(cl_shard_check(m->cfg, n));
    m->tp = n;
    m->shard = calloc((size_t)n, sizeof *m->shard);
    m->comms = calloc((size_t)n, sizeof *m->comms);
    if (!m->shard || !m->comms)
        return cl_err(CL_ERR_NOMEM, "out of memory");
    for (int r = 0; r < n; r++) {
        cl_model *sh = calloc(1, sizeof *sh);
        if (!sh)
            return cl_err(CL_ERR_NOMEM, "out of memory");
        m->shard[r] = sh;
        cl_shard_config(m->cfg, n, &sh->cfg_local);
        sh->cfg = &sh->cfg_local;
        sh->gka_num_iter = m->gka_num_iter;
        sh->feed_chunk = m->feed_chunk;
        sh->tp = 1;
        sh->rank = r;
        sh->loaded = 1;
        sh->layers = calloc((size_t)m->cfg->num_layers, sizeof *sh->layers);
        if (!sh->layers)
            return cl_err(CL_ERR_NOMEM, "out of memory");
    }
    CL_TRY(cl_ranks_create(n, &m->ranks));
    int threads = opts->threads > 0 ? opts->threads : omp_get_max_threads();
    load_job j = {m, opts, n, threads / n > 0 ? threads / n : 1};
    CL_TRY(cl_ranks_run_serial(m->ranks, rank_backend, &j));
    cl_backend **bs = malloc((size_t)n * sizeof *bs);
    if (!bs)
        return cl_err(CL_ERR_NOMEM, "out of memory");
    for (int r = 0; r < n; r++)
        bs[r] = m->shard[r]->b;
    int rc = cl_comm_group_create(bs, n, m->comms);
    free(bs);
    CL_TRY(rc);
    for (int r = 0; r < n; r++)
        m->shard[r]->comm = m->comms[r];
    m->b = m->shard[0]->b; /* borrowed: engine code asks it for its kind and sizes */
    rc = cl_ranks_run(m->ranks, rank_weights, &j, NULL);
    cl_progress_end("loading model");
    return rc;
}

/* On rank r's thread: its weights and backend. */
static int rank_free(void *user, int r)
{
    cl_model *sh = ((cl_model *)user)->shard[r];
    if (!sh)
        return CL_OK;
    if (sh->b) {
        const cl_backend_ops *o = sh->b->ops;
        cl_bweight *top[3] = {&sh->embed, &sh->norm, &sh->lm_head};
        for (int i = 0; i < 3; i++)
            if (top[i]->data)
                o->weight_free(sh->b, top[i]);
        for (int64_t l = 0; sh->layers && l < sh->cfg->num_layers; l++) {
            for (int k = 0; k < CL_W_ROLE_COUNT; k++)
                if (sh->layers[l].w[k].data)
                    o->weight_free(sh->b, &sh->layers[l].w[k]);
            if (sh->layers[l].conv.data)
                o->weight_free(sh->b, &sh->layers[l].conv);
        }
        if (sh->scratch)
            o->free(sh->b, sh->scratch);
    }
    return CL_OK;
}

static int rank_destroy_backend(void *user, int r)
{
    cl_model *sh = ((cl_model *)user)->shard[r];
    if (sh && sh->b)
        cl_backend_destroy(sh->b);
    if (sh)
        sh->b = NULL;
    return CL_OK;
}

void cl_model_free_shards(cl_model *m)
{
    if (m->ranks && m->shard)
        cl_ranks_run(m->ranks, rank_free, m, NULL);
    if (m->comms)
        cl_comm_group_free(m->comms, m->tp);
    if (m->ranks && m->shard)
        cl_ranks_run(m->ranks, rank_destroy_backend, m, NULL);
    for (int r = 0; m->shard && r < m->tp; r++) {
        cl_model *sh = m->shard[r];
        if (!sh)
            continue;
        for (int i = 0; i < sh->n_host_bufs; i++)
            free(sh->host_bufs[i]);
        free(sh->host_bufs);
        free(sh->layers);
        free(sh);
    }
    free(m->shard);
    free(m->comms);
    cl_ranks_free(m->ranks);
    m->shard = NULL;
    m->comms = NULL;
    m->ranks = NULL;
    m->b = NULL;
}
