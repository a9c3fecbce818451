#include "model/config.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fileio.h"
#include "common/json.h"
#include "common/status.h"

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

/* ---------------------------------------------------------------- helpers */

static int add_unknown(cl_config *cfg, const char *prefix, const char *key)
{
    char **nu = realloc(cfg->unknown_keys, (size_t)(cfg->n_unknown + 1) * sizeof *nu);
    if (!nu)
        return cl_err(CL_ERR_NOMEM, "out of memory");
    cfg->unknown_keys = nu;
    size_t n = strlen(prefix) + strlen(key) + 2;
    char *s = malloc(n);
    if (!s)
        return cl_err(CL_ERR_NOMEM, "out of memory");
    snprintf(s, n, "%s%s%s", prefix, prefix[0] ? "." : "", key);
    cfg->unknown_keys[cfg->n_unknown++] = s;
    return CL_OK;
}

static int in_list(const char *key, const char *const *list)
{
    for (; *list; list++)
        if (!strcmp(key, *list))
            return 1;
    return 0;
}

static int collect_unknown(cl_config *cfg, const cJSON *obj, const char *prefix,
                           const char *const *known)
{
    if (!cJSON_IsObject(obj))
        return CL_OK;
    for (const cJSON *e = obj->child; e; e = e->next)
        if (!in_list(e->string, known))
            CL_TRY(add_unknown(cfg, prefix, e->string));
    return CL_OK;
}

/* Checks a per-type dict's derived value against the top-level one. */
static int check_derived(const cJSON *sub, const char *subname, const char *key, int64_t want,
                         const char *file)
{
    int64_t v;
    char full[128];
    snprintf(full, sizeof full, "%s.%s", subname, key);
    CL_TRY(cl_json_int(sub, key, file, want, &v));
    if (v != want)
        return cl_err(CL_ERR_FORMAT, "%s: key '%s' is %lld but the top-level config implies %lld",
                      file, full, (long long)v, (long long)want);
    return CL_OK;
}

static int unsupported_bool(const cJSON *sub, const char *subname, const char *key, int def,
                            int supported_value, const char *file, int *out)
{
    CL_TRY(cl_json_bool(sub, key, file, def, out));
    if (*out != supported_value)
        return cl_err(CL_ERR_UNSUPPORTED, "%s: key '%s.%s' = %s is not yet supported", file,
                      subname, key, *out ? "true" : "false");
    return CL_OK;
}

static int reject_kv_rank(const cJSON *sub, const char *subname, const char *file)
{
    if (cl_json_has(sub, "kv_proj_rank"))
        return cl_err(CL_ERR_UNSUPPORTED,
                      "%s: key '%s.kv_proj_rank' is set: low-rank K/V expansion is not yet "
                      "supported",
                      file, subname);
    int b;
    CL_TRY(unsupported_bool(sub, subname, "kv_learnable_residual", 0, 0, file, &b));
    return CL_OK;
}

static int parse_dtype(const char *s, const char *file, const char *key, cl_dtype *out)
{
    if (!strcmp(s, "float32") || !strcmp(s, "float"))
        *out = CL_F32;
    else if (!strcmp(s, "bfloat16"))
        *out = CL_BF16;
    else if (!strcmp(s, "float16") || !strcmp(s, "half"))
        *out = CL_F16;
    else
        return cl_err(CL_ERR_UNSUPPORTED, "%s: key '%s': dtype '%s' is not supported", file, key,
                      s);
    return CL_OK;
}

static int parse_token_ids(const cJSON *root, const char *key, const char *file, int64_t *ids,
                           int *n, int max)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v || cJSON_IsNull(v))
        return CL_OK;
    if (cJSON_IsNumber(v)) {
        if (*n < max)
            ids[(*n)++] = (int64_t)v->valuedouble;
        return CL_OK;
    }
    if (cJSON_IsArray(v)) {
        for (const cJSON *e = v->child; e; e = e->next) {
            if (!cJSON_IsNumber(e))
                return cl_err(CL_ERR_FORMAT, "%s: key '%s': expected integers", file, key);
            int dup = 0;
            for (int i = 0; i < *n; i++)
                dup |= ids[i] == (int64_t)e->valuedouble;
            if (!dup && *n < max)
                ids[(*n)++] = (int64_t)e->valuedouble;
        }
        return CL_OK;
    }
    return cl_err(CL_ERR_FORMAT, "%s: key '%s': expected an integer or a list", file, key);
}

/* Canonical JSON (object keys sorted, numbers as %.17g) for hashing the config. */
static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

typedef struct {
    char *s;
    size_t n, cap;
    int oom;
} strbuf;

static void sb_put(strbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->n + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 1024;
        while (nc < b->n + n + 1)
            nc *= 2;
        char *ns = realloc(b->s, nc);
        if (!ns) {
            b->oom = 1;
            return;
        }
        b->s = ns;
        b->cap = nc;
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = 0;
}

static void sb_str(strbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

static void sb_json_str(strbuf *b, const char *s)
{
    char esc[8];
    sb_str(b, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*p;
            sb_put(b, esc, 2);
        } else if (*p < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", *p);
            sb_str(b, esc);
        } else {
            sb_put(b, (const char *)p, 1);
        }
    }
    sb_str(b, "\"");
}

static void canon(strbuf *b, const cJSON *v)
{
    char num[64];
    if (cJSON_IsObject(v)) {
        int n = cJSON_GetArraySize(v), i = 0;
        const char **keys = malloc((size_t)(n ? n : 1) * sizeof *keys);
        if (!keys) {
            b->oom = 1;
            return;
        }
        for (const cJSON *e = v->child; e; e = e->next)
            keys[i++] = e->string;
        qsort(keys, (size_t)n, sizeof *keys, cmp_str);
        sb_str(b, "{");
        for (i = 0; i < n; i++) {
            if (i)
                sb_str(b, ",");
            sb_json_str(b, keys[i]);
            sb_str(b, ":");
            canon(b, cJSON_GetObjectItemCaseSensitive(v, keys[i]));
        }
        sb_str(b, "}");
        free(keys);
    } else if (cJSON_IsArray(v)) {
        sb_str(b, "[");
        for (const cJSON *e = v->child; e; e = e->next) {
            if (e != v->child)
                sb_str(b, ",");
            canon(b, e);
        }
        sb_str(b, "]");
    } else if (cJSON_IsNumber(v)) {
        snprintf(num, sizeof num, "%.17g", v->valuedouble);
        sb_str(b, num);
    } else if (cJSON_IsString(v)) {
        sb_json_str(b, v->valuestring);
    } else if (cJSON_IsBool(v)) {
        sb_str(b, cJSON_IsTrue(v) ? "true" : "false");
    } else {
        sb_str(b, "null");
    }
}

/* ------------------------------------------------------------ sub-configs */

static const char *const known_top[] = {
    "architectures", "model_type", "vocab_size", "hidden_size", "intermediate_size",
    "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "head_dim", "hidden_act",
    "rms_norm_eps", "attention_bias", "attention_dropout", "tie_word_embeddings",
    "rope_parameters", "rope_theta", "rope_scaling", "max_position_embeddings",
    "hybrid_override_pattern", "layer_types", "gka_config", "gdn_config", "mamba2_config",
    "swa_config", "bmojo_config", "gka_overrides", "bos_token_id", "eos_token_id",
    "pad_token_id", "use_sliding_window", "sliding_window", "max_window_layers", "torch_dtype",
    "dtype", "initializer_range", "use_cache", "transformers_version", NULL};

static const char *const known_gka[] = {
    "hidden_size", "head_dim", "num_q_heads", "num_k_heads", "num_v_heads",
    "use_alpha_connection", "use_v_conv", "use_forgetting_gate", "use_forgetting_gate_kk",
    "gla_rescale", "solver_type", "bp_lambda", "num_iter", "ridge_strength", "use_gate",
    "conv_size", "norm_eps", "use_beta_gate", "chunk_size", "kv_proj_rank",
    "kv_learnable_residual", NULL};

static const char *const known_gdn[] = {
    "hidden_size", "head_dim", "num_q_heads", "num_k_heads", "num_v_heads", "use_gate",
    "use_short_conv", "allow_neg_eigval", "conv_size", "conv_bias", "norm_eps", "kv_proj_rank",
    "kv_learnable_residual", NULL};

static const char *const known_m2[] = {"d_model", "d_inner", "d_xb", "intermediate_size",
                                       "hidden_act", "rms_norm_eps", "n_layer", "ssm_cfg",
                                       "use_qk_norm", "use_pos_emb", NULL};

static const char *const known_swa[] = {"window_size", NULL};
static const char *const known_bmf[] = {"hidden_size", "num_heads", "num_key_value_heads",
                                        "head_dim", "rms_norm_eps", "window_size",
                                        "tie_attn_weights", "ssm_mixer", NULL};

static int parse_heads_common(const cJSON *sub, const char *name, const cl_config *cfg,
                              const char *file)
{
    CL_TRY(check_derived(sub, name, "hidden_size", cfg->hidden_size, file));
    CL_TRY(check_derived(sub, name, "head_dim", cfg->head_dim, file));
    CL_TRY(check_derived(sub, name, "num_q_heads", cfg->num_heads, file));
    CL_TRY(check_derived(sub, name, "num_k_heads", cfg->num_kv_heads, file));
    CL_TRY(check_derived(sub, name, "num_v_heads", cfg->num_kv_heads, file));
    return reject_kv_rank(sub, name, file);
}

static int parse_gka(cl_config *cfg, const cJSON *root, const char *file)
{
    const cJSON *sub = cJSON_GetObjectItemCaseSensitive(root, "gka_config");
    const cJSON *ovr = cJSON_GetObjectItemCaseSensitive(root, "gka_overrides");
    if (sub && !cJSON_IsNull(sub) && !cJSON_IsObject(sub))
        return cl_err(CL_ERR_FORMAT, "%s: key 'gka_config': expected an object", file);
    if (ovr && !cJSON_IsNull(ovr) && !cJSON_IsObject(ovr))
        return cl_err(CL_ERR_FORMAT, "%s: key 'gka_overrides': expected an object", file);
    /* merge: overrides win (spec/SERVING.md §5) */
    cJSON *merged = sub && cJSON_IsObject(sub) ? cJSON_Duplicate(sub, 1) : cJSON_CreateObject();
    if (!merged)
        return cl_err(CL_ERR_NOMEM, "out of memory");
    if (ovr && cJSON_IsObject(ovr)) {
        for (const cJSON *e = ovr->child; e; e = e->next) {
            cJSON_DeleteItemFromObjectCaseSensitive(merged, e->string);
            cJSON_AddItemToObject(merged, e->string, cJSON_Duplicate(e, 1));
        }
    }
    int rc = CL_OK;
    cl_gka_config *g = &cfg->gka;
    const char *solver;
    int b;
#define TRY(x)                  \
    do {                        \
        if ((rc = (x)) != CL_OK) \
            goto out;           \
    } while (0)
    TRY(parse_heads_common(merged, "gka_config", cfg, file));
    TRY(cl_json_bool(merged, "use_alpha_connection", file, 1, &g->use_alpha_connection));
    TRY(unsupported_bool(merged, "gka_config", "use_v_conv", 1, 1, file, &g->use_v_conv));
    TRY(unsupported_bool(merged, "gka_config", "use_forgetting_gate", 1, 1, file,
                         &g->use_forgetting_gate));
    TRY(unsupported_bool(merged, "gka_config", "use_forgetting_gate_kk", 1, 1, file,
                         &g->use_forgetting_gate_kk));
    TRY(cl_json_bool(merged, "gla_rescale", file, 1, &g->gla_rescale));
    TRY(unsupported_bool(merged, "gka_config", "use_gate", 1, 1, file, &g->use_gate));
    TRY(unsupported_bool(merged, "gka_config", "use_beta_gate", 1, 1, file, &g->use_beta_gate));
    TRY(cl_json_bool(merged, "bp_lambda", file, 1, &b));
    TRY(cl_json_str(merged, "solver_type", file, "chebyshev", &solver));
    if (strcmp(solver, "chebyshev")) {
        rc = cl_err(CL_ERR_UNSUPPORTED,
                    "%s: key 'gka_config.solver_type' = '%s' is not supported (only chebyshev)",
                    file, solver);
        goto out;
    }
    TRY(cl_json_int(merged, "num_iter", file, 30, &g->num_iter));
    TRY(cl_json_int(merged, "conv_size", file, 4, &g->conv_size));
    TRY(cl_json_int(merged, "chunk_size", file, 64, &g->chunk_size));
    TRY(cl_json_num(merged, "ridge_strength", file, 0.02, &g->ridge_strength));
    TRY(cl_json_num(merged, "norm_eps", file, 1e-6, &g->norm_eps));
    if (g->num_iter < 0 || g->num_iter > 1000) {
        rc = cl_err(CL_ERR_FORMAT, "%s: key 'gka_config.num_iter' = %lld out of range [0, 1000]",
                    file, (long long)g->num_iter);
        goto out;
    }
    if (g->conv_size < 1 || g->conv_size > 8) {
        rc = cl_err(CL_ERR_UNSUPPORTED, "%s: key 'gka_config.conv_size' = %lld not supported",
                    file, (long long)g->conv_size);
        goto out;
    }
    if (!(g->ridge_strength > 0)) {
        rc = cl_err(CL_ERR_FORMAT, "%s: key 'gka_config.ridge_strength' must be > 0", file);
        goto out;
    }
    TRY(collect_unknown(cfg, sub, "gka_config", known_gka));
    TRY(collect_unknown(cfg, ovr, "gka_overrides", known_gka));
#undef TRY
out:
    cJSON_Delete(merged);
    return rc;
}

static int parse_gdn(cl_config *cfg, const cJSON *root, const char *file)
{
    const cJSON *sub = cJSON_GetObjectItemCaseSensitive(root, "gdn_config");
    cl_gdn_config *g = &cfg->gdn;
    CL_TRY(parse_heads_common(sub, "gdn_config", cfg, file));
    CL_TRY(unsupported_bool(sub, "gdn_config", "use_gate", 1, 1, file, &g->use_gate));
    CL_TRY(unsupported_bool(sub, "gdn_config", "use_short_conv", 1, 1, file, &g->use_short_conv));
    CL_TRY(unsupported_bool(sub, "gdn_config", "conv_bias", 0, 0, file, &g->conv_bias));
    CL_TRY(cl_json_bool(sub, "allow_neg_eigval", file, 0, &g->allow_neg_eigval));
    CL_TRY(cl_json_int(sub, "conv_size", file, 4, &g->conv_size));
    CL_TRY(cl_json_num(sub, "norm_eps", file, 1e-5, &g->norm_eps));
    if (g->conv_size < 1 || g->conv_size > 8)
        return cl_err(CL_ERR_UNSUPPORTED, "%s: key 'gdn_config.conv_size' = %lld not supported",
                      file, (long long)g->conv_size);
    return collect_unknown(cfg, sub, "gdn_config", known_gdn);
}

static int parse_m2(cl_config *cfg, const cJSON *root, const char *file)
{
    const cJSON *sub = cJSON_GetObjectItemCaseSensitive(root, "mamba2_config");
    cl_m2_config *m = &cfg->m2;
    m->d_inner = cfg->num_heads * cfg->head_dim;
    m->d_xb = cfg->num_kv_heads * cfg->head_dim;
    m->nheads = cfg->num_heads;
    m->ngroups = cfg->num_heads;
    m->headdim = cfg->head_dim;
    m->d_state = cfg->head_dim;
    m->conv_size = 4; /* Mamba2 class default d_conv (spec §1.4) */
    m->conv_dim = m->d_inner + 2 * m->d_xb;
    m->bc_norm_eps = 1e-6;
    m->gated_norm_eps = 1e-5;
    CL_TRY(check_derived(sub, "mamba2_config", "d_model", cfg->hidden_size, file));
    CL_TRY(check_derived(sub, "mamba2_config", "d_inner", m->d_inner, file));
    CL_TRY(check_derived(sub, "mamba2_config", "d_xb", m->d_xb, file));
    CL_TRY(cl_json_bool(sub, "use_qk_norm", file, 1, &m->use_qk_norm));
    int pos;
    CL_TRY(unsupported_bool(sub, "mamba2_config", "use_pos_emb", 0, 0, file, &pos));
    const cJSON *ssm = cJSON_GetObjectItemCaseSensitive(sub, "ssm_cfg");
    if (ssm && cJSON_IsObject(ssm)) {
        CL_TRY(check_derived(ssm, "mamba2_config.ssm_cfg", "expand", 1, file));
        CL_TRY(check_derived(ssm, "mamba2_config.ssm_cfg", "ngroups", m->ngroups, file));
        CL_TRY(check_derived(ssm, "mamba2_config.ssm_cfg", "d_state", m->d_state, file));
        for (const cJSON *e = ssm->child; e; e = e->next)
            if (strcmp(e->string, "expand") && strcmp(e->string, "ngroups") &&
                strcmp(e->string, "d_state"))
                CL_TRY(add_unknown(cfg, "mamba2_config.ssm_cfg", e->string));
    }
    return collect_unknown(cfg, sub, "mamba2_config", known_m2);
}

static int parse_swa(cl_config *cfg, const cJSON *root, const char *file)
{
    const cJSON *sub = cJSON_GetObjectItemCaseSensitive(root, "swa_config");
    if (!sub || !cJSON_IsObject(sub) || !cl_json_has(sub, "window_size"))
        return cl_err(CL_ERR_FORMAT,
                      "%s: the pattern has SWA layers but 'swa_config.window_size' is missing",
                      file);
    CL_TRY(cl_json_int(sub, "window_size", file, 0, &cfg->swa.window));
    if (cfg->swa.window < 1)
        return cl_err(CL_ERR_FORMAT, "%s: key 'swa_config.window_size' must be >= 1", file);
    return collect_unknown(cfg, sub, "swa_config", known_swa);
}

static int parse_bmf(cl_config *cfg, const cJSON *root, const char *file)
{
    const cJSON *sub = cJSON_GetObjectItemCaseSensitive(root, "bmojo_config");
    const char *mixer;
    CL_TRY(cl_json_int(sub, "window_size", file, 2048, &cfg->bmf.window));
    CL_TRY(cl_json_bool(sub, "tie_attn_weights", file, 1, &cfg->bmf.tie_attn_weights));
    CL_TRY(cl_json_str(sub, "ssm_mixer", file, "mamba2", &mixer));
    if (!strcmp(mixer, "mamba2"))
        cfg->bmf.ssm_mixer = CL_LAYER_M2;
    else if (!strcmp(mixer, "gdn") || !strcmp(mixer, "gated_deltanet"))
        cfg->bmf.ssm_mixer = CL_LAYER_GDN;
    else if (!strcmp(mixer, "gka") || !strcmp(mixer, "gated_kalmanet"))
        cfg->bmf.ssm_mixer = CL_LAYER_GKA;
    else
        return cl_err(CL_ERR_FORMAT, "%s: key 'bmojo_config.ssm_mixer': unknown mixer '%s'", file,
                      mixer);
    return collect_unknown(cfg, sub, "bmojo_config", known_bmf);
}

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
    CL_TRY(cl_json_int(root, "vocab_size", file, 0, &cfg->vocab_size));
    CL_TRY(cl_json_int(root, "hidden_size", file, 0, &cfg->hidden_size));
    CL_TRY(cl_json_int(root, "intermediate_size", file, 0, &cfg->intermediate_size));
    CL_TRY(cl_json_int(root, "num_hidden_layers", file, 0, &cfg->num_layers));
    CL_TRY(cl_json_int(root, "num_attention_heads", file, 0, &cfg->num_heads));
    CL_TRY(cl_json_int(root, "num_key_value_heads", file, cfg->num_heads, &cfg->num_kv_heads));
    CL_TRY(cl_json_int(root, "head_dim", file,
                       cfg->num_heads > 0 ? cfg->hidden_size / cfg->num_heads : 0,
                       &cfg->head_dim));
    struct {
        const char *key;
        int64_t v, max;
    } dims[] = {{"vocab_size", cfg->vocab_size, 1 << 24},
                {"hidden_size", cfg->hidden_size, 1 << 16},
                {"intermediate_size", cfg->intermediate_size, 1 << 18},
                {"num_hidden_layers", cfg->num_layers, 1024},
                {"num_attention_heads", cfg->num_heads, 1024},
                {"num_key_value_heads", cfg->num_kv_heads, 1024},
                {"head_dim", cfg->head_dim, 1024}};
    for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++)
        if (dims[i].v < 1 || dims[i].v > dims[i].max)
            return cl_err(CL_ERR_FORMAT, "%s: key '%s' = %lld out of range [1, %lld]", file,
                          dims[i].key, (long long)dims[i].v, (long long)dims[i].max);
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
    CL_TRY(cl_json_num(root, "rms_norm_eps", file, 1e-6, &cfg->rms_norm_eps));
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
    CL_TRY(cl_json_int(root, "max_position_embeddings", file, 40960,
                       &cfg->max_position_embeddings));

    /* RoPE: rope_parameters first, then rope_theta, else 10000 (spec §1.2) */
    const cJSON *rp = cJSON_GetObjectItemCaseSensitive(root, "rope_parameters");
    double legacy_theta;
    CL_TRY(cl_json_num(root, "rope_theta", file, 10000.0, &legacy_theta));
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
        CL_TRY(cl_json_num(rp, "rope_theta", file, legacy_theta, &cfg->rope_theta));
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
    if (!(cfg->rope_theta > 0))
        return cl_err(CL_ERR_FORMAT, "%s: rope_theta must be > 0", file);

    cfg->dtype = CL_F32;
    const char *dt = NULL;
    CL_TRY(cl_json_str(root, "torch_dtype", file, NULL, &dt));
    if (!dt)
        CL_TRY(cl_json_str(root, "dtype", file, NULL, &dt));
    if (dt)
        CL_TRY(parse_dtype(dt, file, "dtype", &cfg->dtype));

    CL_TRY(cl_json_int(root, "bos_token_id", file, -1, &cfg->bos_token_id));
    CL_TRY(cl_json_int(root, "pad_token_id", file, -1, &cfg->pad_token_id));
    CL_TRY(parse_token_ids(root, "eos_token_id", file, cfg->eos_ids, &cfg->n_eos, CL_MAX_EOS));

    CL_TRY(parse_pattern(cfg, root, file));
    int has[CL_LAYER_TYPE_COUNT] = {0};
    for (int64_t i = 0; i < cfg->num_layers; i++) {
        has[cfg->layer_types[i]] = 1;
        cfg->n_attn_layers += cl_layer_is_attention(cfg->layer_types[i]);
        cfg->n_ssm_layers += cl_layer_is_ssm(cfg->layer_types[i]);
    }
    if (has[CL_LAYER_BMF]) {
        CL_TRY(parse_bmf(cfg, root, file));
        has[cfg->bmf.ssm_mixer] = 1;
    }
    if (has[CL_LAYER_SWA])
        CL_TRY(parse_swa(cfg, root, file));
    if (has[CL_LAYER_M2])
        CL_TRY(parse_m2(cfg, root, file));
    if (has[CL_LAYER_GDN])
        CL_TRY(parse_gdn(cfg, root, file));
    if (has[CL_LAYER_GKA])
        CL_TRY(parse_gka(cfg, root, file));

    CL_TRY(collect_unknown(cfg, root, "", known_top));
    strbuf sb = {0};
    canon(&sb, root);
    if (sb.oom || !sb.s) {
        free(sb.s);
        return cl_err(CL_ERR_NOMEM, "out of memory");
    }
    cfg->canonical_json = sb.s;
    return CL_OK;
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
    int rc = parse_token_ids(root, "eos_token_id", path, cfg->eos_ids, &cfg->n_eos, CL_MAX_EOS);
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
