/* collage ingest - precompute and store document states (with a shared prefix),
 * once: a document already in the store is not processed again. Each document's id is
 * printed (and flushed) as soon as its state is committed: "<id> <tokens> <name>" per
 * line, with " (stored)" after the token count when it was stored before. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "cli_ctx.h"
#include "collage.h"
#include "verbs.h"

typedef struct {
    char *name;
    cl_ids ids;
} doc_in;

static int read_docs(const char *ids_file, char **files, int nfiles, const cl_tokenizer *tok,
                     doc_in **out, int *n)
{
    *out = NULL;
    *n = 0;
    int rc = CL_OK;
    if (ids_file) { /* one document per line */
        char *text;
        CL_TRY(cli_read_file(ids_file, &text, NULL));
        int line = 0;
        for (char *save = NULL, *l = strtok_r(text, "\n", &save); l && rc == CL_OK;
             l = strtok_r(NULL, "\n", &save)) {
            line++;
            doc_in *nd = realloc(*out, (size_t)(*n + 1) * sizeof *nd);
            if (!nd) {
                rc = cl_err(CL_ERR_NOMEM, "out of memory");
                break;
            }
            *out = nd;
            doc_in *d = &nd[(*n)++];
            memset(d, 0, sizeof *d);
            char label[4200];
            snprintf(label, sizeof label, "%s:%d", ids_file, line);
            d->name = strdup(label);
            rc = cl_ids_parse(l, label, &d->ids);
        }
        free(text);
        return rc;
    }
    for (int i = 0; i < nfiles && rc == CL_OK; i++) {
        doc_in *nd = realloc(*out, (size_t)(*n + 1) * sizeof *nd);
        if (!nd)
            return cl_err(CL_ERR_NOMEM, "out of memory");
        *out = nd;
        doc_in *d = &nd[(*n)++];
        memset(d, 0, sizeof *d);
        d->name = strdup(files[i]);
        char *text;
        size_t len;
        rc = cli_read_file(files[i], &text, &len);
        if (rc == CL_OK) {
            /* documents are plain text: special-token strings in them are not tokens */
            rc = cl_tokenizer_encode(tok, text, len, 0, &d->ids);
            if (rc != CL_OK)
                cl_err_prefix(rc, "%s", files[i]);
            free(text);
        }
    }
    return rc;
}

typedef struct {
    const doc_in *docs;
    cJSON *list; /* --json: the documents committed so far */
} ingest_out;

/* Called once a document is committed (or found stored): its line goes out at once. */
static int on_doc(void *user, int index, const cl_doc_result *r)
{
    ingest_out *o = user;
    char hex[33];
    cl_key_hex(&r->id, hex);
    const char *name = o->docs[index].name ? o->docs[index].name : "";
    if (o->list) {
        cJSON *d = cJSON_CreateObject();
        cJSON_AddStringToObject(d, "id", hex);
        cJSON_AddStringToObject(d, "name", name);
        cJSON_AddNumberToObject(d, "tokens", (double)r->tokens);
        cJSON_AddBoolToObject(d, "cached", r->cached);
        cJSON_AddItemToArray(o->list, d);
        return 0;
    }
    printf("%s %lld%s %s\n", hex, (long long)r->tokens, r->cached ? " (stored)" : "", name);
    return fflush(stdout) != 0;
}

int cmd_ingest(int argc, char **argv)
{
    cli_model_flags mf;
    cli_store_flags stf;
    cli_model_flags_init(&mf);
    cli_store_flags_init(&stf);
    const char *prefix = NULL, *prefix_ids = NULL, *ids_file = NULL;
    int json = 0, pin = 0;
    cli_opt opts[] = {
        CLI_MODEL_OPTS(mf),
        CLI_STORE_OPTS(stf),
        {"prefix", OPT_STR, &prefix, "TEXT", "shared prefix (task/system prompt) of every document",
         0, 0},
        {"prefix-ids", OPT_STR, &prefix_ids, "IDS", "the prefix as token ids", 0, 0},
        {"ids-file", OPT_STR, &ids_file, "F", "documents as token ids, one document per line", 0,
         0},
        {"pin", OPT_FLAG, &pin, NULL, "pin the documents (never evicted)", 0, 0},
        {"json", OPT_FLAG, &json, NULL, "one JSON object on stdout", 0, 0},
        {0},
    };
    cli_spec spec = {"ingest", "--model DIR [--store DIR] [--prefix TEXT | --prefix-ids IDS] "
                               "(FILE... | --ids-file F)",
                     "Prefills each document after the shared prefix and stores its state;\n"
                     "prints each document's id (for `collage query --docs`) and token count\n"
                     "as soon as it is stored: \"<id> <tokens>[ (stored)] <name>\".",
                     opts, 0, -1};
    int npos;
    char **files;
    int rc = cli_parse(&spec, argc, argv, &npos, &files);
    if (rc)
        return rc < 0 ? 0 : rc;
    if (!npos == !ids_file) {
        free(files);
        return cli_usage_error("ingest", "give document files or --ids-file (not both)");
    }
    if (prefix && prefix_ids) {
        free(files);
        return cli_usage_error("ingest", "--prefix and --prefix-ids exclude each other");
    }
    if (stf.no_store) {
        free(files);
        return cli_usage_error("ingest", "ingest stores documents: --no-store makes no sense");
    }
    cl_model *m = NULL;
    if ((rc = cli_load_model("ingest", &mf, &m)) != 0) {
        free(files);
        return rc;
    }
    cl_tokenizer *tok = NULL;
    cl_ids pre = {0};
    doc_in *docs = NULL;
    int ndocs = 0, exit_code = 0;
    cl_cache *c = NULL;
    cl_store *store = NULL;
    cl_prefix *pc = NULL;
    ingest_out io = {NULL, json ? cJSON_CreateArray() : NULL};
    if (npos || prefix)
        rc = cl_tokenizer_load_dir(mf.model, &tok);
    if (rc == CL_OK && prefix)
        rc = cl_tokenizer_encode(tok, prefix, strlen(prefix), 1, &pre);
    if (rc == CL_OK && prefix_ids)
        rc = cl_ids_parse(prefix_ids, "--prefix-ids", &pre);
    if (rc == CL_OK)
        rc = read_docs(ids_file, files, npos, tok, &docs, &ndocs);
    cl_cache_opts co;
    cl_cache_opts_for_model(m, &co);
    co.track_transition = 1; /* GDN composition (fuse, CASO) needs the transition */
    if (rc == CL_OK)
        rc = cl_cache_create(m, &co, &c);
    if (rc == CL_OK)
        exit_code = cli_open_store("ingest", &stf, 1, m, c, &store, &pc);
    cl_doc_input *in = ndocs ? calloc((size_t)ndocs, sizeof *in) : NULL;
    if (rc == CL_OK && ndocs && !in)
        rc = cl_err(CL_ERR_NOMEM, "out of memory");
    for (int i = 0; in && i < ndocs; i++)
        in[i] = (cl_doc_input){docs[i].ids.v, (int64_t)docs[i].ids.n, docs[i].name};
    io.docs = docs;
    if (rc == CL_OK && !exit_code) {
        cl_ingest_opts o;
        cl_ingest_opts_default(&o);
        o.pin = pin;
        o.max_context = mf.max_context;
        o.on_doc = on_doc;
        o.user = &io;
        rc = cl_doc_ingest(pc, pre.v, (int64_t)pre.n, in, ndocs, &o, NULL);
    }
    cJSON *report = NULL;
    if (json) {
        report = cJSON_CreateObject();
        cJSON_AddNumberToObject(report, "prefix_tokens", (double)pre.n);
        cJSON_AddItemToObject(report, "docs", io.list);
    }
    cl_prefix_free(pc);
    cl_cache_free(c);
    if (store)
        cl_store_close(store);
    for (int i = 0; i < ndocs; i++) {
        free(docs[i].name);
        cl_ids_free(&docs[i].ids);
    }
    free(docs);
    free(in);
    free(files);
    cl_ids_free(&pre);
    cl_tokenizer_free(tok);
    cl_model_free(m);
    if (rc != CL_OK) /* under --json: the documents stored before the failure, and the error */
        return json ? cli_json_fail(rc, report) : cli_fail(rc);
    if (json && !exit_code)
        return cli_json_emit(report);
    cJSON_Delete(report);
    return exit_code;
}
