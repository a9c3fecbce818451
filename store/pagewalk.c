/* pagewalk.c - LMDB page accounting from the data file (format in pagewalk.h): the free
 * list first (which pages are listed free), then every tree from the meta page of the
 * read transaction's snapshot, marking each page used; a page both used and free, used
 * twice, out of range, or a malformed record is damage. Pages are read with pread()
 * on LMDB's own descriptor: the read transaction keeps them from being reused. */
#include "store/pagewalk.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PAGE_HDR 16u
#define NODE_HDR 8u
#define META_MAGIC 0xBEEFC0DEu
#define META_VERSION 1u
#define DB_REC 48u
#define P_BRANCH 0x01u
#define P_LEAF 0x02u
#define P_OVERFLOW 0x04u
#define P_META 0x08u
#define P_LEAF2 0x20u
#define F_BIGDATA 0x01u
#define F_SUBDATA 0x02u
#define F_DUPDATA 0x04u
#define P_INVALID UINT64_MAX
#define MAX_DEPTH 32
#define MAX_TREES 64

typedef struct {
    uint64_t branch, leaf, overflow, entries, root;
    uint16_t flags, depth;
} db_rec;

typedef struct {
    char name[64];
    db_rec db;
} named_tree;

typedef struct {
    int fd;
    uint64_t psize, last, txnid;
    walk_result *r;
    uint8_t *used, *freed; /* bitmaps over pages 0..last */
    uint64_t n_branch, n_leaf, n_overflow; /* of the tree being walked */
    named_tree trees[MAX_TREES];
    int ntrees;
} walker;

static uint16_t u16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t u32(const uint8_t *p) { return (uint32_t)u16(p) | (uint32_t)u16(p + 2) << 16; }
static uint64_t u64(const uint8_t *p) { return (uint64_t)u32(p) | (uint64_t)u32(p + 4) << 32; }

static int bit(const uint8_t *m, uint64_t i) { return m[i >> 3] >> (i & 7) & 1; }
static void set_bit(uint8_t *m, uint64_t i) { m[i >> 3] |= (uint8_t)(1u << (i & 7)); }

static void note(walker *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(walker *w, const char *fmt, ...)
{
    walk_result *r = w->r;
    if (r->notes >= WALK_MAX_NOTES)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->note[r->notes++], sizeof r->note[0], fmt, ap);
    va_end(ap);
}

static void db_decode(const uint8_t *p, db_rec *d)
{
    d->flags = u16(p + 4);
    d->depth = u16(p + 6);
    d->branch = u64(p + 8);
    d->leaf = u64(p + 16);
    d->overflow = u64(p + 24);
    d->entries = u64(p + 32);
    d->root = u64(p + 40);
}

/* Reads bytes at a file offset; 0, or an errno (EIO for a short read). */
static int read_at(walker *w, void *buf, size_t n, uint64_t off)
{
    uint8_t *b = buf;
    while (n) {
        ssize_t got = pread(w->fd, b, n, (off_t)off);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            return errno;
        if (got == 0)
            return EIO;
        b += got;
        n -= (size_t)got;
        off += (uint64_t)got;
    }
    return 0;
}

/* Marks a page used by `tree`; 0 if it was free to mark, else counts the problem. */
static int mark_used(walker *w, const char *tree, uint64_t pgno)
{
    if (pgno < 2 || pgno > w->last) {
        w->r->bad_pages++;
        note(w, "%s: page %llu is beyond the last page %llu", tree, (unsigned long long)pgno,
             (unsigned long long)w->last);
        return -1;
    }
    if (bit(w->used, pgno)) {
        w->r->bad_pages++;
        note(w, "%s: page %llu is used twice", tree, (unsigned long long)pgno);
        return -1;
    }
    set_bit(w->used, pgno);
    if (bit(w->freed, pgno))
        note(w, "free list: page %llu is listed free but is used by %s",
             (unsigned long long)pgno, tree);
    return 0;
}

/* A free-list record: u64 count, then count page numbers in descending order. */
static void free_record(walker *w, const uint8_t *key, size_t klen, const uint8_t *data,
                        uint64_t dsize, uint64_t data_off)
{
    walk_result *r = w->r;
    uint64_t txnid = klen == 8 ? u64(key) : 0;
    r->free_records++;
    if (klen != 8 || txnid == 0 || txnid > w->txnid) {
        r->bad_records++;
        note(w, "free list: record with a bad key (txn %llu, current %llu)",
             (unsigned long long)txnid, (unsigned long long)w->txnid);
    }
    if (dsize < 8 || dsize % 8) {
        r->bad_records++;
        note(w, "free list: record of txn %llu has %llu bytes (not a page list)",
             (unsigned long long)txnid, (unsigned long long)dsize);
        return;
    }
    uint64_t count = u64(data);
    if (r->on_free_record)
        r->on_free_record(r->user, txnid, data_off, count);
    if (count > dsize / 8 - 1) {
        r->bad_records++;
        note(w, "free list: record of txn %llu claims %llu pages, has room for %llu",
             (unsigned long long)txnid, (unsigned long long)count,
             (unsigned long long)(dsize / 8 - 1));
        return;
    }
    uint64_t prev = UINT64_MAX;
    int unsorted = 0;
    for (uint64_t j = 1; j <= count; j++) {
        uint64_t p = u64(data + 8 * j);
        if (p >= prev && !unsorted++) {
            r->bad_records++;
            note(w, "free list: record of txn %llu is not in descending order at page %llu",
                 (unsigned long long)txnid, (unsigned long long)p);
        }
        prev = p;
        if (p < 2 || p > w->last) {
            r->out_of_range++;
            note(w, "free list: record of txn %llu lists page %llu, beyond the pages 2..%llu",
                 (unsigned long long)txnid, (unsigned long long)p, (unsigned long long)w->last);
        } else if (bit(w->freed, p)) {
            r->free_dup++;
            note(w, "free list: page %llu is listed free twice", (unsigned long long)p);
        } else {
            set_bit(w->freed, p);
            r->free_pages++;
        }
    }
}

/* A value on overflow pages (for the free list: a long page list, read and parsed). */
static void overflow_value(walker *w, const char *tree, int is_free, const uint8_t *key,
                           size_t klen, uint64_t pgno, uint64_t dsize)
{
    uint64_t n = (PAGE_HDR - 1 + dsize) / w->psize + 1;
    if (pgno < 2 || pgno > w->last || n > w->last - pgno + 1) {
        w->r->bad_pages++;
        note(w, "%s: value on pages %llu..%llu beyond the last page %llu", tree,
             (unsigned long long)pgno, (unsigned long long)(pgno + n - 1),
             (unsigned long long)w->last);
        return;
    }
    for (uint64_t i = 0; i < n; i++)
        mark_used(w, tree, pgno + i);
    w->n_overflow += n;
    w->r->overflow_pages += n;
    uint8_t hdr[PAGE_HDR];
    if (read_at(w, hdr, sizeof hdr, pgno * w->psize) || u64(hdr) != pgno ||
        !(u16(hdr + 10) & P_OVERFLOW) || u32(hdr + 12) != n) {
        w->r->bad_pages++;
        note(w, "%s: overflow page %llu has a bad header", tree, (unsigned long long)pgno);
        return;
    }
    if (w->r->on_overflow)
        w->r->on_overflow(w->r->user, tree, key, klen, pgno, n);
    if (!is_free)
        return;
    uint8_t *data = malloc(dsize ? dsize : 1);
    if (!data || read_at(w, data, dsize, pgno * w->psize + PAGE_HDR)) {
        w->r->bad_records++;
        note(w, "free list: record on pages %llu.. cannot be read", (unsigned long long)pgno);
    } else {
        free_record(w, key, klen, data, dsize, pgno * w->psize + PAGE_HDR);
    }
    free(data);
}

static void visit(walker *w, const char *tree, int is_free, int is_main, uint64_t pgno, int depth)
{
    if (mark_used(w, tree, pgno))
        return;
    if (depth > MAX_DEPTH) {
        w->r->bad_pages++;
        note(w, "%s: tree deeper than %d pages at page %llu", tree, MAX_DEPTH,
             (unsigned long long)pgno);
        return;
    }
    uint8_t *p = malloc(w->psize);
    if (!p || read_at(w, p, w->psize, pgno * w->psize)) {
        w->r->bad_pages++;
        note(w, "%s: page %llu cannot be read", tree, (unsigned long long)pgno);
        free(p);
        return;
    }
    uint16_t flags = u16(p + 10), lower = u16(p + 12), upper = u16(p + 14);
    int branch = (flags & (P_BRANCH | P_LEAF | P_OVERFLOW | P_META | P_LEAF2)) == P_BRANCH;
    int leaf = (flags & (P_BRANCH | P_LEAF | P_OVERFLOW | P_META | P_LEAF2)) == P_LEAF;
    if (u64(p) != pgno || (!branch && !leaf) || lower < PAGE_HDR || lower > upper ||
        upper > w->psize || (lower - PAGE_HDR) % 2) {
        w->r->bad_pages++;
        note(w, "%s: page %llu has a bad header (says page %llu, flags 0x%x)", tree,
             (unsigned long long)pgno, (unsigned long long)u64(p), flags);
        free(p);
        return;
    }
    w->r->tree_pages++;
    if (branch)
        w->n_branch++;
    else
        w->n_leaf++;
    unsigned nkeys = (lower - PAGE_HDR) / 2u;
    for (unsigned i = 0; i < nkeys; i++) {
        unsigned off = u16(p + PAGE_HDR + 2 * i);
        const uint8_t *n = p + off;
        if (off < upper || off + NODE_HDR > w->psize ||
            off + NODE_HDR + u16(n + 6) > w->psize) {
            w->r->bad_pages++;
            note(w, "%s: page %llu: node %u out of the page", tree, (unsigned long long)pgno, i);
            break;
        }
        size_t klen = u16(n + 6);
        const uint8_t *key = n + NODE_HDR, *data = key + klen;
        if (branch) {
            uint64_t child = (uint64_t)u16(n) | (uint64_t)u16(n + 2) << 16 |
                             (uint64_t)u16(n + 4) << 32;
            visit(w, tree, is_free, is_main, child, depth + 1);
            continue;
        }
        uint16_t nflags = u16(n + 4);
        uint64_t dsize = (uint64_t)u16(n) | (uint64_t)u16(n + 2) << 16;
        if (nflags & F_DUPDATA) {
            w->r->bad_pages++;
            note(w, "%s: page %llu: unexpected duplicate-data node", tree,
                 (unsigned long long)pgno);
            continue;
        }
        if (nflags & F_BIGDATA) {
            if (off + NODE_HDR + klen + 8 > w->psize) {
                w->r->bad_pages++;
                note(w, "%s: page %llu: node %u out of the page", tree, (unsigned long long)pgno,
                     i);
                break;
            }
            overflow_value(w, tree, is_free, key, klen, u64(data), dsize);
            continue;
        }
        if (off + NODE_HDR + klen + dsize > w->psize) {
            w->r->bad_pages++;
            note(w, "%s: page %llu: node %u out of the page", tree, (unsigned long long)pgno, i);
            break;
        }
        if (is_free) {
            free_record(w, key, klen, data, dsize, pgno * w->psize + (uint64_t)(data - p));
        } else if (is_main && (nflags & F_SUBDATA)) {
            if (dsize != DB_REC || w->ntrees >= MAX_TREES) {
                w->r->bad_pages++;
                note(w, "main: page %llu: bad database record", (unsigned long long)pgno);
                continue;
            }
            named_tree *t = &w->trees[w->ntrees++];
            size_t nl = klen < sizeof t->name - 1 ? klen : sizeof t->name - 1;
            memcpy(t->name, key, nl);
            t->name[nl] = 0;
            for (size_t c = 0; c < nl; c++)
                if (t->name[c] < 32 || t->name[c] > 126)
                    t->name[c] = '?';
            db_decode(data, &t->db);
        }
    }
    free(p);
}

/* Walks one tree and checks the page counts its record claims. */
static void walk_tree(walker *w, const char *tree, int is_free, int is_main, const db_rec *d)
{
    w->n_branch = w->n_leaf = w->n_overflow = 0;
    if (d->root != P_INVALID)
        visit(w, tree, is_free, is_main, d->root, 0);
    if (w->n_branch != d->branch || w->n_leaf != d->leaf || w->n_overflow != d->overflow) {
        w->r->bad_pages++;
        note(w, "%s: %llu branch, %llu leaf, %llu overflow pages found; its record says "
             "%llu, %llu, %llu", tree, (unsigned long long)w->n_branch,
             (unsigned long long)w->n_leaf, (unsigned long long)w->n_overflow,
             (unsigned long long)d->branch, (unsigned long long)d->leaf,
             (unsigned long long)d->overflow);
    }
}

int walk_check(MDB_env *env, MDB_txn *txn, walk_result *r)
{
    void (*on_free_record)(void *, uint64_t, uint64_t, uint64_t) = r->on_free_record;
    void (*on_overflow)(void *, const char *, const void *, size_t, uint64_t, uint64_t) =
        r->on_overflow;
    void *user = r->user;
    memset(r, 0, sizeof *r);
    r->on_free_record = on_free_record;
    r->on_overflow = on_overflow;
    r->user = user;

    walker w;
    memset(&w, 0, sizeof w);
    w.r = r;
    MDB_stat ms;
    int rc = mdb_env_get_fd(env, &w.fd);
    if (!rc)
        rc = mdb_env_stat(env, &ms);
    if (rc)
        return rc;
    w.psize = ms.ms_psize;
    w.txnid = (uint64_t)mdb_txn_id(txn);
    /* the meta page this snapshot started from (the one with its txn id) */
    uint8_t meta[PAGE_HDR + 136];
    int found = 0;
    db_rec dbs[2];
    for (uint64_t m = 0; m < 2 && !found; m++) {
        if ((rc = read_at(&w, meta, sizeof meta, m * w.psize)))
            return rc;
        const uint8_t *mm = meta + PAGE_HDR;
        if (!(u16(meta + 10) & P_META) || u32(mm) != META_MAGIC || u32(mm + 4) != META_VERSION)
            continue;
        if (u64(mm + 128) != w.txnid)
            continue;
        found = 1;
        db_decode(mm + 24, &dbs[0]);
        db_decode(mm + 24 + DB_REC, &dbs[1]);
        w.last = u64(mm + 120);
    }
    if (!found)
        return EAGAIN; /* a newer commit wrote over it, or not a 0.9 file */
    r->last_pgno = w.last;
    r->page_bytes = w.psize;
    r->txnid = w.txnid;
    size_t map = (size_t)(w.last / 8 + 1);
    w.used = calloc(map, 1);
    w.freed = calloc(map, 1);
    if (!w.used || !w.freed) {
        free(w.used);
        free(w.freed);
        return ENOMEM;
    }
    walk_tree(&w, "free list", 1, 0, &dbs[0]);
    walk_tree(&w, "main", 0, 1, &dbs[1]);
    for (int i = 0; i < w.ntrees; i++) {
        char name[80];
        snprintf(name, sizeof name, "table '%s'", w.trees[i].name);
        walk_tree(&w, name, 0, 0, &w.trees[i].db);
    }
    for (uint64_t p = 2; p <= w.last; p++) {
        int u = bit(w.used, p), f = bit(w.freed, p);
        r->free_in_use += u && f;
        r->unaccounted += !u && !f;
    }
    free(w.used);
    free(w.freed);
    return 0;
}

int walk_damaged(const walk_result *r)
{
    return r->free_in_use || r->free_dup || r->out_of_range || r->bad_records || r->bad_pages;
}

int walk_tree_damaged(const walk_result *r)
{
    return r->bad_pages != 0;
}
