/* writer.c - write-behind: callers queue puts, a background thread groups them into
 * large batches (commit by bytes, by age, or when someone waits), checksums them while
 * copying into the transaction, and reports each put's outcome in queue order. A group
 * that fails is retried put by put, so one put's failure (too large, disk full) is
 * reported for that put alone. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/status.h"
#include "store/codec.h"
#include "store/internal.h"

#define DEFAULT_QUEUE_BYTES (1ull << 30)
#define DEFAULT_COMMIT_BYTES (256ull << 20)
#define DEFAULT_COMMIT_MS 50u
#define FAIL_KEEP 1024 /* failed puts whose status wait() can still tell */

typedef struct wput {
    struct wput *next;
    uint64_t ticket;
    cl_store_kind kind;
    cl_key key;
    cl_store_info info; /* meta -> owned copy */
    cl_store_piece *pieces; /* owned array */
    size_t npieces;
    void *copy; /* owned payload copy (CL_STORE_PUT_COPY) */
    unsigned flags;
    uint64_t bytes;
    double t_queued;
    cl_store_done_fn done;
    void *user;
    int status;
    char msg[512];
} wput;

typedef struct {
    uint64_t ticket;
    int status;
    char msg[512];
} fail_rec;

struct cl_store_writer {
    cl_store *st;
    uint64_t queue_bytes, commit_bytes;
    double commit_s;
    int early_writeback;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t work; /* the thread waits for puts / urgency / stop */
    pthread_cond_t done; /* callers wait for completions and room */
    wput *head, *tail;   /* queued, not taken by the thread yet */
    uint64_t waiting_bytes;  /* in the queue */
    uint64_t held_bytes;     /* queued or being committed (back-pressure) */
    uint64_t last_ticket;    /* issued */
    uint64_t done_ticket;    /* every put <= this is done */
    uint64_t urgent_ticket;  /* someone waits for puts <= this: commit now */
    int stop;
    fail_rec *fails; /* ring of the last FAIL_KEEP failures */
    size_t nfails;   /* total recorded */
    uint64_t flush_failed;   /* failures since the last flush */
    int flush_status;
    char flush_msg[512];
};

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void free_put(wput *p)
{
    free((void *)p->info.meta);
    free(p->pieces);
    free(p->copy);
    free(p);
}

/* ---- the thread -------------------------------------------------------------------- */

/* One batch for puts [first, end): returns the commit status; message in cl_errmsg(). */
static int commit_puts(cl_store_writer *w, wput *first, wput *end)
{
    cl_store_batch *b;
    int rc = cl_store_batch_begin(w->st, &b);
    if (rc == CL_OK && !w->early_writeback)
        store_batch_late_writeback(b);
    for (wput *p = first; p != end && rc == CL_OK; p = p->next)
        rc = cl_store_batch_put(b, p->kind, &p->key, &p->info, p->pieces, p->npieces,
                                (p->flags & ~(unsigned)CL_STORE_PUT_COPY) | STORE_PUT_HASH_LATE);
    if (rc != CL_OK) {
        if (b)
            cl_store_batch_abort(b);
        return rc;
    }
    return cl_store_batch_commit(b);
}

static void set_failed(wput *p, int status, const char *msg)
{
    char hex[33];
    p->status = status;
    snprintf(p->msg, sizeof p->msg, "%s (%s %s not stored)", msg, cl_store_kind_table(p->kind),
             cl_key_hex(&p->key, hex));
}

static void commit_group(cl_store_writer *w, wput *group)
{
    int rc = commit_puts(w, group, NULL);
    if (rc == CL_OK)
        return;
    if (!group->next) {
        set_failed(group, rc, cl_errmsg());
        return;
    }
    /* which put failed: one by one (those that fit are stored) */
    for (wput *p = group; p; p = p->next) {
        wput *next = p->next;
        p->next = NULL;
        rc = commit_puts(w, p, NULL);
        p->next = next;
        if (rc != CL_OK)
            set_failed(p, rc, cl_errmsg());
    }
}

static void record_done(cl_store_writer *w, wput *p)
{
    if (p->status == CL_OK)
        return;
    fail_rec *f = &w->fails[w->nfails % FAIL_KEEP];
    f->ticket = p->ticket;
    f->status = p->status;
    snprintf(f->msg, sizeof f->msg, "%s", p->msg);
    w->nfails++;
    if (!w->flush_failed++) {
        w->flush_status = p->status;
        snprintf(w->flush_msg, sizeof w->flush_msg, "%s", p->msg);
    }
}

static void *writer_main(void *arg)
{
    cl_store_writer *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->head && !w->stop)
            pthread_cond_wait(&w->work, &w->mu);
        if (!w->head)
            break; /* stopped, nothing left */
        double age = mono_s() - w->head->t_queued;
        int now = w->stop || w->waiting_bytes >= w->commit_bytes ||
                  w->urgent_ticket >= w->head->ticket || age >= w->commit_s;
        if (!now) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            double until = (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec + (w->commit_s - age);
            ts.tv_sec = (time_t)until;
            ts.tv_nsec = (long)((until - (double)ts.tv_sec) * 1e9);
            pthread_cond_timedwait(&w->work, &w->mu, &ts);
            continue;
        }
        /* take up to commit_bytes (at least one put) */
        wput *group = w->head, *last = w->head;
        uint64_t bytes = last->bytes;
        while (last->next && bytes + last->next->bytes <= w->commit_bytes) {
            last = last->next;
            bytes += last->bytes;
        }
        w->head = last->next;
        if (!w->head)
            w->tail = NULL;
        last->next = NULL;
        w->waiting_bytes -= bytes;
        pthread_mutex_unlock(&w->mu);

        commit_group(w, group);
        for (wput *p = group; p; p = p->next)
            if (p->done)
                p->done(p->user, p->ticket, p->status, p->status ? p->msg : "");

        pthread_mutex_lock(&w->mu);
        for (wput *p = group; p; p = p->next)
            record_done(w, p);
        w->done_ticket = last->ticket;
        w->held_bytes -= bytes;
        pthread_cond_broadcast(&w->done);
        pthread_mutex_unlock(&w->mu);
        while (group) {
            wput *next = group->next;
            free_put(group);
            group = next;
        }
        pthread_mutex_lock(&w->mu);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

/* ---- the API ----------------------------------------------------------------------- */

int cl_store_writer_open(cl_store *st, const cl_store_writer_opts *opts, cl_store_writer **out)
{
    *out = NULL;
    if (st->rdonly)
        return store_fail(st->e, STORE_E_RDONLY, NULL);
    cl_store_writer_opts none = {0};
    const cl_store_writer_opts *o = opts ? opts : &none;
    cl_store_writer *w = calloc(1, sizeof *w);
    fail_rec *fails = calloc(FAIL_KEEP, sizeof *fails);
    if (!w || !fails) {
        free(w);
        free(fails);
        return cl_err(CL_ERR_NOMEM, "%s: out of memory", st->e->dir);
    }
    w->st = st;
    w->fails = fails;
    w->queue_bytes = o->queue_bytes ? o->queue_bytes : DEFAULT_QUEUE_BYTES;
    w->commit_bytes = o->commit_bytes ? o->commit_bytes : DEFAULT_COMMIT_BYTES;
    w->commit_s = 1e-3 * (o->commit_ms ? o->commit_ms : DEFAULT_COMMIT_MS);
    w->early_writeback = !o->no_early_writeback;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->work, &ca);
    pthread_cond_init(&w->done, NULL);
    pthread_condattr_destroy(&ca);
    int rc = pthread_create(&w->thread, NULL, writer_main, w);
    if (rc) {
        pthread_mutex_destroy(&w->mu);
        pthread_cond_destroy(&w->work);
        pthread_cond_destroy(&w->done);
        free(w->fails);
        free(w);
        return cl_err(CL_ERR_IO, "%s: cannot start the writer thread: %s", st->e->dir,
                      strerror(rc));
    }
    *out = w;
    return CL_OK;
}

int cl_store_writer_would_wait(cl_store_writer *w, uint64_t bytes)
{
    pthread_mutex_lock(&w->mu);
    int wait = !w->stop && w->held_bytes && w->held_bytes + bytes > w->queue_bytes;
    pthread_mutex_unlock(&w->mu);
    return wait;
}

int cl_store_writer_put(cl_store_writer *w, cl_store_kind kind, const cl_key *key,
                        const cl_store_info *info, const cl_store_piece *pieces, size_t npieces,
                        unsigned put_flags, cl_store_done_fn done, void *user, uint64_t *ticket)
{
    const char *dir = w->st->e->dir;
    char hex[33];
    cl_key_hex(key, hex);
    cl_store_info none = {0};
    if (!info)
        info = &none;
    if (!store_valid_kind((int)kind))
        return cl_err(CL_ERR_ARG, "%s: %s: invalid value kind %d", dir, hex, (int)kind);
    if (info->ndim > 4 || info->meta_bytes > CODEC_MAX_META_BYTES ||
        (info->meta_bytes && !info->meta))
        return cl_err(CL_ERR_ARG, "%s: %s: bad value info (ndim %u, meta %zu bytes)", dir, hex,
                      info->ndim, info->meta_bytes);
    uint64_t bytes = 0;
    for (size_t i = 0; i < npieces; i++) {
        if (pieces[i].bytes && !pieces[i].data)
            return cl_err(CL_ERR_ARG, "%s: %s: piece %zu has no data", dir, hex, i);
        bytes += pieces[i].bytes;
    }
    if (bytes > CODEC_MAX_VALUE_BYTES)
        return cl_err(CL_ERR_RANGE, "%s: %s: value of %llu bytes is too large (limit %llu)", dir,
                      hex, (unsigned long long)bytes, (unsigned long long)CODEC_MAX_VALUE_BYTES);

    /* room first, so that copies never exceed the bound */
    pthread_mutex_lock(&w->mu);
    while (!w->stop && w->held_bytes && w->held_bytes + bytes > w->queue_bytes) {
        if (w->urgent_ticket < w->last_ticket) { /* waiting for room: commit now */
            w->urgent_ticket = w->last_ticket;
            pthread_cond_signal(&w->work);
        }
        pthread_cond_wait(&w->done, &w->mu);
    }
    int stopped = w->stop;
    if (!stopped)
        w->held_bytes += bytes;
    pthread_mutex_unlock(&w->mu);
    if (stopped)
        return cl_err(CL_ERR_ARG, "%s: %s: writer is closing", dir, hex);

    wput *p = calloc(1, sizeof *p);
    int ok = p != NULL;
    if (ok) {
        p->kind = kind;
        p->key = *key;
        p->info = *info;
        p->info.meta = NULL;
        p->flags = put_flags;
        p->bytes = bytes;
        p->done = done;
        p->user = user;
        if (info->meta_bytes) {
            void *m = malloc(info->meta_bytes);
            if (m)
                memcpy(m, info->meta, info->meta_bytes);
            p->info.meta = m;
            ok = m != NULL;
        }
    }
    if (ok && (put_flags & CL_STORE_PUT_COPY)) {
        p->copy = malloc(bytes ? bytes : 1);
        p->pieces = malloc(sizeof *p->pieces);
        ok = p->copy && p->pieces;
        if (ok) {
            uint64_t off = 0;
            for (size_t i = 0; i < npieces; i++) {
                if (pieces[i].bytes)
                    memcpy((uint8_t *)p->copy + off, pieces[i].data, pieces[i].bytes);
                off += pieces[i].bytes;
            }
            p->pieces[0].data = p->copy;
            p->pieces[0].bytes = bytes;
            p->npieces = 1;
        }
    } else if (ok && npieces) {
        p->pieces = malloc(npieces * sizeof *p->pieces);
        ok = p->pieces != NULL;
        if (ok)
            memcpy(p->pieces, pieces, npieces * sizeof *pieces);
        p->npieces = npieces;
    }
    pthread_mutex_lock(&w->mu);
    if (!ok) {
        w->held_bytes -= bytes;
        pthread_cond_broadcast(&w->done);
        pthread_mutex_unlock(&w->mu);
        if (p)
            free_put(p);
        return cl_err(CL_ERR_NOMEM, "%s: %s: out of memory queueing %llu bytes", dir, hex,
                      (unsigned long long)bytes);
    }
    p->ticket = ++w->last_ticket;
    p->t_queued = mono_s();
    if (w->tail)
        w->tail->next = p;
    else
        w->head = p;
    w->tail = p;
    w->waiting_bytes += bytes;
    if (ticket)
        *ticket = p->ticket;
    pthread_cond_signal(&w->work);
    pthread_mutex_unlock(&w->mu);
    return CL_OK;
}

/* Waits (w->mu held) until every put <= ticket is done, asking for a commit now. */
static void wait_done(cl_store_writer *w, uint64_t ticket)
{
    if (w->urgent_ticket < ticket) {
        w->urgent_ticket = ticket;
        pthread_cond_signal(&w->work);
    }
    while (w->done_ticket < ticket)
        pthread_cond_wait(&w->done, &w->mu);
}

int cl_store_writer_wait(cl_store_writer *w, uint64_t ticket)
{
    const char *dir = w->st->e->dir;
    pthread_mutex_lock(&w->mu);
    if (ticket == 0 || ticket > w->last_ticket) {
        pthread_mutex_unlock(&w->mu);
        return cl_err(CL_ERR_ARG, "%s: writer: no put numbered %llu", dir,
                      (unsigned long long)ticket);
    }
    wait_done(w, ticket);
    int status = CL_OK;
    char msg[512] = "";
    size_t kept = w->nfails < FAIL_KEEP ? w->nfails : FAIL_KEEP;
    for (size_t i = 0; i < kept; i++) {
        const fail_rec *f = &w->fails[(w->nfails - 1 - i) % FAIL_KEEP];
        if (f->ticket == ticket) {
            status = f->status;
            snprintf(msg, sizeof msg, "%s", f->msg);
            break;
        }
    }
    /* older than every kept failure while failures were dropped: unknown */
    int unknown = status == CL_OK && w->nfails > FAIL_KEEP &&
                  ticket < w->fails[w->nfails % FAIL_KEEP].ticket;
    pthread_mutex_unlock(&w->mu);
    if (unknown)
        return cl_err(CL_ERR_ARG, "%s: writer: the outcome of put %llu is no longer known (more "
                      "than %d failures since; use a done callback)", dir,
                      (unsigned long long)ticket, FAIL_KEEP);
    return status ? cl_err(status, "%s", msg) : CL_OK;
}

int cl_store_writer_flush(cl_store_writer *w)
{
    pthread_mutex_lock(&w->mu);
    wait_done(w, w->last_ticket);
    int status = w->flush_status;
    uint64_t n = w->flush_failed;
    char msg[512];
    snprintf(msg, sizeof msg, "%s", w->flush_msg);
    w->flush_status = CL_OK;
    w->flush_failed = 0;
    pthread_mutex_unlock(&w->mu);
    if (!n)
        return CL_OK;
    if (n == 1)
        return cl_err(status, "%s", msg);
    return cl_err(status, "%s; and %llu more puts failed", msg, (unsigned long long)(n - 1));
}

int cl_store_writer_close(cl_store_writer *w)
{
    if (!w)
        return CL_OK;
    int rc = cl_store_writer_flush(w);
    pthread_mutex_lock(&w->mu);
    w->stop = 1;
    pthread_cond_broadcast(&w->work);
    pthread_cond_broadcast(&w->done);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->work);
    pthread_cond_destroy(&w->done);
    free(w->fails);
    free(w);
    return rc;
}
