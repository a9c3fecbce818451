/* test_mapfull - MDB_MAP_FULL never crashes: a small map grows; a map that may not
 * grow makes room by evicting LRU entries; with nothing evictable (or a value bigger
 * than the map can be) the write fails CL_ERR_FULL cleanly and the store stays intact. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "testutil.h"
#include "storetest.h"

/* 2 MiB map, growth allowed: 24 x 1 MiB fit; the map grew; all readable. */
static void test_growth(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("mapfull_grow");
    cl_store *st = st_open(dir, 0, 2 * MIB, 256 * MIB);
    cl_store_stats s;
    assert_int_equal(cl_store_stat(st, &s), CL_OK);
    uint64_t map0 = s.map_bytes;
    assert_true(map0 <= 2 * MIB);
    for (uint64_t i = 0; i < 24; i++)
        assert_int_equal(st_put(st, CL_STORE_KV, i, MIB, 0), CL_OK);
    assert_int_equal(cl_store_stat(st, &s), CL_OK);
    assert_true(s.map_bytes > 24 * MIB);
    assert_true(s.map_bytes <= 256 * MIB);
    for (uint64_t i = 0; i < 24; i++)
        assert_int_equal(st_check(st, CL_STORE_KV, i), CL_OK);
    cl_store_close(st);
    /* a reopen with a small map request keeps the data */
    st = st_open(dir, 0, 2 * MIB, 0);
    assert_int_equal(st_check(st, CL_STORE_KV, 23), CL_OK);
    cl_store_close(st);
}

/* Fixed 8 MiB map, no cap: writing 40 x 512 KiB evicts old entries to make room. */
static void test_evict_when_map_fixed(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("mapfull_evict");
    cl_store *st = st_open(dir, 0, 8 * MIB, 8 * MIB);
    for (uint64_t i = 0; i < 40; i++) {
        int rc = st_put(st, CL_STORE_SNAP, i, 512 * 1024, 0);
        if (rc != CL_OK)
            fail_msg("put %llu: %s", (unsigned long long)i, cl_errmsg());
    }
    assert_int_equal(st_check(st, CL_STORE_SNAP, 39), CL_OK);
    assert_int_equal(st_has(st, CL_STORE_SNAP, 0), 0);
    cl_store_stats s;
    assert_int_equal(cl_store_stat(st, &s), CL_OK);
    assert_true(s.map_bytes <= 8 * MIB);
    assert_true(s.total_count >= 4 && s.total_count < 40);
    cl_store_verify_result r;
    assert_int_equal(cl_store_verify(st, NULL, NULL, NULL, &r), CL_OK);
    assert_int_equal(r.bad, 0);
    assert_int_equal(r.index_fixed, 0);
    cl_store_close(st);
}

/* Fixed 4 MiB map: an 8 MiB value fails CL_ERR_FULL (message names the store) without
 * evicting anything; with everything pinned, a value that needs room fails too; the
 * store keeps working. */
static void test_full_is_clean(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("mapfull_full");
    cl_store *st = st_open(dir, 0, 4 * MIB, 4 * MIB);
    assert_int_equal(st_put(st, CL_STORE_KV, 1, 1000, 0), CL_OK);
    assert_int_equal(st_put(st, CL_STORE_KV, 2, 8 * MIB, 0), CL_ERR_FULL);
    assert_non_null(strstr(cl_errmsg(), dir));
    assert_int_equal(st_check(st, CL_STORE_KV, 1), CL_OK);
    /* fill with pinned values until full */
    uint64_t i = 10;
    int rc;
    while ((rc = st_put(st, CL_STORE_KV, i, 256 * 1024, CL_STORE_PUT_PIN)) == CL_OK && i < 100)
        i++;
    assert_int_equal(rc, CL_ERR_FULL);
    assert_true(i > 12);
    cl_key k1 = st_key(1);
    if (st_has(st, CL_STORE_KV, 1)) /* the unpinned one may have been evicted for room */
        assert_int_equal(cl_store_pin(st, CL_STORE_KV, &k1, 1), CL_OK);
    assert_int_equal(st_put(st, CL_STORE_KV, 200, 512 * 1024, 0), CL_ERR_FULL);
    for (uint64_t j = 10; j < i; j++)
        assert_int_equal(st_check(st, CL_STORE_KV, j), CL_OK);
    /* deleting makes room again */
    for (uint64_t j = 10; j < i; j++) {
        cl_key k = st_key(j);
        assert_int_equal(cl_store_del(st, CL_STORE_KV, &k), CL_OK);
    }
    assert_int_equal(st_put(st, CL_STORE_KV, 200, 512 * 1024, 0), CL_OK);
    cl_store_verify_result r;
    assert_int_equal(cl_store_verify(st, NULL, NULL, NULL, &r), CL_OK);
    assert_int_equal(r.bad + r.index_fixed, 0);
    cl_store_close(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_growth),
        cmocka_unit_test(test_evict_when_map_fixed),
        cmocka_unit_test(test_full_is_clean),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
