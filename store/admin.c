/* admin.c - one-shot deletes and pins, the size cap and gc, listing, totals, and the
 * model-id cache. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "common/status.h"
#include "store/codec.h"
#include "store/internal.h"

/* Runs fn in one write transaction (with the read queues piggybacked). */
static int with_wtx(cl_store *st, int (*fn)(wtx *, void *), void *arg)
{
    store_env *e = st->e;
    if (st->rdonly)
        return STORE_E_RDONLY;
    wtx w;
    int rc = wtx_begin(e, &w);
    if (rc)
        return rc;
    size_t nt = 0, nb = 0;
    rc = pending_apply(&w, &nt, &nb);
    if (!rc)
        rc = fn(&w, arg);
    if (rc) {
        wtx_abort(&w);
        return rc;
    }
    rc = wtx_commit(&w);
    if (!rc)
        pending_consume(e, nt, nb);
    return rc;
}

static int finish(cl_store *st, int rc, cl_store_kind kind, const cl_key *key, const char *what)
{
    char hex[33], buf[160];
    if (key)
        snprintf(buf, sizeof buf, "%s %s", cl_store_kind_table(kind), cl_key_hex(key, hex));
    else
        snprintf(buf, sizeof buf, "%s", what);
    return store_fail(st->e, rc, buf);
}

typedef struct {
    uint8_t kind;
    const cl_key *key;
    int pinned;
} key_arg;

static int do_del(wtx *w, void *arg)
{
    key_arg *a = arg;
    int found = 0;
    int rc = idx_delete_entry(w, a->kind, a->key, &found);
    return rc ? rc : found ? 0 : MDB_NOTFOUND;
}

static int do_pin(wtx *w, void *arg)
{
    key_arg *a = arg;
    int found = 0;
    int rc = idx_set_pin(w, a->kind, a->key, a->pinned, &found);
    return rc ? rc : found ? 0 : MDB_NOTFOUND;
}

int cl_store_del(cl_store *st, cl_store_kind kind, const cl_key *key)
{
    if (!store_valid_kind((int)kind))
        return cl_err(CL_ERR_ARG, "%s: invalid value kind %d", st->e->dir, (int)kind);
    key_arg a = {(uint8_t)kind, key, 0};
    return finish(st, with_wtx(st, do_del, &a), kind, key, NULL);
}

int cl_store_pin(cl_store *st, cl_store_kind kind, const cl_key *key, int pinned)
{
    if (!store_valid_kind((int)kind))
        return cl_err(CL_ERR_ARG, "%s: invalid value kind %d", st->e->dir, (int)kind);
    key_arg a = {(uint8_t)kind, key, pinned};
    return finish(st, with_wtx(st, do_pin, &a), kind, key, NULL);
}

/* ---- cap and gc ------------------------------------------------------------------- */

typedef struct {
    uint64_t cap, n, bytes;
    int use_saved;
} gc_arg;

static int do_gc(wtx *w, void *arg)
{
    gc_arg *a = arg;
    if (a->use_saved) {
        int rc = idx_saved_cap(w->e, w->txn, &a->cap);
        if (rc)
            return rc;
    }
    if (!a->cap)
        return 0;
    return idx_evict(w, a->cap, 0, INT64_MAX, &a->n, &a->bytes);
}

int cl_store_gc(cl_store *st, uint64_t max_bytes, uint64_t *evicted, uint64_t *evicted_bytes)
{
    gc_arg a = {max_bytes, 0, 0, 0};
    if (!a.cap && st->cap_explicit)
        a.cap = st->max_bytes;
    a.use_saved = !a.cap;
    int rc = with_wtx(st, do_gc, &a);
    if (evicted)
        *evicted = a.n;
    if (evicted_bytes)
        *evicted_bytes = a.bytes;
    return finish(st, rc, 0, NULL, "gc");
}

static int do_set_cap(wtx *w, void *arg)
{
    uint64_t cap = *(uint64_t *)arg;
    MDB_val k = {9, "max_bytes"};
    if (!cap) {
        int rc = mdb_del(w->txn, w->e->dbi[DB_META], &k, NULL);
        return rc == MDB_NOTFOUND ? 0 : rc;
    }
    uint8_t b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(cap >> (8 * i));
    MDB_val v = {8, b};
    return mdb_put(w->txn, w->e->dbi[DB_META], &k, &v, 0);
}

int cl_store_set_max_bytes(cl_store *st, uint64_t max_bytes)
{
    int rc = finish(st, with_wtx(st, do_set_cap, &max_bytes), 0, NULL, "saving the size cap");
    if (rc == CL_OK) {
        st->cap_explicit = 0;
        st->max_bytes = 0;
    }
    return rc;
}

/* ---- list and stat ---------------------------------------------------------------- */

static void fill_entry(store_env *e, MDB_txn *txn, uint8_t kind, const MDB_val *k,
                       const MDB_val *v, cl_store_entry *en)
{
    memset(en, 0, sizeof *en);
    en->kind = (cl_store_kind)kind;
    memcpy(en->key.b, k->mv_data, k->mv_size < 16 ? k->mv_size : 16);
    en->bytes = v->mv_size;
    codec_header h;
    en->header_ok = k->mv_size == 16 && !codec_check(v->mv_data, v->mv_size, kind, &en->key, 0, &h);
    if (en->header_ok) {
        en->payload_bytes = h.payload_bytes;
        en->meta_bytes = h.meta_bytes;
        en->info.flags = h.flags;
        en->info.dtype = h.dtype;
        en->info.ndim = h.ndim;
        memcpy(en->info.shape, h.shape, sizeof h.shape);
        en->info.tokens = h.tokens;
        en->info.meta_bytes = h.meta_bytes;
        en->created_ns = h.created_ns;
    }
    usage_rec u;
    if (!idx_usage_get(e, txn, kind, &en->key, &u)) {
        en->last_use_ns = u.atime_ns;
        en->pinned = !!(u.flags & USAGE_PINNED);
    }
}

int cl_store_list(cl_store *st, cl_store_kind kind, cl_store_list_fn fn, void *user)
{
    store_env *e = st->e;
    if (kind && !store_valid_kind((int)kind))
        return cl_err(CL_ERR_ARG, "%s: invalid value kind %d", e->dir, (int)kind);
    MDB_txn *txn;
    int rc = env_txn_begin(e, MDB_RDONLY, &txn);
    if (rc)
        return store_fail(e, rc, "list");
    store_thread_read_txns_add(1);
    int stop = 0;
    for (int k = CL_STORE_KV; k <= CL_STORE_OTHER && !rc && !stop; k++) {
        if (kind && k != (int)kind)
            continue;
        MDB_cursor *c;
        if ((rc = mdb_cursor_open(txn, e->dbi[k], &c)))
            break;
        MDB_val kv, vv;
        for (int op = MDB_FIRST; !(rc = mdb_cursor_get(c, &kv, &vv, (MDB_cursor_op)op));
             op = MDB_NEXT) {
            cl_store_entry en;
            fill_entry(e, txn, (uint8_t)k, &kv, &vv, &en);
            if ((stop = fn(user, &en)))
                break;
        }
        mdb_cursor_close(c);
        if (rc == MDB_NOTFOUND)
            rc = 0;
    }
    mdb_txn_abort(txn);
    env_txn_done(e);
    store_thread_read_txns_add(-1);
    if (rc)
        return store_fail(e, rc, "list");
    return stop;
}

int cl_store_entry_get(cl_store *st, cl_store_kind kind, const cl_key *key, cl_store_entry *out)
{
    store_env *e = st->e;
    if (!store_valid_kind((int)kind))
        return cl_err(CL_ERR_ARG, "%s: invalid value kind %d", e->dir, (int)kind);
    MDB_txn *txn;
    int rc = env_txn_begin(e, MDB_RDONLY, &txn);
    if (rc)
        return store_fail(e, rc, "entry");
    store_thread_read_txns_add(1);
    MDB_val kv = {16, (void *)key->b}, vv;
    rc = mdb_get(txn, e->dbi[kind], &kv, &vv);
    if (!rc)
        fill_entry(e, txn, (uint8_t)kind, &kv, &vv, out);
    mdb_txn_abort(txn);
    env_txn_done(e);
    store_thread_read_txns_add(-1);
    if (rc == MDB_NOTFOUND) {
        char hex[33];
        return cl_err(CL_ERR_NOTFOUND, "%s: no entry %s", e->dir, cl_key_hex(key, hex));
    }
    return rc ? store_fail(e, rc, "entry") : CL_OK;
}

int cl_store_stat(cl_store *st, cl_store_stats *out)
{
    store_env *e = st->e;
    memset(out, 0, sizeof *out);
    MDB_txn *txn;
    int rc = env_txn_begin(e, MDB_RDONLY, &txn);
    if (rc)
        return store_fail(e, rc, "stat");
    store_totals t;
    rc = idx_totals_load(e, txn, &t);
    if (!rc)
        rc = idx_saved_cap(e, txn, &out->saved_max_bytes);
    mdb_txn_abort(txn);
    env_txn_done(e);
    if (rc)
        return store_fail(e, rc, "stat");
    for (int k = 1; k <= CL_STORE_NKINDS; k++) {
        out->count[k] = t.count[k];
        out->bytes[k] = t.bytes[k];
        out->total_count += t.count[k];
        out->total_bytes += t.bytes[k];
    }
    out->pinned_count = t.pinned_count;
    out->pinned_bytes = t.pinned_bytes;
    out->max_bytes = st->cap_explicit ? st->max_bytes : out->saved_max_bytes;
    MDB_envinfo info;
    MDB_stat ms;
    if ((rc = mdb_env_info(e->env, &info)) || (rc = mdb_env_stat(e->env, &ms)))
        return store_fail(e, rc, "stat");
    out->map_bytes = info.me_mapsize;
    out->map_max_bytes = e->map_max_bytes;
    out->page_bytes = ms.ms_psize;
    out->used_bytes = (uint64_t)(info.me_last_pgno + 1) * ms.ms_psize;
    out->readers = info.me_numreaders;
    out->max_readers = info.me_maxreaders;
    out->last_txn = info.me_last_txnid;
    char path[4200];
    struct stat fst;
    snprintf(path, sizeof path, "%s/data.mdb", e->dir);
    if (stat(path, &fst) == 0)
        out->file_bytes = (uint64_t)fst.st_size;
    return CL_OK;
}

/* ---- model id cache ---------------------------------------------------------------- */

/* meta key "model_id:" + XXH3-128(path); value: size(8) mtime(8) id(16) path. */
static void model_key(const char *path, uint8_t out[25])
{
    memcpy(out, "model_id:", 9);
    cl_key h;
    cl_key_of_bytes(path, strlen(path), &h);
    memcpy(out + 9, h.b, 16);
}

static void put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

int cl_store_model_id_lookup(cl_store *st, const char *path, uint64_t size, int64_t mtime_ns,
                             cl_key *model_id)
{
    store_env *e = st->e;
    uint8_t kb[25];
    model_key(path, kb);
    MDB_txn *txn;
    int rc = env_txn_begin(e, MDB_RDONLY, &txn);
    if (rc)
        return store_fail(e, rc, path);
    MDB_val k = {sizeof kb, kb}, v;
    size_t plen = strlen(path);
    rc = mdb_get(txn, e->dbi[DB_META], &k, &v);
    int found = 0;
    if (rc == 0 && v.mv_size == 32 + plen) {
        const uint8_t *p = v.mv_data;
        found = get_le64(p) == size && (int64_t)get_le64(p + 8) == mtime_ns &&
                !memcmp(p + 32, path, plen);
        if (found)
            memcpy(model_id->b, p + 16, 16);
    }
    mdb_txn_abort(txn);
    env_txn_done(e);
    if (rc && rc != MDB_NOTFOUND)
        return store_fail(e, rc, path);
    return found ? CL_OK : CL_ERR_NOTFOUND;
}

typedef struct {
    const char *path;
    uint64_t size;
    int64_t mtime_ns;
    const cl_key *id;
} model_arg;

static int do_remember(wtx *w, void *arg)
{
    model_arg *a = arg;
    uint8_t kb[25];
    model_key(a->path, kb);
    size_t plen = strlen(a->path);
    MDB_val k = {sizeof kb, kb}, v = {32 + plen, NULL};
    int rc = mdb_put(w->txn, w->e->dbi[DB_META], &k, &v, MDB_RESERVE);
    if (rc)
        return rc;
    uint8_t *p = v.mv_data;
    put_le64(p, a->size);
    put_le64(p + 8, (uint64_t)a->mtime_ns);
    memcpy(p + 16, a->id->b, 16);
    memcpy(p + 32, a->path, plen);
    return 0;
}

int cl_store_model_id_remember(cl_store *st, const char *path, uint64_t size, int64_t mtime_ns,
                               const cl_key *model_id)
{
    if (strlen(path) > 4096)
        return cl_err(CL_ERR_ARG, "%s: path too long", st->e->dir);
    model_arg a = {path, size, mtime_ns, model_id};
    return finish(st, with_wtx(st, do_remember, &a), 0, NULL, path);
}
