/* test_tiny - the tiny tokenizer mkmodel writes loads with our own loader, fills
 * every id below vocab_size with a decodable token, puts the added tokens at the
 * top ids it reports, round-trips arbitrary text with all ids < vocab_size, is
 * byte-for-byte deterministic, and its tokenizer_config.json has the fields and
 * ChatML template the chat code expects. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/fileio.h"
#include "common/json.h"
#include "common/status.h"
#include "testutil.h"
#include "tokenizer/bpe.h"
#include "mkmodel/tiny_tokenizer.h"

static const char *texts[] = {
    "The keeper climbed one hundred and twelve steps to wind the clock.",
    "  leading spaces, trailing spaces   \n\n\ttabs\r\nCRLF",
    "Numbers: 3.14159, 2,718 and 1e-9; code: for (int i = 0; i < n; i++) { x[i] = 0; }",
    "Ünïcödé: naïve café, 日本語のテキスト, Привет, مرحبا, 😀👨‍👩‍👧 — “quotes” …",
    "e\xcc\x81 decomposed",
    "<|im_start|>user\nhello<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n",
    "<tool_call>\n{\"name\": \"f\", \"arguments\": {}}\n</tool_call><|endoftext|>",
    "",
};

static void write_and_check(int64_t vocab_size)
{
    char name[32];
    snprintf(name, sizeof name, "tiny_tok_%lld", (long long)vocab_size);
    const char *dir = tu_tmpdir(name);
    cl_tiny_tok_ids ids;
    assert_int_equal(cl_tiny_tokenizer_write(dir, vocab_size, &ids), 0);
    cl_tokenizer *t;
    if (cl_tokenizer_load_dir(dir, &t))
        fail_msg("%s", cl_errmsg());
    int32_t V = (int32_t)vocab_size;
    assert_int_equal(cl_tokenizer_vocab_size(t), V);

    /* Every id has a token (a random model may emit any of them). */
    for (int32_t id = 0; id < V; id++) {
        const char *b;
        size_t n;
        assert_int_equal(cl_tokenizer_token_bytes(t, id, &b, &n), 0);
        assert_true(n > 0);
    }
    assert_int_equal(ids.endoftext, V - 7);
    assert_int_equal(ids.im_start, V - 6);
    assert_int_equal(ids.im_end, V - 5);
    assert_int_equal(ids.think, V - 4);
    assert_int_equal(ids.think_end, V - 3);
    assert_int_equal(cl_tokenizer_find(t, "<|endoftext|>"), ids.endoftext);
    assert_int_equal(cl_tokenizer_find(t, "<|im_start|>"), ids.im_start);
    assert_int_equal(cl_tokenizer_find(t, "<|im_end|>"), ids.im_end);
    assert_int_equal(cl_tokenizer_find(t, "<think>"), ids.think);
    assert_int_equal(cl_tokenizer_find(t, "</think>"), ids.think_end);
    assert_int_equal(cl_tokenizer_find(t, "<tool_call>"), V - 2);
    assert_int_equal(cl_tokenizer_find(t, "</tool_call>"), V - 1);
    assert_int_equal(cl_tokenizer_find(t, "\n"), ids.newline);
    assert_true(cl_tokenizer_is_special(t, ids.im_end));
    assert_true(cl_tokenizer_is_special(t, ids.endoftext));
    assert_false(cl_tokenizer_is_special(t, ids.think));
    assert_true(cl_tokenizer_is_added(t, ids.think));

    /* Round trips with ids in range; added tokens become their ids. */
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        cl_ids out = {0};
        size_t len = strlen(texts[i]);
        assert_int_equal(cl_tokenizer_encode(t, texts[i], len, 1, &out), 0);
        for (size_t k = 0; k < out.n; k++)
            assert_true(out.v[k] >= 0 && out.v[k] < V);
        char *dec;
        size_t dlen;
        assert_int_equal(cl_tokenizer_decode(t, out.v, out.n, &dec, &dlen), 0);
        if (i == 4) /* NFC composes e + U+0301 */
            assert_string_equal(dec, "\xc3\xa9 decomposed");
        else
            assert_memory_equal(dec, texts[i], len);
        free(dec);
        cl_ids_free(&out);
    }
    const char *prompt = "<|im_start|>user\nhi<|im_end|>\n";
    cl_ids out = {0};
    assert_int_equal(cl_tokenizer_encode(t, prompt, strlen(prompt), 1, &out), 0);
    assert_int_equal(out.v[0], ids.im_start);
    assert_int_equal(out.v[out.n - 2], ids.im_end);
    assert_int_equal(out.v[out.n - 1], ids.newline);
    cl_ids_free(&out);
    /* Merges were learned: common words are single tokens. */
    assert_int_equal(cl_tokenizer_encode(t, " the", 4, 1, &out), 0);
    assert_int_equal(out.n, 1);
    cl_ids_free(&out);
    cl_tokenizer_free(t);

    /* tokenizer_config.json */
    char path[4200];
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    cJSON *cfg;
    assert_int_equal(cl_json_load(path, &cfg), 0);
    const char *s;
    assert_int_equal(cl_json_str(cfg, "eos_token", path, NULL, &s), 0);
    assert_string_equal(s, "<|im_end|>");
    assert_int_equal(cl_json_str(cfg, "pad_token", path, NULL, &s), 0);
    assert_string_equal(s, "<|endoftext|>");
    assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(cfg, "bos_token")));
    assert_int_equal(cl_json_str(cfg, "chat_template", path, NULL, &s), 0);
    assert_non_null(strstr(s, "<|im_start|>"));
    assert_non_null(strstr(s, "add_generation_prompt"));
    assert_non_null(strstr(s, "enable_thinking"));
    const cJSON *dec = cJSON_GetObjectItemCaseSensitive(cfg, "added_tokens_decoder");
    assert_int_equal(cJSON_GetArraySize(dec), 7);
    snprintf(path, sizeof path, "%d", ids.im_end);
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(dec, path);
    assert_non_null(e);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(e, "content")->valuestring, "<|im_end|>");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "special")));
    cJSON_Delete(cfg);
}

static void test_tiny_512(void **state)
{
    (void)state;
    write_and_check(512);
}

static void test_tiny_8192(void **state)
{
    (void)state;
    write_and_check(8192);
}

/* Same inputs, same bytes: merges are learned deterministically. */
static void test_deterministic(void **state)
{
    (void)state;
    cl_tiny_tok_ids ids;
    char a[4200], b[4200];
    snprintf(a, sizeof a, "%s", tu_tmpdir("tiny_det_a"));
    snprintf(b, sizeof b, "%s", tu_tmpdir("tiny_det_b"));
    assert_int_equal(cl_tiny_tokenizer_write(a, 1000, &ids), 0);
    assert_int_equal(cl_tiny_tokenizer_write(b, 1000, &ids), 0);
    const char *files[] = {"tokenizer.json", "tokenizer_config.json"};
    for (int f = 0; f < 2; f++) {
        char pa[4300], pb[4300], *ta, *tb;
        size_t la, lb;
        snprintf(pa, sizeof pa, "%s/%s", a, files[f]);
        snprintf(pb, sizeof pb, "%s/%s", b, files[f]);
        assert_int_equal(cl_read_file(pa, &ta, &la), 0);
        assert_int_equal(cl_read_file(pb, &tb, &lb), 0);
        assert_int_equal(la, lb);
        assert_memory_equal(ta, tb, la);
        free(ta);
        free(tb);
    }
}

static void test_bad_size(void **state)
{
    (void)state;
    cl_tiny_tok_ids ids;
    const char *dir = tu_tmpdir("tiny_bad");
    assert_int_equal(cl_tiny_tokenizer_write(dir, 200, &ids), CL_ERR_ARG);
    assert_non_null(strstr(cl_errmsg(), "vocab_size 200"));
    assert_int_equal(cl_tiny_tokenizer_write("/nonexistent/dir", 512, &ids), CL_ERR_IO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tiny_512),
        cmocka_unit_test(test_tiny_8192),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_bad_size),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
