/* config.h - config.json of a HybridQwen3ForCausalLM checkpoint (spec/MODEL.md §1).
 *
 * cl_config_load() reads every key the released checkpoints use, derives the
 * per-type dimensions from the top-level config and checks the per-type dicts
 * against them. A known key whose value asks for math collage does not implement
 * is an error naming the key; unknown keys are ignored and listed in
 * cfg->unknown_keys (shown by `collage info --verbose`). Every number the engine
 * uses is checked against its range (integers in [lo, hi], floats positive and
 * finite; token ids below vocab_size), errors naming the key, the value and the
 * range; a key given twice is refused; each SSM layer type of the pattern needs
 * its sub-config (gka_config, gdn_config, mamba2_config).
 */
#ifndef CL_CONFIG_H
#define CL_CONFIG_H

#include <stdint.h>

#include "collage.h"
#include "common/dtype.h"

/* cl_layer_type, cl_layer_symbol and cl_layer_name are public (collage.h). */
/* 1 for layer types that keep attention KV (ATTN, SWA). */
int cl_layer_is_attention(cl_layer_type t);
/* 1 for layer types with a recurrent state (M2, GDN, GKA). */
int cl_layer_is_ssm(cl_layer_type t);

#define CL_MAX_EOS 8

typedef struct {
    int64_t window; /* keys [i-window+1, i] */
} cl_swa_config;

typedef struct {
    int64_t d_inner, d_xb, d_state, ngroups, nheads, headdim, conv_size, conv_dim;
    int use_qk_norm;
    double bc_norm_eps;   /* B_norm / C_norm: 1e-6 */
    double gated_norm_eps; /* 1e-5 */
} cl_m2_config;

typedef struct {
    int use_gate, use_short_conv, allow_neg_eigval, conv_bias;
    int64_t conv_size;
    double norm_eps; /* o_norm, 1e-5 */
} cl_gdn_config;

typedef struct {
    int use_alpha_connection, use_v_conv, use_forgetting_gate, use_forgetting_gate_kk;
    int gla_rescale, use_gate, use_beta_gate;
    int64_t num_iter, conv_size, chunk_size;
    double ridge_strength;
    double norm_eps; /* o_norm, 1e-6 */
} cl_gka_config;

typedef struct {
    int64_t window;
    int tie_attn_weights;
    cl_layer_type ssm_mixer;
} cl_bmf_config;

typedef struct {
    char *path; /* config.json path, for messages */
    char *model_type;
    int64_t vocab_size, hidden_size, intermediate_size, num_layers;
    int64_t num_heads, num_kv_heads, head_dim;
    double rms_norm_eps, rope_theta;
    int64_t max_position_embeddings;
    int tie_word_embeddings;
    cl_dtype dtype; /* declared dtype (torch_dtype / dtype), F32 if absent */
    int64_t bos_token_id; /* -1 if none */
    int64_t pad_token_id; /* -1 if none */
    int n_eos;
    int64_t eos_ids[CL_MAX_EOS];

    cl_layer_type *layer_types; /* [num_layers] */
    int n_attn_layers, n_ssm_layers;

    cl_swa_config swa;
    cl_m2_config m2;
    cl_gdn_config gdn;
    cl_gka_config gka;
    cl_bmf_config bmf;

    char **unknown_keys; /* keys present but not understood (ignored) */
    int n_unknown;
    char *canonical_json; /* the parsed config re-printed with sorted keys (for model_id) */
} cl_config;

/* Loads DIR/config.json (and merges gka_overrides). */
int cl_config_load(const char *model_dir, cl_config *cfg);
/* Parses a config from JSON text (`what` names it in messages). */
int cl_config_parse(const char *what, const char *json_text, cl_config *cfg);
void cl_config_free(cl_config *cfg);

/* Reads eos ids from DIR/generation_config.json if present (appends to cfg->eos_ids). */
int cl_config_load_generation(const char *model_dir, cl_config *cfg);

/* Derived sizes. */
int64_t cl_config_kv_bytes_per_token(const cl_config *cfg, cl_dtype kv_dtype);
/* fp32 recurrent + conv state bytes of one sequence. */
int64_t cl_config_ssm_state_bytes(const cl_config *cfg);
/* Conv channels of an SSM layer (q||k||v for GDN/GKA, xBC for M2). */
int64_t cl_config_conv_channels(const cl_config *cfg, cl_layer_type t);

#endif
