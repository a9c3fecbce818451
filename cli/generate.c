/* collage generate - token ids in, new token ids out. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "cli_ctx.h"
#include "collage.h"
#include "verbs.h"

/* --batch-file: one prompt of ids per line (F:LINE in errors). */
static int read_prompts(const char *path, cl_ids **prompts, int *n)
{
    char *text;
    CL_TRY(cli_read_file(path, &text, NULL));
    int rc = CL_OK, line = 0;
    *prompts = NULL;
    *n = 0;
    for (char *save = NULL, *l = strtok_r(text, "\n", &save); l && rc == CL_OK;
         l = strtok_r(NULL, "\n", &save)) {
        char label[4200];
        snprintf(label, sizeof label, "%s:%d", path, ++line);
        cl_ids *np = realloc(*prompts, (size_t)(*n + 1) * sizeof *np);
        if (!np) {
            rc = cl_err(CL_ERR_NOMEM, "out of memory");
            break;
        }
        *prompts = np;
        rc = cl_ids_parse(l, label, &np[*n]);
        if (rc == CL_OK)
            (*n)++;
    }
    free(text);
    if (rc == CL_OK && *n == 0)
        rc = cl_err(CL_ERR_ARG, "%s: no prompts", path);
    return rc;
}

/* All prompts generated together (continuous batching). */
static int run_batch_file(cl_model *m, const char *path, const cl_gen_opts *go, int64_t max_tokens,
                          int64_t max_seqs, int json)
{
    cl_ids *prompts = NULL;
    int n = 0;
    int rc = read_prompts(path, &prompts, &n);
    cl_cache *c = NULL;
    cl_sched *s = NULL;
    cl_sched_opts so;
    cl_sched_opts_default(&so);
    so.max_batch_tokens = max_tokens;
    so.max_seqs = (int)max_seqs;
    int *ids = n ? calloc((size_t)n, sizeof *ids) : NULL;
    if (rc == CL_OK && !ids)
        rc = cl_err(CL_ERR_NOMEM, "out of memory");
    if (rc == CL_OK)
        rc = cl_cache_create(m, NULL, &c);
    if (rc == CL_OK)
        rc = cl_sched_create(m, c, &so, &s);
    for (int i = 0; i < n && rc == CL_OK; i++) {
        cl_sched_req r;
        memset(&r, 0, sizeof r);
        r.prompt = prompts[i].v;
        r.n_prompt = (int64_t)prompts[i].n;
        r.gen = *go;
        rc = cl_sched_submit(s, &r, &ids[i]);
        if (rc != CL_OK)
            cl_err_prefix(rc, "%s:%d", path, i + 1);
    }
    double t0 = cli_now();
    if (rc == CL_OK)
        rc = cl_sched_run(s);
    double dt = cli_now() - t0;
    if (rc == CL_OK) {
        cl_sched_counts counts;
        cl_sched_counts_get(s, &counts);
        int64_t new_tokens = 0;
        cJSON *o = json ? cJSON_CreateObject() : NULL, *results = cJSON_CreateArray();
        for (int i = 0; i < n; i++) {
            const cl_ids *out;
            cl_sched_result res;
            cl_sched_result_get(s, ids[i], &out, &res);
            new_tokens += (int64_t)out->n;
            if (json) {
                cJSON *r = cJSON_CreateObject();
                cJSON_AddItemToObject(r, "ids", cli_json_ids(out));
                cJSON_AddStringToObject(r, "stop", cli_stop_name(res.stop));
                cJSON_AddItemToArray(results, r);
            } else {
                for (size_t k = 0; k < out->n; k++)
                    printf("%s%d", k ? " " : "", out->v[k]);
                printf("\n");
            }
        }
        if (json) {
            cJSON_AddItemToObject(o, "results", results);
            cJSON_AddNumberToObject(o, "forward_calls", (double)counts.steps);
            cJSON_AddNumberToObject(o, "rows", (double)counts.rows);
            cJSON_AddNumberToObject(o, "max_in_flight", counts.max_running);
            cJSON_AddNumberToObject(o, "new_tokens", (double)new_tokens);
            cJSON_AddNumberToObject(o, "seconds", dt);
            if (cli_json_emit(o))
                rc = cl_err(CL_ERR_IO, "stdout: write failed");
        } else {
            cJSON_Delete(results);
        }
    }
    cl_sched_free(s);
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
        {"input-ids", OPT_STR, &ids_arg, "IDS", "prompt ids: 1,2,3 or @FILE", 0, 0},
        {"max-new-tokens", OPT_INT, &max_new, "N", "tokens to generate (default 16)", 0,
         1073741824},
        {"force-ids", OPT_STR, &force_arg, "IDS", "emit these ids instead of choosing", 0, 0},
        {"logits-out", OPT_STR, &logits_out, "F.safetensors",
         "write fp32 'logits' [steps, V]: row k chose id k", 0, 0},
        {"print-ids", OPT_FLAG, &print_ids, NULL, "print the new ids on one line (default)", 0, 0},
        {"batch-file", OPT_STR, &batch_file, "F",
         "one prompt of ids per line, generated together (continuous batching)", 0, 0},
        {"max-batch-tokens", OPT_INT, &max_batch_tokens, "N", "rows per forward call (512)", 1,
         1048576},
        {"max-seqs", OPT_INT, &max_seqs, "N", "sequences in flight (64)", 1, 65536},
        {"ignore-eos", OPT_FLAG, &ignore_eos, NULL, "do not stop on EOS ids", 0, 0},
        {"json", OPT_FLAG, &json, NULL, "one JSON object on stdout", 0, 0},
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
    cl_gen_opts go;
    cl_gen_opts_default(&go);
    go.max_new_tokens = max_new;
    cli_sampling_to_opts(&sf, &go.sampling);
    go.ignore_eos = ignore_eos;
    go.max_context = mf.max_context;
    if (batch_file) {
        cl_model *bm;
        if ((rc = cli_load_model("generate", &mf, &bm)) != 0)
            return rc;
        rc = run_batch_file(bm, batch_file, &go, max_batch_tokens, max_seqs, json);
        cl_model_free(bm);
        if (rc != CL_OK)
            return json ? cli_json_fail(rc, NULL) : cli_fail(rc);
        return 0;
    }
    cl_ids ids = {0}, force = {0}, out = {0};
    if ((rc = cl_ids_parse(ids_arg, "--input-ids", &ids)) != CL_OK)
        return cli_fail(rc);
    if (ids.n == 0) {
        cl_ids_free(&ids);
        return cli_usage_error("generate", "--input-ids is empty");
    }
    if (force_arg && (rc = cl_ids_parse(force_arg, "--force-ids", &force)) != CL_OK) {
        cl_ids_free(&ids);
        return cli_fail(rc);
    }
    cli_ctx x;
    int exit_code = cli_ctx_open(&x, "generate", &mf, &stf, 0, NULL);
    go.force_ids = force.v;
    go.n_force = (int64_t)force.n;
    float *lg = NULL;
    if (!exit_code && logits_out && max_new > 0 &&
        !(lg = go.logits_out = calloc((size_t)(max_new * x.vocab), sizeof(float))))
        rc = cl_err(CL_ERR_NOMEM, "out of memory for logits");
    cl_session_stats ss;
    memset(&ss, 0, sizeof ss);
    if (rc == CL_OK && !exit_code)
        rc = cl_session_generate(x.pc, x.m, x.s, NULL, ids.v, (int64_t)ids.n, &go, &out, &ss);
    if (rc == CL_OK && !exit_code && logits_out) {
        int64_t shape[2] = {ss.gen.new_tokens, x.vocab};
        rc = cl_tensor_file_write_f32(logits_out, "logits", lg, 2, shape);
    }
    if (rc == CL_OK && !exit_code) {
        if (json) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddItemToObject(o, "ids", cli_json_ids(&out));
            cli_json_gen_stats(o, (int64_t)ids.n, &ss, NULL);
            exit_code = cli_json_emit(o);
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
    if (rc != CL_OK)
        return json ? cli_json_fail(rc, NULL) : cli_fail(rc);
    return exit_code;
}
