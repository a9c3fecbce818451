/* collage ingest - precompute and store document states (with a shared prefix),
 * once: a document already in the store is not processed again. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "common/fileio.h"
#include "common/ids.h"
#include "common/json.h"
#include "common/log.h"
#include "common/status.h"
#include "engine/docs.h"
#include "engine/generate.h"
#include "model_flags.h"
#include "tokenizer/bpe.h"
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
        CL_TRY(cl_read_file(ids_file, &text, NULL));
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
            char label[64];
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
        rc = cl_read_file(files[i], &text, &len);
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
        {"prefix", OPT_STR, &prefix, "TEXT", "shared prefix (task/system prompt) of every document"},
        {"prefix-ids", OPT_STR, &prefix_ids, "IDS", "the prefix as token ids"},
        {"ids-file", OPT_STR, &ids_file, "F", "documents as token ids, one document per line"},
        {"pin", OPT_FLAG, &pin, NULL, "pin the documents (never evicted)"},
        {"json", OPT_FLAG, &json, NULL, "one JSON object on stdout"},
        {0},
    };
    cli_spec spec = {"ingest", "--model DIR [--store DIR] [--prefix TEXT | --prefix-ids IDS] "
                               "(FILE... | --ids-file F)",
                     "Prefills each document after the shared prefix and stores its state;\n"
                     "prints each document's id (for `collage query --docs`) and token count.",
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
    cl_prefix pc;
    cl_seq base = {0}, s = {0};
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
        rc = cl_seq_init(&base, c);
    if (rc == CL_OK)
        rc = cl_seq_init(&s, c);
    if (rc == CL_OK)
        exit_code = cli_open_store("ingest", &stf, 1, m, c, &store, &pc);
    /* the prefix is prefilled once and copied for every document */
    if (rc == CL_OK && !exit_code && pre.n)
        rc = cl_check_prompt(m, &base, pre.v, (int64_t)pre.n, mf.max_context);
    if (rc == CL_OK && !exit_code && pre.n)
        rc = cl_seq_feed(m, &base, pre.v, (int64_t)pre.n, 0, CL_LOGITS_NONE, NULL);
    cl_doc_meta meta;
    memset(&meta, 0, sizeof meta);
    if (rc == CL_OK && !exit_code) {
        meta.model_id = pc.k0;
        cl_doc_prefix_hash(pre.v, (int64_t)pre.n, &meta.prefix_hash);
        meta.prefix_tokens = (int64_t)pre.n;
        int has_trans = 0;
        for (int i = 0; i < c->n_ssm; i++)
            has_trans |= c->ssm[i].trans != NULL;
        meta.has_transition = has_trans;
    }
    if (json && rc == CL_OK && !exit_code)
        printf("{\"prefix_tokens\":%zu,\"docs\":[", pre.n);
    int64_t total = 0, done = 0;
    for (int i = 0; i < ndocs; i++)
        total += (int64_t)docs[i].ids.n;
    for (int i = 0; i < ndocs && rc == CL_OK && !exit_code; i++) {
        doc_in *d = &docs[i];
        cl_key key;
        char hex[33];
        cl_doc_key(&pc, pre.v, (int64_t)pre.n, d->ids.v, (int64_t)d->ids.n, &key);
        int cached = cl_doc_exists(&pc, &key);
        if (!cached) {
            rc = cl_seq_copy(&s, &base);
            if (rc == CL_OK)
                rc = cl_check_prompt(m, &s, d->ids.v, (int64_t)d->ids.n, mf.max_context);
            if (rc == CL_OK)
                rc = cl_seq_feed(m, &s, d->ids.v, (int64_t)d->ids.n, 0, CL_LOGITS_NONE, NULL);
            meta.doc_tokens = (int64_t)d->ids.n;
            snprintf(meta.name, sizeof meta.name, "%s", d->name ? d->name : "");
            if (rc == CL_OK)
                rc = cl_doc_put(&pc, &key, &s, &meta, pin);
            if (rc != CL_OK && d->name)
                cl_err_prefix(rc, "%s", d->name);
        } else if (pin) {
            rc = cl_store_pin(store, CL_STORE_DOC, &key, 1);
        }
        done += (int64_t)d->ids.n;
        cl_progress("ingest (tokens)", (uint64_t)done, (uint64_t)total);
        if (rc != CL_OK)
            break;
        if (json) {
            printf("%s{\"id\":\"%s\",\"name\":", i ? "," : "", cl_key_hex(&key, hex));
            cl_json_fputs(stdout, d->name ? d->name : "");
            printf(",\"tokens\":%zu,\"cached\":%s}", d->ids.n, cached ? "true" : "false");
        } else {
            printf("%s %zu%s %s\n", cl_key_hex(&key, hex), d->ids.n, cached ? " (stored)" : "",
                   d->name ? d->name : "");
        }
    }
    cl_progress_end("ingest");
    if (json && rc == CL_OK && !exit_code)
        printf("]}\n");
    if (c) {
        cl_seq_release(&base);
        cl_seq_release(&s);
        cl_cache_free(c);
    }
    if (store)
        cl_store_close(store);
    for (int i = 0; i < ndocs; i++) {
        free(docs[i].name);
        cl_ids_free(&docs[i].ids);
    }
    free(docs);
    free(files);
    cl_ids_free(&pre);
    cl_tokenizer_free(tok);
    cl_model_free(m);
    return rc != CL_OK ? cli_fail(rc) : exit_code;
}
