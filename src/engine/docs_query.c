/* docs_query.c - cl_doc_compose and cl_doc_query (collage.h): query-time composition
 * of stored documents. Each document's state (ingested with the same model, settings
 * and prefix) is restored into a sequence of its own, the states are composed (KV
 * concatenated in the given order with the shared prefix kept once; SSM states by the
 * chosen strategy) and the documents' own states are released. No document is
 * prefilled again. */
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/status.h"
#include "compose/compose.h"
#include "engine/docs.h"
#include "engine/generate.h"
#include "engine/tiers.h"

/* Checks that document i fits with document 0 (same prefix) and with the strategy. */
static int check_doc(cl_prefix *p, const cl_key *ids, int i, const cl_doc_meta *meta,
                     const cl_doc_meta *first, const cl_compose_opts *o)
{
    char hex[33], hex0[33];
    if (!cl_key_eq(&meta->prefix_hash, &first->prefix_hash) ||
        meta->prefix_tokens != first->prefix_tokens)
        return cl_err(CL_ERR_FORMAT,
                      "document %s was ingested with another prefix than document %s: "
                      "compose documents ingested with the same prefix",
                      cl_key_hex(&ids[i], hex), cl_key_hex(&ids[0], hex0));
    if (cl_compose_needs_transition(p->m, o->ssm) && !meta->has_transition)
        return cl_err(CL_ERR_FORMAT,
                      "document %s has no GDN transition product (needed by %s): ingest it "
                      "again",
                      cl_key_hex(&ids[i], hex), cl_compose_type_name(o->kv, o->ssm));
    return CL_OK;
}

int cl_doc_compose(cl_prefix *p, const cl_key *ids, int n, const cl_compose_opts *o,
                   cl_seq *out, cl_compose_info *info)
{
    cl_compose_info local;
    if (!info)
        info = &local;
    memset(info, 0, sizeof *info);
    if (n < 1 || !ids || !o)
        return cl_err(CL_ERR_ARG, "compose: no documents given");
    if (o->kv == CL_COMPOSE_KV_FULL)
        return cl_err(CL_ERR_ARG, "compose type %s: full KV needs the whole context prefilled "
                                  "at once (in-memory composition)",
                      cl_compose_type_name(o->kv, o->ssm));
    if (o->sequential_positions) /* stored keys carry their document-local RoPE rotation */
        return cl_err(CL_ERR_UNSUPPORTED,
                      "sequential positions are not yet supported for stored documents (their "
                      "keys were rotated at positions from 0; use in-memory composition)");
    if (out->c != p->c)
        return cl_err(CL_ERR_ARG, "compose: the output sequence is not of the prefix cache's "
                                  "cache");
    if (cl_compose_needs_transition(p->m, o->ssm) && !p->c->o.track_transition)
        return cl_err(CL_ERR_ARG, "compose type %s needs a cache that tracks the GDN "
                                  "transition (cl_compose_cache_opts)",
                      cl_compose_type_name(o->kv, o->ssm));
    double t0 = cl_now();
    cl_seq *docs = calloc((size_t)n, sizeof *docs);
    const cl_seq **dp = calloc((size_t)n, sizeof *dp);
    int64_t *lead = calloc((size_t)n, sizeof *lead);
    char *held = calloc((size_t)n, 1), *owned = calloc((size_t)n, 1);
    int rc = docs && dp && lead && held && owned ? CL_OK : cl_err(CL_ERR_NOMEM, "out of memory");
    cl_doc_meta first;
    memset(&first, 0, sizeof first);
    for (int i = 0; i < n && rc == CL_OK; i++) {
        cl_doc_meta meta;
        /* the device tier's copy is used in place; else restored from the host tier or
         * streamed from the store */
        const cl_seq *hot = p->tiers ? cl_tiers_hold(p->tiers, CL_STORE_DOC, &ids[i]) : NULL;
        if (hot) {
            held[i] = 1;
            dp[i] = hot;
            rc = cl_doc_meta_use(p, &ids[i], &meta);
            p->stats.hits_gpu++;
        } else {
            rc = cl_seq_init(&docs[i], p->c);
            if (rc == CL_OK)
                owned[i] = 1;
            cl_tier tier = CL_TIER_NONE;
            if (rc == CL_OK && p->tiers)
                rc = cl_tiers_restore(p->tiers, CL_STORE_DOC, &ids[i], &docs[i], &tier);
            if (rc == CL_OK && tier != CL_TIER_NONE) {
                rc = cl_doc_meta_use(p, &ids[i], &meta);
                p->stats.hits_host++;
            } else if (rc == CL_OK) {
                rc = cl_doc_get(p, &ids[i], &docs[i], &meta);
                p->stats.hits_store++;
            }
            dp[i] = &docs[i];
        }
        if (rc == CL_OK && i == 0)
            first = meta;
        if (rc == CL_OK)
            rc = check_doc(p, ids, i, &meta, &first, o);
        lead[i] = meta.prefix_tokens;
    }
    info->load_s = cl_now() - t0;
    if (rc == CL_OK) {
        cl_compose_opts co = *o;
        co.n_prefix = first.prefix_tokens;
        co.doc_lead = lead;
        rc = cl_compose_states(dp, n, &co, out, info);
    }
    /* every hold is released before any offer: offers may move the tier's entries */
    for (int i = 0; held && i < n; i++)
        if (held[i])
            cl_tiers_release(p->tiers, dp[i]);
    for (int i = 0; i < n; i++) {
        int taken = 0; /* restored documents become hot (the tier takes their slot) */
        if (owned && owned[i] && rc == CL_OK && p->tiers &&
            cl_tiers_offer(p->tiers, CL_STORE_DOC, &ids[i], &docs[i], 1, &taken) != CL_OK)
            cl_log_warn("%s (document not kept hot)", cl_errmsg());
        if (owned && owned[i] && !taken)
            cl_seq_release(&docs[i]);
    }
    free(held);
    free(owned);
    info->prefix_tokens = first.prefix_tokens;
    if (rc == CL_OK)
        cl_log_info("%d documents restored in %.3f s, composed (%s) in %.3f s: %lld KV slots",
                    n, info->load_s, cl_compose_type_name(o->kv, o->ssm), info->compose_s,
                    (long long)info->kept_tokens);
    free(docs);
    free(dp);
    free(lead);
    return rc;
}

int cl_doc_query(cl_prefix *p, const cl_key *ids, int n, const cl_compose_opts *o,
                 const int32_t *query, int64_t n_query, cl_seq *out, cl_compose_info *info)
{
    cl_compose_info local;
    if (!info)
        info = &local;
    if (n_query < 1 || !query)
        return cl_err(CL_ERR_ARG, "the query is empty");
    cl_seq empty = {0};
    CL_TRY(cl_check_prompt(p->m, &empty, query, n_query, 0)); /* ids first: no work wasted */
    CL_TRY(cl_doc_compose(p, ids, n, o, out, info));
    CL_TRY(cl_check_context(p->m, out, n_query, o->max_context));
    double t0 = cl_now();
    if (n_query > 1)
        CL_TRY(cl_compose_feed_query(p->m, out, query, n_query - 1, o));
    info->query_s = cl_now() - t0;
    return CL_OK;
}
