/* write.c - batches: puts (gathered from pieces, checksummed up front), deletes and pins
 * applied in one LMDB write transaction at commit, with the size cap enforced inside
 * that transaction and MDB_MAP_FULL handled by growing the map, else evicting, then
 * retrying the whole batch. */
#define XXH_STATIC_LINKING_ONLY
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <xxhash.h>

#include "common/status.h"
#include "store/codec.h"
#include "store/internal.h"

enum { OP_PUT, OP_DEL, OP_PIN, OP_UNPIN };
#define MAX_COMMIT_ATTEMPTS 12

typedef struct {
    int op;
    uint8_t kind;
    cl_key key;
    unsigned flags;
    codec_header h;     /* checksums filled at put, or at apply with STORE_PUT_HASH_LATE */
    uint8_t *table;     /* owned: v2 segment checksums (at put) */
    void *meta;         /* owned copy */
    size_t meta_bytes;
    cl_store_piece *pieces; /* owned array */
    size_t npieces;
    void *payload_copy; /* owned, CL_STORE_PUT_COPY */
    uint64_t value_bytes;
} batch_op;

struct cl_store_batch {
    cl_store *st;
    batch_op *ops;
    size_t n, cap;
    int failed;
    int late_writeback;
    uint64_t put_bytes;
};

void store_batch_late_writeback(cl_store_batch *b) { b->late_writeback = 1; }

int cl_store_batch_begin(cl_store *st, cl_store_batch **out)
{
    *out = NULL;
    if (st->rdonly)
        return store_fail(st->e, STORE_E_RDONLY, NULL);
    cl_store_batch *b = calloc(1, sizeof *b);
    if (!b)
        return cl_err(CL_ERR_NOMEM, "%s: out of memory", st->e->dir);
    b->st = st;
    *out = b;
    return CL_OK;
}

static void free_ops(cl_store_batch *b)
{
    for (size_t i = 0; i < b->n; i++) {
        free(b->ops[i].meta);
        free(b->ops[i].table);
        free(b->ops[i].pieces);
        free(b->ops[i].payload_copy);
    }
    free(b->ops);
}

void cl_store_batch_abort(cl_store_batch *b)
{
    if (!b)
        return;
    free_ops(b);
    free(b);
}

static batch_op *new_op(cl_store_batch *b, int op, cl_store_kind kind, const cl_key *key)
{
    if (!store_valid_kind((int)kind)) {
        cl_err(CL_ERR_ARG, "%s: invalid value kind %d", b->st->e->dir, (int)kind);
        return NULL;
    }
    if (b->n == b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 8;
        batch_op *n = realloc(b->ops, cap * sizeof *n);
        if (!n) {
            cl_err(CL_ERR_NOMEM, "%s: out of memory", b->st->e->dir);
            return NULL;
        }
        b->ops = n;
        b->cap = cap;
    }
    batch_op *o = &b->ops[b->n];
    memset(o, 0, sizeof *o);
    o->op = op;
    o->kind = (uint8_t)kind;
    o->key = *key;
    return o;
}

static int put_failed(cl_store_batch *b, int status)
{
    b->failed = 1;
    return status;
}

/* XXH3-64 of the concatenated pieces (the version-1 payload checksum). */
static uint64_t pieces_xxh(const cl_store_piece *pieces, size_t npieces)
{
    XXH3_state_t hs;
    XXH3_INITSTATE(&hs);
    XXH3_64bits_reset(&hs);
    for (size_t i = 0; i < npieces; i++)
        if (pieces[i].bytes)
            XXH3_64bits_update(&hs, pieces[i].data, pieces[i].bytes);
    return XXH3_64bits_digest(&hs);
}

/* A position in the concatenated pieces. */
typedef struct {
    const cl_store_piece *pieces;
    size_t npieces, i, off;
} piece_pos;

/* Skips empty pieces / the end of the current one. */
static void pos_norm(piece_pos *p)
{
    while (p->i < p->npieces && p->off == p->pieces[p->i].bytes) {
        p->i++;
        p->off = 0;
    }
}

/* XXH3-64 of the next len bytes (one-shot when they lie in one piece); advances. */
static uint64_t pos_hash(piece_pos *p, uint64_t len)
{
    pos_norm(p);
    if (len && p->pieces[p->i].bytes - p->off >= len) {
        uint64_t x = XXH3_64bits((const uint8_t *)p->pieces[p->i].data + p->off, len);
        p->off += len;
        return x;
    }
    XXH3_state_t hs;
    XXH3_INITSTATE(&hs);
    XXH3_64bits_reset(&hs);
    while (len) {
        pos_norm(p);
        size_t n = p->pieces[p->i].bytes - p->off < len ? p->pieces[p->i].bytes - p->off
                                                          : (size_t)len;
        XXH3_64bits_update(&hs, (const uint8_t *)p->pieces[p->i].data + p->off, n);
        p->off += n;
        len -= n;
    }
    return XXH3_64bits_digest(&hs);
}

/* Copies the next len bytes to dst; advances. */
static void pos_copy(piece_pos *p, uint8_t *dst, uint64_t len)
{
    while (len) {
        pos_norm(p);
        size_t n = p->pieces[p->i].bytes - p->off < len ? p->pieces[p->i].bytes - p->off
                                                          : (size_t)len;
        memcpy(dst, (const uint8_t *)p->pieces[p->i].data + p->off, n);
        p->off += n;
        dst += n;
        len -= n;
    }
}

/* Per-segment checksums of the concatenated pieces into table[]. */
static void hash_segments(const cl_store_piece *pieces, size_t npieces, const codec_header *h,
                          uint8_t *table)
{
    uint64_t seg = 1ull << h->seg_log2, nseg = codec_nseg(h);
    piece_pos p = {pieces, npieces, 0, 0};
    for (uint64_t s = 0; s < nseg; s++) {
        uint64_t len = h->payload_bytes - s * seg < seg ? h->payload_bytes - s * seg : seg;
        codec_put_seg_xxh(table, s, pos_hash(&p, len));
    }
}

/* Copies the pieces to dst segment by segment, each hashed into table[] right before
 * its copy (which then reads the source from cache). */
static void copy_hash_segments(uint8_t *dst, const cl_store_piece *pieces, size_t npieces,
                               const codec_header *h, uint8_t *table)
{
    uint64_t seg = 1ull << h->seg_log2, nseg = codec_nseg(h);
    piece_pos p = {pieces, npieces, 0, 0};
    for (uint64_t s = 0; s < nseg; s++) {
        uint64_t len = h->payload_bytes - s * seg < seg ? h->payload_bytes - s * seg : seg;
        piece_pos start = p;
        codec_put_seg_xxh(table, s, pos_hash(&p, len));
        p = start;
        pos_copy(&p, dst + s * seg, len);
    }
}

int cl_store_batch_put(cl_store_batch *b, cl_store_kind kind, const cl_key *key,
                       const cl_store_info *info, const cl_store_piece *pieces, size_t npieces,
                       unsigned put_flags)
{
    const char *dir = b->st->e->dir;
    char hex[33];
    cl_key_hex(key, hex);
    cl_store_info none = {0};
    if (!info)
        info = &none;
    if (info->ndim > 4 || info->meta_bytes > CODEC_MAX_META_BYTES ||
        (info->meta_bytes && !info->meta))
        return put_failed(b, cl_err(CL_ERR_ARG, "%s: %s: bad value info (ndim %u, meta %zu bytes)",
                                    dir, hex, info->ndim, info->meta_bytes));
    uint64_t payload_bytes = 0;
    for (size_t i = 0; i < npieces; i++) {
        if (pieces[i].bytes && !pieces[i].data)
            return put_failed(b, cl_err(CL_ERR_ARG, "%s: %s: piece %zu has no data", dir, hex, i));
        payload_bytes += pieces[i].bytes;
    }
    codec_header h = {0};
    h.version = (put_flags & STORE_PUT_V1) ? 1 : CODEC_VERSION;
    h.seg_log2 = CODEC_SEG_LOG2;
    h.kind = (uint8_t)kind;
    h.dtype = info->dtype;
    h.ndim = info->ndim;
    h.flags = info->flags;
    memcpy(h.shape, info->shape, sizeof h.shape);
    h.tokens = info->tokens;
    h.payload_bytes = payload_bytes;
    h.meta_bytes = (uint32_t)info->meta_bytes;
    h.created_ns = store_now_ns();
    h.key = *key;
    uint64_t value_bytes = codec_value_bytes(&h);
    if (payload_bytes > CODEC_MAX_VALUE_BYTES || value_bytes > CODEC_MAX_VALUE_BYTES)
        return put_failed(b, cl_err(CL_ERR_RANGE, "%s: %s: value of %llu bytes is too large "
                                    "(limit %llu)", dir, hex, (unsigned long long)payload_bytes,
                                    (unsigned long long)CODEC_MAX_VALUE_BYTES));
    if ((put_flags & STORE_PUT_V1) && (put_flags & STORE_PUT_HASH_LATE))
        return put_failed(b, cl_err(CL_ERR_ARG, "%s: %s: old-format values are hashed up front",
                                    dir, hex));
    batch_op *o = new_op(b, OP_PUT, kind, key);
    if (!o)
        return put_failed(b, CL_ERR_ARG);
    o->flags = put_flags;
    o->value_bytes = value_bytes;
    int ok = 1;
    if (info->meta_bytes) {
        o->meta = malloc(info->meta_bytes);
        ok = o->meta != NULL;
        if (ok)
            memcpy(o->meta, info->meta, info->meta_bytes);
        o->meta_bytes = info->meta_bytes;
    }
    if (ok && (put_flags & CL_STORE_PUT_COPY)) {
        o->payload_copy = malloc(payload_bytes ? payload_bytes : 1);
        o->pieces = malloc(sizeof *o->pieces);
        ok = o->payload_copy && o->pieces;
        if (ok) {
            size_t off = 0;
            for (size_t i = 0; i < npieces; i++) {
                if (pieces[i].bytes)
                    memcpy((uint8_t *)o->payload_copy + off, pieces[i].data, pieces[i].bytes);
                off += pieces[i].bytes;
            }
            o->pieces[0].data = o->payload_copy;
            o->pieces[0].bytes = payload_bytes;
            o->npieces = 1;
        }
    } else if (ok && npieces) {
        o->pieces = malloc(npieces * sizeof *o->pieces);
        ok = o->pieces != NULL;
        if (ok)
            memcpy(o->pieces, pieces, npieces * sizeof *pieces);
        o->npieces = npieces;
    }
    if (ok && h.version >= 2 && !(put_flags & STORE_PUT_HASH_LATE) && codec_nseg(&h)) {
        o->table = malloc(codec_nseg(&h) * 8);
        ok = o->table != NULL;
    }
    if (!ok) {
        b->n++; /* owned pointers are freed with the batch */
        return put_failed(b, cl_err(CL_ERR_NOMEM, "%s: %s: out of memory", dir, hex));
    }
    b->n++;

    /* Checksums now, outside the write lock (unless they are fused with the copy). */
    h.meta_xxh = XXH3_64bits(o->meta, o->meta_bytes);
    if (h.version == 1)
        h.payload_xxh = pieces_xxh(o->pieces, o->npieces);
    else if (!(put_flags & STORE_PUT_HASH_LATE)) {
        hash_segments(o->pieces, o->npieces, &h, o->table);
        h.payload_xxh = XXH3_64bits(o->table, codec_nseg(&h) * 8);
    }
    o->h = h;
    b->put_bytes += value_bytes;
    return CL_OK;
}

static int simple_op(cl_store_batch *b, int op, cl_store_kind kind, const cl_key *key)
{
    return new_op(b, op, kind, key) ? (b->n++, CL_OK) : put_failed(b, CL_ERR_ARG);
}

int cl_store_batch_del(cl_store_batch *b, cl_store_kind kind, const cl_key *key)
{
    return simple_op(b, OP_DEL, kind, key);
}

int cl_store_batch_pin(cl_store_batch *b, cl_store_kind kind, const cl_key *key, int pinned)
{
    return simple_op(b, pinned ? OP_PIN : OP_UNPIN, kind, key);
}

/* Writes one put into the transaction: reserve the value, fill it, index it. */
static int apply_put(wtx *w, const batch_op *o)
{
    MDB_val k = {16, (void *)o->key.b}, v = {(size_t)o->value_bytes, NULL};
    unsigned f = MDB_RESERVE | ((o->flags & CL_STORE_PUT_NOOVERWRITE) ? MDB_NOOVERWRITE : 0);
    int rc = mdb_put(w->txn, w->e->dbi[o->kind], &k, &v, f);
    if (rc == MDB_KEYEXIST) {
        int found;
        return (o->flags & CL_STORE_PUT_PIN) ? idx_set_pin(w, o->kind, &o->key, 1, &found) : 0;
    }
    if (rc)
        return rc;
    uint8_t *base = v.mv_data;
    codec_header h = o->h;
    uint8_t *p = base + CODEC_HEADER_BYTES;
    uint64_t span = codec_meta_span(o->meta_bytes);
    if (o->meta_bytes)
        memcpy(p, o->meta, o->meta_bytes);
    memset(p + o->meta_bytes, 0, span - o->meta_bytes);
    uint8_t *table = (uint8_t *)codec_table_ptr(base, &h);
    uint8_t *payload = (uint8_t *)codec_payload_ptr(base, &h);
    uint64_t tspan = codec_table_span(&h), nseg = codec_nseg(&h);
    if (tspan)
        memset(table + nseg * 8, 0, tspan - nseg * 8);
    if (o->flags & STORE_PUT_HASH_LATE) {
        copy_hash_segments(payload, o->pieces, o->npieces, &h, table);
        h.payload_xxh = XXH3_64bits(table, nseg * 8);
    } else {
        if (nseg)
            memcpy(table, o->table, nseg * 8);
        for (size_t i = 0; i < o->npieces; i++) {
            if (o->pieces[i].bytes)
                memcpy(payload, o->pieces[i].data, o->pieces[i].bytes);
            payload += o->pieces[i].bytes;
        }
    }
    codec_encode(&h, base);
    return idx_note_put(w, o->kind, &o->key, o->value_bytes, !!(o->flags & CL_STORE_PUT_PIN));
}

/* One attempt: everything in one write transaction. */
static int run_once(cl_store_batch *b)
{
    store_env *e = b->st->e;
    wtx w;
    int rc = wtx_begin(e, &w);
    if (rc)
        return rc;
    size_t nt = 0, nb = 0;
    rc = pending_apply(&w, &nt, &nb);
    for (size_t i = 0; i < b->n && !rc; i++) {
        const batch_op *o = &b->ops[i];
        int found;
        switch (o->op) {
        case OP_PUT: rc = apply_put(&w, o); break;
        case OP_DEL: rc = idx_delete_entry(&w, o->kind, &o->key, &found); break;
        default: rc = idx_set_pin(&w, o->kind, &o->key, o->op == OP_PIN, &found); break;
        }
    }
    uint64_t cap = b->st->max_bytes;
    if (!rc && !b->st->cap_explicit)
        rc = idx_saved_cap(e, w.txn, &cap);
    if (!rc && cap && idx_total_bytes(&w.tot) > cap) {
        /* Entries used at or after this transaction's start (this batch) stay. */
        rc = idx_evict(&w, cap, 0, w.now_ns, NULL, NULL);
        if (!rc && idx_total_bytes(&w.tot) > cap)
            rc = STORE_E_CAP;
    }
    if (rc) {
        wtx_abort(&w);
        return rc;
    }
    rc = wtx_commit(&w);
    if (!rc)
        pending_consume(e, nt, nb);
    return rc;
}

static int evict_for_space(store_env *e, uint64_t want, uint64_t *freed)
{
    wtx w;
    int rc = wtx_begin(e, &w);
    if (rc)
        return rc;
    rc = idx_evict(&w, UINT64_MAX, want, INT64_MAX, NULL, freed);
    if (rc) {
        wtx_abort(&w);
        return rc;
    }
    return wtx_commit(&w);
}

static const char *short_write_cause(store_env *e, uint64_t need)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/data.mdb", e->dir);
    struct stat sb;
    struct rlimit rl;
    uint64_t size = stat(path, &sb) == 0 ? (uint64_t)sb.st_size : 0;
    if (getrlimit(RLIMIT_FSIZE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        size + need > (uint64_t)rl.rlim_cur)
        return "file size limit (RLIMIT_FSIZE) reached";
    struct statvfs vfs;
    if (statvfs(e->dir, &vfs) == 0 && (uint64_t)vfs.f_bavail * vfs.f_frsize < need + (1u << 20))
        return "no space left on device";
    return NULL;
}

int cl_store_batch_commit(cl_store_batch *b)
{
    store_env *e = b->st->e;
    if (b->failed) {
        cl_store_batch_abort(b);
        return cl_err(CL_ERR_ARG, "%s: batch not committed: one of its operations failed", e->dir);
    }
    if (!b->n) {
        cl_store_batch_abort(b);
        return CL_OK;
    }
    uint64_t need = b->put_bytes, freed_total = 0;
    int rc;
    for (int attempt = 0;; attempt++) {
        store_early_wb wb = {0};
        if (!b->late_writeback)
            store_early_wb_start(e, b->put_bytes, &wb);
        rc = run_once(b);
        store_early_wb_stop(&wb);
        if (rc != MDB_MAP_FULL || attempt + 1 >= MAX_COMMIT_ATTEMPTS)
            break;
        int g = env_grow_map(e, need);
        if (g == 0)
            continue;
        if (g != MDB_MAP_FULL) {
            rc = g;
            break;
        }
        /* The map is at its limit: make room by evicting, more each time (freed pages
         * must also form runs long enough for big values); pointless if the batch
         * alone is larger than the map can ever be. */
        if (need >= e->map_max_bytes)
            break;
        uint64_t want = (need > (1u << 20) ? need : (1u << 20)) << (attempt < 6 ? attempt : 6);
        uint64_t freed = 0;
        int r2 = evict_for_space(e, want, &freed);
        freed_total += freed;
        if (r2 || !freed)
            break;
    }
    size_t nops = b->n;
    cl_store_batch_abort(b);
    if (rc == MDB_MAP_FULL)
        return cl_err(CL_ERR_FULL,
                      "%s: store full: no room for %llu bytes in a map of %llu bytes (limit "
                      "%llu) after evicting %llu bytes; the rest is pinned or in use",
                      e->dir, (unsigned long long)need, (unsigned long long)env_map_bytes(e),
                      (unsigned long long)e->map_max_bytes, (unsigned long long)freed_total);
    if (rc == EIO) {
        /* LMDB reports a short write as EIO: say whether space or a file size limit
         * is the likely cause. */
        const char *why = short_write_cause(e, need);
        if (why)
            return cl_err(CL_ERR_FULL, "%s: writing %llu bytes failed: %s; nothing was changed",
                          e->dir, (unsigned long long)need, why);
    }
    if (rc) {
        char what[96];
        snprintf(what, sizeof what, "writing %zu operation%s (%llu bytes)", nops,
                 nops == 1 ? "" : "s", (unsigned long long)need);
        return store_fail(e, rc, what);
    }
    return CL_OK;
}

int cl_store_put(cl_store *st, cl_store_kind kind, const cl_key *key, const cl_store_info *info,
                 const cl_store_piece *pieces, size_t npieces, unsigned put_flags)
{
    cl_store_batch *b;
    CL_TRY(cl_store_batch_begin(st, &b));
    int rc = cl_store_batch_put(b, kind, key, info, pieces, npieces,
                                put_flags & ~(unsigned)CL_STORE_PUT_COPY);
    if (rc) {
        cl_store_batch_abort(b);
        return rc;
    }
    return cl_store_batch_commit(b);
}
