/* collage info - describe a model: layout, parameters, KV bytes/token, state bytes.
 * The checkpoint is read and checked but not loaded onto a backend. */
#include <stdio.h>
#include <string.h>

#include "args.h"
#include "cli_ctx.h"
#include "collage.h"
#include "verbs.h"

static int print_json(const cl_model *m, const cl_model_info *i)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "model", i->dir);
    cJSON_AddStringToObject(o, "model_type", i->model_type ? i->model_type : "");
    cJSON_AddStringToObject(o, "dtype", i->dtype);
    cJSON_AddNumberToObject(o, "vocab_size", (double)i->vocab_size);
    cJSON_AddNumberToObject(o, "hidden_size", (double)i->hidden_size);
    cJSON_AddNumberToObject(o, "intermediate_size", (double)i->intermediate_size);
    cJSON_AddNumberToObject(o, "num_layers", (double)i->num_layers);
    cJSON_AddNumberToObject(o, "num_heads", (double)i->num_heads);
    cJSON_AddNumberToObject(o, "num_kv_heads", (double)i->num_kv_heads);
    cJSON_AddNumberToObject(o, "head_dim", (double)i->head_dim);
    cJSON_AddNumberToObject(o, "rope_theta", i->rope_theta);
    cJSON_AddNumberToObject(o, "max_position_embeddings", (double)i->max_position_embeddings);
    cJSON *layers = cJSON_AddArrayToObject(o, "layers");
    for (int64_t l = 0; l < i->num_layers; l++)
        cJSON_AddItemToArray(layers, cJSON_CreateString(cl_layer_symbol(cl_model_layer(m, l))));
    cJSON_AddNumberToObject(o, "attention_layers", i->n_attn_layers);
    cJSON_AddNumberToObject(o, "ssm_layers", i->n_ssm_layers);
    cJSON_AddNumberToObject(o, "parameters", (double)i->n_params);
    cJSON_AddNumberToObject(o, "weight_bytes", (double)i->weight_bytes);
    cJSON_AddNumberToObject(o, "kv_bytes_per_token_bf16", (double)i->kv_bytes_per_token_bf16);
    cJSON_AddNumberToObject(o, "kv_bytes_per_token_f32", (double)i->kv_bytes_per_token_f32);
    cJSON_AddNumberToObject(o, "ssm_state_bytes_per_sequence", (double)i->ssm_state_bytes);
    if (i->swa_window)
        cJSON_AddNumberToObject(o, "swa_window", (double)i->swa_window);
    if (i->has_gka)
        cJSON_AddNumberToObject(o, "gka_num_iter", (double)i->gka_num_iter);
    cJSON *eos = cJSON_AddArrayToObject(o, "eos_token_ids");
    for (int k = 0; k < i->n_eos; k++)
        cJSON_AddItemToArray(eos, cJSON_CreateNumber((double)i->eos_ids[k]));
    cJSON *unk = cJSON_AddArrayToObject(o, "unknown_keys");
    for (int k = 0; k < i->n_unknown_keys; k++)
        cJSON_AddItemToArray(unk, cJSON_CreateString(cl_model_unknown_key(m, k)));
    cJSON_AddNumberToObject(o, "unused_tensors", (double)i->n_unused_tensors);
    return cli_json_emit(o);
}

static void print_text(const cl_model *m, const cl_model_info *i, int verbose)
{
    char b1[32], b2[32], b3[32], b4[32];
    printf("model          %s (%s, %s on disk)\n", i->dir, i->model_type ? i->model_type : "?",
           i->dtype);
    printf("dimensions     hidden %lld, intermediate %lld, heads %lld q / %lld kv x %lld, vocab "
           "%lld\n",
           (long long)i->hidden_size, (long long)i->intermediate_size, (long long)i->num_heads,
           (long long)i->num_kv_heads, (long long)i->head_dim, (long long)i->vocab_size);
    printf("layers         %lld: %d attention, %d SSM\n", (long long)i->num_layers,
           i->n_attn_layers, i->n_ssm_layers);
    printf("layout        ");
    for (int64_t l = 0; l < i->num_layers; l++)
        printf(" %s", cl_layer_symbol(cl_model_layer(m, l)));
    printf("\n");
    for (int t = 0; t < CL_LAYER_TYPE_COUNT; t++) {
        int n = 0;
        for (int64_t l = 0; l < i->num_layers; l++)
            n += cl_model_layer(m, l) == (cl_layer_type)t;
        if (n)
            printf("  %-4s x %-3d  %s%s\n", cl_layer_symbol((cl_layer_type)t), n,
                   cl_layer_name((cl_layer_type)t),
                   t == CL_LAYER_GKA   ? " (Chebyshev solver)"
                   : t == CL_LAYER_SWA ? " (window)"
                                       : "");
    }
    cli_human_bytes(b1, sizeof b1, (double)i->weight_bytes);
    printf("parameters     %lld (%s of weights)\n", (long long)i->n_params, b1);
    printf("context        %lld positions (max_position_embeddings)\n",
           (long long)i->max_position_embeddings);
    printf("rope theta     %.6g\n", i->rope_theta);
    cli_human_bytes(b2, sizeof b2, (double)i->kv_bytes_per_token_bf16);
    cli_human_bytes(b3, sizeof b3, (double)i->kv_bytes_per_token_f32);
    cli_human_bytes(b4, sizeof b4, (double)i->ssm_state_bytes);
    printf("KV per token   %s (bf16), %s (fp32)\n", b2, b3);
    printf("SSM state      %s per sequence (fp32, conv included)\n", b4);
    if (i->swa_window)
        printf("SWA window     %lld tokens\n", (long long)i->swa_window);
    if (i->has_gka)
        printf("GKA num_iter   %lld, ridge %.3g\n", (long long)i->gka_num_iter,
               i->gka_ridge_strength);
    if (verbose) {
        printf("eos ids       ");
        for (int k = 0; k < i->n_eos; k++)
            printf(" %lld", (long long)i->eos_ids[k]);
        printf("\nunknown keys   %d (ignored)\n", i->n_unknown_keys);
        for (int k = 0; k < i->n_unknown_keys; k++)
            printf("  %s\n", cl_model_unknown_key(m, k));
        printf("unused tensors %lld\n", (long long)i->n_unused_tensors);
    }
}

int cmd_info(int argc, char **argv)
{
    const char *model = NULL;
    int json = 0, verbose = 0;
    cli_opt opts[] = {
        {"model", OPT_STR, &model, "DIR", "model directory (config.json + safetensors)", 0, 0},
        {"json", OPT_FLAG, &json, NULL, "one JSON object on stdout", 0, 0},
        {"verbose", OPT_FLAG, &verbose, NULL, "also list ignored config keys", 0, 0},
        {0},
    };
    cli_spec spec = {"info", "--model DIR [--json] [--verbose]",
                     "Loads and checks a checkpoint and prints its layer layout, parameter count,\n"
                     "KV bytes per token and SSM state bytes per sequence.",
                     opts, 0, 0};
    int rc = cli_parse(&spec, argc, argv, NULL, NULL);
    if (rc)
        return rc < 0 ? 0 : rc;
    if (!model)
        return cli_usage_error("info", "--model is required");
    cl_model_opts o;
    cl_model_opts_default(&o);
    o.load_weights = 0;
    cl_model *m;
    rc = cl_model_load(model, &o, &m);
    if (rc != CL_OK)
        return json ? cli_json_fail(rc, NULL) : cli_fail(rc);
    cl_model_info i;
    cl_model_info_get(m, &i);
    int exit_code = 0;
    if (json)
        exit_code = print_json(m, &i);
    else
        print_text(m, &i, verbose);
    cl_model_free(m);
    return exit_code;
}
