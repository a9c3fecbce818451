#include "engine/docs.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "common/log.h"
#include "common/status.h"
#include "engine/state.h"
#include "engine/state_load.h"

void cl_doc_key(const cl_prefix *p, const int32_t *prefix, int64_t n_prefix, const int32_t *doc,
                int64_t n_doc, cl_key *out)
{
    /* the chain root already hashes model id + settings: use it as the "settings" */
    cl_key_document(&p->model_id, prefix, (size_t)n_prefix, doc, (size_t)n_doc, &p->k0,
                    sizeof p->k0, out);
}

void cl_doc_prefix_hash(const int32_t *prefix, int64_t n_prefix, cl_key *out)
{
    cl_hasher h;
    cl_hasher_init(&h);
    cl_hasher_update_framed(&h, "collage/doc-prefix/v1", 21);
    cl_hasher_update_ids(&h, prefix, (size_t)n_prefix);
    cl_hasher_final(&h, out);
}

static char *meta_json(const cl_doc_meta *m)
{
    char mh[33], ph[33];
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "model", cl_key_hex(&m->model_id, mh));
    cJSON_AddStringToObject(o, "prefix", cl_key_hex(&m->prefix_hash, ph));
    cJSON_AddNumberToObject(o, "prefix_tokens", (double)m->prefix_tokens);
    cJSON_AddNumberToObject(o, "doc_tokens", (double)m->doc_tokens);
    cJSON_AddBoolToObject(o, "transition", m->has_transition);
    cJSON_AddStringToObject(o, "name", m->name);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

static int parse_meta(const char *what, const void *data, size_t len, cl_doc_meta *m)
{
    cJSON *o;
    CL_TRY(cl_json_parse(what, data, len, &o));
    memset(m, 0, sizeof *m);
    const char *model = NULL, *prefix = NULL, *name = NULL;
    int64_t pt = -1, dt = -1;
    int rc = cl_json_str(o, "model", what, NULL, &model);
    if (rc == CL_OK)
        rc = cl_json_str(o, "prefix", what, NULL, &prefix);
    if (rc == CL_OK)
        rc = cl_json_str(o, "name", what, "", &name);
    if (rc == CL_OK)
        rc = cl_json_int(o, "prefix_tokens", what, -1, &pt);
    if (rc == CL_OK)
        rc = cl_json_int(o, "doc_tokens", what, -1, &dt);
    if (rc == CL_OK)
        rc = cl_json_bool(o, "transition", what, 0, &m->has_transition);
    if (rc == CL_OK && (!model || !prefix || pt < 0 || dt < 0 ||
                        cl_key_parse(model, &m->model_id) != CL_OK ||
                        cl_key_parse(prefix, &m->prefix_hash) != CL_OK))
        rc = cl_err(CL_ERR_CORRUPT, "%s: damaged document descriptor", what);
    if (rc == CL_OK) {
        m->prefix_tokens = pt;
        m->doc_tokens = dt;
        snprintf(m->name, sizeof m->name, "%s", name);
    }
    cJSON_Delete(o);
    return rc;
}

/* With write-behind, frees the snapshot once the writer is done with it. */
static void doc_done(void *user, uint64_t ticket, int status, const char *message)
{
    (void)ticket;
    (void)status;
    (void)message; /* the status goes to whoever waits for the ticket */
    free(user);
}

int cl_doc_put(cl_prefix *p, const cl_key *key, const cl_seq *s, const cl_doc_meta *meta,
               int pin, uint64_t *ticket)
{
    if (ticket)
        *ticket = 0;
    if (p->readonly)
        return cl_err(CL_ERR_IO, "%s: the store is read-only: nothing stored", cl_store_dir(p->st));
    void *snap;
    size_t len;
    CL_TRY(cl_state_snapshot(s, 0, &snap, &len));
    char *mj = meta_json(meta);
    if (!mj) {
        free(snap);
        return cl_err(CL_ERR_NOMEM, "out of memory");
    }
    cl_store_info info = {0};
    info.dtype = (uint8_t)s->c->kv_dtype;
    info.tokens = s->kv_len;
    info.meta = mj;
    info.meta_bytes = strlen(mj);
    cl_store_piece piece = {snap, len};
    unsigned flags = pin ? CL_STORE_PUT_PIN : 0;
    int rc;
    if (p->writer && ticket) { /* committed behind the caller; the snapshot goes with it */
        rc = cl_store_writer_put(p->writer, CL_STORE_DOC, key, &info, &piece, 1, flags,
                                 doc_done, snap, ticket);
        if (rc != CL_OK)
            free(snap);
    } else {
        rc = cl_store_put(p->st, CL_STORE_DOC, key, &info, &piece, 1, flags);
        free(snap);
    }
    free(mj);
    return rc;
}

int cl_doc_wait(cl_prefix *p, uint64_t ticket)
{
    if (!ticket || !p->writer)
        return CL_OK;
    double t0 = cl_now();
    int rc = cl_store_writer_wait(p->writer, ticket);
    p->stats.store_wait_s += cl_now() - t0;
    return rc;
}

int cl_doc_exists(cl_prefix *p, const cl_key *key)
{
    cl_store_txn *txn;
    if (cl_store_txn_begin(p->st, &txn) != CL_OK)
        return 0;
    int have = cl_store_has(txn, CL_STORE_DOC, key) == CL_OK;
    cl_store_txn_end(txn);
    return have;
}

/* ---- descriptors and restores ---- */

/* A document's descriptor from its stored value's header and meta (verified; the payload,
 * gigabytes at real model size, is not read); the pin is not in the value (the caller
 * fills it: cl_doc_meta_get from the store's usage index, cl_doc_list from its walk).
 * use: the document is being used (composed from a hot tier's copy): it counts as a read
 * for the store's LRU eviction. */
static int doc_meta_peek(cl_prefix *p, const cl_key *id, int use, const char *what,
                         cl_doc_meta *out)
{
    cl_store_txn *txn;
    CL_TRY(cl_store_txn_begin(p->st, &txn));
    cl_store_value v;
    int rc = cl_store_peek(txn, CL_STORE_DOC, id, &v);
    if (rc == CL_ERR_NOTFOUND)
        rc = cl_err(CL_ERR_NOTFOUND, "%s: not in the store %s", what, cl_store_dir(p->st));
    if (rc == CL_OK && use)
        cl_store_touch(txn, CL_STORE_DOC, id);
    if (rc == CL_OK)
        rc = parse_meta(what, v.info.meta, v.info.meta_bytes, out);
    if (rc == CL_OK) {
        out->id = *id;
        out->bytes = v.payload_bytes + v.info.meta_bytes;
        out->created_ns = v.created_ns;
    }
    cl_store_txn_end(txn);
    return rc;
}

/* The descriptor of a document of this model and settings (NOTFOUND otherwise). */
static int doc_meta_read(cl_prefix *p, const cl_key *id, int use, cl_doc_meta *out)
{
    char hex[33], what[64];
    snprintf(what, sizeof what, "document %s", cl_key_hex(id, hex));
    int rc = doc_meta_peek(p, id, use, what, out);
    if (rc == CL_OK && !cl_key_eq(&out->model_id, &p->k0))
        rc = cl_err(CL_ERR_NOTFOUND, "%s: stored for another model or other settings", what);
    return rc;
}

int cl_doc_get(cl_prefix *p, const cl_key *key, cl_seq *s, cl_doc_meta *meta)
{
    char hex[33], what[64];
    snprintf(what, sizeof what, "document %s", cl_key_hex(key, hex));
    /* the descriptor first (header and meta): a document of another model or other
     * settings (a GPU's bf16 KV on the CPU) is refused before its payload is read */
    int rc = doc_meta_peek(p, key, 0, what, meta);
    if (rc == CL_OK && !cl_key_eq(&meta->model_id, &p->k0))
        rc = cl_err(CL_ERR_FORMAT,
                    "%s was ingested with another model (or other settings: KV dtype, GKA "
                    "num_iter)",
                    what);
    if (rc == CL_OK)
        rc = cl_state_load_stored(p->st, CL_STORE_DOC, key, s, 0, p->o.io_threads, what);
    if (rc == CL_ERR_NOTFOUND) /* (also: deleted between the two reads) */
        return cl_err(CL_ERR_NOTFOUND, "%s: not in the store %s (ingest it first)", what,
                      cl_store_dir(p->st));
    return rc;
}

int cl_doc_meta_use(cl_prefix *p, const cl_key *id, cl_doc_meta *out)
{
    return doc_meta_read(p, id, 1, out);
}

/* ---- listing and management (public) ---- */

int cl_doc_meta_get(cl_prefix *p, const cl_key *id, cl_doc_meta *out)
{
    CL_TRY(doc_meta_read(p, id, 0, out));
    cl_store_entry en; /* the pin lives in the store's usage index, not in the value */
    CL_TRY(cl_store_entry_get(p->st, CL_STORE_DOC, id, &en));
    out->pinned = en.pinned;
    return CL_OK;
}

typedef struct {
    cl_key key;
    int pinned;
} listed_doc;

typedef struct {
    listed_doc *docs;
    size_t n, cap;
} list_ctx;

static int collect_doc(void *user, const cl_store_entry *e)
{
    list_ctx *x = user;
    if (!e->header_ok)
        return 0;
    if (x->n == x->cap) {
        size_t cap = x->cap ? 2 * x->cap : 64;
        listed_doc *nd = realloc(x->docs, cap * sizeof *nd);
        if (!nd)
            return cl_err(CL_ERR_NOMEM, "out of memory");
        x->docs = nd;
        x->cap = cap;
    }
    x->docs[x->n++] = (listed_doc){e->key, e->pinned};
    return 0;
}

int cl_doc_list(cl_prefix *p, cl_doc_list_fn fn, void *user)
{
    list_ctx x = {NULL, 0, 0};
    /* keys first (one read transaction), then each descriptor: fn may use the store */
    int rc = cl_store_list(p->st, CL_STORE_DOC, collect_doc, &x);
    for (size_t i = 0; i < x.n && rc == CL_OK; i++) {
        cl_doc_meta m;
        int r = doc_meta_read(p, &x.docs[i].key, 0, &m);
        if (r == CL_ERR_NOTFOUND || r == CL_ERR_CORRUPT || r == CL_ERR_FORMAT)
            continue; /* another model's, or gone meanwhile, or damaged */
        if (r != CL_OK) {
            rc = r;
            break;
        }
        m.pinned = x.docs[i].pinned; /* from the walk: no second look-up per document */
        rc = fn(user, &m);
    }
    free(x.docs);
    return rc;
}

int cl_doc_delete(cl_prefix *p, const cl_key *id)
{
    cl_doc_meta m;
    CL_TRY(cl_doc_meta_get(p, id, &m));
    return cl_store_del(p->st, CL_STORE_DOC, id);
}

int cl_doc_pin(cl_prefix *p, const cl_key *id, int pinned)
{
    cl_doc_meta m;
    CL_TRY(cl_doc_meta_get(p, id, &m));
    return cl_store_pin(p->st, CL_STORE_DOC, id, pinned);
}
