/* test_keys - key helpers: chains share equal prefixes, differ for other settings or
 * model ids, documents are framed, hex round-trips, streaming equals one-shot. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/status.h"
#include "store/keys.h"
#include "testutil.h"

static cl_key model_a(void)
{
    cl_key k;
    cl_key_of_bytes("model-a", 7, &k);
    return k;
}

static cl_key model_b(void)
{
    cl_key k;
    cl_key_of_bytes("model-b", 7, &k);
    return k;
}

/* Equal token prefixes give equal block keys; the first differing block differs and
 * so does every later one. */
static void test_chain_prefix_sharing(void **state)
{
    (void)state;
    int32_t a[64], b[64];
    for (int i = 0; i < 64; i++)
        a[i] = b[i] = i * 7 + 3;
    b[40] = 999; /* block 2 (tokens 32..47) differs with block_tokens 16 */
    cl_key ma = model_a(), k0;
    cl_key_chain_root(&ma, "iter=30", 7, &k0);
    cl_key ka[4], kb[4];
    assert_int_equal(cl_key_chain(&k0, a, 64, 16, ka, 4), 4);
    assert_int_equal(cl_key_chain(&k0, b, 64, 16, kb, 4), 4);
    assert_true(cl_key_eq(&ka[0], &kb[0]));
    assert_true(cl_key_eq(&ka[1], &kb[1]));
    assert_false(cl_key_eq(&ka[2], &kb[2]));
    assert_false(cl_key_eq(&ka[3], &kb[3]));
    /* chain == repeated next */
    cl_key k = k0;
    for (int i = 0; i < 4; i++) {
        cl_key_chain_next(&k, a + 16 * i, 16, &k);
        assert_true(cl_key_eq(&k, &ka[i]));
    }
    /* partial blocks are ignored by chain, limited by max_keys */
    assert_int_equal(cl_key_chain(&k0, a, 63, 16, ka, 4), 3);
    assert_int_equal(cl_key_chain(&k0, a, 64, 16, ka, 2), 2);
    assert_int_equal(cl_key_chain(&k0, a, 64, 0, ka, 4), 0);
}

/* Different settings bytes or model ids give different roots and chains. */
static void test_chain_settings_and_model(void **state)
{
    (void)state;
    int32_t ids[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    cl_key ma = model_a(), mb = model_b(), r1, r2, r3, r4, c1, c2, c3, c4;
    cl_key_chain_root(&ma, "iter=30", 7, &r1);
    cl_key_chain_root(&ma, "iter=31", 7, &r2);
    cl_key_chain_root(&mb, "iter=30", 7, &r3);
    cl_key_chain_root(&ma, NULL, 0, &r4);
    assert_false(cl_key_eq(&r1, &r2));
    assert_false(cl_key_eq(&r1, &r3));
    assert_false(cl_key_eq(&r1, &r4));
    cl_key_chain_next(&r1, ids, 16, &c1);
    cl_key_chain_next(&r2, ids, 16, &c2);
    cl_key_chain_next(&r3, ids, 16, &c3);
    cl_key_chain_next(&r4, ids, 16, &c4);
    assert_false(cl_key_eq(&c1, &c2));
    assert_false(cl_key_eq(&c1, &c3));
    assert_false(cl_key_eq(&c1, &c4));
    /* deterministic */
    cl_key again;
    cl_key_chain_root(&ma, "iter=30", 7, &again);
    assert_true(cl_key_eq(&again, &r1));
}

/* A snapshot key at an exact position (partial block) differs from full-block keys. */
static void test_partial_block_key(void **state)
{
    (void)state;
    int32_t ids[16] = {5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20};
    cl_key ma = model_a(), k0, full, part, part2;
    cl_key_chain_root(&ma, NULL, 0, &k0);
    cl_key_chain_next(&k0, ids, 16, &full);
    cl_key_chain_next(&k0, ids, 15, &part);
    cl_key_chain_next(&k0, ids, 14, &part2);
    assert_false(cl_key_eq(&full, &part));
    assert_false(cl_key_eq(&part, &part2));
}

/* Document keys: moving a token between prefix and document changes the key. */
static void test_document_key_framing(void **state)
{
    (void)state;
    int32_t all[6] = {1, 2, 3, 4, 5, 6};
    cl_key ma = model_a(), mb = model_b(), d1, d2, d3, d4, d5;
    cl_key_document(&ma, all, 2, all + 2, 4, "s", 1, &d1);
    cl_key_document(&ma, all, 3, all + 3, 3, "s", 1, &d2);
    cl_key_document(&mb, all, 2, all + 2, 4, "s", 1, &d3);
    cl_key_document(&ma, all, 2, all + 2, 4, "t", 1, &d4);
    cl_key_document(&ma, all, 2, all + 2, 4, "s", 1, &d5);
    assert_false(cl_key_eq(&d1, &d2));
    assert_false(cl_key_eq(&d1, &d3));
    assert_false(cl_key_eq(&d1, &d4));
    assert_true(cl_key_eq(&d1, &d5));
}

/* Streaming in odd pieces equals hashing the whole buffer at once. */
static void test_streaming_equals_oneshot(void **state)
{
    (void)state;
    static uint8_t buf[10000];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (uint8_t)(i * 31 + 7);
    cl_key one, many;
    cl_key_of_bytes(buf, sizeof buf, &one);
    cl_hasher h;
    cl_hasher_init(&h);
    size_t off = 0, step = 1;
    while (off < sizeof buf) {
        size_t n = step < sizeof buf - off ? step : sizeof buf - off;
        cl_hasher_update(&h, buf + off, n);
        off += n;
        step = step * 3 + 1;
    }
    cl_hasher_final(&h, &many);
    assert_true(cl_key_eq(&one, &many));
    /* final does not consume the state */
    cl_key again;
    cl_hasher_final(&h, &again);
    assert_true(cl_key_eq(&one, &again));
    /* the empty input has a fixed key, different from one zero byte */
    cl_key e, z;
    cl_key_of_bytes(NULL, 0, &e);
    cl_key_of_bytes("", 1, &z);
    assert_false(cl_key_eq(&e, &z));
}

/* Hex: 32 lowercase digits, parse accepts either case, rejects bad text. */
static void test_hex_round_trip(void **state)
{
    (void)state;
    cl_key k, back;
    cl_key_of_bytes("hello", 5, &k);
    char hex[33], upper[33];
    assert_ptr_equal(cl_key_hex(&k, hex), hex);
    assert_int_equal(strlen(hex), 32);
    for (int i = 0; i < 32; i++)
        assert_true((hex[i] >= '0' && hex[i] <= '9') || (hex[i] >= 'a' && hex[i] <= 'f'));
    assert_int_equal(cl_key_parse(hex, &back), CL_OK);
    assert_true(cl_key_eq(&k, &back));
    for (int i = 0; i < 33; i++)
        upper[i] = (char)(hex[i] >= 'a' ? hex[i] - 32 : hex[i]);
    assert_int_equal(cl_key_parse(upper, &back), CL_OK);
    assert_true(cl_key_eq(&k, &back));
    assert_int_equal(cl_key_parse("abc", &back), CL_ERR_ARG);
    assert_non_null(strstr(cl_errmsg(), "abc"));
    assert_int_equal(cl_key_parse("zz0123456789abcdef0123456789abcd", &back), CL_ERR_ARG);
    char longer[40];
    snprintf(longer, sizeof longer, "%s0", hex);
    assert_int_equal(cl_key_parse(longer, &back), CL_ERR_ARG);
    /* known vector: the all-zero key */
    memset(&k, 0, sizeof k);
    assert_string_equal(cl_key_hex(&k, hex), "00000000000000000000000000000000");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chain_prefix_sharing),
        cmocka_unit_test(test_chain_settings_and_model),
        cmocka_unit_test(test_partial_block_key),
        cmocka_unit_test(test_document_key_framing),
        cmocka_unit_test(test_streaming_equals_oneshot),
        cmocka_unit_test(test_hex_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
