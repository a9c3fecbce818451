/* env.c - the LMDB environment: directory resolution, open/close (one environment per
 * directory per process), error mapping, transactions under the map lock, map growth. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "common/fileio.h"
#include "common/status.h"
#include "store/internal.h"

#define MIB (1024ull * 1024ull)
#define DEFAULT_MAP_BYTES (4096ull * MIB)
#define DEFAULT_MAP_MAX_BYTES (1024ull * 1024ull * MIB)
#define DEFAULT_TOUCH_INTERVAL_MS 60000u
#define STORE_FORMAT "collage-store/1"
#define MAX_READERS 510
/* How long a map resize waits for this process's read transactions to end. */
#define RESIZE_WAIT_S 30.0

static const char *const db_names[DB_COUNT] = {"meta", "blocks", "snaps", "docs",
                                                 "misc", "usage",  "lru"};

static pthread_mutex_t registry_mu = PTHREAD_MUTEX_INITIALIZER;
static store_env *registry;
static _Thread_local int thread_read_txns;

int store_thread_read_txns(void) { return thread_read_txns; }

int env_is_open(dev_t dev, ino_t ino)
{
    pthread_mutex_lock(&registry_mu);
    store_env *e = registry;
    while (e && !(e->dev == dev && e->ino == ino))
        e = e->next;
    pthread_mutex_unlock(&registry_mu);
    return e != NULL;
}
void store_thread_read_txns_add(int delta) { thread_read_txns += delta; }

int64_t store_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int store_valid_kind(int kind) { return kind >= CL_STORE_KV && kind <= CL_STORE_OTHER; }

const char *cl_store_kind_table(cl_store_kind kind)
{
    return store_valid_kind((int)kind) ? db_names[kind] : NULL;
}

cl_store_kind cl_store_kind_from_table(const char *name)
{
    for (int k = CL_STORE_KV; k <= CL_STORE_OTHER; k++)
        if (name && !strcmp(name, db_names[k]))
            return (cl_store_kind)k;
    return (cl_store_kind)0;
}

const char *cl_store_dir(const cl_store *st) { return st->e->dir; }

const char *cl_store_readonly(const cl_store *st)
{
    if (st->e->ro_reason[0])
        return st->e->ro_reason;
    return st->rdonly ? "opened read-only" : NULL;
}

int store_fail(const store_env *e, int rc, const char *what)
{
    const char *dir = e ? e->dir : "store";
    const char *sep = what ? ": " : "";
    what = what ? what : "";
    switch (rc) {
    case 0: return CL_OK;
    case STORE_E_CAP:
        return cl_err(CL_ERR_FULL, "%s: %s%sdoes not fit under the store's size cap", dir, what,
                      sep);
    case STORE_E_RDONLY:
        return cl_err(CL_ERR_ARG, "%s: store is read-only (%s): nothing written", dir,
                      e && e->ro_reason[0] ? e->ro_reason : "opened read-only");
    case STORE_E_BUSY:
        return cl_err(CL_ERR_FULL,
                      "%s: %s%smap full, and it cannot grow while this process holds read "
                      "transactions",
                      dir, what, sep);
    case MDB_MAP_FULL:
        return cl_err(CL_ERR_FULL, "%s: %s%sstore full (map of %llu bytes)", dir, what, sep,
                      (unsigned long long)(e ? env_map_bytes((store_env *)e) : 0));
    case ENOSPC:
    case EDQUOT:
    case EFBIG:
        return cl_err(CL_ERR_FULL, "%s: %s%swrite failed: %s (nothing was changed)", dir, what,
                      sep, strerror(rc));
    case EIO:
        return cl_err(CL_ERR_IO, "%s: %s%swrite failed: %s (disk full or file size limit?); "
                      "nothing was changed", dir, what, sep, strerror(rc));
    case ENOMEM: return cl_err(CL_ERR_NOMEM, "%s: %s%sout of memory", dir, what, sep);
    case EACCES:
    case EPERM:
    case EROFS: return cl_err(CL_ERR_IO, "%s: %s%s%s", dir, what, sep, strerror(rc));
    case MDB_INVALID:
    case MDB_VERSION_MISMATCH:
        return cl_err(CL_ERR_CORRUPT, "%s: %s%snot a valid store: %s", dir, what, sep,
                      mdb_strerror(rc));
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
        return cl_err(CL_ERR_CORRUPT, "%s: %s%sLMDB file is damaged (%s); remove the store",
                      dir, what, sep, mdb_strerror(rc));
    case MDB_PANIC:
        return cl_err(CL_ERR_IO, "%s: %s%sthe environment failed earlier (%s); reopen the store",
                      dir, what, sep, mdb_strerror(rc));
    case MDB_NOTFOUND: return cl_err(CL_ERR_NOTFOUND, "%s: %s%snot found", dir, what, sep);
    default: return cl_err(CL_ERR_IO, "%s: %s%s%s", dir, what, sep, mdb_strerror(rc));
    }
}

uint64_t env_map_bytes(store_env *e)
{
    MDB_envinfo info;
    if (mdb_env_info(e->env, &info))
        return 0;
    return (uint64_t)info.me_mapsize;
}

/* Takes the map lock exclusively (no transaction of this process open), waiting for
 * other threads' transactions to end. Never blocks forever: a thread that holds a read
 * transaction itself would deadlock, so it fails at once. */
static int map_lock_exclusive(store_env *e)
{
    if (thread_read_txns > 0)
        return STORE_E_BUSY;
    double t0 = mono_s();
    atomic_fetch_add(&e->resize_waiting, 1);
    int rc = 0;
    for (;;) {
        if (pthread_rwlock_trywrlock(&e->map_lock) == 0)
            break;
        if (mono_s() - t0 > RESIZE_WAIT_S) {
            rc = STORE_E_BUSY;
            break;
        }
        struct timespec ts = {0, 200000};
        nanosleep(&ts, NULL);
    }
    atomic_fetch_sub(&e->resize_waiting, 1);
    return rc;
}

static int set_mapsize(store_env *e, uint64_t bytes)
{
    int rc = map_lock_exclusive(e);
    if (rc)
        return rc;
    rc = mdb_env_set_mapsize(e->env, (size_t)bytes);
    pthread_rwlock_unlock(&e->map_lock);
    return rc;
}

int env_txn_begin(store_env *e, unsigned mdb_flags, MDB_txn **txn)
{
    for (int tries = 0;; tries++) {
        /* Let a waiting resize go first (readers would otherwise starve it), unless
         * this thread holds a transaction already: the resize waits for that one. */
        while (atomic_load(&e->resize_waiting) && thread_read_txns == 0) {
            struct timespec ts = {0, 100000};
            nanosleep(&ts, NULL);
        }
        pthread_rwlock_rdlock(&e->map_lock);
        int rc = mdb_txn_begin(e->env, NULL, mdb_flags, txn);
        if (rc == 0)
            return 0;
        pthread_rwlock_unlock(&e->map_lock);
        if (rc != MDB_MAP_RESIZED || tries >= 8)
            return rc;
        /* Another process grew the map past ours: adopt its size. */
        rc = set_mapsize(e, 0);
        if (rc)
            return rc;
    }
}

void env_txn_done(store_env *e) { pthread_rwlock_unlock(&e->map_lock); }

int env_grow_map(store_env *e, uint64_t need_bytes)
{
    uint64_t cur = env_map_bytes(e);
    if (cur >= e->map_max_bytes)
        return MDB_MAP_FULL;
    uint64_t want = cur * 2;
    if (want < cur + 2 * need_bytes + 4 * MIB)
        want = cur + 2 * need_bytes + 4 * MIB;
    want = (want + MIB - 1) / MIB * MIB;
    if (want > e->map_max_bytes)
        want = e->map_max_bytes;
    return set_mapsize(e, want);
}

/* Reads the marker's first line into the read-only reason. */
static void damaged_reason(store_env *e, int fd)
{
    char line[240] = "";
    ssize_t n = read(fd, line, sizeof line - 1);
    line[n > 0 ? n : 0] = 0;
    line[strcspn(line, "\n")] = 0;
    snprintf(e->ro_reason, sizeof e->ro_reason, "damaged: %s; run 'collage store recover'",
             line[0] ? line : "see verify");
}

int env_is_damaged(store_env *e)
{
    if (atomic_load(&e->damaged))
        return 1;
    if (e->dirfd < 0)
        return 0;
    int fd = openat(e->dirfd, STORE_DAMAGED_FILE, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    pthread_mutex_lock(&e->mu);
    if (!atomic_load(&e->damaged))
        damaged_reason(e, fd);
    atomic_store(&e->damaged, 1);
    pthread_mutex_unlock(&e->mu);
    close(fd);
    return 1;
}

void env_mark_damaged(store_env *e, const char *why)
{
    pthread_mutex_lock(&e->mu);
    if (!atomic_load(&e->damaged))
        snprintf(e->ro_reason, sizeof e->ro_reason, "damaged: %s; run 'collage store recover'",
                 why);
    atomic_store(&e->damaged, 1);
    pthread_mutex_unlock(&e->mu);
    if (e->rdonly || e->dirfd < 0)
        return;
    /* written whole under a temporary name, then renamed: never half a marker */
    int fd = openat(e->dirfd, STORE_DAMAGED_FILE ".tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                    0600);
    if (fd < 0)
        return;
    size_t n = strlen(why);
    int ok = write(fd, why, n) == (ssize_t)n && write(fd, "\n", 1) == 1 && fsync(fd) == 0;
    close(fd);
    if (ok && renameat(e->dirfd, STORE_DAMAGED_FILE ".tmp", e->dirfd, STORE_DAMAGED_FILE) == 0)
        fsync(e->dirfd);
    else
        unlinkat(e->dirfd, STORE_DAMAGED_FILE ".tmp", 0);
}

int wtx_begin(store_env *e, wtx *w)
{
    memset(w, 0, sizeof *w);
    w->e = e;
    /* LMDB would allocate pages from a free list found damaged: refuse */
    if (env_is_damaged(e))
        return STORE_E_RDONLY;
    int rc = env_txn_begin(e, 0, &w->txn);
    if (rc)
        return rc;
    rc = idx_totals_load(e, w->txn, &w->tot);
    if (rc) {
        mdb_txn_abort(w->txn);
        env_txn_done(e);
        return rc;
    }
    /* Use times never behind the newest recorded use, so that the LRU order stays
     * right (and this batch stays newest) even if the wall clock stepped back. */
    w->now_ns = store_now_ns();
    MDB_cursor *c;
    if (mdb_cursor_open(w->txn, e->dbi[DB_LRU], &c) == 0) {
        MDB_val k, v;
        if (mdb_cursor_get(c, &k, &v, MDB_LAST) == 0 && k.mv_size >= 8) {
            const uint8_t *p = k.mv_data;
            uint64_t last = 0;
            for (int i = 0; i < 8; i++)
                last = last << 8 | p[i];
            if ((int64_t)last >= w->now_ns)
                w->now_ns = (int64_t)last + 1;
        }
        mdb_cursor_close(c);
    }
    return 0;
}

int wtx_commit(wtx *w)
{
    int rc = w->tot_dirty ? idx_totals_save(w) : 0;
    if (rc)
        mdb_txn_abort(w->txn);
    else
        rc = mdb_txn_commit(w->txn);
    env_txn_done(w->e);
    w->txn = NULL;
    return rc;
}

void wtx_abort(wtx *w)
{
    if (w->txn) {
        mdb_txn_abort(w->txn);
        env_txn_done(w->e);
        w->txn = NULL;
    }
}

/* ---- resolve / open / close ------------------------------------------------------ */

int cl_store_resolve_dir(const char *dir, char *out, size_t out_size)
{
    const char *env;
    int n;
    if (dir && *dir)
        n = snprintf(out, out_size, "%s", dir);
    else if ((env = getenv("COLLAGE_STORE")) && *env)
        n = snprintf(out, out_size, "%s", env);
    else if ((env = getenv("XDG_CACHE_HOME")) && *env)
        n = snprintf(out, out_size, "%s/collage/store", env);
    else if ((env = getenv("HOME")) && *env)
        n = snprintf(out, out_size, "%s/.cache/collage/store", env);
    else
        return cl_err(CL_ERR_ARG, "store: no directory (set --store, COLLAGE_STORE or HOME)");
    if (n < 0 || (size_t)n >= out_size)
        return cl_err(CL_ERR_ARG, "store: directory path too long");
    return CL_OK;
}

/* Opens the named databases, and writes / checks the format record. */
static int open_dbs(store_env *e)
{
    MDB_txn *txn;
    int rc, ro = e->rdonly || atomic_load(&e->damaged); /* damaged: not even this write */
    for (int tries = 0;; tries++) {
        rc = mdb_txn_begin(e->env, NULL, ro ? MDB_RDONLY : 0, &txn);
        if (rc != MDB_MAP_RESIZED || tries >= 8)
            break;
        /* grown by another process since we sized the map: adopt (no txn is open) */
        if ((rc = mdb_env_set_mapsize(e->env, 0)))
            break;
    }
    if (rc)
        return store_fail(e, rc, NULL);
    for (int i = 0; i < DB_COUNT && !rc; i++) {
        rc = mdb_dbi_open(txn, db_names[i], ro ? 0 : MDB_CREATE, &e->dbi[i]);
        if (rc == MDB_NOTFOUND) {
            mdb_txn_abort(txn);
            return cl_err(CL_ERR_FORMAT, "%s: not a collage store (no '%s' table)", e->dir,
                          db_names[i]);
        }
    }
    if (rc) {
        mdb_txn_abort(txn);
        return store_fail(e, rc, NULL);
    }
    MDB_val k = {6, "format"}, v;
    rc = mdb_get(txn, e->dbi[DB_META], &k, &v);
    if (rc == MDB_NOTFOUND && !ro) {
        v.mv_size = strlen(STORE_FORMAT);
        v.mv_data = STORE_FORMAT;
        rc = mdb_put(txn, e->dbi[DB_META], &k, &v, 0);
    } else if (rc == 0) {
        const char *prefix = "collage-store/";
        size_t pl = strlen(prefix);
        char buf[32] = {0};
        memcpy(buf, v.mv_data, v.mv_size < sizeof buf - 1 ? v.mv_size : sizeof buf - 1);
        if (strncmp(buf, prefix, pl)) {
            mdb_txn_abort(txn);
            return cl_err(CL_ERR_FORMAT, "%s: not a collage store (format '%s')", e->dir, buf);
        }
        if (atoi(buf + pl) != 1) {
            mdb_txn_abort(txn);
            return cl_err(CL_ERR_UNSUPPORTED, "%s: store format '%s' is not supported (this "
                          "build reads %s)", e->dir, buf, STORE_FORMAT);
        }
    }
    if (rc && rc != MDB_NOTFOUND) {
        mdb_txn_abort(txn);
        return store_fail(e, rc, NULL);
    }
    rc = mdb_txn_commit(txn);
    return rc ? store_fail(e, rc, NULL) : CL_OK;
}

static void env_destroy(store_env *e)
{
    if (e->env)
        mdb_env_close(e->env);
    if (e->dirfd >= 0)
        close(e->dirfd);
    pthread_rwlock_destroy(&e->map_lock);
    pthread_mutex_destroy(&e->mu);
    free(e->touches);
    free(e->bad);
    free(e);
}

/* Creates and opens the LMDB environment (closing a failed one). */
static int env_lmdb_open(store_env *e, const char *dir, uint64_t map, unsigned flags)
{
    if (e->env)
        mdb_env_close(e->env);
    e->env = NULL;
    int rc = mdb_env_create(&e->env);
    if (!rc)
        rc = mdb_env_set_maxdbs(e->env, DB_COUNT + 2);
    if (!rc)
        rc = mdb_env_set_maxreaders(e->env, MAX_READERS);
    if (!rc)
        rc = mdb_env_set_mapsize(e->env, (size_t)map);
    if (!rc)
        rc = mdb_env_open(e->env, dir, MDB_NOTLS | flags, 0600);
    return rc;
}

static int ro_denied(int rc) { return rc == EACCES || rc == EROFS || rc == EPERM; }

static const char *ro_cause(const char *dir, int rc)
{
    struct statvfs vfs;
    if (rc == EROFS || (statvfs(dir, &vfs) == 0 && (vfs.f_flag & ST_RDONLY)))
        return "read-only file system";
    return "not writable by this user";
}

static int env_create(const char *dir, const cl_store_opts *o, const struct stat *dst,
                      store_env **out)
{
    store_env *e = calloc(1, sizeof *e);
    if (!e)
        return cl_err(CL_ERR_NOMEM, "%s: out of memory", dir);
    snprintf(e->dir, sizeof e->dir, "%s", dir);
    pthread_rwlock_init(&e->map_lock, NULL);
    pthread_mutex_init(&e->mu, NULL);
    e->dev = dst->st_dev;
    e->ino = dst->st_ino;
    e->refs = 1;
    e->dirfd = -1;
    e->rdonly = !!(o->flags & CL_STORE_RDONLY);
    e->touch_interval_ns =
        (int64_t)(o->touch_interval_ms ? o->touch_interval_ms : DEFAULT_TOUCH_INTERVAL_MS) *
        1000000;
    uint64_t map = o->map_bytes ? o->map_bytes : DEFAULT_MAP_BYTES;
    e->map_max_bytes = o->map_max_bytes ? o->map_max_bytes : DEFAULT_MAP_MAX_BYTES;
    char data_path[4200];
    snprintf(data_path, sizeof data_path, "%s/data.mdb", dir);
    struct stat fst;
    if (stat(data_path, &fst) == 0 && (uint64_t)fst.st_size > map)
        map = (uint64_t)fst.st_size; /* the data must fit; LMDB rounds up */
    map = (map + MIB - 1) / MIB * MIB;
    if (e->map_max_bytes < map)
        e->map_max_bytes = map;

    e->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    env_is_damaged(e);
    int rc = env_lmdb_open(e, dir, map, e->rdonly ? MDB_RDONLY : 0);
    if (ro_denied(rc) && !e->rdonly && cl_is_file(data_path)) {
        /* a store we may read but not write (read-only mount, other owner, chmod -w):
         * serve reads from a read-only handle */
        e->rdonly = 1;
        snprintf(e->ro_reason, sizeof e->ro_reason, "%s", ro_cause(dir, rc));
        rc = env_lmdb_open(e, dir, map, MDB_RDONLY);
    }
    if (ro_denied(rc) && e->rdonly) {
        /* LMDB needs to write its lock file even to read; without one (not writable,
         * cannot be created) only MDB_NOLOCK is left: no reader table, so a writer in
         * another process could reuse pages this one reads (checksums catch values
         * changed under us, not every tree inconsistency) */
        e->nolock = 1;
        rc = env_lmdb_open(e, dir, map, MDB_RDONLY | MDB_NOLOCK);
    }
    if (rc) {
        int st = rc == ENOENT ? cl_err(CL_ERR_NOTFOUND, "%s: no store here", dir)
                              : store_fail(e, rc, "cannot open");
        env_destroy(e);
        return st;
    }
    int dead = 0;
    mdb_reader_check(e->env, &dead); /* free reader slots of killed processes */
    rc = open_dbs(e);
    if (rc) {
        env_destroy(e);
        return rc;
    }
    *out = e;
    return CL_OK;
}

int cl_store_open(const char *dir, const cl_store_opts *opts, cl_store **out)
{
    cl_store_opts defaults = {0};
    const cl_store_opts *o = opts ? opts : &defaults;
    *out = NULL;
    if (!dir || !*dir)
        return cl_err(CL_ERR_ARG, "store: empty directory name");
    int create = !(o->flags & (CL_STORE_NOCREATE | CL_STORE_RDONLY));
    if (create) {
        CL_TRY(cl_mkdir_p(dir, 0700));
    } else {
        char data_path[4200];
        snprintf(data_path, sizeof data_path, "%s/data.mdb", dir);
        if (!cl_is_dir(dir))
            return cl_err(CL_ERR_NOTFOUND, "%s: no store here (no such directory)", dir);
        if (!cl_is_file(data_path))
            return cl_err(CL_ERR_NOTFOUND, "%s: no store here (no data.mdb)", dir);
    }
    struct stat dst;
    if (stat(dir, &dst) != 0)
        return cl_err(CL_ERR_IO, "%s: %s", dir, strerror(errno));
    cl_store *st = calloc(1, sizeof *st);
    if (!st)
        return cl_err(CL_ERR_NOMEM, "%s: out of memory", dir);
    st->max_bytes = o->max_bytes;
    st->cap_explicit = o->max_bytes != 0;

    pthread_mutex_lock(&registry_mu);
    store_env *e = registry;
    while (e && !(e->dev == dst.st_dev && e->ino == dst.st_ino))
        e = e->next;
    int rc = CL_OK;
    if (e) {
        if (e->rdonly && !e->ro_reason[0] && !(o->flags & CL_STORE_RDONLY) && !e->damaged)
            rc = cl_err(CL_ERR_ARG, "%s: already open read-only in this process", dir);
        else
            e->refs++;
    } else {
        rc = env_create(dir, o, &dst, &e);
        if (rc == CL_OK) {
            e->next = registry;
            registry = e;
        }
    }
    pthread_mutex_unlock(&registry_mu);
    if (rc != CL_OK) {
        free(st);
        return rc;
    }
    st->e = e;
    st->rdonly = e->rdonly || env_is_damaged(e) || (o->flags & CL_STORE_RDONLY);
    *out = st;
    return CL_OK;
}

void cl_store_close(cl_store *st)
{
    if (!st)
        return;
    store_env *e = st->e;
    free(st);
    /* The registry lock is held while the last handle flushes and closes, so that a
     * concurrent open of the same directory never sees two environments. */
    pthread_mutex_lock(&registry_mu);
    if (--e->refs == 0) {
        if (!e->rdonly)
            pending_flush(e);
        for (store_env **p = &registry; *p; p = &(*p)->next)
            if (*p == e) {
                *p = e->next;
                break;
            }
        env_destroy(e);
    }
    pthread_mutex_unlock(&registry_mu);
}
