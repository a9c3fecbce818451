#include "model/config.h"

#include <cjson/cJSON.h>
#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fileio.h"
#include "common/json.h"
#include "common/status.h"
#include "model/config_parse.h"

static const struct {
    const char *symbol, *name;
} layer_info[CL_LAYER_TYPE_COUNT] = {
    [CL_LAYER_ATTN] = {"*", "attention"},
    [CL_LAYER_SWA] = {"SWA", "sliding-window attention"},
    [CL_LAYER_M2] = {"M2", "Mamba2"},
    [CL_LAYER_GDN] = {"GDN", "Gated DeltaNet"},
    [CL_LAYER_GKA] = {"GKA", "Gated KalmaNet"},
    [CL_LAYER_BMF] = {"BMF", "B'MOJO-F"},
};

const char *cl_layer_symbol(cl_layer_type t) { return layer_info[t].symbol; }
const char *cl_layer_name(cl_layer_type t) { return layer_info[t].name; }
int cl_layer_is_attention(cl_layer_type t) { return t == CL_LAYER_ATTN || t == CL_LAYER_SWA; }
int cl_layer_is_ssm(cl_layer_type t)
{
    return t == CL_LAYER_M2 || t == CL_LAYER_GDN || t == CL_LAYER_GKA;
}

/* Upper bounds of the sizes (beyond them arrays would not fit in memory). */
#define MAX_VOCAB (1 << 24)
#define MAX_POSITIONS (INT64_C(1) << 30)

static const char *const known_top[] = {
    "architectures", "model_type", "vocab_size", "hidden_size", "intermediate_size",
    "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "head_dim", "hidden_act",
    "rms_norm_eps", "attention_bias", "attention_dropout", "tie_word_embeddings",
    "rope_parameters", "rope_theta", "rope_scaling", "max_position_embeddings",
    "hybrid_override_pattern", "layer_types", "gka_config", "gdn_config", "mamba2_config",
    "swa_config", "bmojo_config", "gka_overrides", "bos_token_id", "eos_token_id",
    "pad_token_id", "use_sliding_window", "sliding_window", "max_window_layers", "torch_dtype",
    "dtype", "initializer_range", "use_cache", "transformers_version", NULL};

/* --------------------------------------------------------------- pattern */

static int parse_pattern(cl_config *cfg, const cJSON *root, const char *file)
{
    const char *pat;
    CL_TRY(cl_json_str(root, "hybrid_override_pattern", file, NULL, &pat));
    cfg->layer_types = calloc((size_t)cfg->num_layers, sizeof *cfg->layer_types);
    if (!cfg->layer_types)
        return cl_err(CL_ERR_NOMEM, "out of memory");
    if (!pat) {
        if (!strcmp(cfg->model_type, "qwen3"))
            return CL_OK; /* plain Qwen3: every layer is attention (calloc'd zeros) */
        return cl_err(CL_ERR_FORMAT, "%s: missing key 'hybrid_override_pattern'", file);
    }
    int64_t n = 0;
    const char *p = pat;
    for (;;) {
        const char *dash = strchr(p, '-');
        size_t len = dash ? (size_t)(dash - p) : strlen(p);
        char sym[16];
        if (len == 0 || len >= sizeof sym)
            return cl_err(CL_ERR_FORMAT,
                          "%s: key 'hybrid_override_pattern': bad entry at layer %lld", file,
                          (long long)n);
        memcpy(sym, p, len);
        sym[len] = 0;
        int type = -1;
        for (int t = 0; t < CL_LAYER_TYPE_COUNT; t++)
            if (!strcmp(sym, layer_info[t].symbol))
                type = t;
        if (type < 0) {
            int training = !strcmp(sym, "*DA") || strchr(sym, '*') || strchr(sym, '>');
            return cl_err(CL_ERR_FORMAT,
                          "%s: key 'hybrid_override_pattern': %s layer symbol '%s' at layer %lld",
                          file, training ? "training-only (fused) " : "unknown", sym,
                          (long long)n);
        }
        if (n < cfg->num_layers)
            cfg->layer_types[n] = (cl_layer_type)type;
        n++;
        if (!dash)
            break;
        p = dash + 1;
    }
    if (n != cfg->num_layers)
        return cl_err(CL_ERR_FORMAT,
                      "%s: key 'hybrid_override_pattern' has %lld entries but "
                      "num_hidden_layers is %lld",
                      file, (long long)n, (long long)cfg->num_layers);
    return CL_OK;
}

/* ------------------------------------------------------------------ main */

static int parse_root(cl_config *cfg, const cJSON *root, const char *file)
{
    const char *s;
    int b;
    if (!cJSON_IsObject(root))
        return cl_err(CL_ERR_FORMAT, "%s: expected a JSON object", file);
    CL_TRY(cfg_check_duplicates(root, "", file));

    CL_TRY(cl_json_str(root, "model_type", file, "hybrid_qwen3", &s));
    if (strcmp(s, "hybrid_qwen3") && strcmp(s, "qwen3"))
        return cl_err(CL_ERR_UNSUPPORTED,
                      "%s: key 'model_type': '%s' is not supported (hybrid_qwen3 or qwen3)", file,
                      s);
    if (!(cfg->model_type = strdup(s)))
        return cl_err(CL_ERR_NOMEM, "out of memory");
    const cJSON *arch = cJSON_GetObjectItemCaseSensitive(root, "architectures");
    if (cJSON_IsArray(arch) && cJSON_GetArraySize(arch) > 0) {
        int ok = 0;
        for (const cJSON *e = arch->child; e; e = e->next)
            ok |= cJSON_IsString(e) && (!strcmp(e->valuestring, "HybridQwen3ForCausalLM") ||
                                        !strcmp(e->valuestring, "Qwen3ForCausalLM"));
        if (!ok)
            return cl_err(CL_ERR_UNSUPPORTED,
                          "%s: key 'architectures': no supported architecture "
                          "(HybridQwen3ForCausalLM)",
                          file);
    }

    static const char *const required[] = {"vocab_size", "hidden_size", "intermediate_size",
                                           "num_hidden_layers", "num_attention_heads", NULL};
    for (int i = 0; required[i]; i++)
        if (!cl_json_has(root, required[i]))
            return cl_err(CL_ERR_FORMAT, "%s: missing key '%s'", file, required[i]);
    CL_TRY(cfg_int(root, NULL, "vocab_size", file, 0, 1, MAX_VOCAB, &cfg->vocab_size));
    CL_TRY(cfg_int(root, NULL, "hidden_size", file, 0, 1, 1 << 16, &cfg->hidden_size));
    CL_TRY(cfg_int(root, NULL, "intermediate_size", file, 0, 1, 1 << 18,
                   &cfg->intermediate_size));
    CL_TRY(cfg_int(root, NULL, "num_hidden_layers", file, 0, 1, 1024, &cfg->num_layers));
    CL_TRY(cfg_int(root, NULL, "num_attention_heads", file, 0, 1, 1024, &cfg->num_heads));
    CL_TRY(cfg_int(root, NULL, "num_key_value_heads", file, cfg->num_heads, 1, 1024,
                   &cfg->num_kv_heads));
    CL_TRY(cfg_int(root, NULL, "head_dim", file, cfg->hidden_size / cfg->num_heads, 1, 1024,
                   &cfg->head_dim));
    if (cfg->head_dim < 1) /* the default: hidden_size / num_attention_heads */
        return cl_err(CL_ERR_FORMAT,
                      "%s: missing key 'head_dim' and hidden_size / num_attention_heads is 0",
                      file);
    if (cfg->num_heads % cfg->num_kv_heads)
        return cl_err(CL_ERR_FORMAT,
                      "%s: num_attention_heads (%lld) is not a multiple of num_key_value_heads "
                      "(%lld)",
                      file, (long long)cfg->num_heads, (long long)cfg->num_kv_heads);
    if (cfg->head_dim % 2)
        return cl_err(CL_ERR_FORMAT, "%s: key 'head_dim' must be even (RoPE)", file);

    CL_TRY(cl_json_str(root, "hidden_act", file, "silu", &s));
    if (strcmp(s, "silu"))
        return cl_err(CL_ERR_UNSUPPORTED, "%s: key 'hidden_act' = '%s' is not supported (silu)",
                      file, s);
    CL_TRY(cfg_pos_float(root, NULL, "rms_norm_eps", file, 1e-6, 1.0, &cfg->rms_norm_eps));
    CL_TRY(cl_json_bool(root, "attention_bias", file, 0, &b));
    if (b)
        return cl_err(CL_ERR_UNSUPPORTED,
                      "%s: key 'attention_bias' = true is not yet supported (Qwen3 has none)",
                      file);
    CL_TRY(cl_json_bool(root, "tie_word_embeddings", file, 0, &cfg->tie_word_embeddings));
    CL_TRY(cl_json_bool(root, "use_sliding_window", file, 0, &b));
    if (b)
        return cl_err(CL_ERR_UNSUPPORTED,
                      "%s: key 'use_sliding_window' = true is not supported (SWA layers use "
                      "swa_config)",
                      file);
    CL_TRY(cfg_int(root, NULL, "max_position_embeddings", file, 40960, 1, MAX_POSITIONS,
                   &cfg->max_position_embeddings));

    /* RoPE: rope_parameters first, then rope_theta, else 10000 (spec §1.2) */
    const cJSON *rp = cJSON_GetObjectItemCaseSensitive(root, "rope_parameters");
    double legacy_theta;
    CL_TRY(cfg_pos_float(root, NULL, "rope_theta", file, 10000.0, DBL_MAX, &legacy_theta));
    cfg->rope_theta = legacy_theta;
    if (rp && !cJSON_IsNull(rp)) {
        if (!cJSON_IsObject(rp))
            return cl_err(CL_ERR_FORMAT, "%s: key 'rope_parameters': expected an object", file);
        CL_TRY(cl_json_str(rp, "rope_type", file, "default", &s));
        if (strcmp(s, "default"))
            return cl_err(CL_ERR_UNSUPPORTED,
                          "%s: key 'rope_parameters.rope_type' = '%s' is not yet supported "
                          "(only 'default')",
                          file, s);
        CL_TRY(cfg_pos_float(rp, "rope_parameters", "rope_theta", file, legacy_theta, DBL_MAX,
                             &cfg->rope_theta));
    }
    const cJSON *rs = cJSON_GetObjectItemCaseSensitive(root, "rope_scaling");
    if (rs && !cJSON_IsNull(rs)) {
        const char *t1 = NULL, *t2 = NULL;
        if (cJSON_IsObject(rs)) {
            CL_TRY(cl_json_str(rs, "rope_type", file, NULL, &t1));
            CL_TRY(cl_json_str(rs, "type", file, NULL, &t2));
        }
        const char *t = t1 ? t1 : t2;
        if (!t || strcmp(t, "default"))
            return cl_err(CL_ERR_UNSUPPORTED,
                          "%s: key 'rope_scaling' = '%s' is not yet supported (only 'default')",
                          file, t ? t : "?");
    }

    cfg->dtype = CL_F32;
    const char *dt = NULL;
    CL_TRY(cl_json_str(root, "torch_dtype", file, NULL, &dt));
    if (!dt)
        CL_TRY(cl_json_str(root, "dtype", file, NULL, &dt));
    if (dt)
        CL_TRY(cfg_parse_dtype(dt, file, "dtype", &cfg->dtype));

    int64_t last_id = cfg->vocab_size - 1;
    CL_TRY(cfg_int(root, NULL, "bos_token_id", file, -1, 0, last_id, &cfg->bos_token_id));
    CL_TRY(cfg_int(root, NULL, "pad_token_id", file, -1, 0, last_id, &cfg->pad_token_id));
    CL_TRY(cfg_parse_token_ids(root, "eos_token_id", file, cfg->vocab_size, cfg->eos_ids,
                               &cfg->n_eos, CL_MAX_EOS));

    CL_TRY(parse_pattern(cfg, root, file));
    int has[CL_LAYER_TYPE_COUNT] = {0};
    for (int64_t i = 0; i < cfg->num_layers; i++) {
        has[cfg->layer_types[i]] = 1;
        cfg->n_attn_layers += cl_layer_is_attention(cfg->layer_types[i]);
        cfg->n_ssm_layers += cl_layer_is_ssm(cfg->layer_types[i]);
    }
    /* the priming step stores each mixer's full sub-config (spec MODEL.md §1.4) */
    static const struct {
        cl_layer_type type;
        const char *key;
    } subs[] = {{CL_LAYER_GKA, "gka_config"},
                {CL_LAYER_GDN, "gdn_config"},
                {CL_LAYER_M2, "mamba2_config"}};
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++) {
        const cJSON *sub = cJSON_GetObjectItemCaseSensitive(root, subs[i].key);
        if (has[subs[i].type] && (!sub || cJSON_IsNull(sub)))
            return cl_err(CL_ERR_FORMAT, "%s: the pattern has %s layers but key '%s' is missing",
                          file, cl_layer_symbol(subs[i].type), subs[i].key);
        if (sub && !cJSON_IsNull(sub) && !cJSON_IsObject(sub))
            return cl_err(CL_ERR_FORMAT, "%s: key '%s': expected an object", file, subs[i].key);
    }
    if (has[CL_LAYER_BMF]) {
        CL_TRY(cfg_parse_bmf(cfg, root, file));
        has[cfg->bmf.ssm_mixer] = 1;
    }
    if (has[CL_LAYER_SWA])
        CL_TRY(cfg_parse_swa(cfg, root, file));
    if (has[CL_LAYER_M2])
        CL_TRY(cfg_parse_m2(cfg, root, file));
    if (has[CL_LAYER_GDN])
        CL_TRY(cfg_parse_gdn(cfg, root, file));
    if (has[CL_LAYER_GKA])
        CL_TRY(cfg_parse_gka(cfg, root, file));

    CL_TRY(cfg_collect_unknown(cfg, root, "", known_top));
    return cfg_canonical_json(root, &cfg->canonical_json);
}

int cl_config_parse(const char *what, const char *json_text, cl_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->path = strdup(what);
    if (!cfg->path)
        return cl_err(CL_ERR_NOMEM, "out of memory");
    cJSON *root;
    int rc = cl_json_parse(what, json_text, strlen(json_text), &root);
    if (rc == CL_OK) {
        rc = parse_root(cfg, root, what);
        cJSON_Delete(root);
    }
    if (rc != CL_OK)
        cl_config_free(cfg);
    return rc;
}

int cl_config_load(const char *model_dir, cl_config *cfg)
{
    char path[4096];
    memset(cfg, 0, sizeof *cfg);
    CL_TRY(cl_path_join(path, sizeof path, model_dir, "config.json"));
    if (!cl_is_file(path))
        return cl_err(CL_ERR_IO, "%s: missing (not a model directory?)", path);
    char *text;
    CL_TRY(cl_read_file(path, &text, NULL));
    int rc = cl_config_parse(path, text, cfg);
    free(text);
    return rc;
}

int cl_config_load_generation(const char *model_dir, cl_config *cfg)
{
    char path[4096];
    CL_TRY(cl_path_join(path, sizeof path, model_dir, "generation_config.json"));
    if (!cl_is_file(path))
        return CL_OK;
    cJSON *root;
    CL_TRY(cl_json_load(path, &root));
    int rc = cfg_parse_token_ids(root, "eos_token_id", path, cfg->vocab_size, cfg->eos_ids,
                                 &cfg->n_eos, CL_MAX_EOS);
    cJSON_Delete(root);
    return rc;
}

void cl_config_free(cl_config *cfg)
{
    free(cfg->path);
    free(cfg->model_type);
    free(cfg->layer_types);
    for (int i = 0; i < cfg->n_unknown; i++)
        free(cfg->unknown_keys[i]);
    free(cfg->unknown_keys);
    free(cfg->canonical_json);
    memset(cfg, 0, sizeof *cfg);
}

int64_t cl_config_conv_channels(const cl_config *cfg, cl_layer_type t)
{
    if (t == CL_LAYER_M2)
        return cfg->m2.conv_dim;
    if (t == CL_LAYER_GDN || t == CL_LAYER_GKA)
        return (cfg->num_heads + 2 * cfg->num_kv_heads) * cfg->head_dim;
    return 0;
}

int64_t cl_config_kv_bytes_per_token(const cl_config *cfg, cl_dtype kv_dtype)
{
    return (int64_t)cfg->n_attn_layers * 2 * cfg->num_kv_heads * cfg->head_dim *
           (int64_t)cl_dtype_size(kv_dtype);
}

int64_t cl_config_ssm_state_bytes(const cl_config *cfg)
{
    int64_t total = 0, D = cfg->head_dim, H = cfg->num_heads;
    for (int64_t i = 0; i < cfg->num_layers; i++) {
        cl_layer_type t = cfg->layer_types[i];
        if (!cl_layer_is_ssm(t))
            continue;
        int64_t conv_size = t == CL_LAYER_M2    ? cfg->m2.conv_size
                            : t == CL_LAYER_GDN ? cfg->gdn.conv_size
                                                : cfg->gka.conv_size;
        int64_t states = t == CL_LAYER_GKA ? 2 : 1;
        total += 4 * (states * H * D * D + (conv_size - 1) * cl_config_conv_channels(cfg, t));
    }
    return total;
}
