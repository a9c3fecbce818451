/* read.c - read transactions: existence checks, verified zero-copy gets, one-shot
 * copies; and the two queues reads leave for the next write (use records for the LRU,
 * bad entries to delete), so that a read never takes the write lock by itself unless
 * a queue has grown large or old. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <xxhash.h>

#include "common/status.h"
#include "store/codec.h"
#include "store/internal.h"

/* A queue is written on its own when it holds this many touches or is this old. */
#define TOUCH_FLUSH_COUNT 256
#define TOUCH_FLUSH_AGE_S 30.0

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- queues ----------------------------------------------------------------------- */

void read_queue_bad(store_env *e, uint8_t kind, const cl_key *key)
{
    if (e->rdonly || atomic_load(&e->damaged)) /* nothing will be written */
        return;
    pthread_mutex_lock(&e->mu);
    for (size_t i = 0; i < e->n_bad; i++)
        if (e->bad[i].kind == kind && cl_key_eq(&e->bad[i].key, key))
            goto out;
    if (e->n_bad == e->cap_bad) {
        size_t cap = e->cap_bad ? 2 * e->cap_bad : 16;
        pending_bad *nb = realloc(e->bad, cap * sizeof *nb);
        if (!nb)
            goto out; /* verify will find it */
        e->bad = nb;
        e->cap_bad = cap;
    }
    e->bad[e->n_bad].kind = kind;
    e->bad[e->n_bad].key = *key;
    e->n_bad++;
out:
    pthread_mutex_unlock(&e->mu);
}

static void queue_touch(store_env *e, uint8_t kind, const cl_key *key, int64_t now_ns)
{
    pthread_mutex_lock(&e->mu);
    for (size_t i = 0; i < e->n_touches; i++)
        if (e->touches[i].kind == kind && cl_key_eq(&e->touches[i].key, key)) {
            e->touches[i].atime_ns = now_ns;
            goto out;
        }
    if (e->n_touches == e->cap_touches) {
        size_t cap = e->cap_touches ? 2 * e->cap_touches : 64;
        pending_touch *nt = realloc(e->touches, cap * sizeof *nt);
        if (!nt)
            goto out; /* recency is best effort */
        e->touches = nt;
        e->cap_touches = cap;
    }
    if (!e->n_touches)
        e->first_touch_s = mono_s();
    e->touches[e->n_touches].kind = kind;
    e->touches[e->n_touches].key = *key;
    e->touches[e->n_touches].atime_ns = now_ns;
    e->n_touches++;
out:
    pthread_mutex_unlock(&e->mu);
}

int pending_apply(wtx *w, size_t *n_touches, size_t *n_bad)
{
    store_env *e = w->e;
    pthread_mutex_lock(&e->mu);
    size_t nt = e->n_touches, nb = e->n_bad;
    pending_touch *t = nt ? malloc(nt * sizeof *t) : NULL;
    pending_bad *b = nb ? malloc(nb * sizeof *b) : NULL;
    if ((nt && !t) || (nb && !b)) {
        nt = nb = 0;
    } else {
        if (nt)
            memcpy(t, e->touches, nt * sizeof *t);
        if (nb)
            memcpy(b, e->bad, nb * sizeof *b);
    }
    pthread_mutex_unlock(&e->mu);
    int rc = 0;
    for (size_t i = 0; i < nb && !rc; i++) {
        int dropped;
        rc = idx_drop_if_bad(w, b[i].kind, &b[i].key, &dropped);
    }
    for (size_t i = 0; i < nt && !rc; i++)
        rc = idx_touch(w, t[i].kind, &t[i].key, t[i].atime_ns);
    free(t);
    free(b);
    *n_touches = rc ? 0 : nt;
    *n_bad = rc ? 0 : nb;
    return rc;
}

void pending_consume(store_env *e, size_t n_touches, size_t n_bad)
{
    pthread_mutex_lock(&e->mu);
    if (n_touches > e->n_touches)
        n_touches = e->n_touches;
    if (n_touches) {
        memmove(e->touches, e->touches + n_touches,
                (e->n_touches - n_touches) * sizeof *e->touches);
        e->n_touches -= n_touches;
    }
    if (e->n_touches)
        e->first_touch_s = mono_s();
    if (n_bad > e->n_bad)
        n_bad = e->n_bad;
    if (n_bad) {
        memmove(e->bad, e->bad + n_bad, (e->n_bad - n_bad) * sizeof *e->bad);
        e->n_bad -= n_bad;
    }
    pthread_mutex_unlock(&e->mu);
}

int pending_flush(store_env *e)
{
    if (e->rdonly)
        return 0;
    pthread_mutex_lock(&e->mu);
    int empty = !e->n_touches && !e->n_bad;
    pthread_mutex_unlock(&e->mu);
    if (empty)
        return 0;
    wtx w;
    int rc = wtx_begin(e, &w);
    if (rc)
        return rc;
    size_t nt = 0, nb = 0;
    rc = pending_apply(&w, &nt, &nb);
    if (rc) {
        wtx_abort(&w);
    } else if (!(rc = wtx_commit(&w))) {
        pending_consume(e, nt, nb);
    }
    if (rc == MDB_MAP_FULL) /* recency is best effort; bad entries: verify drops them */
        pending_consume(e, nt, nb);
    return rc;
}

int cl_store_flush(cl_store *st)
{
    int rc = pending_flush(st->e);
    return rc ? store_fail(st->e, rc, "writing use records") : CL_OK;
}

/* ---- read transactions -------------------------------------------------------------- */

int cl_store_txn_begin(cl_store *st, cl_store_txn **out)
{
    *out = NULL;
    cl_store_txn *t = calloc(1, sizeof *t);
    if (!t)
        return cl_err(CL_ERR_NOMEM, "%s: out of memory", st->e->dir);
    int rc = env_txn_begin(st->e, MDB_RDONLY, &t->txn);
    if (rc) {
        free(t);
        return store_fail(st->e, rc, "read transaction");
    }
    store_thread_read_txns_add(1);
    t->st = st;
    *out = t;
    return CL_OK;
}

void cl_store_txn_end(cl_store_txn *t)
{
    if (!t)
        return;
    store_env *e = t->st->e;
    mdb_txn_abort(t->txn);
    env_txn_done(e);
    store_thread_read_txns_add(-1);
    free(t);
    if (e->rdonly)
        return;
    pthread_mutex_lock(&e->mu);
    int due = e->n_bad > 0 || e->n_touches >= TOUCH_FLUSH_COUNT ||
              (e->n_touches && mono_s() - e->first_touch_s >= TOUCH_FLUSH_AGE_S);
    pthread_mutex_unlock(&e->mu);
    if (due)
        pending_flush(e);
}

int read_lookup(cl_store_txn *t, cl_store_kind kind, const cl_key *key, MDB_val *v)
{
    store_env *e = t->st->e;
    if (!store_valid_kind((int)kind))
        return cl_err(CL_ERR_ARG, "%s: invalid value kind %d", e->dir, (int)kind);
    MDB_val k = {16, (void *)key->b};
    int rc = mdb_get(t->txn, e->dbi[kind], &k, v);
    if (rc == MDB_NOTFOUND)
        return CL_ERR_NOTFOUND;
    return rc ? store_fail(e, rc, cl_store_kind_table(kind)) : CL_OK;
}

int cl_store_has(cl_store_txn *t, cl_store_kind kind, const cl_key *key)
{
    MDB_val v;
    int rc = read_lookup(t, kind, key, &v);
    if (rc)
        return rc;
    codec_header h;
    if (codec_check(v.mv_data, v.mv_size, (uint8_t)kind, key, 0, &h)) {
        read_queue_bad(t->st->e, (uint8_t)kind, key);
        return CL_ERR_NOTFOUND;
    }
    return CL_OK;
}

int cl_store_count_prefix(cl_store_txn *t, cl_store_kind kind, const cl_key *keys, size_t n,
                          size_t *n_present)
{
    *n_present = 0;
    for (size_t i = 0; i < n; i++) {
        int rc = cl_store_has(t, kind, &keys[i]);
        if (rc == CL_ERR_NOTFOUND)
            break;
        if (rc)
            return rc;
        (*n_present)++;
    }
    return CL_OK;
}

void read_touch(cl_store_txn *t, uint8_t kind, const cl_key *key)
{
    store_env *e = t->st->e;
    if (e->rdonly || atomic_load(&e->damaged))
        return;
    usage_rec u;
    if (idx_usage_get(e, t->txn, kind, key, &u))
        return;
    int64_t now = store_now_ns();
    if ((u.flags & USAGE_PINNED) || now - u.atime_ns < e->touch_interval_ns)
        return;
    queue_touch(e, kind, key, now);
}

void cl_store_touch(cl_store_txn *t, cl_store_kind kind, const cl_key *key)
{
    read_touch(t, (uint8_t)kind, key);
}

int cl_store_get(cl_store_txn *t, cl_store_kind kind, const cl_key *key, cl_store_value *out)
{
    store_env *e = t->st->e;
    MDB_val v;
    int rc = read_lookup(t, kind, key, &v);
    char hex[33];
    if (rc == CL_ERR_NOTFOUND)
        return cl_err(CL_ERR_NOTFOUND, "%s: %s %s: not found", e->dir, cl_store_kind_table(kind),
                      cl_key_hex(key, hex));
    if (rc)
        return rc;
    codec_header h;
    const char *why = codec_check(v.mv_data, v.mv_size, (uint8_t)kind, key, 1, &h);
    if (why) {
        read_queue_bad(e, (uint8_t)kind, key);
        return cl_err(CL_ERR_CORRUPT, "%s: %s %s: %s; entry %s", e->dir,
                      cl_store_kind_table(kind), cl_key_hex(key, hex), why,
                      e->rdonly ? "not used" : "dropped");
    }
    memset(out, 0, sizeof *out);
    out->kind = kind;
    out->info.flags = h.flags;
    out->info.dtype = h.dtype;
    out->info.ndim = h.ndim;
    memcpy(out->info.shape, h.shape, sizeof h.shape);
    out->info.tokens = h.tokens;
    out->info.meta = h.meta_bytes ? codec_meta_ptr(v.mv_data) : NULL;
    out->info.meta_bytes = h.meta_bytes;
    out->created_ns = h.created_ns;
    out->payload = codec_payload_ptr(v.mv_data, &h);
    out->payload_bytes = h.payload_bytes;
    read_touch(t, (uint8_t)kind, key);
    return CL_OK;
}

int cl_store_peek(cl_store_txn *t, cl_store_kind kind, const cl_key *key, cl_store_value *out)
{
    store_env *e = t->st->e;
    MDB_val v;
    int rc = read_lookup(t, kind, key, &v);
    char hex[33];
    if (rc == CL_ERR_NOTFOUND)
        return cl_err(CL_ERR_NOTFOUND, "%s: %s %s: not found", e->dir, cl_store_kind_table(kind),
                      cl_key_hex(key, hex));
    if (rc)
        return rc;
    codec_header h;
    const char *why = codec_check(v.mv_data, v.mv_size, (uint8_t)kind, key, 0, &h);
    if (!why && h.meta_bytes &&
        XXH3_64bits(codec_meta_ptr(v.mv_data), h.meta_bytes) != h.meta_xxh)
        why = "meta checksum mismatch";
    if (why) {
        read_queue_bad(e, (uint8_t)kind, key);
        return cl_err(CL_ERR_CORRUPT, "%s: %s %s: %s; entry %s", e->dir,
                      cl_store_kind_table(kind), cl_key_hex(key, hex), why,
                      e->rdonly ? "not used" : "dropped");
    }
    memset(out, 0, sizeof *out);
    out->kind = kind;
    out->info.flags = h.flags;
    out->info.dtype = h.dtype;
    out->info.ndim = h.ndim;
    memcpy(out->info.shape, h.shape, sizeof h.shape);
    out->info.tokens = h.tokens;
    out->info.meta = h.meta_bytes ? codec_meta_ptr(v.mv_data) : NULL;
    out->info.meta_bytes = h.meta_bytes;
    out->created_ns = h.created_ns;
    out->payload = NULL; /* not verified: read it with cl_store_stream */
    out->payload_bytes = h.payload_bytes;
    return CL_OK;
}

/* ---- one-shot copies ------------------------------------------------------------------ */

int cl_store_read(cl_store *st, cl_store_kind kind, const cl_key *key, void *dst,
                  size_t dst_bytes, cl_store_value *value)
{
    cl_store_txn *t;
    CL_TRY(cl_store_txn_begin(st, &t));
    /* one thread: the copy and the check of each segment in one pass */
    cl_store_stream_opts o = {0};
    o.threads = 1;
    o.dst = dst;
    o.dst_bytes = dst_bytes;
    cl_store_value v;
    int rc = cl_store_stream(t, kind, key, &o, &v);
    if (rc == CL_OK && value) {
        v.payload = NULL;
        v.info.meta = NULL;
        *value = v;
    }
    cl_store_txn_end(t);
    return rc;
}

int cl_store_load(cl_store *st, cl_store_kind kind, const cl_key *key, cl_store_value *value,
                  void **buf)
{
    *buf = NULL;
    cl_store_txn *t;
    CL_TRY(cl_store_txn_begin(st, &t));
    cl_store_value v;
    int rc = cl_store_get(t, kind, key, &v);
    if (rc == CL_OK) {
        size_t meta_span = (v.info.meta_bytes + 63) & ~(size_t)63;
        uint8_t *b = malloc(meta_span + v.payload_bytes + 1);
        if (!b) {
            rc = cl_err(CL_ERR_NOMEM, "%s: out of memory (%llu bytes)", st->e->dir,
                        (unsigned long long)v.payload_bytes);
        } else {
            if (v.info.meta_bytes)
                memcpy(b, v.info.meta, v.info.meta_bytes);
            if (v.payload_bytes)
                memcpy(b + meta_span, v.payload, v.payload_bytes);
            v.info.meta = v.info.meta_bytes ? b : NULL;
            v.payload = b + meta_span;
            *value = v;
            *buf = b;
        }
    }
    cl_store_txn_end(t);
    return rc;
}
