/* internal.h - what the store's .c files share: the environment object, the write
 * transaction context, the usage/LRU index records. Not part of the public contract.
 *
 * Status conventions inside store/: functions named env_*, wtx_*, idx_* return raw
 * LMDB/errno codes (0 = success, MDB_* < 0, errno > 0) or STORE_E_* below, so that
 * the write path can tell MDB_MAP_FULL from other failures and retry; the public
 * cl_store_* functions convert with store_fail() into CL_ERR_* + a message. */
#ifndef CL_STORE_INTERNAL_H
#define CL_STORE_INTERNAL_H

#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

#include "store/store.h"

/* Our own failure codes (outside LMDB's range -30799..-30780 and errno's > 0). */
#define STORE_E_CAP (-31001)  /* the batch cannot fit under the size cap */
#define STORE_E_BUSY (-31002) /* map resize impossible: read txns open in this process */
#define STORE_E_RDONLY (-31003) /* a write on a store opened read-only */
#define STORE_E_REPORTED (-31004) /* failed, message already set with cl_err */

/* Internal put flags (above the public CL_STORE_PUT_* bits). */
#define STORE_PUT_V1 (1u << 30)        /* write the version-1 value format (reading tests) */
#define STORE_PUT_HASH_LATE (1u << 29) /* checksums computed inside the write transaction,
                                          fused with the copy (the write-behind thread) */

enum {
    DB_META = 0, /* index 0 is free: kinds 1..4 index their own tables */
    DB_BLOCKS = CL_STORE_KV,
    DB_SNAPS = CL_STORE_SNAP,
    DB_DOCS = CL_STORE_DOC,
    DB_MISC = CL_STORE_OTHER,
    DB_USAGE,
    DB_LRU,
    DB_COUNT
};

/* A read use of an entry waiting to be written into the LRU index. */
typedef struct {
    uint8_t kind;
    cl_key key;
    int64_t atime_ns;
} pending_touch;

/* An entry that failed its checks on read, to delete (after re-checking) later. */
typedef struct {
    uint8_t kind;
    cl_key key;
} pending_bad;

/* One LMDB environment, shared by every cl_store handle of this process on the same
 * directory (LMDB must not be opened twice in one process). */
typedef struct store_env {
    struct store_env *next; /* registry list */
    dev_t dev;
    ino_t ino;
    int refs;
    MDB_env *env;
    MDB_dbi dbi[DB_COUNT];
    char dir[4096];
    int rdonly;         /* opened MDB_RDONLY (asked for, or the fallback below) */
    int nolock;         /* ... and MDB_NOLOCK: the lock file could not be opened */
    char ro_reason[400]; /* why a plain open gave a read-only handle ("" if it did not) */
    int dirfd;          /* the store directory (follows it if renamed), for the marker */
    _Atomic int damaged; /* verify found LMDB's pages damaged: no more writes */
    uint64_t map_max_bytes;
    int64_t touch_interval_ns;
    /* Read-held by every transaction of this process, write-held (trylock only) to
     * change the map size, which LMDB allows only with no transaction active. */
    pthread_rwlock_t map_lock;
    _Atomic int resize_waiting; /* new transactions hold back while a resize waits */
    pthread_mutex_t mu; /* guards the two queues */
    pending_touch *touches;
    size_t n_touches, cap_touches;
    double first_touch_s;
    pending_bad *bad;
    size_t n_bad, cap_bad;
} store_env;

struct cl_store {
    store_env *e;
    int rdonly;         /* this handle may not write (even if the env could) */
    uint64_t max_bytes; /* explicit cap of this handle (cap_explicit) */
    int cap_explicit;
};

/* Totals kept in meta["totals"], updated in every write transaction. */
typedef struct {
    uint64_t count[CL_STORE_NKINDS + 1], bytes[CL_STORE_NKINDS + 1];
    uint64_t pinned_count, pinned_bytes;
} store_totals;

#define USAGE_PINNED 1u
typedef struct {
    int64_t atime_ns;
    uint64_t bytes;
    uint32_t flags;
} usage_rec;

/* A write transaction in progress. */
typedef struct {
    store_env *e;
    MDB_txn *txn;
    store_totals tot;
    int tot_dirty;
    int64_t now_ns;
} wtx;

/* ---- env.c ---- */
int64_t store_now_ns(void);                  /* unix time, ns */
int store_valid_kind(int kind);
/* Converts a raw code into CL_ERR_* with "<dir>: <what>: <problem>" (what may be NULL). */
int store_fail(const store_env *e, int rc, const char *what);
/* Begins an LMDB transaction under the map lock, adopting a map grown by another
 * process (MDB_MAP_RESIZED). env_txn_done() after commit/abort releases the lock. */
int env_txn_begin(store_env *e, unsigned mdb_flags, MDB_txn **txn);
void env_txn_done(store_env *e);
/* Grows the map to hold `need_bytes` more (doubling, up to map_max_bytes). Returns 0
 * (grown), MDB_MAP_FULL (at the limit) or STORE_E_BUSY. */
int env_grow_map(store_env *e, uint64_t need_bytes);
uint64_t env_map_bytes(store_env *e);
/* 1 if this process has the store with this directory inode open. */
int env_is_open(dev_t dev, ino_t ino);
/* Read transactions currently open on this thread (all stores). */
int store_thread_read_txns(void);
void store_thread_read_txns_add(int delta);

/* The marker file verify leaves in a damaged store (refuses writes until recovered). */
#define STORE_DAMAGED_FILE "damaged"
/* Marks the environment damaged (and the directory, unless read-only): every process
 * refuses writes from then on. `why`: one line. */
void env_mark_damaged(store_env *e, const char *why);
/* 1 if damaged (marked by this process or, per the marker file, by another one). */
int env_is_damaged(store_env *e);

int wtx_begin(store_env *e, wtx *w);
int wtx_commit(wtx *w); /* saves totals; always ends the txn */
void wtx_abort(wtx *w);

/* ---- index.c ---- */
void idx_usage_key(uint8_t kind, const cl_key *key, uint8_t out[17]);
int idx_usage_get(store_env *e, MDB_txn *txn, uint8_t kind, const cl_key *key, usage_rec *u);
int idx_usage_put(wtx *w, uint8_t kind, const cl_key *key, const usage_rec *u);
void idx_lru_key(int64_t atime_ns, uint8_t kind, const cl_key *key, uint8_t out[25]);
int idx_lru_put(wtx *w, int64_t atime_ns, uint8_t kind, const cl_key *key, uint64_t bytes);
int idx_totals_load(store_env *e, MDB_txn *txn, store_totals *t);
int idx_totals_save(wtx *w);
/* After the value was written: replaces the usage record (keeping a pin) and the LRU
 * entry of the value it replaced, if any, and updates the totals. */
int idx_note_put(wtx *w, uint8_t kind, const cl_key *key, uint64_t bytes, int pin);
/* The same with a given last-use time (copies keep theirs). */
int idx_note_put_at(wtx *w, uint8_t kind, const cl_key *key, uint64_t bytes, int pin,
                    int64_t atime_ns);
/* Deletes value + usage + LRU entry + totals. *found = 0 if the value was absent. */
int idx_delete_entry(wtx *w, uint8_t kind, const cl_key *key, int *found);
int idx_touch(wtx *w, uint8_t kind, const cl_key *key, int64_t atime_ns);
int idx_set_pin(wtx *w, uint8_t kind, const cl_key *key, int pinned, int *found);
/* Evicts LRU entries (oldest first, never pinned ones, never entries used at or after
 * stop_atime_ns) while total > target_total or until freed >= want_freed. */
int idx_evict(wtx *w, uint64_t target_total, uint64_t want_freed, int64_t stop_atime_ns,
              uint64_t *n, uint64_t *bytes);
uint64_t idx_total_bytes(const store_totals *t);
/* Deletes the entry if its value (still) fails its full check. *dropped set. */
int idx_drop_if_bad(wtx *w, uint8_t kind, const cl_key *key, int *dropped);
/* Reads meta["max_bytes"] (0 if none). */
int idx_saved_cap(store_env *e, MDB_txn *txn, uint64_t *cap);

/* ---- read.c ---- */
struct cl_store_txn {
    cl_store *st;
    MDB_txn *txn;
};
/* The raw value of (kind, key): CL_OK, CL_ERR_NOTFOUND (no message) or an error. */
int read_lookup(cl_store_txn *t, cl_store_kind kind, const cl_key *key, MDB_val *v);
/* Queues a bad entry for deletion at the end of the transaction (not when read-only). */
void read_queue_bad(store_env *e, uint8_t kind, const cl_key *key);
/* Records a read use unless the entry was used recently or is pinned. */
void read_touch(cl_store_txn *t, uint8_t kind, const cl_key *key);
/* Applies queued touches and bad-entry deletions inside w (piggyback on a write). */
int pending_apply(wtx *w, size_t *n_touches, size_t *n_bad);
/* Forgets the first n touches and n_bad bad entries (after a successful commit). */
void pending_consume(store_env *e, size_t n_touches, size_t n_bad);
/* Writes the queues in a transaction of their own (best effort). */
int pending_flush(store_env *e);

/* ---- write.c ---- */
/* The batch's commit lets its pages wait for the sync (no early writeback: for
 * comparison, cl_store_writer_opts.no_early_writeback). */
void store_batch_late_writeback(cl_store_batch *b);

/* ---- writeback.c ---- */
/* Early writeback while a commit of `bytes` runs: from 32 MiB on, a helper thread starts
 * the kernel writing the data file's dirty pages every 5 ms until stopped (see the
 * file's comment). Start never fails (without a helper the commit is just slower). */
typedef struct {
    int on, stop, fd;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
} store_early_wb;
void store_early_wb_start(store_env *e, uint64_t bytes, store_early_wb *k);
void store_early_wb_stop(store_early_wb *k);

#endif
