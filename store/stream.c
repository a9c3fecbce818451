/* stream.c - parallel verified reads: a value's payload in chunks of whole segments,
 * claimed in order by the calling thread and up to threads-1 helpers; each segment is
 * checked against its checksum, then copied into dst (if any) while still in cache; a
 * chunk goes to the sink once all its segments are checked. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "common/status.h"
#include "store/codec.h"
#include "store/internal.h"

#define DEFAULT_THREADS 4
#define MAX_THREADS 256
#define V1_CHUNK_LOG2 20 /* format 1 has no segments: chunks of 1 MiB */

typedef struct {
    const uint8_t *payload;
    uint64_t bytes;
    const uint8_t *table; /* NULL: already verified (format 1) */
    uint64_t seg;         /* segment size (format 1: pseudo-segment) */
    uint64_t nseg, chunk_segs, nchunks;
    uint8_t *dst;
    cl_store_sink_fn sink;
    void *user;
    _Atomic uint64_t next;
    _Atomic int stop;
    pthread_mutex_t mu;
    int status;       /* first failure */
    int corrupt;      /* it was a checksum */
    uint64_t bad_seg;
    char msg[512];
} job;

static void fail(job *j, int status, int corrupt, uint64_t seg)
{
    pthread_mutex_lock(&j->mu);
    if (!j->status) {
        j->status = status;
        j->corrupt = corrupt;
        j->bad_seg = seg;
        if (!corrupt)
            snprintf(j->msg, sizeof j->msg, "%s", cl_errmsg());
    }
    pthread_mutex_unlock(&j->mu);
    atomic_store(&j->stop, 1);
}

static void run_chunk(job *j, uint64_t c)
{
    uint64_t s0 = c * j->chunk_segs;
    uint64_t s1 = s0 + j->chunk_segs < j->nseg ? s0 + j->chunk_segs : j->nseg;
    uint64_t off = s0 * j->seg, end = s1 * j->seg < j->bytes ? s1 * j->seg : j->bytes;
    for (uint64_t s = s0; s < s1; s++) {
        uint64_t o = s * j->seg, len = j->bytes - o < j->seg ? j->bytes - o : j->seg;
        const uint8_t *p = j->payload + o;
        /* check, then copy from the cache the check just filled (copying first and
         * checking the copy reads it back from memory where memcpy streams past the
         * cache: 15-25% slower on the dev VM) */
        if (j->table && XXH3_64bits(p, len) != codec_seg_xxh(j->table, s)) {
            fail(j, CL_ERR_CORRUPT, 1, s);
            return;
        }
        if (j->dst)
            memcpy(j->dst + o, p, len);
    }
    if (j->sink) {
        const uint8_t *p = j->dst ? j->dst + off : j->payload + off;
        int rc = j->sink(j->user, off, p, (size_t)(end - off));
        if (rc)
            fail(j, rc, 0, 0);
    }
}

static void *worker(void *arg)
{
    job *j = arg;
    while (!atomic_load(&j->stop)) {
        uint64_t c = atomic_fetch_add(&j->next, 1);
        if (c >= j->nchunks)
            break;
        run_chunk(j, c);
    }
    return NULL;
}

/* Runs the job on the calling thread and up to threads-1 helpers (fewer if thread
 * creation fails: the work still gets done). */
static void run_job(job *j, int threads)
{
    pthread_t tid[MAX_THREADS];
    int n = 0;
    for (int i = 1; i < threads && (uint64_t)i < j->nchunks; i++) {
        if (pthread_create(&tid[n], NULL, worker, j))
            break;
        n++;
    }
    worker(j);
    for (int i = 0; i < n; i++)
        pthread_join(tid[i], NULL);
}

int cl_store_stream(cl_store_txn *t, cl_store_kind kind, const cl_key *key,
                    const cl_store_stream_opts *o, cl_store_value *out)
{
    store_env *e = t->st->e;
    char hex[33];
    cl_key_hex(key, hex);
    if (!o || (!o->dst && !o->sink) || o->threads < 0)
        return cl_err(CL_ERR_ARG, "%s: %s %s: stream needs a destination or a sink", e->dir,
                      cl_store_kind_table(kind) ? cl_store_kind_table(kind) : "?", hex);
    MDB_val v;
    int rc = read_lookup(t, kind, key, &v);
    if (rc == CL_ERR_NOTFOUND)
        return cl_err(CL_ERR_NOTFOUND, "%s: %s %s: not found", e->dir, cl_store_kind_table(kind),
                      hex);
    if (rc)
        return rc;
    codec_header h;
    const char *why = codec_check(v.mv_data, v.mv_size, (uint8_t)kind, key, 0, &h);
    if (!why && XXH3_64bits(codec_meta_ptr(v.mv_data), h.meta_bytes) != h.meta_xxh)
        why = "meta checksum mismatch";
    if (!why && h.version >= 2)
        why = codec_check_table(v.mv_data, &h);
    /* format 1: one checksum over the payload, checked before anything is handed out */
    if (!why && h.version == 1)
        why = codec_check(v.mv_data, v.mv_size, (uint8_t)kind, key, 1, &h);
    if (why) {
        read_queue_bad(e, (uint8_t)kind, key);
        return cl_err(CL_ERR_CORRUPT, "%s: %s %s: %s; entry %s", e->dir,
                      cl_store_kind_table(kind), hex, why, e->rdonly ? "not used" : "dropped");
    }
    if (o->dst && h.payload_bytes > o->dst_bytes)
        return cl_err(CL_ERR_RANGE, "%s: %s %s: payload of %llu bytes does not fit in %zu",
                      e->dir, cl_store_kind_table(kind), hex,
                      (unsigned long long)h.payload_bytes, o->dst_bytes);

    job j;
    memset(&j, 0, sizeof j);
    j.payload = codec_payload_ptr(v.mv_data, &h);
    j.bytes = h.payload_bytes;
    j.table = h.version >= 2 ? codec_table_ptr(v.mv_data, &h) : NULL;
    j.seg = 1ull << (h.version >= 2 ? h.seg_log2 : V1_CHUNK_LOG2);
    j.nseg = (j.bytes + j.seg - 1) / j.seg;
    j.chunk_segs = o->chunk_bytes > j.seg ? (o->chunk_bytes + j.seg - 1) / j.seg : 1;
    j.nchunks = (j.nseg + j.chunk_segs - 1) / j.chunk_segs;
    j.dst = o->dst;
    j.sink = o->sink;
    j.user = o->user;
    pthread_mutex_init(&j.mu, NULL);
    int threads = o->threads ? o->threads : DEFAULT_THREADS;
    if (threads > MAX_THREADS)
        threads = MAX_THREADS;
    if (j.nchunks)
        run_job(&j, threads);
    pthread_mutex_destroy(&j.mu);
    if (j.status && j.corrupt) {
        read_queue_bad(e, (uint8_t)kind, key);
        return cl_err(CL_ERR_CORRUPT,
                      "%s: %s %s: payload checksum mismatch (segment %llu of %llu); entry %s",
                      e->dir, cl_store_kind_table(kind), hex, (unsigned long long)j.bad_seg,
                      (unsigned long long)j.nseg, e->rdonly ? "not used" : "dropped");
    }
    if (j.status)
        return cl_err(j.status, "%s", j.msg);
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
    out->payload = j.payload;
    out->payload_bytes = h.payload_bytes;
    read_touch(t, (uint8_t)kind, key);
    return CL_OK;
}
