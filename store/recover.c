/* recover.c - rebuilds a damaged store by copying, through LMDB's cursors, every value
 * that passes its checks (with its use time and pin), the size cap and the model-id
 * cache into a fresh environment, which then takes the old directory's place. Nothing
 * of the old free list is used: the copy has a fresh one. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/status.h"
#include "store/codec.h"
#include "store/internal.h"

#define COPY_COMMIT_BYTES (256ull << 20)

/* 0 if no process has the store open (LMDB holds a shared lock on the first byte of
 * lock.mdb while an environment is open), else -1. No lock file: nobody has it open
 * with locking (MDB_NOLOCK readers cannot be seen). */
static int in_use(const char *dir)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/lock.mdb", dir);
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return 0;
    struct flock fl = {0};
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    fl.l_start = 0;
    fl.l_len = 1;
    int busy = fcntl(fd, F_SETLK, &fl) != 0;
    close(fd); /* releases the probe's lock: this process has no environment on it */
    return busy ? -1 : 0;
}

/* Makes the renames durable. */
static void sync_parent(const char *dir)
{
    char parent[4200];
    snprintf(parent, sizeof parent, "%s", dir);
    size_t n = strlen(parent);
    while (n > 1 && parent[n - 1] == '/')
        parent[--n] = 0;
    char *slash = strrchr(parent, '/');
    if (!slash)
        snprintf(parent, sizeof parent, ".");
    else if (slash == parent)
        parent[1] = 0;
    else
        *slash = 0;
    int fd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

static void remove_store_dir(const char *dir)
{
    char p[4200];
    const char *files[] = {"data.mdb", "lock.mdb", STORE_DAMAGED_FILE};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, files[i]);
        unlink(p);
    }
    rmdir(dir);
}

/* Copies the meta records that are not derived: the saved cap, the model-id cache. */
static int copy_meta(store_env *src, MDB_txn *rt, wtx *w)
{
    MDB_cursor *c;
    int rc = mdb_cursor_open(rt, src->dbi[DB_META], &c);
    if (rc)
        return rc;
    MDB_val k, v;
    for (int op = MDB_FIRST; !(rc = mdb_cursor_get(c, &k, &v, (MDB_cursor_op)op)); op = MDB_NEXT) {
        int keep = (k.mv_size == 9 && !memcmp(k.mv_data, "max_bytes", 9)) ||
                   (k.mv_size > 9 && !memcmp(k.mv_data, "model_id:", 9));
        if (keep && (rc = mdb_put(w->txn, w->e->dbi[DB_META], &k, &v, 0)))
            break;
    }
    mdb_cursor_close(c);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Copies every good value of src into dst, committing every COPY_COMMIT_BYTES. */
static int copy_values(store_env *src, store_env *dst, cl_store_recover_result *out)
{
    MDB_txn *rt;
    int rc = env_txn_begin(src, MDB_RDONLY, &rt);
    if (rc)
        return rc;
    store_thread_read_txns_add(1);
    wtx w;
    if ((rc = wtx_begin(dst, &w)))
        goto done;
    uint64_t pending = 0;
    for (int kind = CL_STORE_KV; kind <= CL_STORE_OTHER && !rc; kind++) {
        MDB_cursor *c;
        if ((rc = mdb_cursor_open(rt, src->dbi[kind], &c)))
            break;
        MDB_val k, v;
        for (int op = MDB_FIRST; !(rc = mdb_cursor_get(c, &k, &v, (MDB_cursor_op)op));
             op = MDB_NEXT) {
            cl_key key;
            codec_header h;
            memcpy(key.b, k.mv_data, k.mv_size < 16 ? k.mv_size : 16);
            if (k.mv_size != 16 || codec_check(v.mv_data, v.mv_size, (uint8_t)kind, &key, 1, &h)) {
                out->skipped++;
                continue;
            }
            usage_rec u;
            int have_u = idx_usage_get(src, rt, (uint8_t)kind, &key, &u) == 0;
            if ((rc = mdb_put(w.txn, dst->dbi[kind], &k, &v, 0)) ||
                (rc = idx_note_put_at(&w, (uint8_t)kind, &key, v.mv_size,
                                      have_u && (u.flags & USAGE_PINNED),
                                      have_u ? u.atime_ns : h.created_ns)))
                break;
            out->copied++;
            out->copied_bytes += v.mv_size;
            pending += v.mv_size;
            if (pending >= COPY_COMMIT_BYTES) {
                if ((rc = wtx_commit(&w)) || (rc = wtx_begin(dst, &w)))
                    break;
                pending = 0;
            }
        }
        mdb_cursor_close(c);
        if (rc == MDB_NOTFOUND)
            rc = 0;
    }
    if (!rc)
        rc = copy_meta(src, rt, &w);
    if (rc)
        wtx_abort(&w);
    else
        rc = wtx_commit(&w);
done:
    mdb_txn_abort(rt);
    env_txn_done(src);
    store_thread_read_txns_add(-1);
    return rc;
}

int cl_store_recover(const char *dir, cl_store_recover_result *out)
{
    memset(out, 0, sizeof *out);
    struct stat sb;
    char data[4200], tmp[4200];
    snprintf(data, sizeof data, "%s/data.mdb", dir);
    if (stat(dir, &sb) || stat(data, &sb))
        return cl_err(CL_ERR_NOTFOUND, "%s: no store here", dir);
    uint64_t file_bytes = (uint64_t)sb.st_size;
    if (stat(dir, &sb) == 0 && env_is_open(sb.st_dev, sb.st_ino))
        return cl_err(CL_ERR_ARG, "%s: recover: the store is open in this process; close it "
                      "first", dir);
    if (in_use(dir))
        return cl_err(CL_ERR_ARG, "%s: recover: the store is in use by another process; close "
                      "it first", dir);
    snprintf(tmp, sizeof tmp, "%s.recover-%ld", dir, (long)getpid());
    if (stat(tmp, &sb) == 0)
        return cl_err(CL_ERR_IO, "%s: recover: %s exists (left by an earlier attempt?)", dir,
                      tmp);

    cl_store *src = NULL, *dst = NULL;
    cl_store_opts so = {0};
    so.flags = CL_STORE_RDONLY | CL_STORE_NOCREATE;
    int rc = cl_store_open(dir, &so, &src);
    if (rc)
        return rc;
    cl_store_opts dopts = {0};
    dopts.max_bytes = UINT64_MAX; /* evict nothing while copying */
    dopts.map_bytes = file_bytes + (64ull << 20); /* the copy is never larger */
    if ((rc = cl_store_open(tmp, &dopts, &dst))) {
        cl_store_close(src);
        return rc;
    }
    int lrc = copy_values(src->e, dst->e, out);
    cl_store_close(dst);
    cl_store_close(src);
    if (lrc) {
        rc = cl_err(lrc == ENOSPC || lrc == MDB_MAP_FULL ? CL_ERR_FULL : CL_ERR_IO,
                    "%s: recover: copying into %s failed: %s", dir, tmp, mdb_strerror(lrc));
        remove_store_dir(tmp);
        return rc;
    }
    /* the copy must be clean */
    if ((rc = cl_store_open(tmp, NULL, &dst))) {
        remove_store_dir(tmp);
        return rc;
    }
    cl_store_verify_result vr;
    rc = cl_store_verify(dst, NULL, NULL, NULL, &vr);
    cl_store_close(dst);
    if (rc == CL_OK && (vr.damaged || vr.bad || vr.checked != out->copied))
        rc = cl_err(CL_ERR_INTERNAL, "%s: recover: the copy in %s failed its check (%s)", dir,
                    tmp, vr.notes ? vr.note[0] : "values");
    if (rc) {
        remove_store_dir(tmp);
        return rc;
    }
    /* swap, unless someone opened the store meanwhile */
    if (in_use(dir)) {
        remove_store_dir(tmp);
        return cl_err(CL_ERR_ARG, "%s: recover: the store is in use by another process; close "
                      "it first", dir);
    }
    snprintf(out->old_dir, sizeof out->old_dir, "%s.damaged-%lld", dir, (long long)time(NULL));
    if (rename(dir, out->old_dir)) {
        rc = cl_err(CL_ERR_IO, "%s: recover: cannot move it to %s: %s", dir, out->old_dir,
                    strerror(errno));
        remove_store_dir(tmp);
        return rc;
    }
    if (rename(tmp, dir)) {
        rc = cl_err(CL_ERR_IO, "%s: recover: cannot move %s into its place: %s (the old store "
                    "is in %s)", dir, tmp, strerror(errno), out->old_dir);
        return rc;
    }
    sync_parent(dir);
    return CL_OK;
}
