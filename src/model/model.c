#include "model/model.h"

#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/status.h"

void cl_model_opts_default(cl_model_opts *o)
{
    memset(o, 0, sizeof *o);
    o->gka_num_iter = -1;
    o->load_weights = 1;
}

/* Options are checked before anything is read. */
static int check_opts(const cl_model_opts *o)
{
    if (o->threads < 0 || o->threads > 1024)
        return cl_err(CL_ERR_ARG, "threads must be in [1, 1024] (0: all cores; got %d)",
                      o->threads);
    if (o->gka_num_iter < -1 || o->gka_num_iter > 1000)
        return cl_err(CL_ERR_ARG, "gka_num_iter must be in [0, 1000] (got %lld)",
                      (long long)o->gka_num_iter);
    if (o->prefill_chunk < 0 || o->prefill_chunk > (1 << 24))
        return cl_err(CL_ERR_ARG, "prefill_chunk must be in [1, %d] (0: the backend's; got %lld)",
                      1 << 24, (long long)o->prefill_chunk);
    if (o->tp < 0 || o->tp > 64)
        return cl_err(CL_ERR_ARG, "tp must be in [1, 64] (got %d)", o->tp);
    return CL_OK;
}

/* Fuses an SSM layer's depthwise conv weights ([C_i, 1, W] each) into [C, W] fp32. */
static int fuse_conv(cl_model *m, int64_t l, cl_layer_bw *lb)
{
    const cl_layer_weights *lw = &m->ck.w.layers[l];
    cl_layer_type t = m->cfg->layer_types[l];
    int64_t C = cl_config_conv_channels(m->cfg, t);
    const cl_st_tensor *parts[3];
    int n = 0;
    if (t == CL_LAYER_M2) {
        parts[n++] = lw->t[CL_W_CONV];
    } else {
        parts[n++] = lw->t[CL_W_Q_CONV];
        parts[n++] = lw->t[CL_W_K_CONV];
        parts[n++] = lw->t[CL_W_V_CONV];
    }
    int64_t W = parts[0]->shape[2];
    float *buf = malloc((size_t)(C * W) * sizeof *buf);
    if (!buf)
        return cl_err(CL_ERR_NOMEM, "out of memory");
    int64_t off = 0;
    for (int i = 0; i < n; i++) {
        cl_st_read_f32(parts[i], buf + off * W);
        off += parts[i]->shape[0];
    }
    int rc = m->b->ops->weight_from_f32(m->b, buf, C, W, &lb->conv);
    free(buf);
    return rc;
}

static int upload(cl_model *m, const cl_st_tensor *t, int matrix, cl_bweight *out)
{
    cl_tensor_view v = {t->data, t->dtype, t->ndim >= 2 ? t->shape[0] : 1,
                        t->ndim >= 2 ? cl_st_numel(t) / t->shape[0] : t->shape[0], 0, t->name};
    int rc = m->b->ops->weight_upload(m->b, &v, matrix, out);
    return rc == CL_OK ? rc : cl_err_prefix(rc, "%s", t->file);
}

/* Roles in the order forward.c uses them: a backend that stores 16-bit matrices
 * back to back can then run projections of the same input (q|k|v|gate|beta|decay|
 * alpha, gate|up) as one product. */
const int cl_model_upload_order[CL_W_ROLE_COUNT] = {
    CL_W_IN_NORM,  CL_W_POST_NORM, CL_W_Q,          CL_W_K,        CL_W_V,
    CL_W_GATE,     CL_W_BETA,      CL_W_DECAY,      CL_W_ALPHA,    CL_W_O,
    CL_W_MLP_GATE, CL_W_MLP_UP,    CL_W_MLP_DOWN,   CL_W_Q_NORM,   CL_W_K_NORM,
    CL_W_M2_IN,    CL_W_CONV,      CL_W_CONV_BIAS,  CL_W_DT_BIAS,  CL_W_A_LOG,
    CL_W_M2_D,     CL_W_M2_NORM,   CL_W_B_NORM,     CL_W_C_NORM,   CL_W_Q_CONV,
    CL_W_K_CONV,   CL_W_V_CONV,    CL_W_BETA_BIAS,  CL_W_ALPHA_BIAS, CL_W_O_NORM,
};

static int load(const char *dir, const cl_model_opts *opts, int force_shards, cl_model **out);

int cl_model_load(const char *dir, const cl_model_opts *opts, cl_model **out)
{
    return load(dir, opts, 0, out);
}

int cl_model_load_sharded(const char *dir, const cl_model_opts *opts, cl_model **out)
{
    return load(dir, opts, 1, out);
}

static int load(const char *dir, const cl_model_opts *opts, int force_shards, cl_model **out)
{
    cl_model_opts def;
    if (!opts) {
        cl_model_opts_default(&def);
        opts = &def;
    }
    CL_TRY(check_opts(opts));
    cl_model *m = calloc(1, sizeof *m);
    if (!m)
        return cl_err(CL_ERR_NOMEM, "out of memory");
    double t0 = cl_now();
    int rc = cl_checkpoint_open(dir, &m->ck);
    if (rc != CL_OK) {
        free(m);
        return rc;
    }
    m->cfg = &m->ck.cfg;
    m->gka_num_iter = opts->gka_num_iter >= 0 ? opts->gka_num_iter : m->cfg->gka.num_iter;
    m->tp = opts->tp > 1 ? opts->tp : 1;
    if (!opts->load_weights) { /* described only: config and tensor headers */
        *out = m;
        return CL_OK;
    }
    m->loaded = 1;
    m->feed_chunk = opts->prefill_chunk > 0 ? opts->prefill_chunk : 0;
    if (m->tp > 1 || force_shards) {
        if ((rc = cl_model_load_shards(m, opts, m->tp)) != CL_OK)
            goto fail;
        cl_log_info("model %s loaded on %s x %d (tensor parallel) in %.2f s", dir,
                    m->b->ops->name, m->tp, cl_now() - t0);
        *out = m;
        return CL_OK;
    }
    rc = cl_backend_create(opts->backend, opts->threads, &m->b);
    if (rc != CL_OK)
        goto fail;
    m->layers = calloc((size_t)m->cfg->num_layers, sizeof *m->layers);
    if (!m->layers) {
        rc = cl_err(CL_ERR_NOMEM, "out of memory");
        goto fail;
    }
    if ((rc = upload(m, m->ck.w.embed, 0, &m->embed)) != CL_OK ||
        (rc = upload(m, m->ck.w.norm, 0, &m->norm)) != CL_OK ||
        (rc = upload(m, m->ck.w.lm_head, 1, &m->lm_head)) != CL_OK)
        goto fail;
    int n_attn = 0, n_ssm = 0;
    for (int64_t l = 0; l < m->cfg->num_layers; l++) {
        cl_layer_bw *lb = &m->layers[l];
        cl_layer_type t = m->cfg->layer_types[l];
        lb->attn_index = cl_layer_is_attention(t) ? n_attn++ : -1;
        lb->ssm_index = cl_layer_is_ssm(t) ? n_ssm++ : -1;
        for (int i = 0; i < CL_W_ROLE_COUNT; i++) {
            int r = cl_model_upload_order[i];
            const cl_st_tensor *st = m->ck.w.layers[l].t[r];
            if (!st || r == CL_W_CONV || r == CL_W_Q_CONV || r == CL_W_K_CONV || r == CL_W_V_CONV)
                continue;
            if ((rc = upload(m, st, cl_wrole_is_matrix((cl_wrole)r), &lb->w[r])) != CL_OK)
                goto fail;
        }
        if (cl_layer_is_ssm(t) && (rc = fuse_conv(m, l, lb)) != CL_OK)
            goto fail;
        cl_progress("loading model", (uint64_t)(l + 1), (uint64_t)m->cfg->num_layers);
    }
    cl_progress_end("loading model");
    cl_log_info("model %s loaded on %s in %.2f s", dir, m->b->ops->name, cl_now() - t0);
    *out = m;
    return CL_OK;
fail:
    cl_model_free(m);
    return rc;
}

void cl_model_free(cl_model *m)
{
    if (!m)
        return;
    if (m->shard || m->ranks) {
        cl_model_free_shards(m);
    } else if (m->b) {
        const cl_backend_ops *o = m->b->ops;
        o->weight_free(m->b, &m->embed);
        o->weight_free(m->b, &m->norm);
        if (m->lm_head.data)
            o->weight_free(m->b, &m->lm_head);
        for (int64_t l = 0; m->layers && l < m->cfg->num_layers; l++) {
            for (int r = 0; r < CL_W_ROLE_COUNT; r++)
                if (m->layers[l].w[r].data)
                    o->weight_free(m->b, &m->layers[l].w[r]);
            if (m->layers[l].conv.data)
                o->weight_free(m->b, &m->layers[l].conv);
        }
        if (m->scratch)
            o->free(m->b, m->scratch);
        cl_backend_destroy(m->b);
    }
    free(m->layers);
    cl_checkpoint_close(&m->ck);
    free(m);
}

/* ---- what callers may know about a model (collage.h) ---- */

void cl_model_info_get(const cl_model *m, cl_model_info *out)
{
    const cl_config *c = m->cfg;
    memset(out, 0, sizeof *out);
    out->dir = m->ck.dir;
    out->model_type = c->model_type;
    out->dtype = cl_dtype_name(c->dtype);
    out->backend = m->b ? m->b->ops->name : NULL;
    out->vocab_size = c->vocab_size;
    out->hidden_size = c->hidden_size;
    out->intermediate_size = c->intermediate_size;
    out->num_layers = c->num_layers;
    out->num_heads = c->num_heads;
    out->num_kv_heads = c->num_kv_heads;
    out->head_dim = c->head_dim;
    out->rope_theta = c->rope_theta;
    out->max_position_embeddings = c->max_position_embeddings;
    out->n_attn_layers = c->n_attn_layers;
    out->n_ssm_layers = c->n_ssm_layers;
    out->n_params = m->ck.w.n_params;
    out->weight_bytes = m->ck.st ? cl_st_total_bytes(m->ck.st) : 0;
    cl_dtype kv = m->b ? m->b->ops->kv_dtype(m->b, c->dtype) : CL_F32;
    out->kv_bytes_per_token = cl_config_kv_bytes_per_token(c, kv);
    out->kv_bytes_per_token_bf16 = cl_config_kv_bytes_per_token(c, CL_BF16);
    out->kv_bytes_per_token_f32 = cl_config_kv_bytes_per_token(c, CL_F32);
    out->ssm_state_bytes = cl_config_ssm_state_bytes(c);
    for (int64_t l = 0; l < c->num_layers; l++) {
        if (c->layer_types[l] == CL_LAYER_SWA)
            out->swa_window = c->swa.window;
        if (c->layer_types[l] == CL_LAYER_GKA)
            out->has_gka = 1;
    }
    out->gka_num_iter = out->has_gka ? m->gka_num_iter : 0;
    out->gka_ridge_strength = out->has_gka ? c->gka.ridge_strength : 0;
    out->n_eos = c->n_eos < 8 ? c->n_eos : 8;
    for (int i = 0; i < out->n_eos; i++)
        out->eos_ids[i] = c->eos_ids[i];
    out->n_unknown_keys = c->n_unknown;
    out->n_unused_tensors = m->ck.w.n_unused;
}

cl_layer_type cl_model_layer(const cl_model *m, int64_t i)
{
    return i >= 0 && i < m->cfg->num_layers ? m->cfg->layer_types[i] : CL_LAYER_TYPE_COUNT;
}

const char *cl_model_unknown_key(const cl_model *m, int i)
{
    return i >= 0 && i < m->cfg->n_unknown ? m->cfg->unknown_keys[i] : NULL;
}
