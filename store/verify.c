/* verify.c - checks LMDB's page structure (pagewalk.c), then every value (header, meta
 * and payload checksums, key, found by its key) in one read transaction, then in one
 * write transaction deletes the bad ones (re-checked there) and checks/repairs the usage
 * and LRU indexes and the totals against the tables. A store whose pages are damaged
 * is marked so and left untouched. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/status.h"
#include "store/codec.h"
#include "store/internal.h"
#include "store/pagewalk.h"

#define PROGRESS_STEP_BYTES (64ull << 20)

typedef struct {
    uint8_t kind;
    size_t klen;
    uint8_t k[32]; /* keys longer than this are cut: still unique enough to delete by */
    cl_key key;
} bad_entry;

enum { FIX_DEL_USAGE, FIX_PUT_USAGE, FIX_PUT_LRU, FIX_DEL_LRU };

typedef struct {
    int op;
    uint8_t kind;
    cl_key key;
    usage_rec u;
    uint8_t raw[32];
    size_t rawlen;
} fix;

typedef struct {
    fix *v;
    size_t n, cap;
    int oom;
} fix_list;

static void add_note(cl_store_verify_result *out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void add_note(cl_store_verify_result *out, const char *fmt, ...)
{
    if (out->notes >= CL_STORE_VERIFY_NOTES)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out->note[out->notes++], sizeof out->note[0], fmt, ap);
    va_end(ap);
}

static void add_fix(fix_list *l, const fix *f)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 32;
        fix *nv = realloc(l->v, cap * sizeof *nv);
        if (!nv) {
            l->oom = 1;
            return;
        }
        l->v = nv;
        l->cap = cap;
    }
    l->v[l->n++] = *f;
}

static void raw_copy(fix *f, const MDB_val *k)
{
    f->rawlen = k->mv_size < sizeof f->raw ? k->mv_size : sizeof f->raw;
    memcpy(f->raw, k->mv_data, f->rawlen);
}

/* Compares the indexes with the value tables; collects repairs in `fixes` and the
 * totals the tables imply in `tot`. Returns an LMDB code. */
static int check_index(store_env *e, MDB_txn *txn, fix_list *fixes, store_totals *tot)
{
    memset(tot, 0, sizeof *tot);
    MDB_cursor *c;
    MDB_val k, v;
    int rc = mdb_cursor_open(txn, e->dbi[DB_USAGE], &c);
    if (rc)
        return rc;
    /* usage records: each must name a present value, with its size; unpinned ones
     * must have their LRU key. */
    for (int op = MDB_FIRST; !(rc = mdb_cursor_get(c, &k, &v, (MDB_cursor_op)op)); op = MDB_NEXT) {
        fix f = {0};
        const uint8_t *kb = k.mv_data;
        usage_rec u;
        if (k.mv_size != 17 || !store_valid_kind(kb[0]) || v.mv_size != 24) {
            f.op = FIX_DEL_USAGE;
            raw_copy(&f, &k);
            add_fix(fixes, &f);
            continue;
        }
        f.kind = kb[0];
        memcpy(f.key.b, kb + 1, 16);
        if ((rc = idx_usage_get(e, txn, f.kind, &f.key, &u)))
            break;
        MDB_val vk = {16, f.key.b}, vv;
        rc = mdb_get(txn, e->dbi[f.kind], &vk, &vv);
        if (rc == MDB_NOTFOUND) {
            f.op = FIX_DEL_USAGE;
            raw_copy(&f, &k);
            add_fix(fixes, &f);
            if (!(u.flags & USAGE_PINNED)) {
                fix g = {0};
                uint8_t lk[25];
                idx_lru_key(u.atime_ns, f.kind, &f.key, lk);
                g.op = FIX_DEL_LRU;
                memcpy(g.raw, lk, sizeof lk);
                g.rawlen = sizeof lk;
                add_fix(fixes, &g);
            }
            rc = 0;
            continue;
        }
        if (rc)
            break;
        if (u.bytes != vv.mv_size) {
            u.bytes = vv.mv_size;
            f.op = FIX_PUT_USAGE;
            f.u = u;
            add_fix(fixes, &f);
        }
        if (!(u.flags & USAGE_PINNED)) {
            uint8_t lk[25];
            idx_lru_key(u.atime_ns, f.kind, &f.key, lk);
            MDB_val lkv = {sizeof lk, lk}, lvv;
            int r2 = mdb_get(txn, e->dbi[DB_LRU], &lkv, &lvv);
            if (r2 == MDB_NOTFOUND) {
                f.op = FIX_PUT_LRU;
                f.u = u;
                add_fix(fixes, &f);
            } else if (r2) {
                rc = r2;
                break;
            }
        }
        tot->count[f.kind]++;
        tot->bytes[f.kind] += u.bytes;
        if (u.flags & USAGE_PINNED) {
            tot->pinned_count++;
            tot->pinned_bytes += u.bytes;
        }
    }
    mdb_cursor_close(c);
    if (rc != MDB_NOTFOUND)
        return rc;

    /* values without a usage record */
    for (int kind = CL_STORE_KV; kind <= CL_STORE_OTHER; kind++) {
        if ((rc = mdb_cursor_open(txn, e->dbi[kind], &c)))
            return rc;
        for (int op = MDB_FIRST; !(rc = mdb_cursor_get(c, &k, &v, (MDB_cursor_op)op));
             op = MDB_NEXT) {
            if (k.mv_size != 16)
                continue;
            fix f = {0};
            f.kind = (uint8_t)kind;
            memcpy(f.key.b, k.mv_data, 16);
            usage_rec u;
            int r2 = idx_usage_get(e, txn, f.kind, &f.key, &u);
            if (r2 == 0)
                continue;
            if (r2 != MDB_NOTFOUND) {
                rc = r2;
                break;
            }
            codec_header h;
            f.u.bytes = v.mv_size;
            f.u.atime_ns = codec_check(v.mv_data, v.mv_size, f.kind, &f.key, 0, &h)
                               ? store_now_ns()
                               : h.created_ns;
            f.op = FIX_PUT_USAGE;
            add_fix(fixes, &f);
            f.op = FIX_PUT_LRU;
            add_fix(fixes, &f);
            tot->count[kind]++;
            tot->bytes[kind] += v.mv_size;
        }
        mdb_cursor_close(c);
        if (rc != MDB_NOTFOUND)
            return rc;
    }

    /* LRU keys: each must match an unpinned usage record with the same time */
    if ((rc = mdb_cursor_open(txn, e->dbi[DB_LRU], &c)))
        return rc;
    for (int op = MDB_FIRST; !(rc = mdb_cursor_get(c, &k, &v, (MDB_cursor_op)op)); op = MDB_NEXT) {
        const uint8_t *kb = k.mv_data;
        int ok = k.mv_size == 25 && store_valid_kind(kb[8]);
        if (ok) {
            cl_key key;
            memcpy(key.b, kb + 9, 16);
            usage_rec u;
            int r2 = idx_usage_get(e, txn, kb[8], &key, &u);
            if (r2 && r2 != MDB_NOTFOUND) {
                rc = r2;
                break;
            }
            uint8_t lk[25];
            if (!r2)
                idx_lru_key(u.atime_ns, kb[8], &key, lk);
            ok = !r2 && !(u.flags & USAGE_PINNED) && !memcmp(lk, kb, 25);
        }
        if (!ok) {
            fix f = {0};
            f.op = FIX_DEL_LRU;
            raw_copy(&f, &k);
            add_fix(fixes, &f);
        }
    }
    mdb_cursor_close(c);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

static int apply_fixes(wtx *w, const fix_list *l)
{
    int rc = 0;
    for (size_t i = 0; i < l->n && !rc; i++) {
        const fix *f = &l->v[i];
        MDB_val k = {f->rawlen, (void *)f->raw};
        switch (f->op) {
        case FIX_DEL_USAGE:
        case FIX_DEL_LRU:
            rc = mdb_del(w->txn, w->e->dbi[f->op == FIX_DEL_USAGE ? DB_USAGE : DB_LRU], &k, NULL);
            if (rc == MDB_NOTFOUND)
                rc = 0;
            break;
        case FIX_PUT_USAGE: rc = idx_usage_put(w, f->kind, &f->key, &f->u); break;
        default: rc = idx_lru_put(w, f->u.atime_ns, f->kind, &f->key, f->u.bytes); break;
        }
    }
    return rc;
}

/* Phase 1: every value, fully checked, in one read transaction. */
static int scan_values(cl_store *st, cl_store_bad_fn on_bad, cl_store_progress_fn on_progress,
                       void *user, cl_store_verify_result *out, bad_entry **bad, size_t *nbad)
{
    store_env *e = st->e;
    MDB_txn *txn;
    int rc = env_txn_begin(e, MDB_RDONLY, &txn);
    if (rc)
        return rc;
    store_thread_read_txns_add(1);
    store_totals t;
    uint64_t total = 0, next_report = 0;
    if (!idx_totals_load(e, txn, &t))
        total = idx_total_bytes(&t);
    size_t cap = 0;
    for (int kind = CL_STORE_KV; kind <= CL_STORE_OTHER && !rc; kind++) {
        MDB_cursor *c;
        if ((rc = mdb_cursor_open(txn, e->dbi[kind], &c)))
            break;
        MDB_val k, v;
        for (int op = MDB_FIRST; !(rc = mdb_cursor_get(c, &k, &v, (MDB_cursor_op)op));
             op = MDB_NEXT) {
            bad_entry be = {0};
            be.kind = (uint8_t)kind;
            be.klen = k.mv_size < sizeof be.k ? k.mv_size : sizeof be.k;
            memcpy(be.k, k.mv_data, be.klen);
            memcpy(be.key.b, k.mv_data, k.mv_size < 16 ? k.mv_size : 16);
            codec_header h;
            const char *why = k.mv_size != 16 ? "malformed key"
                                               : codec_check(v.mv_data, v.mv_size, (uint8_t)kind,
                                                             &be.key, 1, &h);
            /* the tree must find it by its key (key order inside LMDB's pages) */
            MDB_val kk = k, found;
            if (mdb_get(txn, e->dbi[kind], &kk, &found) || found.mv_data != v.mv_data) {
                char hex[33];
                add_note(out, "table '%s': entry %s is not found by its key (page order "
                         "damaged)", cl_store_kind_table((cl_store_kind)kind),
                         cl_key_hex(&be.key, hex));
                out->page_problems++;
            }
            out->checked++;
            out->checked_bytes += v.mv_size;
            if (why) {
                out->bad++;
                if (on_bad)
                    on_bad(user, (cl_store_kind)kind, &be.key, why);
                if (*nbad == cap) {
                    cap = cap ? 2 * cap : 16;
                    bad_entry *nb = realloc(*bad, cap * sizeof *nb);
                    if (!nb) {
                        rc = ENOMEM;
                        break;
                    }
                    *bad = nb;
                }
                (*bad)[(*nbad)++] = be;
            }
            if (on_progress && out->checked_bytes >= next_report) {
                on_progress(user, out->checked_bytes,
                            total > out->checked_bytes ? total : out->checked_bytes);
                next_report = out->checked_bytes + PROGRESS_STEP_BYTES;
            }
        }
        mdb_cursor_close(c);
        if (rc == MDB_NOTFOUND)
            rc = 0;
    }
    mdb_txn_abort(txn);
    env_txn_done(e);
    store_thread_read_txns_add(-1);
    return rc;
}

/* Phase 0: LMDB's pages, in a read transaction of its own (retried if a writer
 * overwrote the snapshot's meta page meanwhile). */
static int check_pages(store_env *e, cl_store_verify_result *out)
{
    walk_result wr;
    int rc = EAGAIN;
    for (int tries = 0; tries < 5 && rc == EAGAIN; tries++) {
        MDB_txn *txn;
        if ((rc = env_txn_begin(e, MDB_RDONLY, &txn)))
            return rc;
        store_thread_read_txns_add(1);
        memset(&wr, 0, sizeof wr);
        rc = walk_check(e->env, txn, &wr);
        mdb_txn_abort(txn);
        env_txn_done(e);
        store_thread_read_txns_add(-1);
    }
    if (rc == EAGAIN) {
        cl_err(CL_ERR_IO, "%s: verify: no meta page matches the snapshot (not an LMDB 0.9 "
               "file?)", e->dir);
        return STORE_E_REPORTED;
    }
    if (rc)
        return rc;
    out->pages = wr.last_pgno + 1;
    out->free_pages = wr.free_pages;
    out->pages_unaccounted = wr.unaccounted;
    out->page_problems = wr.free_in_use + wr.free_dup + wr.out_of_range + wr.bad_records +
                         wr.bad_pages;
    for (int i = 0; i < wr.notes; i++)
        add_note(out, "%s", wr.note[i]);
    out->values_skipped = walk_tree_damaged(&wr);
    return 0;
}

static int totals_differ(const store_totals *a, const store_totals *b)
{
    for (int k = 1; k <= CL_STORE_NKINDS; k++)
        if (a->count[k] != b->count[k] || a->bytes[k] != b->bytes[k])
            return 1;
    return a->pinned_count != b->pinned_count || a->pinned_bytes != b->pinned_bytes;
}

const char *cl_store_verify_limits(void)
{
    return "not checked: LMDB's lock file (reader table), padding bytes between a value's "
           "parts, keys inside branch pages except through the lookups they route, and "
           "whether the last commit before a crash reached the disk";
}

int cl_store_verify(cl_store *st, cl_store_bad_fn on_bad, cl_store_progress_fn on_progress,
                    void *user, cl_store_verify_result *out)
{
    store_env *e = st->e;
    memset(out, 0, sizeof *out);
    bad_entry *bad = NULL;
    size_t nbad = 0;
    int rc = check_pages(e, out);
    if (rc == STORE_E_REPORTED)
        return CL_ERR_IO;
    if (!rc && !out->values_skipped)
        rc = scan_values(st, on_bad, on_progress, user, out, &bad, &nbad);
    if (!rc && out->page_problems)
        env_mark_damaged(e, out->note[0]);
    out->damaged = env_is_damaged(e);
    fix_list fixes = {0};
    store_totals tot;
    if (!rc && !out->values_skipped && (st->rdonly || out->damaged)) {
        /* report only: never write through a damaged free list */
        MDB_txn *txn;
        if (!(rc = env_txn_begin(e, MDB_RDONLY, &txn))) {
            store_totals saved;
            rc = check_index(e, txn, &fixes, &tot);
            if (!rc && !idx_totals_load(e, txn, &saved) && totals_differ(&saved, &tot))
                out->index_fixed++;
            mdb_txn_abort(txn);
            env_txn_done(e);
        }
        out->index_fixed += fixes.n;
    } else if (!rc && !out->values_skipped) {
        wtx w;
        if (!(rc = wtx_begin(e, &w))) {
            for (size_t i = 0; i < nbad && !rc; i++) {
                int dropped = 0;
                if (bad[i].klen == 16) {
                    rc = idx_drop_if_bad(&w, bad[i].kind, &bad[i].key, &dropped);
                } else {
                    MDB_val k = {bad[i].klen, bad[i].k};
                    rc = mdb_del(w.txn, e->dbi[bad[i].kind], &k, NULL);
                    dropped = rc == 0;
                    if (rc == MDB_NOTFOUND)
                        rc = 0;
                }
                out->removed += dropped;
            }
            if (!rc)
                rc = check_index(e, w.txn, &fixes, &tot);
            if (!rc && fixes.oom)
                rc = ENOMEM;
            if (!rc)
                rc = apply_fixes(&w, &fixes);
            if (!rc) {
                out->index_fixed += fixes.n;
                if (totals_differ(&w.tot, &tot)) {
                    out->index_fixed++;
                    w.tot = tot;
                    w.tot_dirty = 1;
                }
                rc = wtx_commit(&w);
            } else {
                wtx_abort(&w);
            }
            if (rc) {
                out->removed = 0;
                out->index_fixed = 0;
            }
        }
    }
    free(bad);
    free(fixes.v);
    return rc ? store_fail(e, rc, "verify") : CL_OK;
}
