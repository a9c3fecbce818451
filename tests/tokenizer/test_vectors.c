/* test_vectors - the Qwen3 tokenizer reproduces every third-party and generated
 * test vector exactly (llama.cpp's qwen2 sets, qwen3-plain without added-token
 * matching, qwen3-special and the chat-template cases with it), and decoding each
 * result gives back NFC(input) byte for byte. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <utf8proc.h>

#include "common/fileio.h"
#include "common/json.h"
#include "common/status.h"
#include "testutil.h"
#include "tokenizer/bpe.h"

static cl_tokenizer *tok;

static int setup(void **state)
{
    (void)state;
    if (!tu_have_shared())
        return 0; /* each test skips (or fails under COLLAGE_REQUIRE_SHARED=1) */
    char path[4200];
    snprintf(path, sizeof path, "%s/assets/qwen3-tokenizer/tokenizer.json",
             getenv("COLLAGE_SHARED"));
    int rc = cl_tokenizer_load(path, &tok);
    if (rc)
        print_error("load %s: %s\n", path, cl_errmsg());
    return rc;
}

static int teardown(void **state)
{
    (void)state;
    cl_tokenizer_free(tok);
    return 0;
}

/* NFC of a text with NUL-free content, via utf8proc directly (not the code under test). */
static char *nfc(const char *text, size_t len, size_t *out_len)
{
    utf8proc_uint8_t *dst = NULL;
    utf8proc_ssize_t n = utf8proc_map((const utf8proc_uint8_t *)text, (utf8proc_ssize_t)len, &dst,
                                      UTF8PROC_STABLE | UTF8PROC_COMPOSE);
    assert_true(n >= 0);
    *out_len = (size_t)n;
    return (char *)dst;
}

/* Encodes, compares with the expected ids, and checks the round trip. */
static void check_case(const char *name, size_t index, const char *text, size_t len,
                       int parse_special, const int32_t *want, size_t n_want)
{
    cl_ids ids = {0};
    int rc = cl_tokenizer_encode(tok, text, len, parse_special, &ids);
    if (rc)
        fail_msg("%s case %zu: %s", name, index, cl_errmsg());
    int same = ids.n == n_want && (n_want == 0 || !memcmp(ids.v, want, n_want * sizeof *want));
    if (!same) {
        print_error("%s case %zu: %zu ids, expected %zu\n  got :", name, index, ids.n, n_want);
        for (size_t i = 0; i < ids.n; i++)
            print_error(" %d", ids.v[i]);
        print_error("\n  want:");
        for (size_t i = 0; i < n_want; i++)
            print_error(" %d", want[i]);
        print_error("\n");
        fail_msg("%s case %zu differs", name, index);
    }
    char *dec;
    size_t dlen, nlen;
    assert_int_equal(cl_tokenizer_decode(tok, ids.v, ids.n, &dec, &dlen), 0);
    char *norm = nfc(text, len, &nlen);
    if (dlen != nlen || memcmp(dec, norm, nlen))
        fail_msg("%s case %zu: decode(encode(x)) != NFC(x)", name, index);
    free(norm);
    free(dec);
    cl_ids_free(&ids);
}

/* Runs one .inp/.out pair (llama.cpp test-tokenizer-0 format); returns the case count. */
static size_t run_pair(const char *base, int parse_special)
{
    char rel[256];
    snprintf(rel, sizeof rel, "assets/tokenizer-vectors/%s.inp", base);
    const char *inp_path = tu_shared(rel);
    char *inp, *out;
    size_t inp_len, out_len;
    assert_int_equal(cl_read_file(inp_path, &inp, &inp_len), 0);
    snprintf(rel, sizeof rel, "assets/tokenizer-vectors/%s.out", base);
    assert_int_equal(cl_read_file(tu_shared(rel), &out, &out_len), 0);
    static const char sep[] = "\n__ggml_vocab_test__\n";
    char *p = inp, *end = inp + inp_len, *line = out;
    size_t n = 0;
    for (;;) {
        char *q = memmem(p, (size_t)(end - p), sep, sizeof sep - 1);
        if (!q)
            break;
        char *eol = strchr(line, '\n');
        assert_non_null(eol);
        *eol = 0;
        cl_ids want = {0};
        assert_int_equal(cl_ids_parse(line, "expected", &want), 0);
        check_case(base, n, p, (size_t)(q - p), parse_special, want.v, want.n);
        cl_ids_free(&want);
        line = eol + 1;
        p = q + sizeof sep - 1;
        n++;
    }
    assert_true(p == end);
    free(inp);
    free(out);
    print_message("    %-28s %zu cases (%s)\n", base, n,
                  parse_special ? "added tokens matched" : "plain text");
    return n;
}

/* llama.cpp's vectors came from HF AutoTokenizer (added tokens matched); they hold no
 * added-token text, so both modes must give the same ids. */
static void test_llama_cpp_qwen2(void **state)
{
    (void)state;
    assert_int_equal(run_pair("ggml-vocab-qwen2.gguf", 1), 46);
    assert_int_equal(run_pair("ggml-vocab-qwen2.gguf", 0), 46);
}

static void test_llama_cpp_qwen2_2024(void **state)
{
    (void)state;
    assert_int_equal(run_pair("ggml-vocab-qwen2.gguf.2024", 1), 46);
    assert_int_equal(run_pair("ggml-vocab-qwen2.gguf.2024", 0), 46);
}

static void test_qwen3_plain(void **state)
{
    (void)state;
    assert_true(run_pair("qwen3-plain", 0) > 0);
}

static void test_qwen3_special(void **state)
{
    (void)state;
    assert_true(run_pair("qwen3-special", 1) > 0);
}

static void test_chat_template_cases(void **state)
{
    (void)state;
    cJSON *cases;
    assert_int_equal(
        cl_json_load(tu_shared("assets/tokenizer-vectors/qwen3-chat-template-cases.json"), &cases),
        0);
    size_t n = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cases)
    {
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(c, "rendered");
        const cJSON *ids = cJSON_GetObjectItemCaseSensitive(c, "ids");
        assert_true(cJSON_IsString(r) && cJSON_IsArray(ids));
        size_t k = 0, m = (size_t)cJSON_GetArraySize(ids);
        int32_t *want = malloc((m + 1) * sizeof *want);
        const cJSON *id;
        cJSON_ArrayForEach(id, ids) want[k++] = (int32_t)id->valuedouble;
        check_case("chat-template", n, r->valuestring, strlen(r->valuestring), 1, want, m);
        free(want);
        n++;
    }
    cJSON_Delete(cases);
    assert_int_equal(n, 10);
}

/* Facts of the Qwen3 vocabulary the rest of the engine relies on. */
static void test_qwen3_facts(void **state)
{
    (void)state;
    tu_shared("");
    assert_int_equal(cl_tokenizer_vocab_size(tok), 151669);
    assert_int_equal(cl_tokenizer_find(tok, "<|endoftext|>"), 151643);
    assert_int_equal(cl_tokenizer_find(tok, "<|im_start|>"), 151644);
    assert_int_equal(cl_tokenizer_find(tok, "<|im_end|>"), 151645);
    assert_int_equal(cl_tokenizer_find(tok, "<think>"), 151667);
    assert_int_equal(cl_tokenizer_find(tok, "</think>"), 151668);
    assert_int_equal(cl_tokenizer_find(tok, "\n"), 198);
    assert_int_equal(cl_tokenizer_find(tok, " the"), 279);
    /* raw bytes first: "Ċ" is the token of the bytes C4 8A, not "\n" */
    assert_int_equal(cl_tokenizer_find(tok, "\xc4\x8a"), 148848);
    assert_int_equal(cl_tokenizer_find(tok, "\xc4\xa0the"), 279); /* "Ġthe": by its spelling */
    assert_int_equal(cl_tokenizer_find(tok, "no such token, surely"), -1);
    assert_true(cl_tokenizer_is_special(tok, 151645));
    assert_true(cl_tokenizer_is_special(tok, 151656));
    assert_false(cl_tokenizer_is_special(tok, 151657)); /* <tool_call>: added, not special */
    assert_false(cl_tokenizer_is_special(tok, 151667)); /* <think> */
    assert_true(cl_tokenizer_is_added(tok, 151667));
    assert_false(cl_tokenizer_is_special(tok, 198));
    assert_false(cl_tokenizer_is_special(tok, 151700));
    const char *b;
    size_t n;
    assert_int_equal(cl_tokenizer_token_bytes(tok, 151645, &b, &n), 0);
    assert_int_equal(n, 10);
    assert_memory_equal(b, "<|im_end|>", 10);
    assert_int_equal(cl_tokenizer_token_bytes(tok, 151669, &b, &n), CL_ERR_RANGE);
    assert_non_null(strstr(cl_errmsg(), "151669"));
    int32_t ids[] = {9707, 151936};
    char *out;
    assert_int_equal(cl_tokenizer_decode(tok, ids, 2, &out, &n), CL_ERR_RANGE);
    assert_non_null(strstr(cl_errmsg(), "151936"));
}

/* parse_special only decides whether added-token text is matched. */
static void test_special_modes(void **state)
{
    (void)state;
    tu_shared("");
    const char *text = "<|im_start|>user\n<think>x</think><|im_end|>";
    cl_ids a = {0}, b = {0};
    assert_int_equal(cl_tokenizer_encode(tok, text, strlen(text), 1, &a), 0);
    assert_int_equal(cl_tokenizer_encode(tok, text, strlen(text), 0, &b), 0);
    int32_t want[] = {151644, 872, 198, 151667, 87, 151668, 151645};
    assert_int_equal(a.n, 7);
    assert_memory_equal(a.v, want, sizeof want);
    assert_true(b.n > 7);
    for (size_t i = 0; i < b.n; i++)
        assert_false(cl_tokenizer_is_added(tok, b.v[i]));
    /* encode appends: ids already in the list stay */
    assert_int_equal(cl_tokenizer_encode(tok, "\n", 1, 1, &a), 0);
    assert_int_equal(a.n, 8);
    assert_int_equal(a.v[7], 198);
    cl_ids_free(&a);
    cl_ids_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_llama_cpp_qwen2), cmocka_unit_test(test_llama_cpp_qwen2_2024),
        cmocka_unit_test(test_qwen3_plain),     cmocka_unit_test(test_qwen3_special),
        cmocka_unit_test(test_chat_template_cases), cmocka_unit_test(test_qwen3_facts),
        cmocka_unit_test(test_special_modes),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
