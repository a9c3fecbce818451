/* store.h - the persistent content-addressed state store (LMDB + XXH3).
 *
 * One LMDB environment per directory, shared by any number of processes (many
 * readers, one writer at a time) and threads (MDB_NOTLS: a read transaction may be
 * held by any thread). The store knows bytes and keys, not models: values are opaque
 * payloads with a small header (dtype code, shape, token count: the caller's) and an
 * optional small "meta" blob beside them. Keys come from store/keys.h.
 *
 * Tables (LMDB named databases): one per value kind, "blocks" (KV blocks), "snaps"
 * (SSM snapshots), "docs" (document states), "misc" (anything else); "meta" (format,
 * totals, size cap, model-id cache), "usage" (size, last use, pin per entry) and
 * "lru" (unpinned entries ordered by last use).
 *
 * Guarantees:
 *  - Every value is checked on every read (header checksum, then the XXH3-64 of meta and
 *    payload). A bad value is never returned: the call fails with CL_ERR_CORRUPT naming
 *    the store dir and the key, and the entry is deleted when the read transaction ends
 *    (the caller recomputes). cl_store_has() checks only the header.
 *  - Writes are LMDB transactions with LMDB's durable defaults: a process killed at any
 *    moment leaves the last committed state; a write that fails (disk full, file size
 *    limit, map full) changes nothing.
 *  - Size cap (max_bytes, on the sum of stored value bytes): every commit evicts least
 *    recently used unpinned entries until the total is under the cap. Reads record use
 *    lazily (at most once per touch interval per entry, written with the next write or
 *    in batches), so a read never waits for the write lock.
 *  - MDB_MAP_FULL grows the map (up to map_max_bytes), else evicts LRU entries, else
 *    fails with CL_ERR_FULL. Growth by another process is adopted (MDB_MAP_RESIZED).
 *
 * Errors: every function returns a status from common/status.h and records a one-line
 * message "<store dir>: ..." (cl_errmsg()).
 *
 * Open each store once per process and share the handle: opening the same directory
 * again returns a handle on the same environment (LMDB must not be opened twice in one
 * process). Never open()/close() the store's files yourself while it is open. Do not
 * fork() with the store open and use it in the child.
 */
#ifndef CL_STORE_H
#define CL_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "store/keys.h"

typedef struct cl_store cl_store;
typedef struct cl_store_txn cl_store_txn;     /* read transaction */
typedef struct cl_store_batch cl_store_batch; /* write transaction (batched) */

/* Value kinds; each kind is its own table, so one key may name a KV block and the
 * snapshot at the end of that block at once. */
typedef enum {
    CL_STORE_KV = 1,    /* "blocks": attention KV of one block */
    CL_STORE_SNAP = 2,  /* "snaps":  recurrent (SSM + conv) state at a position */
    CL_STORE_DOC = 3,   /* "docs":   a document's state + descriptor (meta) */
    CL_STORE_OTHER = 4, /* "misc" */
} cl_store_kind;
#define CL_STORE_NKINDS 4

/* Table name of a kind ("blocks", ...; NULL if invalid) and back (0 if unknown). */
const char *cl_store_kind_table(cl_store_kind kind);
cl_store_kind cl_store_kind_from_table(const char *name);

/* ---- open / close --------------------------------------------------------------- */

enum {
    CL_STORE_RDONLY = 1 << 0,   /* never write: no deletes of bad values, no use records */
    CL_STORE_NOCREATE = 1 << 1, /* fail with CL_ERR_NOTFOUND if there is no store yet */
};

typedef struct {
    unsigned flags;            /* CL_STORE_RDONLY | CL_STORE_NOCREATE */
    uint64_t max_bytes;        /* size cap for this handle; 0: the cap saved in the store
                                  (cl_store_set_max_bytes), none if never saved */
    uint64_t map_bytes;        /* initial LMDB map size; 0: 4 GiB (at least the data) */
    uint64_t map_max_bytes;    /* map growth limit; 0: 1 TiB. = map_bytes: no growth */
    uint32_t touch_interval_ms; /* record a read of an entry at most this often; 0: 60 s */
} cl_store_opts;

/* The store directory: `dir` if non-NULL/non-empty, else $COLLAGE_STORE, else
 * $XDG_CACHE_HOME/collage/store, else $HOME/.cache/collage/store. */
int cl_store_resolve_dir(const char *dir, char *out, size_t out_size);

/* Opens (creating with mode 0700 unless NOCREATE/RDONLY) the store in `dir`.
 * `opts` may be NULL (defaults). A store that exists but may not be written (read-only
 * mount, another user's files, chmod -w) opens read-only instead of failing: lookups
 * work, writes fail with CL_ERR_ARG "<dir>: store is read-only (<why>): nothing
 * written", no use records are kept. If LMDB's lock file cannot be opened either, the
 * store is read without locking (MDB_NOLOCK): safe while no other process writes it.
 * Errors: CL_ERR_NOTFOUND (no store, NOCREATE), CL_ERR_CORRUPT (not an LMDB file /
 * damaged), CL_ERR_IO (permission, ...), CL_ERR_UNSUPPORTED (newer format). */
int cl_store_open(const char *dir, const cl_store_opts *opts, cl_store **out);
/* NULL if the handle may write, else why not ("opened read-only", "read-only file
 * system", "not writable by this user", or the damage verify found). */
const char *cl_store_readonly(const cl_store *st);
/* Writes pending use records, closes. The handle must have no open transactions. */
void cl_store_close(cl_store *st);
const char *cl_store_dir(const cl_store *st);

/* ---- values --------------------------------------------------------------------- */

/* What the caller says about a value (all opaque to the store except meta). */
typedef struct {
    uint32_t flags;     /* caller-defined bits */
    uint8_t dtype;      /* caller's dtype code of the payload */
    uint8_t ndim;       /* 0..4 */
    int64_t shape[4];
    int64_t tokens;     /* tokens the value covers */
    const void *meta;   /* optional small blob stored beside the payload (<= 1 MiB) */
    size_t meta_bytes;
} cl_store_info;

/* A value as read: info (meta points into the store) + where the payload lies.
 * Pointers stay valid until the read transaction ends; do not write through them.
 * The payload is 16-byte aligned for values larger than a page. */
typedef struct {
    cl_store_kind kind;
    cl_store_info info;
    int64_t created_ns; /* unix time of the write */
    const void *payload;
    uint64_t payload_bytes;
} cl_store_value;

/* A piece of a payload written by gathering: no concatenation is made. */
typedef struct {
    const void *data;
    size_t bytes;
} cl_store_piece;

/* ---- read transactions ------------------------------------------------------------ */

/* A consistent snapshot of the store, usable from one thread at a time (any thread).
 * Keep them short: an open read transaction keeps old pages from being reused, and
 * map growth in this process waits for it. */
int cl_store_txn_begin(cl_store *st, cl_store_txn **out);
/* Ends it: pointers from cl_store_get become invalid; bad entries found during the
 * transaction are deleted, and pending use records are written if enough piled up. */
void cl_store_txn_end(cl_store_txn *txn);

/* CL_OK if an entry with a sane header exists, CL_ERR_NOTFOUND if not (no message set).
 * Payload checksums are not read: cheap enough for walking a chain of block keys. */
int cl_store_has(cl_store_txn *txn, cl_store_kind kind, const cl_key *key);
/* How many of keys[0..n) are present, counting from keys[0] until the first missing
 * one (the longest stored prefix of a chain). Header checks only, like has. */
int cl_store_count_prefix(cl_store_txn *txn, cl_store_kind kind, const cl_key *keys, size_t n,
                          size_t *n_present);
/* Zero-copy read, fully verified: *out points into the store's map until txn ends.
 * CL_ERR_NOTFOUND (message set) or CL_ERR_CORRUPT (entry dropped at txn end). */
int cl_store_get(cl_store_txn *txn, cl_store_kind kind, const cl_key *key, cl_store_value *out);

/* The value's header and meta, verified, without reading the payload (payload NULL,
 * payload_bytes set): enough to plan a streamed read (cl_store_stream). Errors as
 * cl_store_get. */
int cl_store_peek(cl_store_txn *txn, cl_store_kind kind, const cl_key *key, cl_store_value *out);
/* Records a use of an entry for the LRU eviction, as a read does (for a caller that
 * uses a copy of the value kept elsewhere, e.g. a hot tier's). Nothing if absent. */
void cl_store_touch(cl_store_txn *txn, cl_store_kind kind, const cl_key *key);

/* ---- parallel verified reads -------------------------------------------------------- */

/* Receives verified payload bytes [offset, offset + bytes). Called from worker threads,
 * possibly concurrently and in any order (about ascending). `data` points into dst when
 * one was given (stays valid), else into the store's map (valid until the read
 * transaction ends; do not write through it). Return CL_OK, or a status (message set
 * with cl_err) to stop the read: cl_store_stream then returns that status. */
typedef int (*cl_store_sink_fn)(void *user, uint64_t offset, const void *data, size_t bytes);

typedef struct {
    int threads;         /* workers, the calling thread included; 0: 4 */
    size_t chunk_bytes;  /* bytes per sink call / per unit of work, rounded up to whole
                            segments of the value (1 MiB as written now); 0: one segment */
    void *dst;           /* optional: copy the payload here (each segment checked, then
                            copied from the cache the check filled) */
    size_t dst_bytes;    /* >= payload bytes, else CL_ERR_RANGE */
    cl_store_sink_fn sink; /* optional (at least one of dst and sink) */
    void *user;
} cl_store_stream_opts;

/* Reads a value's payload with o->threads threads in chunks: each chunk is verified
 * against its segment checksums (value format 2) and then copied to dst and/or handed to
 * the sink, so reading, checking and the caller's own copies (e.g. to a device) overlap.
 * Nothing unverified is ever handed over. Header, meta and segment table are checked
 * first; *out is filled as by cl_store_get (pointers valid until txn ends). Values of
 * format 1 (one checksum) are verified whole first, then streamed. Helper threads are
 * started per call, at most one per chunk beyond the first (for small values pass 1).
 * Errors: CL_ERR_NOTFOUND, CL_ERR_CORRUPT (as get: the entry is dropped at txn end;
 * chunks before the bad one may have reached dst/sink: discard them), CL_ERR_RANGE,
 * or the sink's status. */
int cl_store_stream(cl_store_txn *txn, cl_store_kind kind, const cl_key *key,
                    const cl_store_stream_opts *o, cl_store_value *out);

/* ---- one-shot reads (own read transaction) --------------------------------------- */

/* Copies the verified payload into dst (dst_bytes must be >= payload bytes, else
 * CL_ERR_RANGE). `value` (may be NULL) receives the header fields; its meta and payload
 * pointers are NULL (use cl_store_load for the meta). */
int cl_store_read(cl_store *st, cl_store_kind kind, const cl_key *key, void *dst,
                  size_t dst_bytes, cl_store_value *value);
/* Copies payload and meta into one malloc'd block (*buf, free() it): value->payload
 * and value->info.meta point into it. */
int cl_store_load(cl_store *st, cl_store_kind kind, const cl_key *key, cl_store_value *value,
                  void **buf);

/* ---- writes --------------------------------------------------------------------- */

enum {
    CL_STORE_PUT_COPY = 1 << 0,   /* copy the pieces now (else they must stay valid and
                                     unchanged until commit/abort) */
    CL_STORE_PUT_NOOVERWRITE = 1 << 1, /* keep an existing entry (content addressing) */
    CL_STORE_PUT_PIN = 1 << 2,    /* pin the entry (never evicted) */
};

/* A batch of puts/deletes/pins committed atomically: all or nothing. Nothing touches
 * the database (or takes the write lock) until cl_store_batch_commit. Checksums are
 * computed by cl_store_batch_put. A batch in which any call failed refuses to commit. */
int cl_store_batch_begin(cl_store *st, cl_store_batch **out);
int cl_store_batch_put(cl_store_batch *b, cl_store_kind kind, const cl_key *key,
                       const cl_store_info *info, const cl_store_piece *pieces, size_t npieces,
                       unsigned put_flags);
/* Delete / pin / unpin inside the batch; an absent entry is skipped silently. */
int cl_store_batch_del(cl_store_batch *b, cl_store_kind kind, const cl_key *key);
int cl_store_batch_pin(cl_store_batch *b, cl_store_kind kind, const cl_key *key, int pinned);
/* Commits and frees the batch. Retries transparently after map growth / eviction.
 * CL_ERR_FULL: no room even after growing the map and evicting (or the batch alone
 * exceeds the size cap); CL_ERR_FULL/CL_ERR_IO for disk-full / file-size limit /
 * I/O errors. On any error the store is unchanged. A batch of 32 MiB or more has the
 * disk start writing its pages while the commit still copies the rest (early
 * writeback; durability and crash safety as without). */
int cl_store_batch_commit(cl_store_batch *b);
void cl_store_batch_abort(cl_store_batch *b);

/* One-shot put of a single value (a batch of one). */
int cl_store_put(cl_store *st, cl_store_kind kind, const cl_key *key, const cl_store_info *info,
                 const cl_store_piece *pieces, size_t npieces, unsigned put_flags);
/* One-shot delete / pin; CL_ERR_NOTFOUND if the entry is absent. */
int cl_store_del(cl_store *st, cl_store_kind kind, const cl_key *key);
int cl_store_pin(cl_store *st, cl_store_kind kind, const cl_key *key, int pinned);

/* ---- write-behind ------------------------------------------------------------------ */

/* A writer owns a background thread that commits queued puts in few large transactions
 * (the checksums are computed there too, fused with the copy into the transaction), so
 * the caller only pays for queueing. Durability is LMDB's default (data and meta synced
 * at each commit): a put reported done survives a crash, power loss included.
 * Puts complete in the order they were queued. One writer per store handle is enough;
 * its functions may be called from any thread. The store must outlive the writer. */
typedef struct cl_store_writer cl_store_writer;

typedef struct {
    uint64_t queue_bytes;  /* puts queued and not yet done, in payload bytes, above which
                              cl_store_writer_put blocks (back-pressure); 0: 1 GiB. A put
                              larger than this still goes, alone. */
    uint64_t commit_bytes; /* commit once this many bytes are waiting; 0: 256 MiB */
    uint32_t commit_ms;    /* ... or once the oldest waiting put is this old; 0: 50 ms */
    int no_early_writeback; /* 1: let a large commit's pages wait for its sync (for
                               comparison in bench store; by default the disk starts
                               writing them while the commit copies the rest) */
} cl_store_writer_opts;

/* Called on the writer thread when a put is done: status CL_OK (committed and synced)
 * or the failure (message: one line naming the store dir and the key). After it
 * returns the store no longer touches the put's pieces: free or recycle them there.
 * It must not call cl_store_writer_put/wait/flush/close (they could wait for itself). */
typedef void (*cl_store_done_fn)(void *user, uint64_t ticket, int status, const char *message);

/* Starts the writer thread. Fails with CL_ERR_ARG on a read-only handle. */
int cl_store_writer_open(cl_store *st, const cl_store_writer_opts *opts, cl_store_writer **out);
/* Queues a put; *ticket (may be NULL) numbers it (1, 2, ...). Blocks while the queue is
 * over queue_bytes. With CL_STORE_PUT_COPY the pieces are copied now (reuse them at
 * once); without it they must stay valid and unchanged until `done` is called or
 * cl_store_writer_wait/flush says the put is done (zero-copy: pass pinned buffers and
 * release them in `done`). info->meta is always copied. `done` may be NULL.
 * Argument errors are returned at once (nothing queued, done not called); commit
 * errors (disk full, store full after growing and evicting, file size limit, ...) are
 * reported per put through done/wait and leave the store unchanged for that put. */
int cl_store_writer_put(cl_store_writer *w, cl_store_kind kind, const cl_key *key,
                        const cl_store_info *info, const cl_store_piece *pieces, size_t npieces,
                        unsigned put_flags, cl_store_done_fn done, void *user, uint64_t *ticket);
/* 1 if a put of `bytes` would wait for room now (the queue holds puts and they plus this
 * one exceed queue_bytes); for callers that would rather skip a put than wait. */
int cl_store_writer_would_wait(cl_store_writer *w, uint64_t bytes);
/* Waits until that put is done (committing what is queued now rather than waiting for
 * the thresholds) and returns its status, with its message. The status of a failed put
 * is kept for the last 1024 failures; older ones give CL_ERR_ARG. */
int cl_store_writer_wait(cl_store_writer *w, uint64_t ticket);
/* Commits everything queued before the call and waits for it. CL_OK if every put done
 * since the previous flush succeeded, else the first failure's status and message
 * (with the count of failures). */
int cl_store_writer_flush(cl_store_writer *w);
/* Flushes, stops the thread, frees the writer; returns what the flush returned. No
 * other call on the writer may be running or follow. NULL is a no-op (CL_OK). */
int cl_store_writer_close(cl_store_writer *w);

/* ---- size cap and LRU ------------------------------------------------------------- */

/* Evicts LRU unpinned entries until the total is <= max_bytes (0: this handle's cap;
 * nothing to do without one). Counts are optional. */
int cl_store_gc(cl_store *st, uint64_t max_bytes, uint64_t *evicted, uint64_t *evicted_bytes);
/* Saves a cap in the store (used by handles opened with max_bytes 0; 0 removes it) and
 * applies it to this handle. Does not evict by itself (the next commit or gc does). */
int cl_store_set_max_bytes(cl_store *st, uint64_t max_bytes);
/* Writes the pending use records of reads now. */
int cl_store_flush(cl_store *st);

/* ---- listing, totals, verification ------------------------------------------------ */

typedef struct {
    cl_store_kind kind;
    cl_key key;
    uint64_t bytes;         /* stored value (header + meta + payload) */
    uint64_t payload_bytes;
    uint64_t meta_bytes;
    cl_store_info info;     /* meta pointer NULL */
    int64_t created_ns;     /* unix ns */
    int64_t last_use_ns;    /* unix ns */
    int pinned;
    int header_ok;          /* 0: the header is damaged (verify will drop it) */
} cl_store_entry;

/* Calls fn for each entry of `kind` (0: all kinds, table by table, keys in order) in one
 * read transaction; a nonzero return from fn stops the walk (and is returned). */
typedef int (*cl_store_list_fn)(void *user, const cl_store_entry *e);
int cl_store_list(cl_store *st, cl_store_kind kind, cl_store_list_fn fn, void *user);
/* The entry of one key (what cl_store_list would give for it; pinned and last use
 * included); CL_ERR_NOTFOUND if absent. */
int cl_store_entry_get(cl_store *st, cl_store_kind kind, const cl_key *key, cl_store_entry *out);

typedef struct {
    uint64_t count[CL_STORE_NKINDS + 1]; /* indexed by kind; [0] unused */
    uint64_t bytes[CL_STORE_NKINDS + 1];
    uint64_t total_count, total_bytes;
    uint64_t pinned_count, pinned_bytes;
    uint64_t max_bytes;     /* cap in effect for this handle (0: none) */
    uint64_t saved_max_bytes; /* cap saved in the store (0: none) */
    uint64_t map_bytes, map_max_bytes;
    uint64_t file_bytes;    /* size of data.mdb */
    uint64_t used_bytes;    /* pages in use by LMDB (incl. free lists) */
    uint32_t page_bytes;
    uint32_t readers, max_readers; /* LMDB reader slots used (high-water) / available */
    uint64_t last_txn;
} cl_store_stats;
int cl_store_stat(cl_store *st, cl_store_stats *out);

#define CL_STORE_VERIFY_NOTES 8
typedef struct {
    uint64_t checked, checked_bytes;
    uint64_t bad;          /* values that failed their checks */
    uint64_t removed;      /* of those, deleted (0 when read-only or damaged) */
    uint64_t index_fixed;  /* usage/lru/total records that were inconsistent (repaired
                              unless read-only or damaged) */
    /* LMDB's pages: each page up to the last one must be used by exactly one tree or be
     * listed once in the free list */
    uint64_t pages;        /* pages in the file's last snapshot */
    uint64_t free_pages;   /* listed free */
    uint64_t pages_unaccounted; /* neither used nor listed: lost space, harmless */
    uint64_t page_problems; /* free pages in use, listed twice or out of range, malformed
                               free-list records, damaged tree pages, entries their key
                               does not find */
    int damaged;           /* page problems now or found before: the store refuses every
                              write until `collage store recover` (cl_store_recover) */
    int values_skipped;    /* tree pages damaged: values were not read through LMDB */
    int notes;             /* the first page problems, one line each */
    char note[CL_STORE_VERIFY_NOTES][200];
} cl_store_verify_result;
typedef void (*cl_store_bad_fn)(void *user, cl_store_kind kind, const cl_key *key,
                                const char *problem);
typedef void (*cl_store_progress_fn)(void *user, uint64_t done_bytes, uint64_t total_bytes);
/* Checks LMDB's page structure (the free list against every tree, read from the data
 * file), then every value (header, meta and payload checksums, key, found by its key)
 * and the usage/LRU indexes; reports bad values through on_bad, deletes them and
 * repairs the indexes (unless read-only). Page problems mark the store damaged (a
 * marker file in its directory, unless read-only): then nothing is deleted or
 * repaired, and every process refuses writes until the store is recovered, because
 * LMDB would hand out pages from the damaged free list. Callbacks may be NULL. CL_OK
 * even when problems were found: look at out->bad / index_fixed / damaged. */
int cl_store_verify(cl_store *st, cl_store_bad_fn on_bad, cl_store_progress_fn on_progress,
                    void *user, cl_store_verify_result *out);
/* What verify cannot check (one line, static). */
const char *cl_store_verify_limits(void);

typedef struct {
    uint64_t copied, copied_bytes; /* entries (values) in the new store */
    uint64_t skipped;              /* values that failed their checks: not copied */
    char old_dir[4200];            /* where the damaged store was moved */
} cl_store_recover_result;
/* Rebuilds a (damaged) store: copies every value that passes its checks, with its use
 * time and pin, the size cap and the model-id cache, into a fresh store next to it
 * (<dir>.recover-<pid>, same file system), verifies the copy, then moves the old store
 * to <dir>.damaged-<unix time> and the copy into its place. Needs the store closed in
 * every process (CL_ERR_ARG "in use" otherwise) and free space for the copy. Other
 * processes' handles opened before keep the old (marked) store. */
int cl_store_recover(const char *dir, cl_store_recover_result *out);

/* ---- model id cache --------------------------------------------------------------- */

/* The model id (hash of canonical config + every tensor's name, dtype, shape, bytes) is
 * expensive: the engine computes it once per checkpoint file and remembers it here,
 * keyed by (path, size, mtime). Pass a canonical (absolute, resolved) path.
 * lookup: CL_OK with *model_id, or CL_ERR_NOTFOUND (no message) when unknown/stale. */
int cl_store_model_id_lookup(cl_store *st, const char *path, uint64_t size, int64_t mtime_ns,
                             cl_key *model_id);
int cl_store_model_id_remember(cl_store *st, const char *path, uint64_t size, int64_t mtime_ns,
                               const cl_key *model_id);

#endif
