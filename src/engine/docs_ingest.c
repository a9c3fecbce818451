/* docs_ingest.c - cl_doc_ingest (collage.h): documents prefilled once after a shared
 * prefix and stored with their descriptors; a document already stored is not
 * processed again. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/status.h"
#include "engine/docs.h"
#include "engine/generate.h"
#include "engine/tiers.h"

void cl_ingest_opts_default(cl_ingest_opts *o) { memset(o, 0, sizeof *o); }

/* Every input checked before any work: ids in the vocabulary, prefix + document within
 * the context. */
static int check_inputs(cl_prefix *p, const int32_t *prefix, int64_t n_prefix,
                        const cl_doc_input *docs, int n, int64_t max_context)
{
    cl_model *m = p->m;
    cl_seq empty = {0};
    CL_TRY(cl_check_prompt(m, &empty, prefix, n_prefix, max_context));
    for (int i = 0; i < n; i++) {
        const char *name = docs[i].name && *docs[i].name ? docs[i].name : NULL;
        if (docs[i].n <= 0 || !docs[i].ids) {
            if (name)
                return cl_err(CL_ERR_ARG, "%s: the document is empty", name);
            return cl_err(CL_ERR_ARG, "document %d is empty", i + 1);
        }
        cl_seq at = {0};
        at.pos = n_prefix;
        int rc = cl_check_prompt(m, &at, docs[i].ids, docs[i].n, max_context);
        if (rc != CL_OK)
            return name ? cl_err_prefix(rc, "%s", name) : cl_err_prefix(rc, "document %d", i + 1);
    }
    return CL_OK;
}

int cl_doc_ingest(cl_prefix *p, const int32_t *prefix, int64_t n_prefix,
                  const cl_doc_input *docs, int n, const cl_ingest_opts *o, cl_doc_result *out)
{
    cl_ingest_opts def;
    if (!o) {
        cl_ingest_opts_default(&def);
        o = &def;
    }
    if (n < 0 || (n > 0 && !docs) || n_prefix < 0 || (n_prefix > 0 && !prefix))
        return cl_err(CL_ERR_ARG, "cl_doc_ingest: bad arguments");
    if (p->readonly)
        return cl_err(CL_ERR_IO, "%s: the store is read-only: documents cannot be ingested",
                      cl_store_dir(p->st));
    CL_TRY(check_inputs(p, prefix, n_prefix, docs, n, o->max_context));
    cl_model *m = p->m;
    cl_cache *c = p->c;
    cl_seq base = {0}, s = {0};
    int rc = cl_seq_init(&base, c);
    if (rc == CL_OK)
        rc = cl_seq_init(&s, c);
    /* the prefix is prefilled once and copied for every document */
    if (rc == CL_OK && n_prefix)
        rc = cl_seq_feed(m, &base, prefix, n_prefix, 0, CL_LOGITS_NONE, NULL);
    cl_doc_meta meta;
    memset(&meta, 0, sizeof meta);
    meta.model_id = p->k0;
    cl_doc_prefix_hash(prefix, n_prefix, &meta.prefix_hash);
    meta.prefix_tokens = n_prefix;
    for (int i = 0; i < c->n_ssm; i++)
        meta.has_transition |= cl_cache_has_trans(c, i);
    int64_t total = 0, done = 0;
    for (int i = 0; i < n; i++)
        total += docs[i].n;
    /* document i is committed by the writer while document i + 1 is prefilled; the
     * caller hears of it (on_doc) once it is committed */
    cl_doc_result pending = {{{0}}, 0, 0};
    uint64_t pending_ticket = 0;
    int pending_index = -1;
    for (int i = 0; i <= n && rc == CL_OK; i++) {
        cl_doc_result r = {{{0}}, 0, 0};
        uint64_t ticket = 0;
        double t_doc = cl_now();
        if (i < n) {
            const cl_doc_input *d = &docs[i];
            r.tokens = d->n;
            cl_doc_key(p, prefix, n_prefix, d->ids, d->n, &r.id);
            r.cached = cl_doc_exists(p, &r.id);
            if (!r.cached) {
                rc = cl_seq_copy(&s, &base);
                if (rc == CL_OK)
                    rc = cl_seq_feed(m, &s, d->ids, d->n, 0, CL_LOGITS_NONE, NULL);
                meta.doc_tokens = d->n;
                snprintf(meta.name, sizeof meta.name, "%s", d->name ? d->name : "");
                if (rc == CL_OK)
                    rc = cl_doc_put(p, &r.id, &s, &meta, o->pin, &ticket);
                if (rc == CL_OK && p->tiers) /* a fresh document is likely queried soon */
                    rc = cl_tiers_offer(p->tiers, CL_STORE_DOC, &r.id, &s, 0, NULL);
            } else if (o->pin) {
                rc = cl_store_pin(p->st, CL_STORE_DOC, &r.id, 1);
            }
            if (rc != CL_OK && d->name && *d->name)
                cl_err_prefix(rc, "%s", d->name);
        }
        if (pending_index >= 0) { /* the previous document: committed now? */
            int wr = cl_doc_wait(p, pending_ticket);
            if (wr != CL_OK) {
                const char *name = docs[pending_index].name;
                if (name && *name)
                    cl_err_prefix(wr, "%s", name);
                rc = wr;
            } else if (out) {
                out[pending_index] = pending;
            }
            if (wr == CL_OK && o->on_doc && o->on_doc(o->user, pending_index, &pending) &&
                rc == CL_OK)
                rc = cl_err(CL_ERR_ARG, "ingest stopped after document %d", pending_index + 1);
            pending_index = -1;
        }
        if (rc != CL_OK || i == n)
            break;
        done += docs[i].n;
        char hex[33];
        cl_log_info("document %s (%lld tokens): %s in %.3f s", cl_key_hex(&r.id, hex),
                    (long long)docs[i].n, r.cached ? "already stored" : "stored",
                    cl_now() - t_doc);
        cl_progress("ingest (tokens)", (uint64_t)done, (uint64_t)total);
        pending = r;
        pending_ticket = ticket;
        pending_index = i;
    }
    if (pending_index >= 0) /* a failure left a queued document: still wait for it */
        cl_doc_wait(p, pending_ticket);
    cl_progress_end("ingest (tokens)");
    if (base.c)
        cl_seq_release(&base);
    if (s.c)
        cl_seq_release(&s);
    return rc;
}
