/* collage compose - state composition of one long input (spec COMPOSITION.md):
 * --input-ids = context || suffix; the context is split into chunks that are
 * prefilled independently and composed into one state, the query body is fed,
 * and generation starts from the last suffix token. Output as `collage generate`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "args.h"
#include "cli_ctx.h"
#include "collage.h"
#include "verbs.h"

/* The pad id when --newline-id is not given: the id of "\n" in DIR/tokenizer.json,
 * else the reference's 198 (Qwen). */
static int32_t default_newline(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    if (access(path, R_OK) == 0) {
        cl_tokenizer *t;
        if (cl_tokenizer_load(path, &t) == CL_OK) {
            int32_t id = cl_tokenizer_find(t, "\n");
            cl_tokenizer_free(t);
            if (id >= 0)
                return id;
        }
        cl_err_clear();
    }
    return CL_COMPOSE_DEFAULT_PAD;
}

static cJSON *report(const cl_ids *out, const char *type, const cl_compose_opts *co,
                     int64_t n_input, int64_t n_suffix, const cl_compose_info *ci,
                     const cl_gen_stats *st)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "ids", cli_json_ids(out));
    cJSON_AddStringToObject(o, "compose_type", type);
    cJSON_AddNumberToObject(o, "num_chunks", (double)co->num_chunks);
    cJSON_AddNumberToObject(o, "newline_id", co->pad_id);
    cJSON_AddNumberToObject(o, "input_tokens", (double)n_input);
    cJSON_AddNumberToObject(o, "context_tokens", (double)(n_input - n_suffix));
    cJSON_AddNumberToObject(o, "suffix_tokens", (double)n_suffix);
    cJSON_AddNumberToObject(o, "prefix_tokens", (double)co->n_prefix);
    cJSON_AddNumberToObject(o, "row_tokens", (double)ci->row_tokens);
    cJSON_AddNumberToObject(o, "kept_tokens", (double)ci->kept_tokens);
    cJSON_AddNumberToObject(o, "position", (double)ci->pos);
    cJSON *hide = cJSON_AddArrayToObject(o, "hide");
    cJSON_AddItemToArray(hide, cJSON_CreateNumber((double)ci->hide_lo));
    cJSON_AddItemToArray(hide, cJSON_CreateNumber((double)ci->hide_hi));
    cJSON_AddNumberToObject(o, "new_tokens", (double)st->new_tokens);
    cJSON_AddNumberToObject(o, "prefill_s", ci->prefill_s);
    cJSON_AddNumberToObject(o, "compose_s", ci->compose_s);
    cJSON_AddNumberToObject(o, "query_s", ci->query_s);
    cJSON_AddNumberToObject(o, "ttft_s", ci->prefill_s + ci->compose_s + ci->query_s +
                                             st->prefill_s);
    cJSON_AddNumberToObject(o, "decode_s", st->decode_s);
    cJSON_AddStringToObject(o, "stop", cli_stop_name(st->stop));
    return o;
}

int cmd_compose(int argc, char **argv)
{
    cli_model_flags mf;
    cli_sampling_flags sf;
    cli_model_flags_init(&mf);
    cli_sampling_flags_init(&sf);
    const char *ids_arg = NULL, *prefix_arg = NULL, *suffix_arg = NULL, *type = NULL,
               *force_arg = NULL, *logits_out = NULL;
    int64_t max_new = 16, num_chunks = 2, newline = -1, min_prepend = 1;
    int print_ids = 0, json = 0, ignore_eos = 0, sequential = 0, sw_mask_query = 0;
    static char type_help[600];
    snprintf(type_help, sizeof type_help, "one of: %s", cl_compose_type_names());
    cli_opt opts[] = {
        CLI_MODEL_OPTS(mf),
        CLI_SAMPLING_OPTS(sf),
        {"input-ids", OPT_STR, &ids_arg, "IDS", "context + suffix ids: 1,2,3 or @FILE", 0, 0},
        {"prefix-ids", OPT_STR, &prefix_arg, "IDS", "prefix prepended to every chunk", 0, 0},
        {"suffix-ids", OPT_STR, &suffix_arg, "IDS",
         "the query: the last ids of --input-ids (default: its last id)", 0, 0},
        {"compose-type", OPT_STR, &type, "T", type_help, 0, 0},
        {"num-chunks", OPT_INT, &num_chunks, "N", "chunks of the context (default 2)", 1, 65536},
        {"newline-id", OPT_INT, &newline, "ID",
         "pad id (default: \"\\n\" of the model's tokenizer, else 198)", 0, 2147483647},
        {"min-prepend", OPT_INT, &min_prepend, "K", "pads per chunk without a prefix (default 1)",
         0, 1048576},
        {"sequential-positions", OPT_FLAG, &sequential, NULL,
         "RoPE positions continue across chunks", 0, 0},
        {"sw-mask-query", OPT_FLAG, &sw_mask_query, NULL,
         "sw: hide the gap from the query body too", 0, 0},
        {"max-new-tokens", OPT_INT, &max_new, "N", "tokens to generate (default 16)", 0,
         1073741824},
        {"force-ids", OPT_STR, &force_arg, "IDS", "emit these ids instead of choosing", 0, 0},
        {"logits-out", OPT_STR, &logits_out, "F.safetensors",
         "write fp32 'logits' [steps, V]: row k chose id k", 0, 0},
        {"print-ids", OPT_FLAG, &print_ids, NULL, "print the new ids on one line (default)", 0, 0},
        {"ignore-eos", OPT_FLAG, &ignore_eos, NULL, "do not stop on EOS ids", 0, 0},
        {"json", OPT_FLAG, &json, NULL, "one JSON object on stdout", 0, 0},
        {0},
    };
    cli_spec spec = {"compose",
                     "--model DIR --input-ids IDS [--prefix-ids IDS] [--suffix-ids IDS] "
                     "--compose-type T --num-chunks N --max-new-tokens N [--greedy]",
                     "Splits the context (--input-ids minus the suffix) into chunks, prefills\n"
                     "them independently, composes their states into one, feeds the query and\n"
                     "prints the new ids, space-separated, on one line.",
                     opts, 0, 0};
    int rc = cli_parse(&spec, argc, argv, NULL, NULL);
    if (rc)
        return rc < 0 ? 0 : rc;
    if (!ids_arg)
        return cli_usage_error("compose", "--input-ids is required");
    if (!type)
        return cli_usage_error("compose", "--compose-type is required");
    cl_compose_opts co;
    cl_compose_opts_default(&co);
    if ((rc = cl_compose_type_parse(type, &co.kv, &co.ssm)) != CL_OK)
        return cli_usage_error("compose", "--compose-type: %s", cl_errmsg());
    cl_ids ids = {0}, prefix = {0}, suffix = {0}, force = {0}, out = {0};
    if ((rc = cl_ids_parse(ids_arg, "--input-ids", &ids)) == CL_OK && prefix_arg)
        rc = cl_ids_parse(prefix_arg, "--prefix-ids", &prefix);
    if (rc == CL_OK && suffix_arg)
        rc = cl_ids_parse(suffix_arg, "--suffix-ids", &suffix);
    if (rc == CL_OK && force_arg)
        rc = cl_ids_parse(force_arg, "--force-ids", &force);
    int64_t n_suffix = suffix_arg ? (int64_t)suffix.n : 1;
    if (rc == CL_OK && n_suffix < 1)
        rc = cl_err(CL_ERR_ARG, "--suffix-ids is empty: the query needs at least one token");
    if (rc == CL_OK && n_suffix > (int64_t)ids.n)
        rc = cl_err(CL_ERR_ARG, "--suffix-ids (%lld ids) is longer than --input-ids (%zu ids)",
                    (long long)n_suffix, ids.n);
    if (rc == CL_OK && suffix_arg &&
        memcmp(suffix.v, ids.v + ids.n - suffix.n, suffix.n * sizeof *suffix.v) != 0)
        rc = cl_err(CL_ERR_ARG, "--suffix-ids must be the last %zu ids of --input-ids "
                    "(input = context + suffix)", suffix.n);
    cl_model *m = NULL;
    int exit_code = 0;
    if (rc == CL_OK)
        exit_code = cli_load_model("compose", &mf, &m);
    cl_model_info mi;
    memset(&mi, 0, sizeof mi);
    if (m)
        cl_model_info_get(m, &mi);
    co.num_chunks = num_chunks;
    co.min_prepend = min_prepend;
    co.pad_id = newline >= 0 ? (int32_t)newline : (m ? default_newline(mf.model) : 0);
    co.prefix_ids = prefix_arg ? prefix.v : NULL;
    co.n_prefix = prefix_arg ? (int64_t)prefix.n : 0;
    co.sequential_positions = sequential;
    co.sw_mask_query = sw_mask_query;
    co.max_context = mf.max_context;
    cl_gen_opts go;
    cl_gen_opts_default(&go);
    go.max_new_tokens = max_new;
    cli_sampling_to_opts(&sf, &go.sampling);
    go.force_ids = force.v;
    go.n_force = (int64_t)force.n;
    go.ignore_eos = ignore_eos;
    go.max_context = mf.max_context;
    float *lg = NULL;
    if (rc == CL_OK && !exit_code && logits_out && max_new > 0 &&
        !(lg = go.logits_out = calloc((size_t)(max_new * mi.vocab_size), sizeof(float))))
        rc = cl_err(CL_ERR_NOMEM, "out of memory for logits");
    cl_compose_info ci;
    cl_gen_stats st;
    memset(&ci, 0, sizeof ci);
    memset(&st, 0, sizeof st);
    if (rc == CL_OK && !exit_code)
        rc = cl_compose_run(m, ids.v, (int64_t)ids.n, n_suffix, &co, &go, &out, &ci, &st);
    if (rc == CL_OK && !exit_code && logits_out) {
        int64_t shape[2] = {st.new_tokens, mi.vocab_size};
        rc = cl_tensor_file_write_f32(logits_out, "logits", lg, 2, shape);
    }
    if (rc == CL_OK && !exit_code) {
        if (json) {
            exit_code = cli_json_emit(report(&out, type, &co, (int64_t)ids.n, n_suffix, &ci, &st));
        } else {
            for (size_t i = 0; i < out.n; i++)
                printf("%s%d", i ? " " : "", out.v[i]);
            printf("\n");
        }
    }
    free(lg);
    cl_model_free(m);
    cl_ids_free(&ids);
    cl_ids_free(&prefix);
    cl_ids_free(&suffix);
    cl_ids_free(&force);
    cl_ids_free(&out);
    if (rc != CL_OK)
        return json ? cli_json_fail(rc, NULL) : cli_fail(rc);
    return exit_code;
}
