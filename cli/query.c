/* collage query - query-time composition of stored documents: each document's state
 * (ingested with the same prefix and model) is restored from the store, the states are
 * composed (KV concatenated in the given order with the shared prefix kept once; SSM
 * states by the chosen strategy), the query is prefilled from the composition and the
 * answer generated. No document is prefilled again. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "cli_ctx.h"
#include "collage.h"
#include "verbs.h"

/* Parses "ID,ID,..." into keys. */
static int parse_docs(const char *arg, cl_key **keys, int *n)
{
    *keys = NULL;
    *n = 0;
    char *copy = strdup(arg);
    if (!copy)
        return cl_err(CL_ERR_NOMEM, "out of memory");
    int rc = CL_OK;
    for (char *save = NULL, *t = strtok_r(copy, ", \n", &save); t && rc == CL_OK;
         t = strtok_r(NULL, ", \n", &save)) {
        cl_key *nk = realloc(*keys, (size_t)(*n + 1) * sizeof *nk);
        if (!nk) {
            rc = cl_err(CL_ERR_NOMEM, "out of memory");
            break;
        }
        *keys = nk;
        rc = cl_key_parse(t, &nk[*n]);
        if (rc == CL_OK)
            (*n)++;
        else
            rc = cl_err(CL_ERR_ARG, "--docs: '%s' is not a document id (32 hex digits)", t);
    }
    free(copy);
    if (rc == CL_OK && *n == 0)
        rc = cl_err(CL_ERR_ARG, "--docs: no document ids");
    return rc;
}

int cmd_query(int argc, char **argv)
{
    cli_model_flags mf;
    cli_sampling_flags sf;
    cli_store_flags stf;
    cli_model_flags_init(&mf);
    cli_sampling_flags_init(&sf);
    cli_store_flags_init(&stf);
    const char *docs_arg = NULL, *type = "concat_kv_soup_ssm", *prompt = NULL, *suffix_arg = NULL,
               *force_arg = NULL, *logits_out = NULL;
    int64_t max_new = 64;
    int json = 0, sequential = 0, sw_mask_query = 0, print_ids = 0;
    static char type_help[600];
    snprintf(type_help, sizeof type_help,
             "default concat_kv_soup_ssm; one of the concat_* and sw_* of: %s",
             cl_compose_type_names());
    cli_opt opts[] = {
        CLI_MODEL_OPTS(mf),
        CLI_SAMPLING_OPTS(sf),
        CLI_STORE_OPTS(stf),
        {"docs", OPT_STR, &docs_arg, "ID,ID,...", "stored document ids (from collage ingest)", 0,
         0},
        {"compose-type", OPT_STR, &type, "T", type_help, 0, 0},
        {"prompt", OPT_STR, &prompt, "TEXT", "the query text (follows the documents)", 0, 0},
        {"suffix-ids", OPT_STR, &suffix_arg, "IDS", "the query as token ids", 0, 0},
        {"sequential-positions", OPT_FLAG, &sequential, NULL,
         "RoPE positions continue across documents (not yet supported here)", 0, 0},
        {"sw-mask-query", OPT_FLAG, &sw_mask_query, NULL, "sw: hide the gap from the query too",
         0, 0},
        {"max-new-tokens", OPT_INT, &max_new, "N", "tokens to generate (default 64)", 0,
         1073741824},
        {"print-ids", OPT_FLAG, &print_ids, NULL, "print ids instead of text", 0, 0},
        {"force-ids", OPT_STR, &force_arg, "IDS", "emit these ids instead of choosing", 0, 0},
        {"logits-out", OPT_STR, &logits_out, "F.safetensors",
         "write fp32 'logits' [steps, V]: row k chose id k", 0, 0},
        {"json", OPT_FLAG, &json, NULL, "one JSON object on stdout", 0, 0},
        {0},
    };
    cli_spec spec = {"query",
                     "--model DIR --docs ID,... --compose-type T (--prompt TEXT | --suffix-ids IDS)",
                     "Composes stored document states at query time and answers the query from\n"
                     "the composition (documents from `collage ingest`, same model and prefix).",
                     opts, 0, 0};
    int rc = cli_parse(&spec, argc, argv, NULL, NULL);
    if (rc)
        return rc < 0 ? 0 : rc;
    if (!docs_arg)
        return cli_usage_error("query", "--docs is required");
    if (!prompt == !suffix_arg)
        return cli_usage_error("query", "give exactly one of --prompt and --suffix-ids");
    if (stf.no_store)
        return cli_usage_error("query", "query composes stored documents: it needs the store");
    if (sequential) /* stored keys carry their document-local RoPE rotation */
        return cli_usage_error("query", "--sequential-positions is not yet supported for stored "
                                        "documents (their keys were rotated at positions from 0; "
                                        "use collage compose)");
    cl_compose_opts co;
    cl_compose_opts_default(&co);
    co.sw_mask_query = sw_mask_query;
    co.max_context = mf.max_context;
    cl_key *keys = NULL;
    int nd = 0;
    if ((rc = cl_compose_type_parse(type, &co.kv, &co.ssm)) != CL_OK ||
        (rc = parse_docs(docs_arg, &keys, &nd)) != CL_OK) {
        free(keys);
        return cli_usage_error("query", "%s", cl_errmsg());
    }
    if (co.kv == CL_COMPOSE_KV_FULL) {
        free(keys);
        return cli_usage_error("query", "--compose-type %s: full KV needs the whole context "
                                        "prefilled at once (use collage compose)",
                               type);
    }
    cl_model *m;
    if ((rc = cli_load_model("query", &mf, &m)) != 0) {
        free(keys);
        return rc;
    }
    cl_model_info mi;
    cl_model_info_get(m, &mi);
    cl_tokenizer *tok = NULL;
    cl_ids q = {0}, out = {0}, force = {0};
    float *lg = NULL;
    cl_cache *c = NULL;
    cl_store *store = NULL;
    cl_prefix *pc = NULL;
    cl_seq *comp = NULL;
    int exit_code = 0;
    cl_compose_info info;
    cl_gen_stats gst;
    memset(&info, 0, sizeof info);
    memset(&gst, 0, sizeof gst);
    double t0 = cli_now();
    if (prompt || !print_ids)
        rc = cl_tokenizer_load_dir(mf.model, &tok);
    if (rc == CL_OK && prompt)
        rc = cl_tokenizer_encode(tok, prompt, strlen(prompt), 1, &q);
    if (rc == CL_OK && suffix_arg)
        rc = cl_ids_parse(suffix_arg, "--suffix-ids", &q);
    if (rc == CL_OK && q.n == 0)
        rc = cl_err(CL_ERR_ARG, "the query is empty");
    if (rc == CL_OK && force_arg)
        rc = cl_ids_parse(force_arg, "--force-ids", &force);
    if (rc == CL_OK && logits_out && max_new > 0 &&
        !(lg = calloc((size_t)(max_new * mi.vocab_size), sizeof *lg)))
        rc = cl_err(CL_ERR_NOMEM, "out of memory for logits");
    cl_cache_opts cacheo;
    cl_compose_cache_opts(m, &co, &cacheo);
    if (rc == CL_OK)
        rc = cl_cache_create(m, &cacheo, &c);
    if (rc == CL_OK)
        exit_code = cli_open_store("query", &stf, 1, m, c, &store, &pc);
    if (rc == CL_OK && !exit_code)
        rc = cl_seq_create(c, &comp);
    if (rc == CL_OK && !exit_code)
        rc = cl_doc_query(pc, keys, nd, &co, q.v, (int64_t)q.n, comp, &info);
    int64_t eos[CL_MAX_STOP_IDS];
    int n_eos = cl_model_stop_ids(m, tok, eos);
    if (rc == CL_OK && !exit_code) {
        cl_gen_opts go;
        cl_gen_opts_default(&go);
        go.max_new_tokens = max_new;
        cli_sampling_to_opts(&sf, &go.sampling);
        go.eos_ids = eos;
        go.n_eos = n_eos;
        go.max_context = mf.max_context;
        go.force_ids = force.v;
        go.n_force = (int64_t)force.n;
        go.logits_out = lg;
        rc = cl_generate(m, comp, q.v + q.n - 1, 1, &go, &out, &gst);
        if (rc == CL_OK && logits_out) {
            int64_t shape[2] = {gst.new_tokens, mi.vocab_size};
            rc = cl_tensor_file_write_f32(logits_out, "logits", lg, 2, shape);
        }
    }
    if (rc == CL_OK && !exit_code) {
        char *text = NULL;
        size_t tlen = 0;
        cl_ids shown = out;
        if (shown.n) /* a final EOS is not part of the answer's text */
            for (int i = 0; i < n_eos; i++)
                if (shown.v[shown.n - 1] == eos[i]) {
                    shown.n--;
                    break;
                }
        if (tok && !print_ids)
            rc = cl_tokenizer_decode(tok, shown.v, shown.n, &text, &tlen);
        double ttft = cli_now() - t0 - gst.decode_s;
        if (rc == CL_OK && json) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddItemToObject(o, "ids", cli_json_ids(&out));
            cli_json_text(o, "text", text, tlen);
            cJSON_AddStringToObject(o, "compose_type", type);
            cJSON_AddNumberToObject(o, "docs", nd);
            cJSON_AddNumberToObject(o, "prefix_tokens", (double)info.prefix_tokens);
            cJSON_AddNumberToObject(o, "kept_tokens", (double)info.kept_tokens);
            cJSON_AddNumberToObject(o, "position", (double)info.pos);
            cJSON_AddNumberToObject(o, "query_tokens", (double)q.n);
            cJSON_AddNumberToObject(o, "new_tokens", (double)gst.new_tokens);
            cJSON_AddNumberToObject(o, "load_s", info.load_s);
            cJSON_AddNumberToObject(o, "compose_s", info.compose_s);
            cJSON_AddNumberToObject(o, "query_s", info.query_s);
            cJSON_AddNumberToObject(o, "ttft_s", ttft);
            cJSON_AddNumberToObject(o, "decode_s", gst.decode_s);
            exit_code = cli_json_emit(o);
        } else if (rc == CL_OK && (print_ids || !text)) {
            for (size_t i = 0; i < out.n; i++)
                printf("%s%d", i ? " " : "", out.v[i]);
            printf("\n");
        } else if (rc == CL_OK) {
            fwrite(text, 1, tlen, stdout);
            printf("\n");
        }
        cl_free(text);
    }
    cl_seq_free(comp);
    cl_prefix_free(pc);
    cl_cache_free(c);
    if (store)
        cl_store_close(store);
    free(keys);
    cl_ids_free(&q);
    cl_ids_free(&out);
    cl_ids_free(&force);
    free(lg);
    cl_tokenizer_free(tok);
    cl_model_free(m);
    if (rc != CL_OK)
        return json ? cli_json_fail(rc, NULL) : cli_fail(rc);
    return exit_code;
}
