/* collage query - query-time composition of stored documents: each document's
 * state (ingested with the same prefix and model) is restored from the store, the
 * states are composed (KV concatenated in the given order with the shared prefix
 * kept once; SSM states by the chosen strategy), the query is prefilled from the
 * composition and the answer generated. No document is prefilled again. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "cli_ctx.h"
#include "common/ids.h"
#include "common/json.h"
#include "common/log.h"
#include "common/status.h"
#include "compose/compose.h"
#include "engine/docs.h"
#include "engine/textstream.h"
#include "model_flags.h"
#include "tokenizer/bpe.h"
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
    cli_opt opts[] = {
        CLI_MODEL_OPTS(mf),
        CLI_SAMPLING_OPTS(sf),
        CLI_STORE_OPTS(stf),
        {"docs", OPT_STR, &docs_arg, "ID,ID,...", "stored document ids (from collage ingest)"},
        {"compose-type", OPT_STR, &type, "T",
         "concat_kv_soup_ssm (default), concat_kv_fuse_ssm, concat_kv_only, sw_*, *_caso_ssm"},
        {"prompt", OPT_STR, &prompt, "TEXT", "the query text (follows the documents)"},
        {"suffix-ids", OPT_STR, &suffix_arg, "IDS", "the query as token ids"},
        {"sequential-positions", OPT_FLAG, &sequential, NULL,
         "RoPE positions continue across documents (not yet supported here)"},
        {"sw-mask-query", OPT_FLAG, &sw_mask_query, NULL, "sw: hide the gap from the query too"},
        {"max-new-tokens", OPT_INT, &max_new, "N", "tokens to generate (default 64)"},
        {"print-ids", OPT_FLAG, &print_ids, NULL, "print ids instead of text"},
        {"force-ids", OPT_STR, &force_arg, "IDS", "emit these ids instead of choosing"},
        {"logits-out", OPT_STR, &logits_out, "F.safetensors",
         "write fp32 'logits' [steps, V]: row k chose id k"},
        {"json", OPT_FLAG, &json, NULL, "one JSON object on stdout"},
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
    if (max_new < 0)
        return cli_usage_error("query", "--max-new-tokens must be >= 0");
    if (sequential) /* stored keys carry their document-local RoPE rotation */
        return cli_usage_error("query", "--sequential-positions is not yet supported for stored "
                                        "documents (their keys were rotated at positions from 0; "
                                        "use collage compose)");
    cl_compose_opts co;
    cl_compose_opts_default(&co);
    co.sequential_positions = sequential;
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
    cl_tokenizer *tok = NULL;
    cl_ids q = {0}, out = {0}, force = {0};
    float *lg = NULL;
    cl_cache *c = NULL;
    cl_store *store = NULL;
    cl_prefix pc;
    cl_seq *docs = calloc((size_t)nd, sizeof *docs);
    const cl_seq **dp = calloc((size_t)nd, sizeof *dp);
    int64_t *lead = calloc((size_t)nd, sizeof *lead);
    cl_seq comp = {0};
    int exit_code = 0, ndocs_init = 0;
    cl_compose_info info = {0};
    cl_gen_stats gst = {0};
    cl_textstream ts;
    memset(&ts, 0, sizeof ts);
    double t0 = cl_now(), t_load = 0;
    if (!docs || !dp || !lead)
        rc = cl_err(CL_ERR_NOMEM, "out of memory");
    if (rc == CL_OK && (prompt || !print_ids))
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
        !(lg = calloc((size_t)(max_new * m->cfg->vocab_size), sizeof *lg)))
        rc = cl_err(CL_ERR_NOMEM, "out of memory for logits");
    cl_cache_opts cacheo;
    cl_compose_cache_opts(m, &co, &cacheo);
    if (rc == CL_OK)
        rc = cl_cache_create(m, &cacheo, &c);
    if (rc == CL_OK)
        exit_code = cli_open_store("query", &stf, 1, m, c, &store, &pc);
    /* restore every document; all must share the model and the prefix */
    cl_doc_meta first;
    memset(&first, 0, sizeof first);
    for (int i = 0; i < nd && rc == CL_OK && !exit_code; i++) {
        cl_doc_meta meta;
        rc = cl_seq_init(&docs[i], c);
        if (rc == CL_OK)
            ndocs_init++;
        if (rc == CL_OK)
            rc = cl_doc_get(&pc, &keys[i], &docs[i], &meta);
        char hex[33];
        if (rc == CL_OK && i == 0)
            first = meta;
        if (rc == CL_OK && (!cl_key_eq(&meta.prefix_hash, &first.prefix_hash) ||
                            meta.prefix_tokens != first.prefix_tokens))
        {
            char hex0[33];
            rc = cl_err(CL_ERR_FORMAT,
                        "document %s was ingested with another prefix than document %s: "
                        "compose documents ingested with the same --prefix",
                        cl_key_hex(&keys[i], hex), cl_key_hex(&keys[0], hex0));
        }
        if (rc == CL_OK && cl_compose_needs_transition(m, co.ssm) && !meta.has_transition)
            rc = cl_err(CL_ERR_FORMAT,
                        "document %s has no GDN transition product (needed by %s): ingest it "
                        "again",
                        cl_key_hex(&keys[i], hex), type);
        dp[i] = &docs[i];
        lead[i] = meta.prefix_tokens;
    }
    t_load = cl_now() - t0;
    co.n_prefix = first.prefix_tokens;
    co.doc_lead = lead;
    if (rc == CL_OK && !exit_code)
        rc = cl_seq_init(&comp, c);
    if (rc == CL_OK && !exit_code)
        rc = cl_compose_states(dp, nd, &co, &comp, &info);
    /* the documents' own states are not needed any more */
    for (int i = 0; i < ndocs_init; i++)
        cl_seq_release(&docs[i]);
    ndocs_init = 0;
    double tq = cl_now();
    if (rc == CL_OK && !exit_code && q.n > 1)
        rc = cl_compose_feed_query(m, &comp, q.v, (int64_t)q.n - 1, &co);
    info.query_s = cl_now() - tq;
    int64_t eos[CL_MAX_EOS + 2];
    int n_eos = 0;
    if (tok)
        n_eos = cli_stop_ids(m, tok, eos);
    else
        for (int i = 0; i < m->cfg->n_eos; i++)
            eos[n_eos++] = m->cfg->eos_ids[i];
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
        rc = cl_generate(m, &comp, q.v + q.n - 1, 1, &go, &out, &gst);
        if (rc == CL_OK && logits_out)
            rc = cli_write_logits(logits_out, lg, gst.new_tokens, m->cfg->vocab_size);
    }
    if (rc == CL_OK && !exit_code) {
        char *text = NULL;
        size_t tlen = 0;
        cl_ids shown = out;
        if (shown.n && n_eos) /* a final EOS is not part of the answer's text */
            for (int i = 0; i < n_eos; i++)
                if (shown.v[shown.n - 1] == eos[i]) {
                    shown.n--;
                    break;
                }
        if (tok && !print_ids)
            rc = cl_tokenizer_decode(tok, shown.v, shown.n, &text, &tlen);
        double ttft = cl_now() - t0 - gst.decode_s;
        if (rc == CL_OK && json) {
            printf("{\"ids\":[");
            for (size_t i = 0; i < out.n; i++)
                printf("%s%d", i ? "," : "", out.v[i]);
            printf("],\"text\":");
            cl_json_fputs(stdout, text ? text : "");
            printf(",\"compose_type\":\"%s\",\"docs\":%d,\"prefix_tokens\":%lld,"
                   "\"kept_tokens\":%lld,\"position\":%lld,\"query_tokens\":%zu,"
                   "\"new_tokens\":%lld,\"load_s\":%.6f,\"compose_s\":%.6f,\"query_s\":%.6f,"
                   "\"ttft_s\":%.6f,\"decode_s\":%.6f}\n",
                   type, nd, (long long)first.prefix_tokens, (long long)info.kept_tokens,
                   (long long)info.pos, q.n, (long long)gst.new_tokens, t_load, info.compose_s,
                   info.query_s, ttft, gst.decode_s);
        } else if (rc == CL_OK && (print_ids || !text)) {
            for (size_t i = 0; i < out.n; i++)
                printf("%s%d", i ? " " : "", out.v[i]);
            printf("\n");
        } else if (rc == CL_OK) {
            fwrite(text, 1, tlen, stdout);
            printf("\n");
        }
        free(text);
    }
    for (int i = 0; i < ndocs_init; i++)
        cl_seq_release(&docs[i]);
    if (comp.c)
        cl_seq_release(&comp);
    if (c)
        cl_cache_free(c);
    if (store)
        cl_store_close(store);
    free(docs);
    free(dp);
    free(lead);
    free(keys);
    cl_ids_free(&q);
    cl_ids_free(&out);
    cl_ids_free(&force);
    free(lg);
    cl_tokenizer_free(tok);
    cl_model_free(m);
    return rc != CL_OK ? cli_fail(rc) : exit_code;
}
