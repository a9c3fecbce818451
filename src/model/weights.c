#include "model/weights.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/status.h"

/* Module prefix of a layer type's mixer (spec §2.3-2.7). */
static const char *mixer_prefix(cl_layer_type t)
{
    switch (t) {
    case CL_LAYER_ATTN: return "self_attn";
    case CL_LAYER_SWA: return "swa";
    case CL_LAYER_M2: return "mamba";
    case CL_LAYER_GDN: return "gdn";
    case CL_LAYER_GKA: return "gka";
    default: return "bmojo_f";
    }
}

/* Name suffix of a role for a layer type; NULL if that type has no such role. */
static const char *role_suffix(cl_layer_type t, cl_wrole r)
{
    switch (r) {
    case CL_W_IN_NORM: return "input_layernorm.weight";
    case CL_W_POST_NORM: return "post_attention_layernorm.weight";
    case CL_W_MLP_GATE: return "mlp.gate_proj.weight";
    case CL_W_MLP_UP: return "mlp.up_proj.weight";
    case CL_W_MLP_DOWN: return "mlp.down_proj.weight";
    default: break;
    }
    int attn = t == CL_LAYER_ATTN || t == CL_LAYER_SWA;
    int lin = t == CL_LAYER_GDN || t == CL_LAYER_GKA;
    int m2 = t == CL_LAYER_M2, gka = t == CL_LAYER_GKA;
    switch (r) {
    case CL_W_Q: return attn || lin ? "q_proj.weight" : NULL;
    case CL_W_K: return attn || lin ? "k_proj.weight" : NULL;
    case CL_W_V: return attn || lin ? "v_proj.weight" : NULL;
    case CL_W_O: return attn || lin ? "o_proj.weight" : m2 ? "out_proj.weight" : NULL;
    case CL_W_Q_NORM: return attn ? "q_norm.weight" : NULL;
    case CL_W_K_NORM: return attn ? "k_norm.weight" : NULL;
    case CL_W_M2_IN: return m2 ? "in_proj.weight" : NULL;
    case CL_W_CONV: return m2 ? "conv1d.weight" : NULL;
    case CL_W_CONV_BIAS: return m2 ? "conv1d.bias" : NULL;
    case CL_W_DT_BIAS: return m2 || lin ? "dt_bias" : NULL;
    case CL_W_A_LOG: return m2 || lin ? "A_log" : NULL;
    case CL_W_M2_D: return m2 ? "D" : NULL;
    case CL_W_M2_NORM: return m2 ? "norm.weight" : NULL;
    case CL_W_B_NORM: return m2 ? "B_norm.weight" : NULL;
    case CL_W_C_NORM: return m2 ? "C_norm.weight" : NULL;
    case CL_W_Q_CONV: return lin ? "q_conv1d.weight" : NULL;
    case CL_W_K_CONV: return lin ? "k_conv1d.weight" : NULL;
    case CL_W_V_CONV: return lin ? "v_conv1d.weight" : NULL;
    case CL_W_BETA: return lin ? "b_proj.weight" : NULL;
    case CL_W_BETA_BIAS: return gka ? "b_proj.bias" : NULL;
    case CL_W_DECAY: return gka ? "a_proj.weight" : t == CL_LAYER_GDN ? "gk_proj.weight" : NULL;
    case CL_W_ALPHA: return gka ? "alpha_proj.weight" : NULL;
    case CL_W_ALPHA_BIAS: return gka ? "alpha_proj.bias" : NULL;
    case CL_W_GATE: return lin ? "g_proj.weight" : NULL;
    case CL_W_O_NORM: return lin ? "o_norm.weight" : NULL;
    default: return NULL;
    }
}

const char *cl_wrole_name(cl_wrole r)
{
    const char *s = role_suffix(CL_LAYER_ATTN, r);
    if (!s)
        s = role_suffix(CL_LAYER_M2, r);
    if (!s)
        s = role_suffix(CL_LAYER_GKA, r);
    return s ? s : "?";
}

static int is_mlp_or_norm(cl_wrole r) { return r <= CL_W_MLP_DOWN; }

void cl_weights_tensor_name(const cl_config *cfg, int64_t layer, cl_wrole r, char *buf, size_t n)
{
    cl_layer_type t = cfg->layer_types[layer];
    const char *suf = role_suffix(t, r);
    if (!suf) {
        buf[0] = 0;
        return;
    }
    if (is_mlp_or_norm(r))
        snprintf(buf, n, "model.layers.%lld.%s", (long long)layer, suf);
    else
        snprintf(buf, n, "model.layers.%lld.%s.%s", (long long)layer, mixer_prefix(t), suf);
}

int cl_weights_expected_shape(const cl_config *cfg, cl_layer_type t, cl_wrole r, int64_t *s)
{
    if (!role_suffix(t, r))
        return 0;
    int64_t Dm = cfg->hidden_size, I = cfg->intermediate_size, D = cfg->head_dim;
    int64_t Hq = cfg->num_heads, Hkv = cfg->num_kv_heads, H = Hq;
    int64_t W = t == CL_LAYER_M2 ? cfg->m2.conv_size
                : t == CL_LAYER_GDN ? cfg->gdn.conv_size
                                    : cfg->gka.conv_size;
    switch (r) {
    case CL_W_IN_NORM:
    case CL_W_POST_NORM: s[0] = Dm; return 1;
    case CL_W_MLP_GATE:
    case CL_W_MLP_UP: s[0] = I; s[1] = Dm; return 2;
    case CL_W_MLP_DOWN: s[0] = Dm; s[1] = I; return 2;
    case CL_W_Q: s[0] = Hq * D; s[1] = Dm; return 2;
    case CL_W_K:
    case CL_W_V: s[0] = Hkv * D; s[1] = Dm; return 2;
    case CL_W_O: s[0] = Dm; s[1] = Hq * D; return 2;
    case CL_W_Q_NORM:
    case CL_W_K_NORM:
    case CL_W_B_NORM:
    case CL_W_C_NORM:
    case CL_W_O_NORM: s[0] = D; return 1;
    case CL_W_M2_IN: s[0] = 2 * cfg->m2.d_inner + 2 * cfg->m2.d_xb + cfg->m2.nheads; s[1] = Dm;
        return 2;
    case CL_W_CONV: s[0] = cfg->m2.conv_dim; s[1] = 1; s[2] = W; return 3;
    case CL_W_CONV_BIAS: s[0] = cfg->m2.conv_dim; return 1;
    case CL_W_DT_BIAS:
    case CL_W_A_LOG:
    case CL_W_M2_D:
    case CL_W_BETA_BIAS:
    case CL_W_ALPHA_BIAS: s[0] = H; return 1;
    case CL_W_M2_NORM: s[0] = cfg->m2.d_inner; return 1;
    case CL_W_Q_CONV: s[0] = Hq * D; s[1] = 1; s[2] = W; return 3;
    case CL_W_K_CONV:
    case CL_W_V_CONV: s[0] = Hkv * D; s[1] = 1; s[2] = W; return 3;
    case CL_W_BETA:
    case CL_W_DECAY:
    case CL_W_ALPHA: s[0] = H; s[1] = Dm; return 2;
    case CL_W_GATE: s[0] = H * D; s[1] = Dm; return 2;
    default: return 0;
    }
}

static void fmt_shape(char *buf, size_t n, int nd, const int64_t *s)
{
    int o = snprintf(buf, n, "[");
    for (int i = 0; i < nd && o < (int)n - 24; i++)
        o += snprintf(buf + o, n - (size_t)o, "%s%lld", i ? ", " : "", (long long)s[i]);
    snprintf(buf + o, n - (size_t)o, "]");
}

static int bind_one(const cl_safetensors *st, const char *name, int nd, const int64_t *shape,
                    const cl_st_tensor **out)
{
    const cl_st_tensor *t = cl_st_find(st, name);
    if (!t)
        return cl_err(CL_ERR_FORMAT, "%s: missing required tensor '%s'", cl_st_path(st), name);
    if (!cl_dtype_is_float(t->dtype) || t->dtype == CL_F64)
        return cl_err(CL_ERR_FORMAT, "%s: tensor '%s': dtype %s is not supported (F32/F16/BF16)",
                      t->file, name, cl_dtype_name(t->dtype));
    int ok = t->ndim == nd;
    for (int i = 0; ok && i < nd; i++)
        ok = t->shape[i] == shape[i];
    if (!ok) {
        char got[128], want[128];
        fmt_shape(got, sizeof got, t->ndim, t->shape);
        fmt_shape(want, sizeof want, nd, shape);
        return cl_err(CL_ERR_FORMAT, "%s: tensor '%s' has shape %s, expected %s", t->file, name,
                      got, want);
    }
    *out = t;
    return CL_OK;
}

int cl_weights_bind(const cl_config *cfg, const cl_safetensors *st, cl_weights *w)
{
    memset(w, 0, sizeof *w);
    int64_t Dm = cfg->hidden_size, V = cfg->vocab_size, shape[4];
    int rc = CL_OK;
    for (int64_t l = 0; l < cfg->num_layers; l++)
        if (cfg->layer_types[l] == CL_LAYER_BMF)
            return cl_err(CL_ERR_UNSUPPORTED,
                          "%s: layer %lld is B'MOJO-F (BMF): not yet supported", cfg->path,
                          (long long)l);
    w->layers = calloc((size_t)cfg->num_layers, sizeof *w->layers);
    if (!w->layers)
        return cl_err(CL_ERR_NOMEM, "out of memory");
    shape[0] = V;
    shape[1] = Dm;
    if ((rc = bind_one(st, "model.embed_tokens.weight", 2, shape, &w->embed)) != CL_OK)
        goto fail;
    w->n_params += V * Dm;
    if (cfg->tie_word_embeddings) {
        w->lm_head = w->embed;
    } else {
        if ((rc = bind_one(st, "lm_head.weight", 2, shape, &w->lm_head)) != CL_OK)
            goto fail;
        w->n_params += V * Dm;
    }
    shape[0] = Dm;
    if ((rc = bind_one(st, "model.norm.weight", 1, shape, &w->norm)) != CL_OK)
        goto fail;
    w->n_params += Dm;
    size_t bound = 2 + !cfg->tie_word_embeddings;
    for (int64_t l = 0; l < cfg->num_layers; l++) {
        cl_layer_type t = cfg->layer_types[l];
        for (int r = 0; r < CL_W_ROLE_COUNT; r++) {
            int nd = cl_weights_expected_shape(cfg, t, (cl_wrole)r, shape);
            if (!nd)
                continue;
            if (r == CL_W_ALPHA || r == CL_W_ALPHA_BIAS) {
                if (!cfg->gka.use_alpha_connection)
                    continue;
            }
            if (t == CL_LAYER_M2 && (r == CL_W_B_NORM || r == CL_W_C_NORM) &&
                !cfg->m2.use_qk_norm)
                continue;
            char name[256];
            cl_weights_tensor_name(cfg, l, (cl_wrole)r, name, sizeof name);
            if ((rc = bind_one(st, name, nd, shape, &w->layers[l].t[r])) != CL_OK)
                goto fail;
            w->n_params += cl_st_numel(w->layers[l].t[r]);
            bound++;
        }
    }
    w->n_unused = (int64_t)cl_st_count(st) - (int64_t)bound;
    return CL_OK;
fail:
    cl_weights_free(w);
    return rc;
}

void cl_weights_free(cl_weights *w)
{
    free(w->layers);
    memset(w, 0, sizeof *w);
}

int cl_wrole_is_matrix(cl_wrole r)
{
    switch (r) {
    case CL_W_MLP_GATE:
    case CL_W_MLP_UP:
    case CL_W_MLP_DOWN:
    case CL_W_Q:
    case CL_W_K:
    case CL_W_V:
    case CL_W_O:
    case CL_W_M2_IN:
    case CL_W_BETA:
    case CL_W_DECAY:
    case CL_W_ALPHA:
    case CL_W_GATE: return 1;
    default: return 0;
    }
}
