/* collage compose - state composition of one long input (spec COMPOSITION.md):
 * --input-ids = context ‖ suffix; the context is split into chunks that are
 * prefilled independently and composed into one state, the query body is fed,
 * and generation starts from the last suffix token. Output as `collage generate`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "args.h"
#include "common/ids.h"
#include "common/status.h"
#include "compose/compose.h"
#include "engine/generate.h"
#include "model_flags.h"
#include "verbs.h"

#if defined(__has_include)
#if __has_include("tokenizer/bpe.h")
#include "tokenizer/bpe.h"
#define HAVE_BPE_TOKENIZER 1
#endif
#endif

/* The pad id when --newline-id is not given: the id of "\n" in DIR/tokenizer.json,
 * else the reference's 198 (Qwen). */
static int32_t default_newline(const char *dir)
{
#ifdef HAVE_BPE_TOKENIZER
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
#else
    (void)dir;
#endif
    return CL_COMPOSE_DEFAULT_PAD;
}

static void print_json(const cl_ids *out, const char *type, const cl_compose_opts *co,
                       int64_t n_input, int64_t n_suffix, const cl_compose_info *ci,
                       const cl_gen_stats *st)
{
    printf("{\"ids\":[");
    for (size_t i = 0; i < out->n; i++)
        printf("%s%d", i ? "," : "", out->v[i]);
    double ttft = ci->prefill_s + ci->compose_s + ci->query_s + st->prefill_s;
    printf("],\"compose_type\":\"%s\",\"num_chunks\":%lld,\"newline_id\":%d,"
           "\"input_tokens\":%lld,\"context_tokens\":%lld,\"suffix_tokens\":%lld,"
           "\"prefix_tokens\":%lld,\"row_tokens\":%lld,\"kept_tokens\":%lld,\"position\":%lld,"
           "\"hide\":[%lld,%lld],\"new_tokens\":%lld,\"prefill_s\":%.6f,\"compose_s\":%.6f,"
           "\"query_s\":%.6f,\"ttft_s\":%.6f,\"decode_s\":%.6f,\"stop\":\"%s\"}\n",
           type, (long long)co->num_chunks, co->pad_id, (long long)n_input,
           (long long)(n_input - n_suffix), (long long)n_suffix, (long long)co->n_prefix,
           (long long)ci->row_tokens, (long long)ci->kept_tokens, (long long)ci->pos,
           (long long)ci->hide_lo, (long long)ci->hide_hi, (long long)st->new_tokens,
           ci->prefill_s, ci->compose_s, ci->query_s, ttft, st->decode_s,
           st->stop == CL_STOP_EOS ? "eos" : st->stop == CL_STOP_CALLBACK ? "stop" : "length");
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
    cli_opt opts[] = {
        CLI_MODEL_OPTS(mf),
        CLI_SAMPLING_OPTS(sf),
        {"input-ids", OPT_STR, &ids_arg, "IDS", "context + suffix ids: 1,2,3 or @FILE"},
        {"prefix-ids", OPT_STR, &prefix_arg, "IDS", "prefix prepended to every chunk"},
        {"suffix-ids", OPT_STR, &suffix_arg, "IDS",
         "the query: the last ids of --input-ids (default: its last id)"},
        {"compose-type", OPT_STR, &type, "T",
         "{full_kv,concat_kv,sw}_{only,soup_ssm,fuse_ssm,caso_ssm} (e.g. concat_kv_soup_ssm)"},
        {"num-chunks", OPT_INT, &num_chunks, "N", "chunks of the context (default 2)"},
        {"newline-id", OPT_INT, &newline, "ID",
         "pad id (default: \"\\n\" of the model's tokenizer, else 198)"},
        {"min-prepend", OPT_INT, &min_prepend, "K", "pads per chunk without a prefix (default 1)"},
        {"sequential-positions", OPT_FLAG, &sequential, NULL,
         "RoPE positions continue across chunks"},
        {"sw-mask-query", OPT_FLAG, &sw_mask_query, NULL,
         "sw: hide the gap from the query body too"},
        {"max-new-tokens", OPT_INT, &max_new, "N", "tokens to generate (default 16)"},
        {"force-ids", OPT_STR, &force_arg, "IDS", "emit these ids instead of choosing"},
        {"logits-out", OPT_STR, &logits_out, "F.safetensors",
         "write fp32 'logits' [steps, V]: row k chose id k"},
        {"print-ids", OPT_FLAG, &print_ids, NULL, "print the new ids on one line (default)"},
        {"ignore-eos", OPT_FLAG, &ignore_eos, NULL, "do not stop on EOS ids"},
        {"json", OPT_FLAG, &json, NULL, "one JSON object on stdout"},
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
        return cli_fail(rc);
    if (num_chunks < 1)
        return cli_usage_error("compose", "--num-chunks must be >= 1 (got %lld)",
                               (long long)num_chunks);
    if (min_prepend < 0)
        return cli_usage_error("compose", "--min-prepend must be >= 0");
    if (max_new < 0)
        return cli_usage_error("compose", "--max-new-tokens must be >= 0");
    if (cli_given(&spec, "newline-id") && (newline < 0 || newline > INT32_MAX))
        return cli_usage_error("compose", "--newline-id must be a token id >= 0");
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
    if (rc == CL_OK) {
        int lrc = cli_load_model("compose", &mf, &m);
        if (lrc != 0) {
            cl_ids_free(&ids);
            cl_ids_free(&prefix);
            cl_ids_free(&suffix);
            cl_ids_free(&force);
            return lrc;
        }
    }
    if (rc == CL_OK) {
        co.num_chunks = num_chunks;
        co.min_prepend = min_prepend;
        co.pad_id = cli_given(&spec, "newline-id") ? (int32_t)newline : default_newline(mf.model);
        co.prefix_ids = prefix_arg ? prefix.v : NULL;
        co.n_prefix = prefix_arg ? (int64_t)prefix.n : 0;
        co.sequential_positions = sequential;
        co.sw_mask_query = sw_mask_query;
        co.max_context = mf.max_context;
    }
    int64_t V = m ? m->cfg->vocab_size : 0;
    cl_gen_opts go;
    cl_gen_opts_default(&go);
    go.max_new_tokens = max_new;
    cli_sampling_to_opts(&sf, &go.sampling);
    go.force_ids = force.v;
    go.n_force = (int64_t)force.n;
    go.ignore_eos = ignore_eos;
    go.max_context = mf.max_context;
    float *lg = NULL;
    if (rc == CL_OK && logits_out && max_new > 0 &&
        !(lg = go.logits_out = calloc((size_t)(max_new * V), sizeof(float))))
        rc = cl_err(CL_ERR_NOMEM, "out of memory for logits");
    cl_compose_info ci = {0};
    cl_gen_stats st = {0};
    if (rc == CL_OK)
        rc = cl_compose_run(m, ids.v, (int64_t)ids.n, n_suffix, &co, &go, &out, &ci, &st);
    if (rc == CL_OK && logits_out)
        rc = cli_write_logits(logits_out, lg, st.new_tokens, V);
    if (rc == CL_OK) {
        if (json) {
            print_json(&out, type, &co, (int64_t)ids.n, n_suffix, &ci, &st);
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
    return rc == CL_OK ? 0 : cli_fail(rc);
}
