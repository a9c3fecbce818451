/* test_store - put/get round trips (small, gathered, > 64 MiB), header fields and meta,
 * one key's entry (pin included), batch atomicity, overwrite rules, totals, model-id
 * cache, directory resolution, open modes and shared handles. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <cmocka.h>

#include "testutil.h"
#include "storetest.h"

/* Every header field, the meta blob and the payload come back as written; has/get on
 * an absent key say NOTFOUND (get names the store dir). */
static void test_roundtrip_small(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("store_small");
    cl_store *st = st_open(dir, 0, 0, 0);
    uint8_t payload[300];
    st_fill(payload, sizeof payload, 42);
    const char meta[] = "{\"doc\":\"descriptor\"}";
    cl_store_info info = {0};
    info.flags = 0xabcd;
    info.dtype = 7;
    info.ndim = 3;
    info.shape[0] = 2;
    info.shape[1] = 3;
    info.shape[2] = 50;
    info.tokens = 123;
    info.meta = meta;
    info.meta_bytes = sizeof meta;
    cl_key k = st_key(1), missing = st_key(2);
    cl_store_piece pc = {payload, sizeof payload};
    int64_t t0 = (int64_t)time(NULL) * 1000000000;
    assert_int_equal(cl_store_put(st, CL_STORE_SNAP, &k, &info, &pc, 1, 0), CL_OK);

    cl_store_txn *t;
    assert_int_equal(cl_store_txn_begin(st, &t), CL_OK);
    assert_int_equal(cl_store_has(t, CL_STORE_SNAP, &k), CL_OK);
    assert_int_equal(cl_store_has(t, CL_STORE_KV, &k), CL_ERR_NOTFOUND); /* other table */
    assert_int_equal(cl_store_has(t, CL_STORE_SNAP, &missing), CL_ERR_NOTFOUND);
    cl_store_value v;
    assert_int_equal(cl_store_get(t, CL_STORE_SNAP, &k, &v), CL_OK);
    assert_int_equal(v.kind, CL_STORE_SNAP);
    assert_int_equal(v.info.flags, 0xabcd);
    assert_int_equal(v.info.dtype, 7);
    assert_int_equal(v.info.ndim, 3);
    assert_int_equal(v.info.shape[2], 50);
    assert_int_equal(v.info.tokens, 123);
    assert_int_equal(v.info.meta_bytes, sizeof meta);
    assert_memory_equal(v.info.meta, meta, sizeof meta);
    assert_int_equal(v.payload_bytes, sizeof payload);
    assert_memory_equal(v.payload, payload, sizeof payload);
    assert_true(v.created_ns >= t0 - 2000000000ll);
    assert_int_equal(cl_store_get(t, CL_STORE_SNAP, &missing, &v), CL_ERR_NOTFOUND);
    assert_non_null(strstr(cl_errmsg(), dir));
    assert_int_equal(cl_store_get(t, (cl_store_kind)9, &k, &v), CL_ERR_ARG);
    cl_store_txn_end(t);

    /* copy-out and load */
    uint8_t out[400];
    cl_store_value vi;
    assert_int_equal(cl_store_read(st, CL_STORE_SNAP, &k, out, sizeof out, &vi), CL_OK);
    assert_memory_equal(out, payload, sizeof payload);
    assert_int_equal(vi.info.tokens, 123);
    assert_null(vi.payload);
    assert_int_equal(cl_store_read(st, CL_STORE_SNAP, &k, out, 10, NULL), CL_ERR_RANGE);
    void *buf;
    assert_int_equal(cl_store_load(st, CL_STORE_SNAP, &k, &vi, &buf), CL_OK);
    assert_memory_equal(vi.payload, payload, sizeof payload);
    assert_memory_equal(vi.info.meta, meta, sizeof meta);
    free(buf);

    /* one key's entry: sizes, and the pin from the usage index */
    cl_store_entry en;
    assert_int_equal(cl_store_entry_get(st, CL_STORE_SNAP, &k, &en), CL_OK);
    assert_true(en.header_ok);
    assert_int_equal(en.payload_bytes, sizeof payload);
    assert_int_equal(en.info.tokens, 123);
    assert_int_equal(en.pinned, 0);
    assert_int_equal(cl_store_pin(st, CL_STORE_SNAP, &k, 1), CL_OK);
    assert_int_equal(cl_store_entry_get(st, CL_STORE_SNAP, &k, &en), CL_OK);
    assert_int_equal(en.pinned, 1);
    assert_int_equal(cl_store_pin(st, CL_STORE_SNAP, &k, 0), CL_OK);
    assert_int_equal(cl_store_entry_get(st, CL_STORE_SNAP, &k, &en), CL_OK);
    assert_int_equal(en.pinned, 0);
    assert_int_equal(cl_store_entry_get(st, CL_STORE_SNAP, &missing, &en), CL_ERR_NOTFOUND);
    assert_int_equal(cl_store_entry_get(st, CL_STORE_KV, &k, &en), CL_ERR_NOTFOUND);
    assert_int_equal(cl_store_entry_get(st, (cl_store_kind)9, &k, &en), CL_ERR_ARG);

    /* an empty payload is a value too */
    cl_key ke = st_key(3);
    assert_int_equal(cl_store_put(st, CL_STORE_OTHER, &ke, NULL, NULL, 0, 0), CL_OK);
    assert_int_equal(cl_store_read(st, CL_STORE_OTHER, &ke, out, 0, &vi), CL_OK);
    assert_int_equal(vi.payload_bytes, 0);
    cl_store_close(st);

    /* persists across reopen */
    st = st_open(dir, 0, 0, 0);
    assert_int_equal(cl_store_read(st, CL_STORE_SNAP, &k, out, sizeof out, NULL), CL_OK);
    assert_memory_equal(out, payload, sizeof payload);
    cl_store_close(st);
}

/* A value gathered from odd-sized pieces (some empty) reads back as their
 * concatenation, with an odd-sized meta blob; payload of big values is 16-byte aligned. */
static void test_gather(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("store_gather");
    cl_store *st = st_open(dir, 0, 0, 0);
    size_t sizes[] = {1, 0, 4095, 4097, 0, 123457, 3};
    size_t total = 0;
    for (size_t i = 0; i < 7; i++)
        total += sizes[i];
    uint8_t *whole = malloc(total);
    st_fill(whole, total, 7);
    cl_store_piece pcs[7];
    size_t off = 0;
    for (size_t i = 0; i < 7; i++) {
        pcs[i].data = sizes[i] ? whole + off : NULL;
        pcs[i].bytes = sizes[i];
        off += sizes[i];
    }
    uint8_t meta[100];
    st_fill(meta, sizeof meta, 9);
    cl_store_info info = {0};
    info.meta = meta;
    info.meta_bytes = sizeof meta;
    cl_key k = st_key(10);
    assert_int_equal(cl_store_put(st, CL_STORE_KV, &k, &info, pcs, 7, 0), CL_OK);
    cl_store_txn *t;
    assert_int_equal(cl_store_txn_begin(st, &t), CL_OK);
    cl_store_value v;
    assert_int_equal(cl_store_get(t, CL_STORE_KV, &k, &v), CL_OK);
    assert_int_equal(v.payload_bytes, total);
    assert_memory_equal(v.payload, whole, total);
    assert_memory_equal(v.info.meta, meta, sizeof meta);
    assert_int_equal((uintptr_t)v.payload % 16, 0);
    cl_store_txn_end(t);
    /* a piece with bytes but no data is refused */
    cl_store_piece bad = {NULL, 10};
    assert_int_equal(cl_store_put(st, CL_STORE_KV, &k, NULL, &bad, 1, 0), CL_ERR_ARG);
    free(whole);
    cl_store_close(st);
}

/* A value over 64 MiB (gathered from 3 pieces) round-trips through get, read, load. */
static void test_roundtrip_large(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("store_large");
    cl_store *st = st_open(dir, 0, 0, 0);
    size_t n = 72u * MIB + 12345;
    uint8_t *p = malloc(n);
    st_fill(p, n, 77);
    cl_store_piece pcs[3] = {{p, 10 * MIB}, {p + 10 * MIB, 40 * MIB}, {p + 50 * MIB, n - 50 * MIB}};
    cl_key k = st_key(77);
    cl_store_info info = {0};
    info.tokens = 1000;
    assert_int_equal(cl_store_put(st, CL_STORE_SNAP, &k, &info, pcs, 3, 0), CL_OK);
    cl_store_txn *t;
    assert_int_equal(cl_store_txn_begin(st, &t), CL_OK);
    cl_store_value v;
    assert_int_equal(cl_store_get(t, CL_STORE_SNAP, &k, &v), CL_OK);
    assert_int_equal(v.payload_bytes, n);
    assert_true(memcmp(v.payload, p, n) == 0);
    cl_store_txn_end(t);
    uint8_t *q = malloc(n);
    assert_int_equal(cl_store_read(st, CL_STORE_SNAP, &k, q, n, NULL), CL_OK);
    assert_true(memcmp(q, p, n) == 0);
    free(q);
    void *buf;
    cl_store_value lv;
    assert_int_equal(cl_store_load(st, CL_STORE_SNAP, &k, &lv, &buf), CL_OK);
    assert_true(memcmp(lv.payload, p, n) == 0);
    free(buf);
    cl_store_stats s;
    assert_int_equal(cl_store_stat(st, &s), CL_OK);
    assert_int_equal(s.count[CL_STORE_SNAP], 1);
    assert_true(s.bytes[CL_STORE_SNAP] > n);
    free(p);
    cl_store_close(st);
}

/* A batch commits all its operations or none: a failed put poisons the batch, a map
 * that cannot hold one of the values fails the whole batch, abort writes nothing. */
static void test_batch_atomicity(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("store_batch");
    /* fixed 8 MiB map: no growth */
    cl_store *st = st_open(dir, 0, 8 * MIB, 8 * MIB);
    assert_int_equal(st_put(st, CL_STORE_KV, 100, 1000, 0), CL_OK);
    uint8_t small[2048], *big = malloc(16 * MIB);
    st_fill(small, sizeof small, 1);
    st_fill(big, 16 * MIB, 2);
    cl_store_piece ps = {small, sizeof small}, pb = {big, 16 * MIB};

    /* 1. an invalid put in the middle */
    cl_store_batch *b;
    assert_int_equal(cl_store_batch_begin(st, &b), CL_OK);
    cl_key k1 = st_key(1), k2 = st_key(2), k3 = st_key(3), k100 = st_key(100);
    assert_int_equal(cl_store_batch_put(b, CL_STORE_KV, &k1, NULL, &ps, 1, 0), CL_OK);
    cl_store_info bad = {0};
    bad.ndim = 5;
    assert_int_equal(cl_store_batch_put(b, CL_STORE_KV, &k2, &bad, &ps, 1, 0), CL_ERR_ARG);
    assert_int_equal(cl_store_batch_put(b, CL_STORE_KV, &k3, NULL, &ps, 1, 0), CL_OK);
    assert_int_equal(cl_store_batch_commit(b), CL_ERR_ARG);
    assert_int_equal(st_has(st, CL_STORE_KV, 1), 0);
    assert_int_equal(st_has(st, CL_STORE_KV, 3), 0);

    /* 2. the third value cannot fit in the map: nothing of the batch is written, and
     * the delete in it does not happen either */
    assert_int_equal(cl_store_batch_begin(st, &b), CL_OK);
    assert_int_equal(cl_store_batch_put(b, CL_STORE_KV, &k1, NULL, &ps, 1, 0), CL_OK);
    assert_int_equal(cl_store_batch_del(b, CL_STORE_KV, &k100), CL_OK);
    assert_int_equal(cl_store_batch_put(b, CL_STORE_SNAP, &k2, NULL, &pb, 1, 0), CL_OK);
    assert_int_equal(cl_store_batch_put(b, CL_STORE_KV, &k3, NULL, &ps, 1, 0), CL_OK);
    assert_int_equal(cl_store_batch_commit(b), CL_ERR_FULL);
    assert_non_null(strstr(cl_errmsg(), dir));
    assert_int_equal(st_has(st, CL_STORE_KV, 1), 0);
    assert_int_equal(st_has(st, CL_STORE_SNAP, 2), 0);
    assert_int_equal(st_has(st, CL_STORE_KV, 3), 0);
    assert_int_equal(st_check(st, CL_STORE_KV, 100), CL_OK);

    /* 3. abort writes nothing */
    assert_int_equal(cl_store_batch_begin(st, &b), CL_OK);
    assert_int_equal(cl_store_batch_put(b, CL_STORE_KV, &k1, NULL, &ps, 1, 0), CL_OK);
    cl_store_batch_abort(b);
    assert_int_equal(st_has(st, CL_STORE_KV, 1), 0);

    /* 4. a good batch: puts (one copied, its buffer changed afterwards), a delete */
    assert_int_equal(cl_store_batch_begin(st, &b), CL_OK);
    assert_int_equal(cl_store_batch_put(b, CL_STORE_KV, &k1, NULL, &ps, 1, 0), CL_OK);
    uint8_t tmp[64];
    memset(tmp, 0x5a, sizeof tmp);
    cl_store_piece pt = {tmp, sizeof tmp};
    assert_int_equal(cl_store_batch_put(b, CL_STORE_DOC, &k3, NULL, &pt, 1, CL_STORE_PUT_COPY),
                     CL_OK);
    memset(tmp, 0, sizeof tmp);
    assert_int_equal(cl_store_batch_del(b, CL_STORE_KV, &k100), CL_OK);
    assert_int_equal(cl_store_batch_commit(b), CL_OK);
    assert_int_equal(st_has(st, CL_STORE_KV, 1), 1);
    assert_int_equal(st_has(st, CL_STORE_KV, 100), 0);
    uint8_t back[64];
    assert_int_equal(cl_store_read(st, CL_STORE_DOC, &k3, back, sizeof back, NULL), CL_OK);
    for (int i = 0; i < 64; i++)
        assert_int_equal(back[i], 0x5a);
    /* an empty batch commits trivially */
    assert_int_equal(cl_store_batch_begin(st, &b), CL_OK);
    assert_int_equal(cl_store_batch_commit(b), CL_OK);
    free(big);
    cl_store_close(st);
}

/* Overwrite replaces (totals unchanged); NOOVERWRITE keeps the first value. */
static void test_overwrite_and_totals(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("store_overwrite");
    cl_store *st = st_open(dir, 0, 0, 0);
    cl_key k = st_key(5);
    uint8_t a[100], b[200], out[200];
    memset(a, 'a', sizeof a);
    memset(b, 'b', sizeof b);
    cl_store_piece pa = {a, sizeof a}, pb = {b, sizeof b};
    assert_int_equal(cl_store_put(st, CL_STORE_KV, &k, NULL, &pa, 1, 0), CL_OK);
    assert_int_equal(cl_store_put(st, CL_STORE_KV, &k, NULL, &pb, 1, CL_STORE_PUT_NOOVERWRITE),
                     CL_OK);
    cl_store_value v;
    assert_int_equal(cl_store_read(st, CL_STORE_KV, &k, out, sizeof out, &v), CL_OK);
    assert_int_equal(v.payload_bytes, 100);
    assert_int_equal(out[0], 'a');
    assert_int_equal(cl_store_put(st, CL_STORE_KV, &k, NULL, &pb, 1, 0), CL_OK);
    assert_int_equal(cl_store_read(st, CL_STORE_KV, &k, out, sizeof out, &v), CL_OK);
    assert_int_equal(v.payload_bytes, 200);
    assert_int_equal(out[0], 'b');
    assert_int_equal(st_put(st, CL_STORE_SNAP, 6, 5000, 0), CL_OK);
    assert_int_equal(st_put(st, CL_STORE_DOC, 7, 50, CL_STORE_PUT_PIN), CL_OK);
    cl_store_stats s;
    assert_int_equal(cl_store_stat(st, &s), CL_OK);
    assert_int_equal(s.count[CL_STORE_KV], 1);
    assert_int_equal(s.count[CL_STORE_SNAP], 1);
    assert_int_equal(s.count[CL_STORE_DOC], 1);
    assert_int_equal(s.total_count, 3);
    assert_int_equal(s.pinned_count, 1);
    assert_int_equal(s.bytes[CL_STORE_KV], 128 + 0 + 64 + 200); /* header, meta, segment table */
    assert_int_equal(s.bytes[CL_STORE_SNAP], 128 + 64 + 64 + 5000);
    assert_true(s.map_bytes > 0 && s.file_bytes > 0 && s.page_bytes > 0);
    /* one-shot delete */
    assert_int_equal(cl_store_del(st, CL_STORE_KV, &k), CL_OK);
    assert_int_equal(cl_store_del(st, CL_STORE_KV, &k), CL_ERR_NOTFOUND);
    assert_int_equal(cl_store_stat(st, &s), CL_OK);
    assert_int_equal(s.total_count, 2);
    assert_int_equal(s.bytes[CL_STORE_KV], 0);
    /* count_prefix walks a chain until the first missing key */
    cl_key chain[4] = {st_key(20), st_key(21), st_key(22), st_key(23)};
    for (int i = 20; i < 22; i++)
        assert_int_equal(st_put(st, CL_STORE_KV, (uint64_t)i, 10, 0), CL_OK);
    assert_int_equal(st_put(st, CL_STORE_KV, 23, 10, 0), CL_OK);
    cl_store_txn *t;
    size_t np;
    assert_int_equal(cl_store_txn_begin(st, &t), CL_OK);
    assert_int_equal(cl_store_count_prefix(t, CL_STORE_KV, chain, 4, &np), CL_OK);
    assert_int_equal(np, 2);
    cl_store_txn_end(t);
    cl_store_close(st);
}

/* The model-id cache answers only for the same path, size and mtime, across reopen. */
static void test_model_id_cache(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("store_modelid");
    cl_store *st = st_open(dir, 0, 0, 0);
    cl_key id, got;
    cl_key_of_bytes("model", 5, &id);
    const char *path = "/models/gka-8b/model.safetensors";
    assert_int_equal(cl_store_model_id_lookup(st, path, 100, 5, &got), CL_ERR_NOTFOUND);
    assert_int_equal(cl_store_model_id_remember(st, path, 100, 5, &id), CL_OK);
    assert_int_equal(cl_store_model_id_lookup(st, path, 100, 5, &got), CL_OK);
    assert_true(cl_key_eq(&got, &id));
    assert_int_equal(cl_store_model_id_lookup(st, path, 101, 5, &got), CL_ERR_NOTFOUND);
    assert_int_equal(cl_store_model_id_lookup(st, path, 100, 6, &got), CL_ERR_NOTFOUND);
    assert_int_equal(cl_store_model_id_lookup(st, "/models/other", 100, 5, &got),
                     CL_ERR_NOTFOUND);
    cl_store_close(st);
    st = st_open(dir, 0, 0, 0);
    assert_int_equal(cl_store_model_id_lookup(st, path, 100, 5, &got), CL_OK);
    assert_true(cl_key_eq(&got, &id));
    /* model ids are not entries */
    cl_store_stats s;
    assert_int_equal(cl_store_stat(st, &s), CL_OK);
    assert_int_equal(s.total_count, 0);
    cl_store_close(st);
}

/* --store beats COLLAGE_STORE beats XDG_CACHE_HOME beats HOME. */
static void test_resolve_dir(void **state)
{
    (void)state;
    char out[256];
    setenv("HOME", "/home/u", 1);
    unsetenv("XDG_CACHE_HOME");
    unsetenv("COLLAGE_STORE");
    assert_int_equal(cl_store_resolve_dir(NULL, out, sizeof out), CL_OK);
    assert_string_equal(out, "/home/u/.cache/collage/store");
    setenv("XDG_CACHE_HOME", "/xdg", 1);
    assert_int_equal(cl_store_resolve_dir("", out, sizeof out), CL_OK);
    assert_string_equal(out, "/xdg/collage/store");
    setenv("COLLAGE_STORE", "/env/store", 1);
    assert_int_equal(cl_store_resolve_dir(NULL, out, sizeof out), CL_OK);
    assert_string_equal(out, "/env/store");
    assert_int_equal(cl_store_resolve_dir("/flag", out, sizeof out), CL_OK);
    assert_string_equal(out, "/flag");
    assert_int_equal(cl_store_resolve_dir("/a/very/long/path", out, 5), CL_ERR_ARG);
    unsetenv("COLLAGE_STORE");
    unsetenv("XDG_CACHE_HOME");
}

/* Creating makes the directory 0700; NOCREATE/RDONLY on a missing store say NOTFOUND;
 * a read-only handle refuses writes; two opens in one process share the environment. */
static void test_open_modes(void **state)
{
    (void)state;
    const char *base = tu_tmpdir("store_modes");
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/nested/store", base);
    cl_store *st = NULL;
    cl_store_opts o = {0};
    o.flags = CL_STORE_NOCREATE;
    assert_int_equal(cl_store_open(dir, &o, &st), CL_ERR_NOTFOUND);
    assert_non_null(strstr(cl_errmsg(), dir));
    o.flags = CL_STORE_RDONLY;
    assert_int_equal(cl_store_open(dir, &o, &st), CL_ERR_NOTFOUND);
    st = st_open(dir, 0, 0, 0);
    struct stat sb;
    assert_int_equal(stat(dir, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0700);
    assert_string_equal(cl_store_dir(st), dir);
    assert_int_equal(st_put(st, CL_STORE_KV, 1, 100, 0), CL_OK);
    /* a second handle on the same directory shares the environment */
    cl_store *st2 = st_open(dir, 0, 0, 0);
    assert_int_equal(st_check(st2, CL_STORE_KV, 1), CL_OK);
    assert_int_equal(st_put(st2, CL_STORE_KV, 2, 100, 0), CL_OK);
    cl_store_close(st);
    assert_int_equal(st_check(st2, CL_STORE_KV, 2), CL_OK);
    /* the env is open read-write: a read-only open shares it */
    cl_store *ro;
    o.flags = CL_STORE_RDONLY;
    assert_int_equal(cl_store_open(dir, &o, &ro), CL_OK);
    cl_store_close(ro);
    cl_store_close(st2);
    /* read-only alone */
    assert_int_equal(cl_store_open(dir, &o, &ro), CL_OK);
    assert_int_equal(st_check(ro, CL_STORE_KV, 1), CL_OK);
    assert_int_equal(st_put(ro, CL_STORE_KV, 3, 100, 0), CL_ERR_ARG);
    assert_int_equal(cl_store_del(ro, CL_STORE_KV, &(cl_key){{0}}), CL_ERR_ARG);
    /* while open read-only, a read-write open in this process is refused */
    cl_store *rw;
    assert_int_equal(cl_store_open(dir, NULL, &rw), CL_ERR_ARG);
    cl_store_close(ro);
    /* not a directory */
    char file[4200];
    snprintf(file, sizeof file, "%s/plainfile", base);
    FILE *f = fopen(file, "w");
    fputs("x", f);
    fclose(f);
    assert_int_not_equal(cl_store_open(file, NULL, &st), CL_OK);
    assert_non_null(strstr(cl_errmsg(), file));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_small),
        cmocka_unit_test(test_gather),
        cmocka_unit_test(test_roundtrip_large),
        cmocka_unit_test(test_batch_atomicity),
        cmocka_unit_test(test_overwrite_and_totals),
        cmocka_unit_test(test_model_id_cache),
        cmocka_unit_test(test_resolve_dir),
        cmocka_unit_test(test_open_modes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
