/* pagewalk.h - checks LMDB's page structure from the data file, read-only: every page
 * from 2 to the snapshot's last page must be used exactly once, either by a tree (the
 * free-page database, the main database, the named databases; branch, leaf and
 * overflow pages) or listed in a free-list record (FREE_DBI: txn id -> page numbers).
 * A page that is listed free but still in use is the dangerous case: the next write
 * transaction reuses it and overwrites live data.
 *
 * The layout read is LMDB 0.9's on-disk format on a 64-bit little-endian machine (as
 * installed: liblmdb 0.9.24): 16-byte page header (pgno u64, pad u16, flags u16, lower
 * and upper u16, or the overflow page count u32), meta pages 0 and 1 (magic, version,
 * address, map size, two 48-byte database records, last page, txn id), nodes with an
 * 8-byte header (data size or child page in lo/hi/flags, key size), free-list data
 * = u64 count followed by that many page numbers in descending order.
 */
#ifndef CL_STORE_PAGEWALK_H
#define CL_STORE_PAGEWALK_H

#include <lmdb.h>
#include <stdint.h>

#define WALK_MAX_NOTES 8

typedef struct {
    uint64_t last_pgno, page_bytes, txnid;
    uint64_t tree_pages;     /* branch + leaf pages of all trees */
    uint64_t overflow_pages; /* pages of values too large for a leaf */
    uint64_t free_pages;     /* listed in free-list records */
    uint64_t free_records;
    uint64_t unaccounted;    /* neither used nor listed: lost space, harmless */
    /* damage */
    uint64_t free_in_use;    /* listed free and used by a tree */
    uint64_t free_dup;       /* listed free more than once */
    uint64_t out_of_range;   /* free-list page numbers < 2 or > the last page */
    uint64_t bad_records;    /* malformed free-list records */
    uint64_t bad_pages;      /* tree pages out of range, with a wrong header or node, used
                                twice, or not as many as the tree's record says */
    int notes;               /* the first problems, one line each */
    char note[WALK_MAX_NOTES][200];
    /* optional visitors (tests use them to find pages): each free-list record (file
     * offset of its data: count then page numbers) and each overflow value */
    void (*on_free_record)(void *user, uint64_t txnid, uint64_t data_off, uint64_t count);
    void (*on_overflow)(void *user, const char *tree, const void *key, size_t klen,
                        uint64_t pgno, uint64_t npages);
    void *user;
} walk_result;

/* Walks the snapshot of read transaction `txn`. Returns 0, an errno, or EAGAIN when a
 * writer overwrote the snapshot's meta page meanwhile (retry with a new transaction).
 * Callbacks in r are kept; counts are reset. */
int walk_check(MDB_env *env, MDB_txn *txn, walk_result *r);
/* Damage found: page numbers out of range, free pages in use or listed twice, bad free
 * list records, bad tree pages. */
int walk_damaged(const walk_result *r);
/* Tree damage (not only the free list): reading values through LMDB is unsafe. */
int walk_tree_damaged(const walk_result *r);

#endif
