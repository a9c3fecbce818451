#include "mkmodel/mkmodel.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fileio.h"
#include "common/half.h"
#include "common/log.h"
#include "common/rng.h"
#include "common/status.h"
#include "mkmodel/presets.h"
#include "model/safetensors.h"
#include "model/weights.h"
#include "mkmodel/tiny_tokenizer.h"

void cl_mkmodel_init_rule(int role, int *kind, float *a, float *b)
{
    switch (role) {
    case -3: /* final norm */
    case CL_W_IN_NORM:
    case CL_W_POST_NORM:
    case CL_W_Q_NORM:
    case CL_W_K_NORM:
    case CL_W_M2_NORM:
    case CL_W_B_NORM:
    case CL_W_C_NORM:
    case CL_W_O_NORM: *kind = CL_RNG_NORMAL, *a = 0.1f, *b = 1.0f; return;
    case CL_W_A_LOG: *kind = CL_RNG_A_LOG, *a = 0, *b = 0; return; /* A in [1, 16] */
    case CL_W_DT_BIAS: *kind = CL_RNG_DT_BIAS, *a = 0, *b = 0; return;
    case CL_W_M2_D: *kind = CL_RNG_CONST, *a = 0, *b = 1.0f; return;
    case CL_W_CONV:
    case CL_W_Q_CONV:
    case CL_W_K_CONV:
    case CL_W_V_CONV:
    case CL_W_CONV_BIAS: *kind = CL_RNG_UNIFORM, *a = 1.0f, *b = -0.5f; return;
    case CL_W_BETA_BIAS:
    case CL_W_ALPHA_BIAS: *kind = CL_RNG_NORMAL, *a = 0.1f, *b = 0.0f; return;
    default: *kind = CL_RNG_NORMAL, *a = 0.02f, *b = 0.0f; return; /* matrices, embed, lm_head */
    }
}

float cl_mkmodel_init_value(int role, uint64_t key, uint64_t i)
{
    int kind;
    float a, b;
    cl_mkmodel_init_rule(role, &kind, &a, &b);
    return cl_rng_value(kind, key, i, a, b);
}

/* -1 for embed, -2 lm_head, -3 final norm */
typedef struct {
    cl_layer_type type;
    int role;
    uint64_t key;
    cl_dtype dtype;
} tensor_plan;

typedef struct {
    tensor_plan *plan;
} fill_ctx;

static int fill_tensor(void *vctx, size_t index, void *buf, size_t offset, size_t len)
{
    fill_ctx *ctx = vctx;
    const tensor_plan *p = &ctx->plan[index];
    size_t es = cl_dtype_size(p->dtype), n = len / es;
    uint64_t first = offset / es;
#pragma omp parallel for schedule(static)
    for (size_t k = 0; k < n; k++) {
        float v = cl_mkmodel_init_value(p->role, p->key, first + k);
        if (p->dtype == CL_F32)
            ((float *)buf)[k] = v;
        else if (p->dtype == CL_BF16)
            ((uint16_t *)buf)[k] = cl_f32_to_bf16(v);
        else
            ((uint16_t *)buf)[k] = cl_f32_to_f16(v);
    }
    return CL_OK;
}

static const char *dtype_json(cl_dtype d)
{
    return d == CL_BF16 ? "bfloat16" : d == CL_F16 ? "float16" : "float32";
}

static int build_pattern(const cl_preset *p, const char *user, int64_t layers, char **out)
{
    size_t cap = (size_t)layers * 8 + 16;
    char *s = malloc(cap);
    if (!s)
        return cl_err(CL_ERR_NOMEM, "out of memory");
    s[0] = 0;
    if (!user) {
        for (int64_t l = 0; l < layers; l++) {
            strcat(s, l ? "-" : "");
            strcat(s, l % 2 == 0 ? "*" : p->ssm);
        }
        *out = s;
        return CL_OK;
    }
    /* count entries; repeat a shorter pattern if it divides the layer count */
    int64_t n = 1;
    for (const char *c = user; *c; c++)
        n += *c == '-';
    if (n != layers && (n > layers || layers % n)) {
        free(s);
        return cl_err(CL_ERR_ARG,
                      "--pattern '%s' has %lld entries; the preset has %lld layers (give that "
                      "many, or a divisor to repeat)",
                      user, (long long)n, (long long)layers);
    }
    if (strlen(user) * (size_t)(layers / n) + (size_t)layers + 1 > cap) {
        free(s);
        return cl_err(CL_ERR_ARG, "--pattern '%s': entries too long", user);
    }
    for (int64_t r = 0; r < layers / n; r++) {
        strcat(s, r ? "-" : "");
        strcat(s, user);
    }
    *out = s;
    return CL_OK;
}

static void add_heads(cJSON *o, const cl_preset *p)
{
    cJSON_AddNumberToObject(o, "hidden_size", (double)p->hidden);
    cJSON_AddNumberToObject(o, "head_dim", (double)p->head_dim);
    cJSON_AddNumberToObject(o, "num_q_heads", (double)p->heads);
    cJSON_AddNumberToObject(o, "num_k_heads", (double)p->kv_heads);
    cJSON_AddNumberToObject(o, "num_v_heads", (double)p->kv_heads);
    cJSON_AddNullToObject(o, "kv_proj_rank");
    cJSON_AddFalseToObject(o, "kv_learnable_residual");
}

int cl_mkmodel_config_json(const cl_mkmodel_opts *o, int64_t eos_id, int64_t pad_id,
                           char **json_out)
{
    const cl_preset *p = cl_preset_find(o->preset);
    if (!p)
        return cl_err(CL_ERR_ARG, "unknown preset '%s'", o->preset);
    int64_t layers = o->layers > 0 ? o->layers : p->layers;
    char *pattern = NULL;
    CL_TRY(build_pattern(p, o->pattern, layers, &pattern));
    cl_dtype dt = p->dtype;
    if (o->dtype) {
        if (!strcmp(o->dtype, "float32"))
            dt = CL_F32;
        else if (!strcmp(o->dtype, "bfloat16"))
            dt = CL_BF16;
        else if (!strcmp(o->dtype, "float16"))
            dt = CL_F16;
        else {
            free(pattern);
            return cl_err(CL_ERR_ARG, "--dtype '%s': expected float32, bfloat16 or float16",
                          o->dtype);
        }
    }
    cJSON *c = cJSON_CreateObject();
    cJSON *arch = cJSON_AddArrayToObject(c, "architectures");
    cJSON_AddItemToArray(arch, cJSON_CreateString("HybridQwen3ForCausalLM"));
    cJSON_AddStringToObject(c, "model_type", "hybrid_qwen3");
    cJSON_AddNumberToObject(c, "vocab_size", (double)p->vocab);
    cJSON_AddNumberToObject(c, "hidden_size", (double)p->hidden);
    cJSON_AddNumberToObject(c, "intermediate_size", (double)p->intermediate);
    cJSON_AddNumberToObject(c, "num_hidden_layers", (double)layers);
    cJSON_AddNumberToObject(c, "num_attention_heads", (double)p->heads);
    cJSON_AddNumberToObject(c, "num_key_value_heads", (double)p->kv_heads);
    cJSON_AddNumberToObject(c, "head_dim", (double)p->head_dim);
    cJSON_AddStringToObject(c, "hidden_act", "silu");
    cJSON_AddNumberToObject(c, "rms_norm_eps", 1e-6);
    cJSON_AddFalseToObject(c, "attention_bias");
    cJSON_AddFalseToObject(c, "tie_word_embeddings");
    cJSON *rope = cJSON_AddObjectToObject(c, "rope_parameters");
    cJSON_AddStringToObject(rope, "rope_type", "default");
    cJSON_AddNumberToObject(rope, "rope_theta", p->rope_theta);
    cJSON_AddNumberToObject(c, "max_position_embeddings", (double)p->max_positions);
    cJSON_AddStringToObject(c, "hybrid_override_pattern", pattern);
    cJSON_AddFalseToObject(c, "use_sliding_window");
    cJSON_AddStringToObject(c, "torch_dtype", dtype_json(dt));
    if (eos_id >= 0)
        cJSON_AddNumberToObject(c, "eos_token_id", (double)eos_id);
    if (pad_id >= 0)
        cJSON_AddNumberToObject(c, "pad_token_id", (double)pad_id);
    if (strstr(pattern, "GKA")) {
        cJSON *g = cJSON_AddObjectToObject(c, "gka_config");
        add_heads(g, p);
        cJSON_AddTrueToObject(g, "use_alpha_connection");
        cJSON_AddTrueToObject(g, "use_v_conv");
        cJSON_AddTrueToObject(g, "use_forgetting_gate");
        cJSON_AddTrueToObject(g, "use_forgetting_gate_kk");
        cJSON_AddTrueToObject(g, "gla_rescale");
        cJSON_AddStringToObject(g, "solver_type", "chebyshev");
        cJSON_AddTrueToObject(g, "bp_lambda");
        cJSON_AddNumberToObject(g, "num_iter", 30);
        cJSON_AddNumberToObject(g, "ridge_strength", 0.02);
        cJSON_AddTrueToObject(g, "use_gate");
        cJSON_AddNumberToObject(g, "conv_size", 4);
        cJSON_AddNumberToObject(g, "norm_eps", 1e-6);
        cJSON_AddTrueToObject(g, "use_beta_gate");
        cJSON_AddNumberToObject(g, "chunk_size", 64);
    }
    if (strstr(pattern, "GDN")) {
        cJSON *g = cJSON_AddObjectToObject(c, "gdn_config");
        add_heads(g, p);
        cJSON_AddTrueToObject(g, "use_gate");
        cJSON_AddTrueToObject(g, "use_short_conv");
        cJSON_AddFalseToObject(g, "allow_neg_eigval");
        cJSON_AddNumberToObject(g, "conv_size", 4);
        cJSON_AddFalseToObject(g, "conv_bias");
        cJSON_AddNumberToObject(g, "norm_eps", 1e-5);
    }
    if (strstr(pattern, "M2")) {
        cJSON *m = cJSON_AddObjectToObject(c, "mamba2_config");
        cJSON_AddNumberToObject(m, "d_model", (double)p->hidden);
        cJSON_AddNumberToObject(m, "d_inner", (double)(p->heads * p->head_dim));
        cJSON_AddNumberToObject(m, "d_xb", (double)(p->kv_heads * p->head_dim));
        cJSON_AddNumberToObject(m, "intermediate_size", (double)p->intermediate);
        cJSON_AddStringToObject(m, "hidden_act", "silu");
        cJSON_AddNumberToObject(m, "rms_norm_eps", 1e-6);
        cJSON_AddNumberToObject(m, "n_layer", (double)layers);
        cJSON *s = cJSON_AddObjectToObject(m, "ssm_cfg");
        cJSON_AddNumberToObject(s, "expand", 1);
        cJSON_AddNumberToObject(s, "ngroups", (double)p->heads);
        cJSON_AddNumberToObject(s, "d_state", (double)p->head_dim);
        cJSON_AddTrueToObject(m, "use_qk_norm");
        cJSON_AddFalseToObject(m, "use_pos_emb");
    }
    if (strstr(pattern, "SWA")) {
        cJSON *s = cJSON_AddObjectToObject(c, "swa_config");
        cJSON_AddNumberToObject(s, "window_size", (double)(p->swa_window ? p->swa_window : 512));
    }
    free(pattern);
    /* tiny presets have a short dtype override only via the preset itself */
    char *txt = cJSON_Print(c);
    cJSON_Delete(c);
    if (!txt)
        return cl_err(CL_ERR_NOMEM, "out of memory");
    *json_out = txt;
    return CL_OK;
}

static int write_text(const char *dir, const char *name, const char *text)
{
    char path[4096];
    CL_TRY(cl_path_join(path, sizeof path, dir, name));
    return cl_write_file_atomic(path, text, strlen(text));
}

int cl_mkmodel(const cl_mkmodel_opts *o)
{
    const cl_preset *p = cl_preset_find(o->preset);
    if (!p)
        return cl_err(CL_ERR_ARG, "unknown preset '%s'", o->preset);
    CL_TRY(cl_mkdir_p(o->out_dir, 0755));

    int64_t eos = -1, pad = -1;
    if (p->tiny_tokenizer && !o->no_tokenizer) {
        cl_tiny_tok_ids ids;
        CL_TRY(cl_tiny_tokenizer_write(o->out_dir, p->vocab, &ids));
        eos = ids.im_end;
        pad = ids.endoftext;
    } else if (!p->tiny_tokenizer) {
        eos = 151645; /* Qwen3 <|im_end|> (spec §14) */
        pad = 151643;
    }
    char *json;
    CL_TRY(cl_mkmodel_config_json(o, eos, pad, &json));
    cl_config cfg;
    int rc = cl_config_parse(o->out_dir, json, &cfg);
    if (rc != CL_OK) {
        free(json);
        return rc;
    }
    rc = write_text(o->out_dir, "config.json", json);
    free(json);
    char gen[256] = "{}\n"; /* no tokenizer: no token ids to name */
    if (eos >= 0 && pad >= 0)
        snprintf(gen, sizeof gen, "{\n  \"eos_token_id\": [%lld],\n  \"pad_token_id\": %lld\n}\n",
                 (long long)eos, (long long)pad);
    if (rc == CL_OK)
        rc = write_text(o->out_dir, "generation_config.json", gen);

    /* plan every tensor in the order HF writes them (sorted by name) */
    cl_st_writer *w = NULL;
    tensor_plan *plan = NULL;
    size_t nplan = 0;
    if (rc == CL_OK)
        rc = cl_st_writer_create(&w);
    size_t cap = (size_t)cfg.num_layers * CL_W_ROLE_COUNT + 3;
    if (rc == CL_OK && !(plan = calloc(cap, sizeof *plan)))
        rc = cl_err(CL_ERR_NOMEM, "out of memory");
    int64_t shape[4];
    cl_dtype dt = cfg.dtype;
    uint64_t total_bytes = 0;
#define DECL(name_, nd_, role_, type_)                                                       \
    do {                                                                                      \
        if (rc == CL_OK) {                                                                    \
            rc = cl_st_writer_declare(w, name_, dt, nd_, shape);                              \
            plan[nplan] = (tensor_plan){type_, role_, cl_rng_key(o->seed, name_), dt};        \
            uint64_t ne = 1;                                                                  \
            for (int d_ = 0; d_ < nd_; d_++)                                                  \
                ne *= (uint64_t)shape[d_];                                                    \
            total_bytes += ne * cl_dtype_size(dt);                                            \
            nplan++;                                                                          \
        }                                                                                     \
    } while (0)
    shape[0] = cfg.vocab_size;
    shape[1] = cfg.hidden_size;
    DECL("lm_head.weight", 2, -2, CL_LAYER_ATTN);
    DECL("model.embed_tokens.weight", 2, -1, CL_LAYER_ATTN);
    for (int64_t l = 0; l < cfg.num_layers && rc == CL_OK; l++) {
        for (int r = 0; r < CL_W_ROLE_COUNT; r++) {
            int nd = cl_weights_expected_shape(&cfg, cfg.layer_types[l], (cl_wrole)r, shape);
            if (!nd)
                continue;
            char name[256];
            cl_weights_tensor_name(&cfg, l, (cl_wrole)r, name, sizeof name);
            DECL(name, nd, r, cfg.layer_types[l]);
        }
    }
    shape[0] = cfg.hidden_size;
    DECL("model.norm.weight", 1, -3, CL_LAYER_ATTN);
#undef DECL
    if (rc == CL_OK) {
        char path[4096];
        rc = cl_path_join(path, sizeof path, o->out_dir, "model.safetensors");
        if (rc == CL_OK)
            cl_log_info("mkmodel: writing %s (%.1f MiB)", path,
                        (double)total_bytes / (1024.0 * 1024.0));
        fill_ctx ctx = {plan};
        if (rc == CL_OK)
            rc = cl_st_writer_stream(w, path, fill_tensor, &ctx);
    }
    cl_st_writer_free(w);
    free(plan);
    cl_config_free(&cfg);
    return rc;
}
