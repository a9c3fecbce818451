/* test_lru - the size cap evicts least recently used unpinned entries first, counting
 * reads as uses; pins are never evicted; gc, the saved cap, a batch larger than the
 * cap, and reads that are too recent to be recorded again. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "testutil.h"
#include "storetest.h"

#define VAL 100000u                        /* payload bytes of each test value */
#define STORED (128u + 64u + 64u + VAL) /* its stored size (header, meta span, segment table) */

static void sleep_ms(int ms)
{
    struct timespec ts = {0, ms * 1000000L};
    nanosleep(&ts, NULL);
}

static int present(cl_store *st, uint64_t i) { return st_has(st, CL_STORE_KV, i); }

/* Cap of 5 values: the 6th put evicts the oldest; a read makes an entry recent; a
 * pinned entry survives any number of puts; unpinning makes it evictable again. */
static void test_eviction_order_and_pins(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("lru_order");
    cl_store *st = st_open(dir, 5 * STORED, 0, 0);
    for (uint64_t i = 1; i <= 5; i++) {
        assert_int_equal(st_put(st, CL_STORE_KV, i, VAL, 0), CL_OK);
        sleep_ms(2);
    }
    assert_int_equal(st_check(st, CL_STORE_KV, 1), CL_OK); /* 1 is now the most recent */
    sleep_ms(2);
    assert_int_equal(st_put(st, CL_STORE_KV, 6, VAL, 0), CL_OK);
    assert_int_equal(present(st, 2), 0); /* the oldest unused */
    assert_int_equal(present(st, 1), 1);
    for (uint64_t i = 3; i <= 6; i++)
        assert_int_equal(present(st, i), 1);

    cl_key k3 = st_key(3);
    assert_int_equal(cl_store_pin(st, CL_STORE_KV, &k3, 1), CL_OK);
    for (uint64_t i = 7; i <= 12; i++) {
        sleep_ms(2);
        assert_int_equal(st_put(st, CL_STORE_KV, i, VAL, 0), CL_OK);
    }
    /* 3 pinned + the 4 newest */
    assert_int_equal(present(st, 3), 1);
    for (uint64_t i = 9; i <= 12; i++)
        assert_int_equal(present(st, i), 1);
    for (uint64_t i = 4; i <= 8; i++)
        assert_int_equal(present(st, i), 0);
    assert_int_equal(present(st, 1), 0);
    cl_store_stats s;
    assert_int_equal(cl_store_stat(st, &s), CL_OK);
    assert_int_equal(s.total_count, 5);
    assert_true(s.total_bytes <= 5 * STORED);
    assert_int_equal(s.pinned_count, 1);
    assert_int_equal(s.pinned_bytes, STORED);

    /* unpinned: it counts as used now, so the older ones go first */
    assert_int_equal(cl_store_pin(st, CL_STORE_KV, &k3, 0), CL_OK);
    sleep_ms(2);
    assert_int_equal(st_put(st, CL_STORE_KV, 13, VAL, 0), CL_OK);
    assert_int_equal(present(st, 9), 0);
    assert_int_equal(present(st, 3), 1);
    cl_store_close(st);
}

/* gc evicts down to a given cap (oldest first), leaves pins, reports counts; with all
 * that remains pinned, the total may stay above the cap. */
static void test_gc(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("lru_gc");
    cl_store *st = st_open(dir, 0, 0, 0);
    for (uint64_t i = 1; i <= 6; i++) {
        assert_int_equal(st_put(st, CL_STORE_SNAP, i, VAL, i == 2 ? CL_STORE_PUT_PIN : 0), CL_OK);
        sleep_ms(2);
    }
    uint64_t n = 0, bytes = 0;
    assert_int_equal(cl_store_gc(st, 0, &n, &bytes), CL_OK); /* no cap: nothing */
    assert_int_equal(n, 0);
    assert_int_equal(cl_store_gc(st, 3 * STORED, &n, &bytes), CL_OK);
    assert_int_equal(n, 3);
    assert_int_equal(bytes, 3 * STORED);
    assert_int_equal(st_has(st, CL_STORE_SNAP, 1), 0);
    assert_int_equal(st_has(st, CL_STORE_SNAP, 2), 1);
    assert_int_equal(st_has(st, CL_STORE_SNAP, 3), 0);
    assert_int_equal(st_has(st, CL_STORE_SNAP, 4), 0);
    assert_int_equal(st_has(st, CL_STORE_SNAP, 5), 1);
    assert_int_equal(st_has(st, CL_STORE_SNAP, 6), 1);
    assert_int_equal(cl_store_gc(st, 1, &n, &bytes), CL_OK);
    assert_int_equal(n, 2);
    cl_store_stats s;
    assert_int_equal(cl_store_stat(st, &s), CL_OK);
    assert_int_equal(s.total_count, 1);
    assert_int_equal(s.total_bytes, STORED); /* the pinned one, above the cap */
    cl_store_close(st);
}

/* A cap saved in the store applies to handles opened without one; an explicit cap
 * overrides it; removing it removes the limit. */
static void test_saved_cap(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("lru_saved");
    cl_store *st = st_open(dir, 0, 0, 0);
    assert_int_equal(cl_store_set_max_bytes(st, 2 * STORED), CL_OK);
    cl_store_close(st);
    st = st_open(dir, 0, 0, 0);
    cl_store_stats s;
    assert_int_equal(cl_store_stat(st, &s), CL_OK);
    assert_int_equal(s.max_bytes, 2 * STORED);
    assert_int_equal(s.saved_max_bytes, 2 * STORED);
    for (uint64_t i = 1; i <= 4; i++) {
        assert_int_equal(st_put(st, CL_STORE_KV, i, VAL, 0), CL_OK);
        sleep_ms(2);
    }
    assert_int_equal(cl_store_stat(st, &s), CL_OK);
    assert_int_equal(s.total_count, 2);
    cl_store_close(st);
    st = st_open(dir, 4 * STORED, 0, 0); /* explicit cap wins */
    for (uint64_t i = 5; i <= 7; i++)
        assert_int_equal(st_put(st, CL_STORE_KV, i, VAL, 0), CL_OK);
    assert_int_equal(cl_store_stat(st, &s), CL_OK);
    assert_int_equal(s.total_count, 4);
    assert_int_equal(s.max_bytes, 4 * STORED);
    assert_int_equal(cl_store_set_max_bytes(st, 0), CL_OK);
    for (uint64_t i = 8; i <= 10; i++)
        assert_int_equal(st_put(st, CL_STORE_KV, i, VAL, 0), CL_OK);
    assert_int_equal(cl_store_stat(st, &s), CL_OK);
    assert_int_equal(s.total_count, 7);
    assert_int_equal(s.saved_max_bytes, 0);
    cl_store_close(st);
}

/* A batch that alone exceeds the cap fails CL_ERR_FULL and changes nothing. */
static void test_batch_over_cap(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("lru_overcap");
    cl_store *st = st_open(dir, 3 * STORED, 0, 0);
    assert_int_equal(st_put(st, CL_STORE_KV, 1, VAL, 0), CL_OK);
    assert_int_equal(st_put(st, CL_STORE_KV, 2, 4 * VAL, 0), CL_ERR_FULL);
    assert_non_null(strstr(cl_errmsg(), "size cap"));
    assert_int_equal(st_check(st, CL_STORE_KV, 1), CL_OK);
    assert_int_equal(st_has(st, CL_STORE_KV, 2), 0);
    cl_store_close(st);
}

/* With the default touch interval (60 s), a read right after a write is not recorded
 * again (reads stay cheap), so it does not change the eviction order; a read-only
 * handle never records reads. */
static void test_touch_interval(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("lru_interval");
    cl_store_opts o = {0};
    o.max_bytes = 2 * STORED;
    cl_store *st;
    assert_int_equal(cl_store_open(dir, &o, &st), CL_OK);
    assert_int_equal(st_put(st, CL_STORE_KV, 1, VAL, 0), CL_OK);
    sleep_ms(2);
    assert_int_equal(st_put(st, CL_STORE_KV, 2, VAL, 0), CL_OK);
    assert_int_equal(st_check(st, CL_STORE_KV, 1), CL_OK); /* too recent: not recorded */
    sleep_ms(2);
    assert_int_equal(st_put(st, CL_STORE_KV, 3, VAL, 0), CL_OK);
    assert_int_equal(st_has(st, CL_STORE_KV, 1), 0);
    assert_int_equal(st_has(st, CL_STORE_KV, 2), 1);
    cl_store_close(st);
}

typedef struct {
    int64_t use[3];
} uses;

static int collect_use(void *user, const cl_store_entry *e)
{
    uses *u = user;
    for (uint64_t i = 1; i <= 2; i++) {
        cl_key k = st_key(i);
        if (cl_key_eq(&k, &e->key))
            u->use[i] = e->last_use_ns;
    }
    return 0;
}

/* A read is recorded by cl_store_flush (or the next write): last use moves forward. */
static void test_flush_records_reads(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("lru_flush");
    cl_store *st = st_open(dir, 0, 0, 0);
    assert_int_equal(st_put(st, CL_STORE_KV, 1, 100, 0), CL_OK);
    sleep_ms(2);
    assert_int_equal(st_put(st, CL_STORE_KV, 2, 100, 0), CL_OK);
    uses before = {{0}}, after = {{0}};
    assert_int_equal(cl_store_list(st, CL_STORE_KV, collect_use, &before), CL_OK);
    assert_true(before.use[1] < before.use[2]);
    sleep_ms(2);
    assert_int_equal(st_check(st, CL_STORE_KV, 1), CL_OK);
    assert_int_equal(cl_store_list(st, CL_STORE_KV, collect_use, &after), CL_OK);
    assert_true(after.use[1] == before.use[1]); /* not written yet: no write lock taken */
    assert_int_equal(cl_store_flush(st), CL_OK);
    assert_int_equal(cl_store_list(st, CL_STORE_KV, collect_use, &after), CL_OK);
    assert_true(after.use[1] > before.use[2]);
    cl_store_close(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_eviction_order_and_pins),
        cmocka_unit_test(test_gc),
        cmocka_unit_test(test_saved_cap),
        cmocka_unit_test(test_batch_over_cap),
        cmocka_unit_test(test_touch_interval),
        cmocka_unit_test(test_flush_records_reads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
