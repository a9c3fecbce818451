/* test_normalize - cl_nfc (which sends only the pieces that can change through
 * utf8proc) equals utf8proc's NFC of the whole text on random mixes of combining
 * marks, Hangul jamo, decomposable and ordinary characters; text that needs no
 * change is returned without a copy; UTF-8 validation finds the first bad byte. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <utf8proc.h>

#include "common/rng.h"
#include "testutil.h"
#include "tokenizer/normalize.h"

static void expect_nfc(const char *text, size_t len, const char *want, size_t want_len)
{
    const char *out;
    size_t n;
    int owned;
    assert_int_equal(cl_nfc(text, len, &out, &n, &owned), 0);
    assert_int_equal(n, want_len);
    assert_memory_equal(out, want, n);
    if (owned)
        free((void *)out);
}

static void test_random_vs_utf8proc(void **state)
{
    (void)state;
    /* Starters, combining marks of several classes, Hangul L/V/T and syllables,
     * pairs that compose (o + U+0308, U+0B47 + U+0B3E, か + U+3099), singletons
     * (U+212B, U+F900), a decomposing non-starter (U+0344, U+0F73), CJK, emoji. */
    static const int32_t pool[] = {
        'a',    'e',    'o',     ' ',     '\n',   0x00E9, 0x00C5, 0x0301, 0x0300,  0x0308,
        0x0323, 0x0327, 0x034F,  0x0344,  0x0F73, 0x0F71, 0x0F72, 0x1100, 0x1161,  0x11A8,
        0xAC00, 0xAC01, 0x0B47,  0x0B3E,  0x0B57, 0x3099, 0x309A, 0x304B, 0x30AB,  0xF900,
        0x212B, 0x1E9B, 0x0958,  0x093C,  0x0915, 0x05B8, 0x05B7, 0x0591, 0x1D15E, 0x1D165,
        0x4E00, 0x1F600, 0x0627, 0x0653, 0x0654, 0x1E0B, 0x0CC6, 0x0CD5, 0x0CC2,  0x0DD9,
    };
    const size_t np = sizeof pool / sizeof pool[0];
    uint64_t key = cl_rng_key(7, "nfc");
    for (uint64_t t = 0; t < 20000; t++) {
        char s[128];
        size_t n = 0;
        int k = 1 + (int)(cl_mix64(key ^ (t << 8)) % 12);
        for (int j = 0; j < k; j++) {
            int32_t cp = pool[cl_mix64(key ^ (t << 8) ^ (uint64_t)(j + 1)) % np];
            n += (size_t)utf8proc_encode_char(cp, (utf8proc_uint8_t *)s + n);
        }
        utf8proc_uint8_t *want = NULL;
        utf8proc_ssize_t wn = utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n,
                                           &want, UTF8PROC_STABLE | UTF8PROC_COMPOSE);
        assert_true(wn >= 0);
        expect_nfc(s, n, (const char *)want, (size_t)wn);
        free(want);
    }
}

static void test_cases(void **state)
{
    (void)state;
    expect_nfc("e\xcc\x81", 3, "\xc3\xa9", 2);                /* e + U+0301 -> é */
    expect_nfc("\xe2\x84\xab", 3, "\xc3\x85", 2);             /* U+212B -> U+00C5 */
    expect_nfc("\xef\xa4\x80", 3, "\xe8\xb1\x88", 3);         /* U+F900 alone -> U+8C48 */
    expect_nfc("\xcd\x84", 2, "\xcc\x88\xcc\x81", 4);         /* U+0344 at the start */
    expect_nfc("\xe1\x84\x80\xe1\x85\xa1", 6, "\xea\xb0\x80", 3); /* L + V -> 가 */
    /* U+11A7 is no trailing consonant: HF keeps it after 가 (utf8proc 2.6 drops it) */
    expect_nfc("\xea\xb0\x80\xe1\x86\xa7", 6, "\xea\xb0\x80\xe1\x86\xa7", 6);
    const char *plain = "plain ASCII, Latin-1 \xc3\xa9, CJK \xe6\x97\xa5\xe6\x9c\xac, emoji "
                        "\xf0\x9f\x98\x80";
    const char *out;
    size_t n;
    int owned;
    assert_int_equal(cl_nfc(plain, strlen(plain), &out, &n, &owned), 0);
    assert_false(owned);
    assert_ptr_equal(out, plain);
    expect_nfc("", 0, "", 0);
}

static void test_utf8_validation(void **state)
{
    (void)state;
    const struct {
        const char *s;
        size_t len, bad;
    } cases[] = {
        {"hello", 5, 5},
        {"a\0b", 3, 3},
        {"\xc3\xa9\xe6\x97\xa5\xf0\x9f\x98\x80", 9, 9},
        {"abcdefghij\x80", 11, 10},
        {"\xc1\xbf", 2, 0},          /* overlong */
        {"\xe0\x9f\xbf", 3, 0},      /* overlong */
        {"\xed\xbf\xbf", 3, 0},      /* surrogate */
        {"\xf4\x90\x80\x80", 4, 0},  /* > U+10FFFF */
        {"\xf5\x80\x80\x80", 4, 0},
        {"ok\xe6\x97", 4, 2},        /* truncated */
        {"\xef\xbf\xbf", 3, 3},      /* U+FFFF is a valid scalar */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_int_equal(cl_utf8_invalid_at(cases[i].s, cases[i].len), cases[i].bad);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_vs_utf8proc),
        cmocka_unit_test(test_cases),
        cmocka_unit_test(test_utf8_validation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
