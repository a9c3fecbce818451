/* test_corrupt - a damaged value is never returned: get says CL_ERR_CORRUPT naming the
 * store dir and the key, the entry is gone afterwards, verify (API and CLI) reports and
 * removes it. Damage is made by flipping bytes of data.mdb with the store closed, and
 * by writing bad values with LMDB directly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <cmocka.h>
#include <fcntl.h>
#include <lmdb.h>
#include <unistd.h>

#include "common/fileio.h"
#include "testutil.h"
#include "storetest.h"
#include "store/codec.h"

/* The 64 payload bytes at `at` of value i (as st_put writes it). */
static void pattern_of(uint64_t i, size_t bytes, size_t at, uint8_t out[64])
{
    uint8_t *p = malloc(bytes);
    st_fill(p, bytes, i);
    memcpy(out, p + at, 64);
    free(p);
}

/* Flipped payload bytes (big value in overflow pages, small value inside a leaf page)
 * and a flipped meta blob: get fails CORRUPT, the entry is dropped, the rest is fine. */
static void test_flipped_bytes(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("corrupt_flip");
    cl_store *st = st_open(dir, 0, 0, 0);
    assert_int_equal(st_put(st, CL_STORE_KV, 1, 256 * 1024, 0), CL_OK);
    assert_int_equal(st_put(st, CL_STORE_SNAP, 2, 200, 0), CL_OK);
    uint8_t meta[100];
    st_fill(meta, sizeof meta, 333);
    cl_store_info info = {0};
    info.meta = meta;
    info.meta_bytes = sizeof meta;
    uint8_t payload[1000];
    st_fill(payload, sizeof payload, 3);
    cl_store_piece pc = {payload, sizeof payload};
    cl_key k3 = st_key(3);
    assert_int_equal(cl_store_put(st, CL_STORE_DOC, &k3, &info, &pc, 1, 0), CL_OK);
    assert_int_equal(st_put(st, CL_STORE_KV, 4, 5000, 0), CL_OK);
    cl_store_close(st);

    uint8_t pat[64];
    pattern_of(1, 256 * 1024, 100000, pat);
    assert_true(st_flip_in_file(dir, pat, 64) >= 1);
    pattern_of(2, 200, 100, pat);
    assert_true(st_flip_in_file(dir, pat, 64) >= 1);
    assert_true(st_flip_in_file(dir, meta + 20, 64) >= 1);

    st = st_open(dir, 0, 0, 0);
    char hex[33];
    cl_key k1 = st_key(1);
    cl_store_txn *t;
    assert_int_equal(cl_store_txn_begin(st, &t), CL_OK);
    assert_int_equal(cl_store_has(t, CL_STORE_KV, &k1), CL_OK); /* header is intact */
    cl_store_value v;
    memset(&v, 0, sizeof v);
    assert_int_equal(cl_store_get(t, CL_STORE_KV, &k1, &v), CL_ERR_CORRUPT);
    assert_null(v.payload);
    assert_non_null(strstr(cl_errmsg(), dir));
    assert_non_null(strstr(cl_errmsg(), cl_key_hex(&k1, hex)));
    assert_non_null(strstr(cl_errmsg(), "payload checksum"));
    cl_store_txn_end(t); /* drops it */
    assert_int_equal(st_has(st, CL_STORE_KV, 1), 0);

    uint8_t out[1000];
    assert_int_equal(st_check(st, CL_STORE_SNAP, 2), CL_ERR_CORRUPT);
    assert_int_equal(st_has(st, CL_STORE_SNAP, 2), 0);
    assert_int_equal(cl_store_read(st, CL_STORE_DOC, &k3, out, sizeof out, NULL), CL_ERR_CORRUPT);
    assert_non_null(strstr(cl_errmsg(), "meta checksum"));
    assert_int_equal(cl_store_read(st, CL_STORE_DOC, &k3, out, sizeof out, NULL), CL_ERR_NOTFOUND);
    assert_int_equal(st_check(st, CL_STORE_KV, 4), CL_OK);

    cl_store_stats s;
    assert_int_equal(cl_store_stat(st, &s), CL_OK);
    assert_int_equal(s.total_count, 1);
    cl_store_verify_result r;
    assert_int_equal(cl_store_verify(st, NULL, NULL, NULL, &r), CL_OK);
    assert_int_equal(r.checked, 1);
    assert_int_equal(r.bad, 0);
    assert_int_equal(r.index_fixed, 0);
    cl_store_close(st);
}

typedef struct {
    int n;
    cl_key key;
    char problem[128];
} bad_seen;

static void on_bad(void *user, cl_store_kind kind, const cl_key *key, const char *problem)
{
    bad_seen *b = user;
    (void)kind;
    b->n++;
    b->key = *key;
    snprintf(b->problem, sizeof b->problem, "%s", problem);
}

/* verify finds a damaged entry nobody read, reports it, removes it; a read-only handle
 * reports without removing; the CLI verify exits 1 with valid JSON, then 0. */
static void test_verify_finds_damage(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("corrupt_verify");
    cl_store *st = st_open(dir, 0, 0, 0);
    for (uint64_t i = 5; i <= 8; i++)
        assert_int_equal(st_put(st, CL_STORE_KV, i, 64 * 1024, 0), CL_OK);
    cl_store_close(st);
    uint8_t pat[64];
    pattern_of(5, 64 * 1024, 30000, pat);
    assert_true(st_flip_in_file(dir, pat, 64) >= 1);

    /* read-only: reported, kept, never returned */
    cl_store_opts o = {0};
    o.flags = CL_STORE_RDONLY;
    assert_int_equal(cl_store_open(dir, &o, &st), CL_OK);
    assert_int_equal(st_check(st, CL_STORE_KV, 5), CL_ERR_CORRUPT);
    bad_seen b = {0};
    cl_store_verify_result r;
    assert_int_equal(cl_store_verify(st, on_bad, NULL, &b, &r), CL_OK);
    assert_int_equal(r.bad, 1);
    assert_int_equal(r.removed, 0);
    cl_store_close(st);

    st = st_open(dir, 0, 0, 0);
    memset(&b, 0, sizeof b);
    assert_int_equal(cl_store_verify(st, on_bad, NULL, &b, &r), CL_OK);
    assert_int_equal(r.checked, 4);
    assert_int_equal(r.bad, 1);
    assert_int_equal(r.removed, 1);
    assert_int_equal(r.index_fixed, 0);
    assert_int_equal(b.n, 1);
    cl_key k5 = st_key(5);
    assert_true(cl_key_eq(&b.key, &k5));
    assert_non_null(strstr(b.problem, "payload checksum"));
    assert_int_equal(cl_store_verify(st, NULL, NULL, NULL, &r), CL_OK);
    assert_int_equal(r.checked, 3);
    assert_int_equal(r.bad, 0);
    for (uint64_t i = 6; i <= 8; i++)
        assert_int_equal(st_check(st, CL_STORE_KV, i), CL_OK);
    cl_store_close(st);

    /* the CLI */
    pattern_of(7, 64 * 1024, 1000, pat);
    assert_true(st_flip_in_file(dir, pat, 64) >= 1);
    char *out = NULL;
    int rc = tu_runf(&out, "'%s' store verify --store '%s' --json 2>/dev/null", tu_bin(), dir);
    assert_int_equal(rc, 1);
    cJSON *j = cJSON_Parse(out);
    assert_non_null(j);
    assert_int_equal(cJSON_GetObjectItem(j, "bad")->valueint, 1);
    assert_int_equal(cJSON_GetObjectItem(j, "removed")->valueint, 1);
    assert_false(cJSON_IsTrue(cJSON_GetObjectItem(j, "ok")));
    cJSON *arr = cJSON_GetObjectItem(j, "bad_entries");
    assert_int_equal(cJSON_GetArraySize(arr), 1);
    char hex[33];
    cl_key k7 = st_key(7);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(arr, 0), "key")->valuestring,
                        cl_key_hex(&k7, hex));
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(arr, 0), "table")->valuestring,
                        "blocks");
    cJSON_Delete(j);
    free(out);
    /* text mode: one error line naming the store, the table and the key */
    pattern_of(8, 64 * 1024, 2000, pat);
    assert_true(st_flip_in_file(dir, pat, 64) >= 1);
    rc = tu_runf(&out, "'%s' store verify --store '%s' 2>&1 >/dev/null", tu_bin(), dir);
    assert_int_equal(rc, 1);
    cl_key k8 = st_key(8);
    char want[4400];
    snprintf(want, sizeof want, "collage: %s: blocks %s: payload checksum mismatch\n", dir,
             cl_key_hex(&k8, hex));
    assert_string_equal(out, want);
    free(out);
    rc = tu_runf(&out, "'%s' store verify --store '%s' --json", tu_bin(), dir);
    assert_int_equal(rc, 0);
    j = cJSON_Parse(out);
    assert_non_null(j);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(j, "ok")));
    assert_int_equal(cJSON_GetObjectItem(j, "checked")->valueint, 1);
    cJSON_Delete(j);
    free(out);
}

/* Values damaged through LMDB itself (garbage, a value under the wrong key, a truncated
 * value, a flipped header byte): has says NOTFOUND, get says CORRUPT with the reason. */
static void test_bad_values_written_directly(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("corrupt_direct");
    cl_store *st = st_open(dir, 0, 0, 0);
    for (uint64_t i = 8; i <= 13; i++)
        assert_int_equal(st_put(st, CL_STORE_KV, i, 3000, 0), CL_OK);
    cl_store_close(st);

    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 16), 0);
    assert_int_equal(mdb_env_open(env, dir, 0, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "blocks", 0, &dbi), 0);
    cl_key k[14];
    for (int i = 8; i <= 13; i++)
        k[i] = st_key((uint64_t)i);
    MDB_val key, val;
    /* 8: garbage */
    uint8_t garbage[500];
    st_fill(garbage, sizeof garbage, 99);
    key = (MDB_val){16, k[8].b};
    val = (MDB_val){sizeof garbage, garbage};
    assert_int_equal(mdb_put(txn, dbi, &key, &val, 0), 0);
    /* 10 <- the value of 9 */
    key = (MDB_val){16, k[9].b};
    assert_int_equal(mdb_get(txn, dbi, &key, &val), 0);
    uint8_t *copy = malloc(val.mv_size);
    size_t vlen = val.mv_size;
    memcpy(copy, val.mv_data, vlen);
    key = (MDB_val){16, k[10].b};
    val = (MDB_val){vlen, copy};
    assert_int_equal(mdb_put(txn, dbi, &key, &val, 0), 0);
    /* 11: the value of 11, truncated */
    key = (MDB_val){16, k[11].b};
    assert_int_equal(mdb_get(txn, dbi, &key, &val), 0);
    memcpy(copy, val.mv_data, vlen);
    val = (MDB_val){vlen - 7, copy};
    assert_int_equal(mdb_put(txn, dbi, &key, &val, 0), 0);
    /* 12: one header byte (the token count) flipped */
    key = (MDB_val){16, k[12].b};
    assert_int_equal(mdb_get(txn, dbi, &key, &val), 0);
    memcpy(copy, val.mv_data, vlen);
    copy[50] ^= 1;
    val = (MDB_val){vlen, copy};
    assert_int_equal(mdb_put(txn, dbi, &key, &val, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
    free(copy);

    st = st_open(dir, 0, 0, 0);
    const char *why[14] = {0};
    why[8] = "bad magic";
    why[10] = "wrong key";
    why[11] = "size does not match";
    why[12] = "header checksum";
    for (int i = 8; i <= 12; i++) {
        if (!why[i])
            continue;
        cl_store_txn *t;
        assert_int_equal(cl_store_txn_begin(st, &t), CL_OK);
        assert_int_equal(cl_store_has(t, CL_STORE_KV, &k[i]), CL_ERR_NOTFOUND);
        cl_store_value v;
        assert_int_equal(cl_store_get(t, CL_STORE_KV, &k[i], &v), CL_ERR_CORRUPT);
        if (!strstr(cl_errmsg(), why[i]))
            fail_msg("entry %d: expected '%s' in '%s'", i, why[i], cl_errmsg());
        cl_store_txn_end(t);
        assert_int_equal(st_has(st, CL_STORE_KV, (uint64_t)i), 0);
    }
    assert_int_equal(st_check(st, CL_STORE_KV, 9), CL_OK);
    assert_int_equal(st_check(st, CL_STORE_KV, 13), CL_OK);
    cl_store_verify_result r;
    assert_int_equal(cl_store_verify(st, NULL, NULL, NULL, &r), CL_OK);
    assert_int_equal(r.bad, 0);
    assert_int_equal(r.index_fixed, 0);
    assert_int_equal(r.checked, 2);
    cl_store_close(st);
}

/* A has() that meets a bad header queues the entry: it is gone after the txn. */
static void test_has_drops_bad_header(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("corrupt_has");
    cl_store *st = st_open(dir, 0, 0, 0);
    assert_int_equal(st_put(st, CL_STORE_SNAP, 20, 100000, 0), CL_OK);
    cl_store_close(st);
    /* flip a byte of the header: find the magic followed by the version */
    uint8_t head[8] = {'C', 'L', 'S', 'V', CODEC_VERSION, 0, CL_STORE_SNAP, 0};
    assert_int_equal(st_flip_in_file(dir, head, 8), 1);
    st = st_open(dir, 0, 0, 0);
    assert_int_equal(st_has(st, CL_STORE_SNAP, 20), 0);
    cl_store_verify_result r;
    assert_int_equal(cl_store_verify(st, NULL, NULL, NULL, &r), CL_OK);
    assert_int_equal(r.checked, 0);
    assert_int_equal(r.index_fixed, 0);
    cl_store_close(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flipped_bytes),
        cmocka_unit_test(test_verify_finds_damage),
        cmocka_unit_test(test_bad_values_written_directly),
        cmocka_unit_test(test_has_drops_bad_header),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
