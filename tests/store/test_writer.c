/* test_writer - write-behind: queued puts (copied or handed over) are committed in few
 * transactions, reported done in queue order and readable; the age threshold commits
 * without a flush; a full queue blocks the next put until there is room; a put that
 * cannot fit fails alone (the others of its group are stored) and is reported through
 * its callback, wait and flush; argument errors come back at once; puts from several
 * threads all land; a group large enough for early writeback lands intact, as without. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>
#include <time.h>

#include "testutil.h"
#include "storetest.h"

typedef struct {
    pthread_mutex_t mu;
    uint64_t last_ticket;
    int n, n_ok, out_of_order;
    int status[256];
    char msg[256][300];
    int freed; /* zero-copy buffers released in the callback */
} done_log;

typedef struct {
    done_log *log;
    uint8_t *buf; /* to free when done (zero-copy put), or NULL */
} put_ctx;

static void on_done(void *user, uint64_t ticket, int status, const char *message)
{
    put_ctx *c = user;
    done_log *l = c->log;
    pthread_mutex_lock(&l->mu);
    if (ticket <= l->last_ticket)
        l->out_of_order++;
    l->last_ticket = ticket;
    if (ticket < 256) {
        l->status[ticket] = status;
        snprintf(l->msg[ticket], sizeof l->msg[ticket], "%s", message);
    }
    l->n++;
    l->n_ok += status == CL_OK;
    if (c->buf) {
        free(c->buf);
        c->buf = NULL;
        l->freed++;
    }
    pthread_mutex_unlock(&l->mu);
}

/* Queues value i (payload `bytes`, meta = i) through the writer. */
static uint64_t wput(cl_store_writer *w, cl_store_kind kind, uint64_t i, size_t bytes, int copy,
                     put_ctx *ctx)
{
    uint8_t *p = malloc(bytes ? bytes : 1);
    st_fill(p, bytes, i);
    cl_key k = st_key(i);
    cl_store_info info = {0};
    info.tokens = (int64_t)i;
    info.meta = &i;
    info.meta_bytes = sizeof i;
    /* three pieces, split off the segment grid */
    size_t a = bytes / 3, b = bytes / 2;
    cl_store_piece pcs[3] = {{p, a}, {p + a, b - a}, {p + b, bytes - b}};
    ctx->buf = copy ? NULL : p;
    uint64_t ticket = 0;
    int rc = cl_store_writer_put(w, kind, &k, &info, pcs, 3, copy ? CL_STORE_PUT_COPY : 0,
                                 on_done, ctx, &ticket);
    if (rc != CL_OK)
        fail_msg("put %llu: %s", (unsigned long long)i, cl_errmsg());
    if (copy) {
        memset(p, 0xAB, bytes); /* the writer has its own copy */
        free(p);
    }
    return ticket;
}

static uint64_t last_txn(cl_store *st)
{
    cl_store_stats s;
    assert_int_equal(cl_store_stat(st, &s), CL_OK);
    return s.last_txn;
}

static void test_grouped_commits(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("writer_group");
    cl_store *st = st_open(dir, 0, 0, 0);
    cl_store_writer_opts o = {0};
    o.commit_bytes = 64 * MIB;
    o.commit_ms = 60000; /* only bytes and flush commit */
    cl_store_writer *w;
    assert_int_equal(cl_store_writer_open(st, &o, &w), CL_OK);
    done_log log = {0};
    pthread_mutex_init(&log.mu, NULL);
    put_ctx ctx[60];
    uint64_t txn0 = last_txn(st);
    for (uint64_t i = 1; i <= 60; i++) {
        ctx[i - 1].log = &log;
        size_t bytes = (size_t)(i % 5 == 0 ? 3 * MIB + i : 1000 * i);
        assert_int_equal(wput(w, (cl_store_kind)(1 + i % 3), i, bytes, i % 2, &ctx[i - 1]), i);
    }
    assert_int_equal(cl_store_writer_flush(w), CL_OK);
    assert_int_equal(log.n, 60);
    assert_int_equal(log.n_ok, 60);
    assert_int_equal(log.out_of_order, 0);
    assert_int_equal(log.freed, 30);
    /* 60 puts, ~38 MiB: one or two transactions, not 60 */
    uint64_t txns = last_txn(st) - txn0;
    print_message("60 puts in %llu transactions\n", (unsigned long long)txns);
    assert_true(txns >= 1 && txns <= 3);
    for (uint64_t i = 1; i <= 60; i++)
        assert_int_equal(st_check(st, (cl_store_kind)(1 + i % 3), i), CL_OK);
    assert_int_equal(cl_store_writer_wait(w, 17), CL_OK);
    assert_int_equal(cl_store_writer_wait(w, 61), CL_ERR_ARG);
    assert_int_equal(cl_store_writer_close(w), CL_OK);
    cl_store_verify_result r;
    assert_int_equal(cl_store_verify(st, NULL, NULL, NULL, &r), CL_OK);
    assert_int_equal(r.checked, 60);
    assert_int_equal(r.bad + r.index_fixed, 0);
    pthread_mutex_destroy(&log.mu);
    cl_store_close(st);
}

/* Nobody flushes: the age threshold commits. */
/* A group of 40 MiB (over the 32 MiB from which the disk is asked to start writing while
 * the commit copies) commits and reads back intact, with early writeback and without. */
static void test_large_group(void **state)
{
    (void)state;
    for (int late = 0; late < 2; late++) {
        const char *dir = tu_tmpdir(late ? "writer_large_late" : "writer_large");
        cl_store *st = st_open(dir, 0, 0, 0);
        cl_store_writer_opts o = {0};
        o.no_early_writeback = late;
        cl_store_writer *w;
        assert_int_equal(cl_store_writer_open(st, &o, &w), CL_OK);
        done_log log = {0};
        pthread_mutex_init(&log.mu, NULL);
        put_ctx ctx[2] = {{&log, NULL}, {&log, NULL}};
        wput(w, CL_STORE_DOC, 1, 40 * MIB, 0, &ctx[0]);
        wput(w, CL_STORE_DOC, 2, 1000, 1, &ctx[1]);
        assert_int_equal(cl_store_writer_close(w), CL_OK);
        assert_int_equal(log.n_ok, 2);
        assert_int_equal(st_check(st, CL_STORE_DOC, 1), CL_OK);
        assert_int_equal(st_check(st, CL_STORE_DOC, 2), CL_OK);
        pthread_mutex_destroy(&log.mu);
        cl_store_close(st);
    }
}

static void test_age_commit(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("writer_age");
    cl_store *st = st_open(dir, 0, 0, 0);
    cl_store_writer_opts o = {0};
    o.commit_ms = 20;
    cl_store_writer *w;
    assert_int_equal(cl_store_writer_open(st, &o, &w), CL_OK);
    done_log log = {0};
    pthread_mutex_init(&log.mu, NULL);
    put_ctx ctx = {&log, NULL};
    wput(w, CL_STORE_DOC, 5, 12345, 1, &ctx);
    int done = 0;
    for (int i = 0; i < 500 && !done; i++) { /* up to 5 s on a loaded machine */
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
        pthread_mutex_lock(&log.mu);
        done = log.n;
        pthread_mutex_unlock(&log.mu);
    }
    assert_int_equal(done, 1);
    assert_int_equal(st_check(st, CL_STORE_DOC, 5), CL_OK);
    assert_int_equal(cl_store_writer_close(w), CL_OK);
    pthread_mutex_destroy(&log.mu);
    cl_store_close(st);
}

typedef struct {
    cl_store_writer *w;
    put_ctx *ctx;
    uint64_t first, n;
    done_log *log;
    int put1_done_when_returned;
} thread_arg;

static void *put_thread(void *arg)
{
    thread_arg *a = arg;
    for (uint64_t i = a->first; i < a->first + a->n; i++)
        wput(a->w, CL_STORE_KV, i, 200000 + (size_t)i, (int)(i % 2), &a->ctx[i - a->first]);
    return NULL;
}

/* A put that does not fit in queue_bytes waits until the queue has room (the queued
 * put is committed at once rather than after commit_ms). */
static void test_back_pressure(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("writer_pressure");
    cl_store *st = st_open(dir, 0, 0, 0);
    cl_store_writer_opts o = {0};
    o.queue_bytes = 4 * MIB;
    o.commit_ms = 60000;
    cl_store_writer *w;
    assert_int_equal(cl_store_writer_open(st, &o, &w), CL_OK);
    done_log log = {0};
    pthread_mutex_init(&log.mu, NULL);
    put_ctx c1 = {&log, NULL}, c2 = {&log, NULL}, c3 = {&log, NULL};
    wput(w, CL_STORE_SNAP, 1, 3 * MIB, 0, &c1);
    assert_int_equal(log.n, 0); /* nothing asks for a commit yet */
    wput(w, CL_STORE_SNAP, 2, 3 * MIB, 0, &c2); /* blocks until 1 is done */
    pthread_mutex_lock(&log.mu);
    assert_int_equal(log.status[1], CL_OK);
    assert_true(log.n >= 1);
    pthread_mutex_unlock(&log.mu);
    wput(w, CL_STORE_SNAP, 3, 9 * MIB, 1, &c3); /* larger than the bound: goes alone */
    assert_int_equal(cl_store_writer_close(w), CL_OK);
    assert_int_equal(log.n, 3);
    for (uint64_t i = 1; i <= 3; i++)
        assert_int_equal(st_check(st, CL_STORE_SNAP, i), CL_OK);
    pthread_mutex_destroy(&log.mu);
    cl_store_close(st);
}

/* would_wait says whether a put would wait for room, without queueing anything: a
 * caller that must not wait (the server's engine loop) skips the put instead. */
static void test_would_wait(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("writer_would_wait");
    cl_store *st = st_open(dir, 0, 0, 0);
    cl_store_writer_opts o = {0};
    o.queue_bytes = 4 * MIB;
    o.commit_ms = 60000;
    o.commit_bytes = 1024 * MIB; /* nothing commits on its own during the test */
    cl_store_writer *w;
    assert_int_equal(cl_store_writer_open(st, &o, &w), CL_OK);
    assert_int_equal(cl_store_writer_would_wait(w, 9 * MIB), 0); /* empty: even a big one */
    done_log log = {0};
    pthread_mutex_init(&log.mu, NULL);
    put_ctx c1 = {&log, NULL};
    wput(w, CL_STORE_SNAP, 1, 3 * MIB, 0, &c1);
    assert_int_equal(cl_store_writer_would_wait(w, 1 * MIB), 0); /* 4 MiB: fits */
    assert_int_equal(cl_store_writer_would_wait(w, 1 * MIB + 1), 1);
    assert_int_equal(log.n, 0); /* asking queued and committed nothing */
    assert_int_equal(cl_store_writer_flush(w), CL_OK);
    assert_int_equal(cl_store_writer_would_wait(w, 9 * MIB), 0);
    assert_int_equal(cl_store_writer_close(w), CL_OK);
    assert_int_equal(st_check(st, CL_STORE_SNAP, 1), CL_OK);
    pthread_mutex_destroy(&log.mu);
    cl_store_close(st);
}

/* A put too large for the store fails alone: the puts queued around it are stored. */
static void test_failure_per_put(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("writer_fail");
    cl_store *st = st_open(dir, 0, 4 * MIB, 16 * MIB); /* map: 16 MiB at most */
    cl_store_writer_opts o = {0};
    o.commit_ms = 60000;
    cl_store_writer *w;
    assert_int_equal(cl_store_writer_open(st, &o, &w), CL_OK);
    done_log log = {0};
    pthread_mutex_init(&log.mu, NULL);
    put_ctx c[4] = {{&log, NULL}, {&log, NULL}, {&log, NULL}, {&log, NULL}};
    uint64_t t1 = wput(w, CL_STORE_KV, 1, 100000, 1, &c[0]);
    uint64_t t2 = wput(w, CL_STORE_KV, 2, 40 * MIB, 0, &c[1]);
    uint64_t t3 = wput(w, CL_STORE_KV, 3, 100000, 0, &c[2]);
    assert_int_equal(cl_store_writer_wait(w, t3), CL_OK);
    assert_int_equal(cl_store_writer_wait(w, t2), CL_ERR_FULL);
    char hex[33];
    cl_key k2 = st_key(2);
    assert_non_null(strstr(cl_errmsg(), dir));
    assert_non_null(strstr(cl_errmsg(), cl_key_hex(&k2, hex)));
    assert_int_equal(log.status[t2], CL_ERR_FULL);
    assert_non_null(strstr(log.msg[t2], "not stored"));
    assert_int_equal(log.status[t1], CL_OK);
    assert_int_equal(log.freed, 2); /* handed-over buffers released, failed or not */
    assert_int_equal(cl_store_writer_flush(w), CL_ERR_FULL);
    assert_non_null(strstr(cl_errmsg(), cl_key_hex(&k2, hex)));
    assert_int_equal(cl_store_writer_flush(w), CL_OK); /* reported once */
    assert_int_equal(st_check(st, CL_STORE_KV, 1), CL_OK);
    assert_int_equal(st_check(st, CL_STORE_KV, 3), CL_OK);
    assert_int_equal(st_has(st, CL_STORE_KV, 2), 0);
    wput(w, CL_STORE_KV, 4, 1000, 1, &c[3]);

    /* argument errors: at once, nothing queued */
    cl_key k = st_key(9);
    uint8_t b[16] = {0};
    cl_store_piece bad = {NULL, 10}, good = {b, sizeof b};
    cl_store_info info = {0};
    info.ndim = 5;
    uint64_t t = 0;
    assert_int_equal(cl_store_writer_put(w, (cl_store_kind)9, &k, NULL, &good, 1, 0, NULL, NULL, &t),
                     CL_ERR_ARG);
    assert_int_equal(cl_store_writer_put(w, CL_STORE_KV, &k, &info, &good, 1, 0, NULL, NULL, &t),
                     CL_ERR_ARG);
    assert_int_equal(cl_store_writer_put(w, CL_STORE_KV, &k, NULL, &bad, 1, 0, NULL, NULL, &t),
                     CL_ERR_ARG);
    assert_non_null(strstr(cl_errmsg(), dir));
    assert_int_equal(t, 0);
    assert_int_equal(cl_store_writer_close(w), CL_OK);
    assert_int_equal(log.n, 4);
    assert_int_equal(st_check(st, CL_STORE_KV, 4), CL_OK);
    cl_store_verify_result r;
    assert_int_equal(cl_store_verify(st, NULL, NULL, NULL, &r), CL_OK);
    assert_int_equal(r.checked, 3);
    assert_int_equal(r.bad + r.index_fixed, 0);
    pthread_mutex_destroy(&log.mu);
    cl_store_close(st);

    /* a read-only handle has no writer */
    cl_store_opts ro = {0};
    ro.flags = CL_STORE_RDONLY;
    assert_int_equal(cl_store_open(dir, &ro, &st), CL_OK);
    assert_int_equal(cl_store_writer_open(st, NULL, &w), CL_ERR_ARG);
    assert_non_null(strstr(cl_errmsg(), dir));
    cl_store_close(st);
}

static void test_threads(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("writer_threads");
    cl_store *st = st_open(dir, 0, 0, 0);
    cl_store_writer_opts o = {0};
    o.queue_bytes = 2 * MIB; /* back-pressure on every thread */
    o.commit_bytes = 1 * MIB;
    cl_store_writer *w;
    assert_int_equal(cl_store_writer_open(st, &o, &w), CL_OK);
    done_log log = {0};
    pthread_mutex_init(&log.mu, NULL);
    enum { T = 4, N = 25 };
    put_ctx ctx[T][N];
    thread_arg args[T];
    pthread_t tid[T];
    for (int t = 0; t < T; t++) {
        for (int i = 0; i < N; i++)
            ctx[t][i] = (put_ctx){&log, NULL};
        args[t] = (thread_arg){w, ctx[t], 1000 + (uint64_t)t * N, N, &log, 0};
        assert_int_equal(pthread_create(&tid[t], NULL, put_thread, &args[t]), 0);
    }
    for (int t = 0; t < T; t++)
        pthread_join(tid[t], NULL);
    assert_int_equal(cl_store_writer_close(w), CL_OK);
    assert_int_equal(log.n, T * N);
    assert_int_equal(log.n_ok, T * N);
    assert_int_equal(log.out_of_order, 0);
    for (uint64_t i = 1000; i < 1000 + T * N; i++)
        assert_int_equal(st_check(st, CL_STORE_KV, i), CL_OK);
    pthread_mutex_destroy(&log.mu);
    cl_store_close(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grouped_commits), cmocka_unit_test(test_age_commit),
        cmocka_unit_test(test_back_pressure),   cmocka_unit_test(test_failure_per_put),
        cmocka_unit_test(test_threads),         cmocka_unit_test(test_would_wait),
        cmocka_unit_test(test_large_group),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
