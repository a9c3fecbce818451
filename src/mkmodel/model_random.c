/* model_random.c - random-weight models in backend memory (see model_random.h). */
#include "mkmodel/model_random.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/half.h"
#include "common/log.h"
#include "common/rng.h"
#include "common/status.h"
#include "mkmodel/mkmodel.h"
#include "model/weights.h"

void cl_random_model_opts_default(cl_random_model_opts *o)
{
    memset(o, 0, sizeof *o);
    o->gka_num_iter = -1;
}

static float host_value(int role, uint64_t key, uint64_t i)
{
    return cl_mkmodel_init_value(role, key, i);
}

/* A value as the checkpoint stores it: rounded to the file dtype, read back as fp32. */
static float as_stored(float v, cl_dtype file)
{
    if (file == CL_BF16)
        return cl_bf16_to_f32(cl_f32_to_bf16(v));
    if (file == CL_F16)
        return cl_f16_to_f32(cl_f32_to_f16(v));
    return v;
}

typedef struct {
    cl_model *m;
    cl_dtype file;  /* config dtype: what mkmodel would write */
    uint64_t seed;
    size_t bytes;   /* total weight bytes (for the log line) */
} builder;

/* Host-generated fp32 tensor (vectors, conv weights): n values at `off` of a
 * buffer of `total` values, from stream `key`. */
static int fill_host_f32(builder *bd, float *buf, size_t n, int role, uint64_t key)
{
    for (size_t i = 0; i < n; i++)
        buf[i] = as_stored(host_value(role, key, i), bd->file);
    return CL_OK;
}

static int make_vector(builder *bd, const char *name, int role, int64_t n, cl_bweight *out)
{
    float *h = malloc((size_t)n * sizeof *h);
    if (!h)
        return cl_err(CL_ERR_NOMEM, "out of memory");
    fill_host_f32(bd, h, (size_t)n, role, cl_rng_key(bd->seed, name));
    int rc = bd->m->b->ops->weight_from_f32(bd->m->b, h, 1, n, out);
    free(h);
    bd->bytes += (size_t)n * 4;
    return rc;
}

static cl_dtype matrix_dtype(const builder *bd)
{
    return bd->m->b->ops->matrix_dtype(bd->m->b, bd->file);
}

/* A matrix (or the embedding) rows x cols: 16-bit on the GPU for 16-bit
 * configs, fp32 otherwise; generated where it lives. `storage`: memory of a
 * group allocation (NULL: a buffer of its own, owned by the weight). */
static int make_matrix(builder *bd, const char *name, int role, int64_t rows, int64_t cols,
                       cl_bweight *out, void *storage)
{
    cl_backend *b = bd->m->b;
    uint64_t key = cl_rng_key(bd->seed, name);
    size_t n = (size_t)(rows * cols);
    cl_dtype dt = matrix_dtype(bd);
    size_t bytes = n * cl_dtype_size(dt);
    memset(out, 0, sizeof *out);
    void *p = storage ? storage : b->ops->alloc(b, bytes);
    if (!p)
        return cl_err(CL_ERR_NOMEM, "out of %s memory for '%s' (%zu bytes)", b->ops->name, name,
                      bytes);
    *out = (cl_bweight){p, dt, rows, cols, storage ? 0 : 1};
    bd->bytes += bytes;
    /* generated where it lives; an fp32 copy of a 16-bit config holds the values the
     * checkpoint would (rounded through the file's dtype) */
    int kind;
    float ra, rb;
    cl_mkmodel_init_rule(role, &kind, &ra, &rb);
    return b->ops->fill_random(b, p, dt, n, key, 0, kind, ra, rb,
                               dt == CL_F32 ? bd->file : CL_F32);
}

/* Projections forward.c applies to the same input one after the other, in its
 * order: stored back to back, the backend merges them into one GEMM. */
static int group_of(const cl_config *cf, cl_layer_type t, int *roles)
{
    int n = 0;
    if (t == CL_LAYER_ATTN || t == CL_LAYER_SWA) {
        roles[n++] = CL_W_Q;
        roles[n++] = CL_W_K;
        roles[n++] = CL_W_V;
    } else if (t == CL_LAYER_GDN || t == CL_LAYER_GKA) {
        roles[n++] = CL_W_Q;
        roles[n++] = CL_W_K;
        roles[n++] = CL_W_V;
        roles[n++] = CL_W_GATE;
        roles[n++] = CL_W_BETA;
        roles[n++] = CL_W_DECAY;
        if (t == CL_LAYER_GKA && cf->gka.use_alpha_connection)
            roles[n++] = CL_W_ALPHA;
    }
    return n;
}

/* One allocation for a group of matrix roles (the first weight owns it). */
static int make_group(builder *bd, int64_t l, const int *roles, int n, cl_layer_bw *lb)
{
    const cl_config *cf = bd->m->cfg;
    cl_layer_type t = cf->layer_types[l];
    size_t es = cl_dtype_size(matrix_dtype(bd)), total = 0;
    int64_t shape[4];
    for (int i = 0; i < n; i++) {
        cl_weights_expected_shape(cf, t, (cl_wrole)roles[i], shape);
        total += (size_t)(shape[0] * shape[1]) * es;
    }
    cl_backend *b = bd->m->b;
    char *p = b->ops->alloc(b, total);
    if (!p)
        return cl_err(CL_ERR_NOMEM, "out of %s memory for layer %lld (%zu bytes)", b->ops->name,
                      (long long)l, total);
    size_t off = 0;
    int rc = CL_OK;
    for (int i = 0; i < n && rc == CL_OK; i++) {
        char name[256];
        cl_weights_tensor_name(cf, l, (cl_wrole)roles[i], name, sizeof name);
        cl_weights_expected_shape(cf, t, (cl_wrole)roles[i], shape);
        rc = make_matrix(bd, name, roles[i], shape[0], shape[1], &lb->w[roles[i]], p + off);
        off += (size_t)(shape[0] * shape[1]) * es;
    }
    lb->w[roles[0]].owned = 1;
    if (rc != CL_OK && !lb->w[roles[0]].data)
        b->ops->free(b, p);
    return rc;
}

static int in_group(const int *roles, int n, int r)
{
    for (int i = 0; i < n; i++)
        if (roles[i] == r)
            return 1;
    return 0;
}

/* The fused depthwise conv [C, W] of an SSM layer (q | k | v, or Mamba2's one). */
static int make_conv(builder *bd, int64_t l, cl_layer_bw *lb)
{
    const cl_config *cf = bd->m->cfg;
    cl_layer_type t = cf->layer_types[l];
    int roles[3], n = 0;
    if (t == CL_LAYER_M2) {
        roles[n++] = CL_W_CONV;
    } else {
        roles[n++] = CL_W_Q_CONV;
        roles[n++] = CL_W_K_CONV;
        roles[n++] = CL_W_V_CONV;
    }
    int64_t C = cl_config_conv_channels(cf, t), shape[4];
    cl_weights_expected_shape(cf, t, (cl_wrole)roles[0], shape);
    int64_t W = shape[2];
    float *buf = malloc((size_t)(C * W) * sizeof *buf);
    if (!buf)
        return cl_err(CL_ERR_NOMEM, "out of memory");
    int64_t off = 0;
    for (int i = 0; i < n; i++) {
        char name[256];
        cl_weights_tensor_name(cf, l, (cl_wrole)roles[i], name, sizeof name);
        cl_weights_expected_shape(cf, t, (cl_wrole)roles[i], shape);
        fill_host_f32(bd, buf + off * W, (size_t)(shape[0] * W), roles[i],
                      cl_rng_key(bd->seed, name));
        off += shape[0];
    }
    int rc = bd->m->b->ops->weight_from_f32(bd->m->b, buf, C, W, &lb->conv);
    bd->bytes += (size_t)(C * W) * 4;
    free(buf);
    return rc;
}

static int build_layers(builder *bd)
{
    cl_model *m = bd->m;
    const cl_config *cf = m->cfg;
    int n_attn = 0, n_ssm = 0;
    for (int64_t l = 0; l < cf->num_layers; l++) {
        cl_layer_bw *lb = &m->layers[l];
        cl_layer_type t = cf->layer_types[l];
        lb->attn_index = cl_layer_is_attention(t) ? n_attn++ : -1;
        lb->ssm_index = cl_layer_is_ssm(t) ? n_ssm++ : -1;
        int grp[8], ng = group_of(cf, t, grp), mlp[2] = {CL_W_MLP_GATE, CL_W_MLP_UP};
        if (ng)
            CL_TRY(make_group(bd, l, grp, ng, lb));
        CL_TRY(make_group(bd, l, mlp, 2, lb));
        for (int r = 0; r < CL_W_ROLE_COUNT; r++) {
            if (in_group(grp, ng, r) || in_group(mlp, 2, r))
                continue;
            int64_t shape[4];
            int nd = cl_weights_expected_shape(cf, t, (cl_wrole)r, shape);
            if (!nd || r == CL_W_CONV || r == CL_W_Q_CONV || r == CL_W_K_CONV ||
                r == CL_W_V_CONV)
                continue;
            if ((r == CL_W_ALPHA || r == CL_W_ALPHA_BIAS) && !cf->gka.use_alpha_connection)
                continue;
            if (t == CL_LAYER_M2 && (r == CL_W_B_NORM || r == CL_W_C_NORM) && !cf->m2.use_qk_norm)
                continue;
            char name[256];
            cl_weights_tensor_name(cf, l, (cl_wrole)r, name, sizeof name);
            int64_t rows = nd >= 2 ? shape[0] : 1, cols = nd >= 2 ? shape[1] : shape[0];
            CL_TRY(cl_wrole_is_matrix((cl_wrole)r) ? make_matrix(bd, name, r, rows, cols, &lb->w[r], NULL)
                                     : make_vector(bd, name, r, cols, &lb->w[r]));
        }
        if (cl_layer_is_ssm(t))
            CL_TRY(make_conv(bd, l, lb));
        cl_progress("random weights", (uint64_t)(l + 1), (uint64_t)cf->num_layers);
    }
    cl_progress_end("random weights");
    return CL_OK;
}

int cl_model_create_random(const cl_random_model_opts *o, cl_model **out)
{
    if (!o || !o->preset)
        return cl_err(CL_ERR_ARG, "random model: no preset given");
    double t0 = cl_now();
    cl_mkmodel_opts mo;
    memset(&mo, 0, sizeof mo);
    mo.preset = o->preset;
    mo.seed = o->seed;
    mo.pattern = o->pattern;
    mo.dtype = o->dtype;
    mo.layers = o->layers;
    mo.no_tokenizer = 1;
    char *json = NULL;
    CL_TRY(cl_mkmodel_config_json(&mo, -1, -1, &json));
    cl_model *m = calloc(1, sizeof *m);
    if (!m) {
        free(json);
        return cl_err(CL_ERR_NOMEM, "out of memory");
    }
    char what[160];
    snprintf(what, sizeof what, "random model (preset %s)", o->preset);
    int rc = cl_config_parse(what, json, &m->ck.cfg);
    free(json);
    if (rc != CL_OK) {
        free(m);
        return rc;
    }
    m->cfg = &m->ck.cfg;
    m->loaded = 1;
    m->tp = 1;
    m->gka_num_iter = o->gka_num_iter >= 0 ? o->gka_num_iter : m->cfg->gka.num_iter;
    rc = cl_backend_create(o->backend, o->threads, &m->b);
    if (rc == CL_OK && !(m->layers = calloc((size_t)m->cfg->num_layers, sizeof *m->layers)))
        rc = cl_err(CL_ERR_NOMEM, "out of memory");
    builder bd = {m, m->cfg->dtype, o->seed, 0};
    const cl_config *cf = m->cfg;
    if (rc == CL_OK)
        rc = make_matrix(&bd, "model.embed_tokens.weight", -1, cf->vocab_size,
                         cf->hidden_size, &m->embed, NULL);
    if (rc == CL_OK)
        rc = make_matrix(&bd, "lm_head.weight", -2, cf->vocab_size,
                         cf->hidden_size, &m->lm_head, NULL);
    if (rc == CL_OK)
        rc = make_vector(&bd, "model.norm.weight", -3, cf->hidden_size, &m->norm);
    if (rc == CL_OK)
        rc = build_layers(&bd);
    if (rc == CL_OK)
        rc = m->b->ops->sync(m->b);
    if (rc != CL_OK) {
        cl_model_free(m);
        return rc;
    }
    cl_log_debug("random model %s: %.2f GB of weights on %s in %.2f s", o->preset,
                 (double)bd.bytes / 1e9, m->b->ops->name, cl_now() - t0);
    *out = m;
    return CL_OK;
}
