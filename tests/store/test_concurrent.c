/* test_concurrent - several processes (2 writers growing the map, 2 readers with small
 * maps that must adopt the growth) and several threads sharing one handle read and
 * write at once; every value read is whole and right, verify is clean afterwards. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"
#include "storetest.h"

#define BASE_N 16
#define RUN_S 1.2

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static size_t size_of(uint64_t i) { return (size_t)(32 * 1024 + (i * 7919) % (900 * 1024)); }

/* Reads base values and whatever the writers have written; exit code 0 = all good. */
static int reader(const char *dir, unsigned seed)
{
    cl_store *st = st_open(dir, 0, 1 * MIB, 0); /* the smallest map: must adopt growth */
    double t0 = now_s();
    unsigned long reads = 0;
    while (now_s() - t0 < RUN_S) {
        seed = seed * 1103515245u + 12345u;
        uint64_t i = (seed >> 8) % BASE_N;
        if (st_check(st, CL_STORE_KV, i) != CL_OK)
            return 20;
        uint64_t w = 1000 + (seed >> 4) % 80; /* a writer key: absent or right */
        int rc = st_check(st, CL_STORE_SNAP, w);
        if (rc != CL_OK && rc != CL_ERR_NOTFOUND)
            return 21;
        reads++;
    }
    cl_store_close(st);
    return reads > 10 ? 0 : 22;
}

static int writer(const char *dir, uint64_t first)
{
    cl_store *st = st_open(dir, 0, 1 * MIB, 0);
    for (uint64_t i = first; i < first + 40; i++) {
        int rc = st_put(st, CL_STORE_SNAP, i, size_of(i), 0);
        if (rc != CL_OK) {
            print_message("writer: %s\n", cl_errmsg());
            return 30;
        }
    }
    cl_store_close(st);
    return 0;
}

static void test_processes(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("concurrent_proc");
    cl_store *st = st_open(dir, 0, 1 * MIB, 0);
    for (uint64_t i = 0; i < BASE_N; i++)
        assert_int_equal(st_put(st, CL_STORE_KV, i, size_of(i), 0), CL_OK);
    cl_store_close(st);
    pid_t pids[4];
    for (int p = 0; p < 4; p++) {
        pids[p] = fork();
        assert_true(pids[p] >= 0);
        if (pids[p] == 0)
            _exit(p < 2 ? reader(dir, 17u + (unsigned)p) : writer(dir, 1000 + 40 * (uint64_t)(p - 2)));
    }
    for (int p = 0; p < 4; p++) {
        int status;
        assert_int_equal(waitpid(pids[p], &status, 0), pids[p]);
        assert_true(WIFEXITED(status));
        if (WEXITSTATUS(status))
            fail_msg("child %d exited with %d", p, WEXITSTATUS(status));
    }
    st = st_open(dir, 0, 0, 0);
    for (uint64_t i = 1000; i < 1080; i++)
        assert_int_equal(st_check(st, CL_STORE_SNAP, i), CL_OK);
    cl_store_verify_result r;
    assert_int_equal(cl_store_verify(st, NULL, NULL, NULL, &r), CL_OK);
    assert_int_equal(r.checked, BASE_N + 80);
    assert_int_equal(r.bad + r.index_fixed, 0);
    cl_store_close(st);
}

typedef struct {
    cl_store *st;
    unsigned seed;
    int failed;
    _Atomic int *stop;
} thread_arg;

static void *reader_thread(void *p)
{
    thread_arg *a = p;
    while (!*a->stop) {
        a->seed = a->seed * 1103515245u + 12345u;
        /* two read transactions at once on this thread */
        cl_store_txn *t1, *t2;
        if (cl_store_txn_begin(a->st, &t1) || cl_store_txn_begin(a->st, &t2)) {
            a->failed = 1;
            break;
        }
        cl_key k = st_key((a->seed >> 8) % BASE_N);
        cl_store_value v1, v2;
        if (cl_store_get(t1, CL_STORE_KV, &k, &v1) || cl_store_get(t2, CL_STORE_KV, &k, &v2) ||
            v1.payload_bytes != v2.payload_bytes)
            a->failed = 1;
        cl_store_txn_end(t2);
        cl_store_txn_end(t1);
        if (st_check(a->st, CL_STORE_KV, (a->seed >> 4) % BASE_N) != CL_OK)
            a->failed = 1;
    }
    return NULL;
}

/* One handle, three reader threads, the main thread writing enough to grow a 1 MiB map
 * several times (each growth waits for the readers' transactions to end). */
static void test_threads(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("concurrent_threads");
    cl_store *st = st_open(dir, 0, 1 * MIB, 0);
    for (uint64_t i = 0; i < BASE_N; i++)
        assert_int_equal(st_put(st, CL_STORE_KV, i, size_of(i) / 4, 0), CL_OK);
    _Atomic int stop = 0;
    thread_arg args[3];
    pthread_t th[3];
    for (int i = 0; i < 3; i++) {
        args[i] = (thread_arg){st, 5u + (unsigned)i, 0, &stop};
        assert_int_equal(pthread_create(&th[i], NULL, reader_thread, &args[i]), 0);
    }
    cl_store_stats s0, s1;
    assert_int_equal(cl_store_stat(st, &s0), CL_OK);
    for (uint64_t i = 2000; i < 2030; i++)
        assert_int_equal(st_put(st, CL_STORE_DOC, i, MIB, 0), CL_OK);
    stop = 1;
    for (int i = 0; i < 3; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(args[i].failed, 0);
    }
    assert_int_equal(cl_store_stat(st, &s1), CL_OK);
    assert_true(s1.map_bytes > s0.map_bytes);
    for (uint64_t i = 2000; i < 2030; i++)
        assert_int_equal(st_check(st, CL_STORE_DOC, i), CL_OK);
    cl_store_close(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_processes),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
