/* index.c - the usage and LRU indexes and the totals, kept consistent with the value
 * tables inside every write transaction.
 *
 *   usage: kind(1) key(16)             -> last use ns(8) value bytes(8) flags(4) pad(4)
 *   lru:   last use ns(8, big-endian) kind(1) key(16) -> value bytes(8)
 *          (unpinned entries only, so a cursor from the first key walks the least
 *          recently used entries first and eviction never has to skip pins)
 *   meta["totals"]: count[5] bytes[5] pinned_count pinned_bytes (u64 LE each)
 */
#include <string.h>

#include "store/codec.h"
#include "store/internal.h"

static void put_le(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

void idx_usage_key(uint8_t kind, const cl_key *key, uint8_t out[17])
{
    out[0] = kind;
    memcpy(out + 1, key->b, 16);
}

void idx_lru_key(int64_t atime_ns, uint8_t kind, const cl_key *key, uint8_t out[25])
{
    for (int i = 0; i < 8; i++)
        out[i] = (uint8_t)((uint64_t)atime_ns >> (56 - 8 * i));
    out[8] = kind;
    memcpy(out + 9, key->b, 16);
}

int idx_usage_get(store_env *e, MDB_txn *txn, uint8_t kind, const cl_key *key, usage_rec *u)
{
    uint8_t kb[17];
    idx_usage_key(kind, key, kb);
    MDB_val k = {sizeof kb, kb}, v;
    int rc = mdb_get(txn, e->dbi[DB_USAGE], &k, &v);
    if (rc)
        return rc;
    if (v.mv_size != 24)
        return MDB_NOTFOUND; /* a damaged record counts as absent; verify repairs it */
    const uint8_t *p = v.mv_data;
    u->atime_ns = (int64_t)get_le(p, 8);
    u->bytes = get_le(p + 8, 8);
    u->flags = (uint32_t)get_le(p + 16, 4);
    return 0;
}

int idx_usage_put(wtx *w, uint8_t kind, const cl_key *key, const usage_rec *u)
{
    uint8_t kb[17], vb[24] = {0};
    idx_usage_key(kind, key, kb);
    put_le(vb, (uint64_t)u->atime_ns, 8);
    put_le(vb + 8, u->bytes, 8);
    put_le(vb + 16, u->flags, 4);
    MDB_val k = {sizeof kb, kb}, v = {sizeof vb, vb};
    return mdb_put(w->txn, w->e->dbi[DB_USAGE], &k, &v, 0);
}

static int usage_del(wtx *w, uint8_t kind, const cl_key *key)
{
    uint8_t kb[17];
    idx_usage_key(kind, key, kb);
    MDB_val k = {sizeof kb, kb};
    int rc = mdb_del(w->txn, w->e->dbi[DB_USAGE], &k, NULL);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

int idx_lru_put(wtx *w, int64_t atime_ns, uint8_t kind, const cl_key *key, uint64_t bytes)
{
    uint8_t kb[25], vb[8];
    idx_lru_key(atime_ns, kind, key, kb);
    put_le(vb, bytes, 8);
    MDB_val k = {sizeof kb, kb}, v = {sizeof vb, vb};
    return mdb_put(w->txn, w->e->dbi[DB_LRU], &k, &v, 0);
}

static int lru_del(wtx *w, int64_t atime_ns, uint8_t kind, const cl_key *key)
{
    uint8_t kb[25];
    idx_lru_key(atime_ns, kind, key, kb);
    MDB_val k = {sizeof kb, kb};
    int rc = mdb_del(w->txn, w->e->dbi[DB_LRU], &k, NULL);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

static uint64_t sub_sat(uint64_t a, uint64_t b) { return a > b ? a - b : 0; }

static void totals_remove(wtx *w, uint8_t kind, const usage_rec *u)
{
    w->tot.count[kind] = sub_sat(w->tot.count[kind], 1);
    w->tot.bytes[kind] = sub_sat(w->tot.bytes[kind], u->bytes);
    if (u->flags & USAGE_PINNED) {
        w->tot.pinned_count = sub_sat(w->tot.pinned_count, 1);
        w->tot.pinned_bytes = sub_sat(w->tot.pinned_bytes, u->bytes);
    }
    w->tot_dirty = 1;
}

static void totals_add(wtx *w, uint8_t kind, const usage_rec *u)
{
    w->tot.count[kind]++;
    w->tot.bytes[kind] += u->bytes;
    if (u->flags & USAGE_PINNED) {
        w->tot.pinned_count++;
        w->tot.pinned_bytes += u->bytes;
    }
    w->tot_dirty = 1;
}

int idx_totals_load(store_env *e, MDB_txn *txn, store_totals *t)
{
    memset(t, 0, sizeof *t);
    MDB_val k = {6, "totals"}, v;
    int rc = mdb_get(txn, e->dbi[DB_META], &k, &v);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc)
        return rc;
    const int n = 2 * (CL_STORE_NKINDS + 1) + 2;
    if (v.mv_size != (size_t)n * 8)
        return 0; /* damaged: start from zero; verify recomputes */
    const uint8_t *p = v.mv_data;
    for (int i = 0; i <= CL_STORE_NKINDS; i++) {
        t->count[i] = get_le(p + 8 * i, 8);
        t->bytes[i] = get_le(p + 8 * (CL_STORE_NKINDS + 1 + i), 8);
    }
    t->pinned_count = get_le(p + 8 * (n - 2), 8);
    t->pinned_bytes = get_le(p + 8 * (n - 1), 8);
    return 0;
}

int idx_totals_save(wtx *w)
{
    const int n = 2 * (CL_STORE_NKINDS + 1) + 2;
    uint8_t buf[8 * (2 * (CL_STORE_NKINDS + 1) + 2)];
    for (int i = 0; i <= CL_STORE_NKINDS; i++) {
        put_le(buf + 8 * i, w->tot.count[i], 8);
        put_le(buf + 8 * (CL_STORE_NKINDS + 1 + i), w->tot.bytes[i], 8);
    }
    put_le(buf + 8 * (n - 2), w->tot.pinned_count, 8);
    put_le(buf + 8 * (n - 1), w->tot.pinned_bytes, 8);
    MDB_val k = {6, "totals"}, v = {sizeof buf, buf};
    return mdb_put(w->txn, w->e->dbi[DB_META], &k, &v, 0);
}

uint64_t idx_total_bytes(const store_totals *t)
{
    uint64_t s = 0;
    for (int i = 1; i <= CL_STORE_NKINDS; i++)
        s += t->bytes[i];
    return s;
}

int idx_note_put(wtx *w, uint8_t kind, const cl_key *key, uint64_t bytes, int pin)
{
    return idx_note_put_at(w, kind, key, bytes, pin, w->now_ns);
}

int idx_note_put_at(wtx *w, uint8_t kind, const cl_key *key, uint64_t bytes, int pin,
                    int64_t atime_ns)
{
    usage_rec old, u;
    int rc = idx_usage_get(w->e, w->txn, kind, key, &old);
    if (rc && rc != MDB_NOTFOUND)
        return rc;
    int had = rc == 0;
    if (had) {
        totals_remove(w, kind, &old);
        if (!(old.flags & USAGE_PINNED) && (rc = lru_del(w, old.atime_ns, kind, key)))
            return rc;
    }
    u.atime_ns = atime_ns;
    u.bytes = bytes;
    u.flags = (pin || (had && (old.flags & USAGE_PINNED))) ? USAGE_PINNED : 0;
    if ((rc = idx_usage_put(w, kind, key, &u)))
        return rc;
    if (!(u.flags & USAGE_PINNED) && (rc = idx_lru_put(w, u.atime_ns, kind, key, bytes)))
        return rc;
    totals_add(w, kind, &u);
    return 0;
}

int idx_delete_entry(wtx *w, uint8_t kind, const cl_key *key, int *found)
{
    MDB_val k = {16, (void *)key->b};
    int rc = mdb_del(w->txn, w->e->dbi[kind], &k, NULL);
    if (rc && rc != MDB_NOTFOUND)
        return rc;
    if (found)
        *found = rc == 0;
    usage_rec u;
    rc = idx_usage_get(w->e, w->txn, kind, key, &u);
    if (rc == MDB_NOTFOUND)
        return usage_del(w, kind, key); /* drops a damaged record too */
    if (rc)
        return rc;
    totals_remove(w, kind, &u);
    if (!(u.flags & USAGE_PINNED) && (rc = lru_del(w, u.atime_ns, kind, key)))
        return rc;
    return usage_del(w, kind, key);
}

int idx_touch(wtx *w, uint8_t kind, const cl_key *key, int64_t atime_ns)
{
    usage_rec u;
    int rc = idx_usage_get(w->e, w->txn, kind, key, &u);
    if (rc == MDB_NOTFOUND)
        return 0; /* deleted since */
    if (rc)
        return rc;
    if ((u.flags & USAGE_PINNED) || atime_ns <= u.atime_ns)
        return 0;
    if ((rc = lru_del(w, u.atime_ns, kind, key)))
        return rc;
    u.atime_ns = atime_ns;
    if ((rc = idx_usage_put(w, kind, key, &u)))
        return rc;
    return idx_lru_put(w, atime_ns, kind, key, u.bytes);
}

int idx_set_pin(wtx *w, uint8_t kind, const cl_key *key, int pinned, int *found)
{
    MDB_val k = {16, (void *)key->b}, v;
    int rc = mdb_get(w->txn, w->e->dbi[kind], &k, &v);
    *found = rc == 0;
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc)
        return rc;
    usage_rec u;
    rc = idx_usage_get(w->e, w->txn, kind, key, &u);
    if (rc == MDB_NOTFOUND) { /* missing record: rebuild it (verify would too) */
        u.atime_ns = w->now_ns;
        u.bytes = v.mv_size;
        u.flags = 0;
        if ((rc = idx_usage_put(w, kind, key, &u)) || (rc = idx_lru_put(w, u.atime_ns, kind, key, u.bytes)))
            return rc;
        totals_add(w, kind, &u);
    } else if (rc) {
        return rc;
    }
    if (!!(u.flags & USAGE_PINNED) == !!pinned)
        return 0;
    totals_remove(w, kind, &u);
    if (pinned) {
        if ((rc = lru_del(w, u.atime_ns, kind, key)))
            return rc;
        u.flags |= USAGE_PINNED;
    } else {
        u.flags &= ~USAGE_PINNED;
        u.atime_ns = w->now_ns; /* unpinned now: counts as just used */
        if ((rc = idx_lru_put(w, u.atime_ns, kind, key, u.bytes)))
            return rc;
    }
    totals_add(w, kind, &u);
    return idx_usage_put(w, kind, key, &u);
}

int idx_evict(wtx *w, uint64_t target_total, uint64_t want_freed, int64_t stop_atime_ns,
              uint64_t *n, uint64_t *bytes)
{
    uint64_t freed = 0, count = 0;
    int rc = 0;
    while (idx_total_bytes(&w->tot) > target_total || freed < want_freed) {
        MDB_cursor *c;
        if ((rc = mdb_cursor_open(w->txn, w->e->dbi[DB_LRU], &c)))
            break;
        MDB_val k, v;
        rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
        uint8_t kb[25];
        int ok = rc == 0 && k.mv_size == sizeof kb;
        if (ok)
            memcpy(kb, k.mv_data, sizeof kb);
        mdb_cursor_close(c);
        if (rc == MDB_NOTFOUND) {
            rc = 0;
            break;
        }
        if (rc)
            break;
        MDB_val del_key = {sizeof kb, kb};
        if (!ok) { /* malformed index key: drop it */
            if ((rc = mdb_del(w->txn, w->e->dbi[DB_LRU], &k, NULL)))
                break;
            continue;
        }
        int64_t atime = (int64_t)((uint64_t)kb[0] << 56 | (uint64_t)kb[1] << 48 |
                                  (uint64_t)kb[2] << 40 | (uint64_t)kb[3] << 32 |
                                  (uint64_t)kb[4] << 24 | (uint64_t)kb[5] << 16 |
                                  (uint64_t)kb[6] << 8 | kb[7]);
        if (atime >= stop_atime_ns)
            break;
        uint8_t kind = kb[8];
        cl_key key;
        memcpy(key.b, kb + 9, 16);
        uint64_t before = idx_total_bytes(&w->tot);
        int found = 0;
        if (store_valid_kind(kind) && (rc = idx_delete_entry(w, kind, &key, &found)))
            break;
        /* The LRU key itself, in case the usage record disagreed with it. */
        rc = mdb_del(w->txn, w->e->dbi[DB_LRU], &del_key, NULL);
        if (rc && rc != MDB_NOTFOUND)
            break;
        rc = 0;
        freed += before - idx_total_bytes(&w->tot);
        count += found;
    }
    if (n)
        *n += count;
    if (bytes)
        *bytes += freed;
    return rc;
}

int idx_drop_if_bad(wtx *w, uint8_t kind, const cl_key *key, int *dropped)
{
    *dropped = 0;
    MDB_val k = {16, (void *)key->b}, v;
    int rc = mdb_get(w->txn, w->e->dbi[kind], &k, &v);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc)
        return rc;
    codec_header h;
    if (!codec_check(v.mv_data, v.mv_size, kind, key, 1, &h))
        return 0; /* rewritten with a good value since */
    *dropped = 1;
    return idx_delete_entry(w, kind, key, NULL);
}

int idx_saved_cap(store_env *e, MDB_txn *txn, uint64_t *cap)
{
    *cap = 0;
    MDB_val k = {9, "max_bytes"}, v;
    int rc = mdb_get(txn, e->dbi[DB_META], &k, &v);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc)
        return rc;
    if (v.mv_size == 8)
        *cap = get_le(v.mv_data, 8);
    return 0;
}
