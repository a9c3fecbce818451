/* collage info - describe a model: layout, parameters, KV bytes/token, state bytes. */
#include <stdio.h>
#include <string.h>

#include "args.h"
#include "common/json.h"
#include "common/status.h"
#include "model/checkpoint.h"
#include "verbs.h"

static void print_json(const cl_checkpoint *ck)
{
    const cl_config *c = &ck->cfg;
    printf("{\"model\":");
    cl_json_fputs(stdout, ck->dir);
    printf(",\"model_type\":");
    cl_json_fputs(stdout, c->model_type);
    printf(",\"dtype\":\"%s\",\"vocab_size\":%lld,\"hidden_size\":%lld,"
           "\"intermediate_size\":%lld,\"num_layers\":%lld,\"num_heads\":%lld,"
           "\"num_kv_heads\":%lld,\"head_dim\":%lld,\"rope_theta\":%.17g,",
           cl_dtype_name(c->dtype), (long long)c->vocab_size, (long long)c->hidden_size,
           (long long)c->intermediate_size, (long long)c->num_layers, (long long)c->num_heads,
           (long long)c->num_kv_heads, (long long)c->head_dim, c->rope_theta);
    printf("\"layers\":[");
    for (int64_t l = 0; l < c->num_layers; l++)
        printf("%s\"%s\"", l ? "," : "", cl_layer_symbol(c->layer_types[l]));
    printf("],\"attention_layers\":%d,\"ssm_layers\":%d,\"parameters\":%lld,", c->n_attn_layers,
           c->n_ssm_layers, (long long)ck->w.n_params);
    printf("\"weight_bytes\":%llu,\"kv_bytes_per_token_bf16\":%lld,"
           "\"kv_bytes_per_token_f32\":%lld,\"ssm_state_bytes_per_sequence\":%lld,",
           (unsigned long long)cl_st_total_bytes(ck->st),
           (long long)cl_config_kv_bytes_per_token(c, CL_BF16),
           (long long)cl_config_kv_bytes_per_token(c, CL_F32),
           (long long)cl_config_ssm_state_bytes(c));
    if (c->n_attn_layers && c->layer_types) {
        int has_swa = 0;
        for (int64_t l = 0; l < c->num_layers; l++)
            has_swa |= c->layer_types[l] == CL_LAYER_SWA;
        if (has_swa)
            printf("\"swa_window\":%lld,", (long long)c->swa.window);
    }
    int has_gka = 0;
    for (int64_t l = 0; l < c->num_layers; l++)
        has_gka |= c->layer_types[l] == CL_LAYER_GKA;
    if (has_gka)
        printf("\"gka_num_iter\":%lld,", (long long)c->gka.num_iter);
    printf("\"eos_token_ids\":[");
    for (int i = 0; i < c->n_eos; i++)
        printf("%s%lld", i ? "," : "", (long long)c->eos_ids[i]);
    printf("],\"unknown_keys\":[");
    for (int i = 0; i < c->n_unknown; i++) {
        printf("%s", i ? "," : "");
        cl_json_fputs(stdout, c->unknown_keys[i]);
    }
    printf("],\"unused_tensors\":%lld}\n", (long long)ck->w.n_unused);
}

static void print_text(const cl_checkpoint *ck, int verbose)
{
    const cl_config *c = &ck->cfg;
    char b1[32], b2[32], b3[32], b4[32];
    printf("model          %s (%s, %s on disk)\n", ck->dir, c->model_type,
           cl_dtype_name(c->dtype));
    printf("dimensions     hidden %lld, intermediate %lld, heads %lld q / %lld kv x %lld, vocab "
           "%lld\n",
           (long long)c->hidden_size, (long long)c->intermediate_size, (long long)c->num_heads,
           (long long)c->num_kv_heads, (long long)c->head_dim, (long long)c->vocab_size);
    printf("layers         %lld: %d attention, %d SSM\n", (long long)c->num_layers,
           c->n_attn_layers, c->n_ssm_layers);
    printf("layout        ");
    for (int64_t l = 0; l < c->num_layers; l++)
        printf(" %s", cl_layer_symbol(c->layer_types[l]));
    printf("\n");
    for (int t = 0; t < CL_LAYER_TYPE_COUNT; t++) {
        int n = 0;
        for (int64_t l = 0; l < c->num_layers; l++)
            n += c->layer_types[l] == (cl_layer_type)t;
        if (n)
            printf("  %-4s x %-3d  %s%s\n", cl_layer_symbol((cl_layer_type)t), n,
                   cl_layer_name((cl_layer_type)t),
                   t == CL_LAYER_GKA   ? " (Chebyshev solver)"
                   : t == CL_LAYER_SWA ? " (window)"
                                       : "");
    }
    cli_human_bytes(b1, sizeof b1, (double)cl_st_total_bytes(ck->st));
    printf("parameters     %lld (%s of weights)\n", (long long)ck->w.n_params, b1);
    printf("rope theta     %.6g\n", c->rope_theta);
    cli_human_bytes(b2, sizeof b2, (double)cl_config_kv_bytes_per_token(c, CL_BF16));
    cli_human_bytes(b3, sizeof b3, (double)cl_config_kv_bytes_per_token(c, CL_F32));
    cli_human_bytes(b4, sizeof b4, (double)cl_config_ssm_state_bytes(c));
    printf("KV per token   %s (bf16), %s (fp32)\n", b2, b3);
    printf("SSM state      %s per sequence (fp32, conv included)\n", b4);
    for (int64_t l = 0; l < c->num_layers; l++) {
        if (c->layer_types[l] == CL_LAYER_SWA) {
            printf("SWA window     %lld tokens\n", (long long)c->swa.window);
            break;
        }
    }
    for (int64_t l = 0; l < c->num_layers; l++) {
        if (c->layer_types[l] == CL_LAYER_GKA) {
            printf("GKA num_iter   %lld, ridge %.3g\n", (long long)c->gka.num_iter,
                   c->gka.ridge_strength);
            break;
        }
    }
    if (verbose) {
        printf("eos ids       ");
        for (int i = 0; i < c->n_eos; i++)
            printf(" %lld", (long long)c->eos_ids[i]);
        printf("\nunknown keys   %d (ignored)\n", c->n_unknown);
        for (int i = 0; i < c->n_unknown; i++)
            printf("  %s\n", c->unknown_keys[i]);
        printf("unused tensors %lld\n", (long long)ck->w.n_unused);
    }
}

int cmd_info(int argc, char **argv)
{
    const char *model = NULL;
    int json = 0, verbose = 0;
    cli_opt opts[] = {
        {"model", OPT_STR, &model, "DIR", "model directory (config.json + safetensors)"},
        {"json", OPT_FLAG, &json, NULL, "one JSON object on stdout"},
        {"verbose", OPT_FLAG, &verbose, NULL, "also list ignored config keys"},
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
    cl_checkpoint ck;
    rc = cl_checkpoint_open(model, &ck);
    if (rc != CL_OK)
        return cli_fail(rc);
    if (json)
        print_json(&ck);
    else
        print_text(&ck, verbose);
    cl_checkpoint_close(&ck);
    return 0;
}
