/* config_types.c - the per-layer-type sub-configs of config.json (spec MODEL.md §1.4):
 * derived values checked against the top-level config, math we do not implement
 * refused with the key named, unknown keys collected. */
#include <cjson/cJSON.h>
#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "common/status.h"
#include "model/config_parse.h"

/* ------------------------------------------------------------ sub-configs */

#define MAX_CONV 8             /* conv widths the backends implement */
#define MAX_WINDOW (1 << 30)   /* sliding windows (tokens) */

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
    CL_TRY(cfg_check_derived(sub, name, "hidden_size", cfg->hidden_size, file));
    CL_TRY(cfg_check_derived(sub, name, "head_dim", cfg->head_dim, file));
    CL_TRY(cfg_check_derived(sub, name, "num_q_heads", cfg->num_heads, file));
    CL_TRY(cfg_check_derived(sub, name, "num_k_heads", cfg->num_kv_heads, file));
    CL_TRY(cfg_check_derived(sub, name, "num_v_heads", cfg->num_kv_heads, file));
    return cfg_reject_kv_rank(sub, name, file);
}

int cfg_parse_gka(cl_config *cfg, const cJSON *root, const char *file)
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
    TRY(cfg_unsupported_bool(merged, "gka_config", "use_v_conv", 1, 1, file, &g->use_v_conv));
    TRY(cfg_unsupported_bool(merged, "gka_config", "use_forgetting_gate", 1, 1, file,
                         &g->use_forgetting_gate));
    TRY(cfg_unsupported_bool(merged, "gka_config", "use_forgetting_gate_kk", 1, 1, file,
                         &g->use_forgetting_gate_kk));
    TRY(cl_json_bool(merged, "gla_rescale", file, 1, &g->gla_rescale));
    TRY(cfg_unsupported_bool(merged, "gka_config", "use_gate", 1, 1, file, &g->use_gate));
    TRY(cfg_unsupported_bool(merged, "gka_config", "use_beta_gate", 1, 1, file, &g->use_beta_gate));
    TRY(cl_json_bool(merged, "bp_lambda", file, 1, &b));
    TRY(cl_json_str(merged, "solver_type", file, "chebyshev", &solver));
    if (strcmp(solver, "chebyshev")) {
        rc = cl_err(CL_ERR_UNSUPPORTED,
                    "%s: key 'gka_config.solver_type' = '%s' is not supported (only chebyshev)",
                    file, solver);
        goto out;
    }
    TRY(cfg_int(merged, "gka_config", "num_iter", file, 30, 0, 1000, &g->num_iter));
    TRY(cfg_int(merged, "gka_config", "conv_size", file, 4, 1, MAX_CONV, &g->conv_size));
    TRY(cfg_int(merged, "gka_config", "chunk_size", file, 64, 1, 1 << 16, &g->chunk_size));
    TRY(cfg_pos_float(merged, "gka_config", "ridge_strength", file, 0.02, DBL_MAX,
                      &g->ridge_strength));
    TRY(cfg_pos_float(merged, "gka_config", "norm_eps", file, 1e-6, 1.0, &g->norm_eps));
    TRY(cfg_collect_unknown(cfg, sub, "gka_config", known_gka));
    TRY(cfg_collect_unknown(cfg, ovr, "gka_overrides", known_gka));
#undef TRY
out:
    cJSON_Delete(merged);
    return rc;
}

int cfg_parse_gdn(cl_config *cfg, const cJSON *root, const char *file)
{
    const cJSON *sub = cJSON_GetObjectItemCaseSensitive(root, "gdn_config");
    cl_gdn_config *g = &cfg->gdn;
    CL_TRY(parse_heads_common(sub, "gdn_config", cfg, file));
    CL_TRY(cfg_unsupported_bool(sub, "gdn_config", "use_gate", 1, 1, file, &g->use_gate));
    CL_TRY(cfg_unsupported_bool(sub, "gdn_config", "use_short_conv", 1, 1, file, &g->use_short_conv));
    CL_TRY(cfg_unsupported_bool(sub, "gdn_config", "conv_bias", 0, 0, file, &g->conv_bias));
    CL_TRY(cl_json_bool(sub, "allow_neg_eigval", file, 0, &g->allow_neg_eigval));
    CL_TRY(cfg_int(sub, "gdn_config", "conv_size", file, 4, 1, MAX_CONV, &g->conv_size));
    CL_TRY(cfg_pos_float(sub, "gdn_config", "norm_eps", file, 1e-5, 1.0, &g->norm_eps));
    return cfg_collect_unknown(cfg, sub, "gdn_config", known_gdn);
}

int cfg_parse_m2(cl_config *cfg, const cJSON *root, const char *file)
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
    CL_TRY(cfg_check_derived(sub, "mamba2_config", "d_model", cfg->hidden_size, file));
    CL_TRY(cfg_check_derived(sub, "mamba2_config", "d_inner", m->d_inner, file));
    CL_TRY(cfg_check_derived(sub, "mamba2_config", "d_xb", m->d_xb, file));
    CL_TRY(cfg_check_derived(sub, "mamba2_config", "intermediate_size", cfg->intermediate_size,
                             file));
    CL_TRY(cfg_check_derived(sub, "mamba2_config", "n_layer", cfg->num_layers, file));
    double eps;
    CL_TRY(cfg_pos_float(sub, "mamba2_config", "rms_norm_eps", file, cfg->rms_norm_eps, 1.0,
                         &eps));
    CL_TRY(cl_json_bool(sub, "use_qk_norm", file, 1, &m->use_qk_norm));
    int pos;
    CL_TRY(cfg_unsupported_bool(sub, "mamba2_config", "use_pos_emb", 0, 0, file, &pos));
    const cJSON *ssm = cJSON_GetObjectItemCaseSensitive(sub, "ssm_cfg");
    if (ssm && !cJSON_IsNull(ssm) && !cJSON_IsObject(ssm))
        return cl_err(CL_ERR_FORMAT, "%s: key 'mamba2_config.ssm_cfg': expected an object", file);
    if (ssm && cJSON_IsObject(ssm)) {
        CL_TRY(cfg_check_derived(ssm, "mamba2_config.ssm_cfg", "expand", 1, file));
        CL_TRY(cfg_check_derived(ssm, "mamba2_config.ssm_cfg", "ngroups", m->ngroups, file));
        CL_TRY(cfg_check_derived(ssm, "mamba2_config.ssm_cfg", "d_state", m->d_state, file));
        for (const cJSON *e = ssm->child; e; e = e->next)
            if (strcmp(e->string, "expand") && strcmp(e->string, "ngroups") &&
                strcmp(e->string, "d_state"))
                CL_TRY(cfg_add_unknown(cfg, "mamba2_config.ssm_cfg", e->string));
    }
    return cfg_collect_unknown(cfg, sub, "mamba2_config", known_m2);
}

int cfg_parse_swa(cl_config *cfg, const cJSON *root, const char *file)
{
    const cJSON *sub = cJSON_GetObjectItemCaseSensitive(root, "swa_config");
    if (!sub || !cJSON_IsObject(sub) || !cl_json_has(sub, "window_size"))
        return cl_err(CL_ERR_FORMAT,
                      "%s: the pattern has SWA layers but 'swa_config.window_size' is missing",
                      file);
    CL_TRY(cfg_int(sub, "swa_config", "window_size", file, 0, 1, MAX_WINDOW, &cfg->swa.window));
    return cfg_collect_unknown(cfg, sub, "swa_config", known_swa);
}

int cfg_parse_bmf(cl_config *cfg, const cJSON *root, const char *file)
{
    const cJSON *sub = cJSON_GetObjectItemCaseSensitive(root, "bmojo_config");
    const char *mixer;
    double eps;
    CL_TRY(cfg_check_derived(sub, "bmojo_config", "hidden_size", cfg->hidden_size, file));
    CL_TRY(cfg_check_derived(sub, "bmojo_config", "num_heads", cfg->num_heads, file));
    CL_TRY(cfg_check_derived(sub, "bmojo_config", "num_key_value_heads", cfg->num_kv_heads, file));
    CL_TRY(cfg_check_derived(sub, "bmojo_config", "head_dim", cfg->head_dim, file));
    CL_TRY(cfg_pos_float(sub, "bmojo_config", "rms_norm_eps", file, cfg->rms_norm_eps, 1.0, &eps));
    CL_TRY(cfg_int(sub, "bmojo_config", "window_size", file, 2048, 1, MAX_WINDOW,
                   &cfg->bmf.window));
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
    return cfg_collect_unknown(cfg, sub, "bmojo_config", known_bmf);
}

