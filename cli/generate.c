/* collage generate - token ids in, new token ids out. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "cli_ctx.h"
#include "common/ids.h"
#include "common/log.h"
#include "common/json.h"
#include "common/status.h"
#include "engine/generate.h"
#include "engine/scheduler.h"
#include "engine/session.h"
#include "common/fileio.h"
#include "model/safetensors.h"
#include "model_flags.h"
#include "verbs.h"

int cli_write_logits(const char *path, const float *logits, int64_t rows, int64_t V)
{
    cl_st_writer *w;
    int64_t shape[2] = {rows, V};
    int rc = cl_st_writer_create(&w);
    if (rc == CL_OK) {
        rc = cl_st_writer_add(w, "logits", CL_F32, 2, shape, logits);
        if (rc == CL_OK)
            rc = cl_st_writer_write(w, path);
        cl_st_writer_free(w);
    }
    return rc;
}

/* --batch-file: one prompt per line, all generated together (continuous batching). */
static int run_batch_file(cl_model *m, const char *path, const cl_gen_opts *go, int64_t max_tokens,
                          int64_t max_seqs, int json)
{
    char *text;
    CL_TRY(cl_read_file(path, &text, NULL));
    cl_ids *prompts = NULL;
    int n = 0, rc = CL_OK;
    int line = 0;
    for (char *save = NULL, *l = strtok_r(text, "\n", &save); l && rc == CL_OK;
         l = strtok_r(NULL, "\n", &save)) {
        char label[64];
        snprintf(label, sizeof label, "%s:%d", path, ++line);
        cl_ids *np = realloc(prompts, (size_t)(n + 1) * sizeof *np);
        if (!np) {
            rc = cl_err(CL_ERR_NOMEM, "out of memory");
            break;
        }
        prompts = np;
        rc = cl_ids_parse(l, label, &prompts[n]);
        if (rc == CL_OK)
            n++;
    }
    free(text);
    cl_cache *c = NULL;
    cl_sched *s = NULL;
    cl_sched_opts so = {max_tokens, (int)max_seqs};
    int *ids = n ? calloc((size_t)n, sizeof *ids) : NULL;
    if (rc == CL_OK && n == 0)
        rc = cl_err(CL_ERR_ARG, "%s: no prompts", path);
    if (rc == CL_OK)
        rc = cl_cache_create(m, NULL, &c);
    if (rc == CL_OK)
        rc = cl_sched_create(m, c, &so, &s);
    for (int i = 0; i < n && rc == CL_OK; i++) {
        cl_sched_req r = {prompts[i].v, (int64_t)prompts[i].n, *go};
        rc = cl_sched_submit(s, &r, &ids[i]);
        if (rc != CL_OK)
            cl_err_prefix(rc, "%s:%d", path, i + 1);
    }
    double t0 = cl_now();
    if (rc == CL_OK)
        rc = cl_sched_run(s);
    double dt = cl_now() - t0;
    if (rc == CL_OK) {
        int64_t steps, rows, new_tokens = 0;
        int maxr;
        cl_sched_counts(s, &steps, &rows, &maxr);
        if (json)
            printf("{\"results\":[");
        for (int i = 0; i < n; i++) {
            const cl_ids *out;
            cl_stop_reason why;
            cl_sched_result(s, ids[i], &out, &why);
            new_tokens += (int64_t)out->n;
            if (json)
                printf("%s{\"ids\":[", i ? "," : "");
            for (size_t k = 0; k < out->n; k++)
                printf("%s%d", k ? (json ? "," : " ") : "", out->v[k]);
            if (json)
                printf("],\"stop\":\"%s\"}", why == CL_STOP_EOS ? "eos" : "length");
            else
                printf("\n");
        }
        if (json)
            printf("],\"forward_calls\":%lld,\"rows\":%lld,\"max_in_flight\":%d,"
                   "\"new_tokens\":%lld,\"seconds\":%.6f}\n",
                   (long long)steps, (long long)rows, maxr, (long long)new_tokens, dt);
    }
    cl_sched_free(s);
    if (c)
        cl_cache_free(c);
    for (int i = 0; i < n; i++)
        cl_ids_free(&prompts[i]);
    free(prompts);
    free(ids);
    return rc;
}

int cmd_generate(int argc, char **argv)
{
    cli_model_flags mf;
    cli_sampling_flags sf;
    cli_store_flags stf;
    cli_model_flags_init(&mf);
    cli_sampling_flags_init(&sf);
    cli_store_flags_init(&stf);
    const char *ids_arg = NULL, *force_arg = NULL, *logits_out = NULL, *batch_file = NULL;
    int64_t max_new = 16, max_batch_tokens = 512, max_seqs = 64;
    int print_ids = 0, json = 0, ignore_eos = 0;
    cli_opt opts[] = {
        CLI_MODEL_OPTS(mf),
        CLI_SAMPLING_OPTS(sf),
        CLI_STORE_OPTS(stf),
        {"input-ids", OPT_STR, &ids_arg, "IDS", "prompt ids: 1,2,3 or @FILE"},
        {"max-new-tokens", OPT_INT, &max_new, "N", "tokens to generate (default 16)"},
        {"force-ids", OPT_STR, &force_arg, "IDS", "emit these ids instead of choosing"},
        {"logits-out", OPT_STR, &logits_out, "F.safetensors",
         "write fp32 'logits' [steps, V]: row k chose id k"},
        {"print-ids", OPT_FLAG, &print_ids, NULL, "print the new ids on one line (default)"},
        {"batch-file", OPT_STR, &batch_file, "F",
         "one prompt of ids per line, generated together (continuous batching)"},
        {"max-batch-tokens", OPT_INT, &max_batch_tokens, "N", "rows per forward call (512)"},
        {"max-seqs", OPT_INT, &max_seqs, "N", "sequences in flight (64)"},
        {"ignore-eos", OPT_FLAG, &ignore_eos, NULL, "do not stop on EOS ids"},
        {"json", OPT_FLAG, &json, NULL, "one JSON object on stdout"},
        {0},
    };
    cli_spec spec = {"generate",
                     "--model DIR --input-ids IDS --max-new-tokens N [--greedy] [--print-ids]",
                     "Generates token ids from a prompt of token ids and prints the new ids,\n"
                     "space-separated, on one line.",
                     opts, 0, 0};
    int rc = cli_parse(&spec, argc, argv, NULL, NULL);
    if (rc)
        return rc < 0 ? 0 : rc;
    if (!ids_arg == !batch_file)
        return cli_usage_error("generate", "give --input-ids or --batch-file");
    if (batch_file && (force_arg || logits_out || stf.store))
        return cli_usage_error("generate", "--batch-file excludes --force-ids, --logits-out, --store");
    if (max_batch_tokens < 1 || max_seqs < 1)
        return cli_usage_error("generate", "--max-batch-tokens and --max-seqs must be >= 1");
    if (batch_file) {
        cl_model *bm;
        if ((rc = cli_load_model("generate", &mf, &bm)) != 0)
            return rc;
        cl_gen_opts bg;
        cl_gen_opts_default(&bg);
        bg.max_new_tokens = max_new;
        cli_sampling_to_opts(&sf, &bg.sampling);
        bg.ignore_eos = ignore_eos;
        bg.max_context = mf.max_context;
        rc = run_batch_file(bm, batch_file, &bg, max_batch_tokens, max_seqs, json);
        cl_model_free(bm);
        return rc == CL_OK ? 0 : cli_fail(rc);
    }
    if (max_new < 0)
        return cli_usage_error("generate", "--max-new-tokens must be >= 0");
    cl_ids ids = {0}, force = {0}, out = {0};
    if ((rc = cl_ids_parse(ids_arg, "--input-ids", &ids)) != CL_OK)
        return cli_fail(rc);
    if (force_arg && (rc = cl_ids_parse(force_arg, "--force-ids", &force)) != CL_OK) {
        cl_ids_free(&ids);
        return cli_fail(rc);
    }
    cli_ctx x;
    int exit_code = cli_ctx_open(&x, "generate", &mf, &stf, 0, NULL);
    int64_t V = x.m ? x.m->cfg->vocab_size : 0;
    cl_gen_opts go;
    cl_gen_opts_default(&go);
    go.max_new_tokens = max_new;
    cli_sampling_to_opts(&sf, &go.sampling);
    go.force_ids = force.v;
    go.n_force = (int64_t)force.n;
    go.ignore_eos = ignore_eos;
    go.max_context = mf.max_context;
    float *lg = NULL;
    if (!exit_code && logits_out && max_new > 0 &&
        !(lg = go.logits_out = calloc((size_t)(max_new * V), sizeof(float))))
        rc = cl_err(CL_ERR_NOMEM, "out of memory for logits");
    cl_session_stats ss;
    memset(&ss, 0, sizeof ss);
    if (rc == CL_OK && !exit_code)
        rc = cl_session_generate(x.m, &x.s, cli_ctx_prefix(&x), NULL, ids.v, (int64_t)ids.n, &go,
                                 &out, &ss);
    if (rc == CL_OK && !exit_code && logits_out)
        rc = cli_write_logits(logits_out, lg, ss.gen.new_tokens, V);
    if (rc == CL_OK && !exit_code) {
        if (json) {
            printf("{");
            cli_json_ids("ids", &out);
            cli_json_gen_stats((int64_t)ids.n, &ss, NULL);
            printf("}\n");
        } else {
            for (size_t i = 0; i < out.n; i++)
                printf("%s%d", i ? " " : "", out.v[i]);
            printf("\n");
        }
    }
    free(lg);
    cli_ctx_close(&x);
    cl_ids_free(&ids);
    cl_ids_free(&force);
    cl_ids_free(&out);
    return rc != CL_OK ? cli_fail(rc) : exit_code;
}
