/* test_qwen - the Qwen3 chat templates rendered by our engine: all 10 reference
 * conversations of qwen3-chat-template-cases.json come out byte for byte equal
 * to `rendered` with the official template (through the C API, loading a model
 * directory, and through `collage template`), the older llama.cpp copy of the
 * Qwen3 template renders them identically, and the tiny test model's own
 * template renders with and without enable_thinking=false. */
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
#include "template/chat.h"

static cJSON *load_cases(void)
{
    cJSON *cases = NULL;
    const char *path = tu_shared("assets/tokenizer-vectors/qwen3-chat-template-cases.json");
    if (cl_json_load(path, &cases) != CL_OK)
        fail_msg("%s", cl_errmsg());
    assert_true(cJSON_IsArray(cases));
    assert_int_equal(cJSON_GetArraySize(cases), 10);
    return cases;
}

static int case_thinking(const cJSON *c)
{
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(c, "enable_thinking");
    return cJSON_IsBool(e) ? cJSON_IsTrue(e) : -1;
}

static const char *case_str(const cJSON *c, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(c, key);
    assert_true(cJSON_IsString(v));
    return v->valuestring;
}

/* Renders every case with t; returns the number of cases that differ from
 * `rendered` (printing them). */
static int render_all(const cl_chat_template *t, const cJSON *cases, const char *what)
{
    int bad = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cases)
    {
        char *out = NULL;
        const cJSON *agp = cJSON_GetObjectItemCaseSensitive(c, "add_generation_prompt");
        int rc = cl_chat_render_cjson(t, cJSON_GetObjectItemCaseSensitive(c, "messages"),
                                cJSON_GetObjectItemCaseSensitive(c, "tools"), cJSON_IsTrue(agp),
                                case_thinking(c), &out);
        if (rc != CL_OK || strcmp(out, case_str(c, "rendered")) != 0) {
            print_error("%s: case %s: rc %d [%s]\n  got      [%s]\n  expected [%s]\n", what,
                        case_str(c, "name"), rc, cl_errmsg(), out ? out : "",
                        case_str(c, "rendered"));
            bad++;
        }
        free(out);
    }
    return bad;
}

static void copy_file(const char *from, const char *to)
{
    char *data;
    size_t len;
    if (cl_read_file(from, &data, &len) != CL_OK || cl_write_file_atomic(to, data, len) != CL_OK)
        fail_msg("%s", cl_errmsg());
    free(data);
}

/* A model directory holding a copy of the official tokenizer_config.json. */
static const char *official_model_dir(void)
{
    const char *src = tu_shared("assets/qwen3-tokenizer/tokenizer_config.json");
    const char *dir = tu_tmpdir("template_qwen");
    char dst[4200];
    snprintf(dst, sizeof dst, "%s/tokenizer_config.json", dir);
    copy_file(src, dst);
    return dir;
}

/* The official template, read from a model directory's tokenizer_config.json. */
static void test_official_from_model_dir(void **state)
{
    (void)state;
    cJSON *cases = load_cases();
    cl_chat_template *t;
    if (cl_chat_template_load_dir(official_model_dir(), &t) != CL_OK)
        fail_msg("%s", cl_errmsg());
    assert_int_equal(render_all(t, cases, "tokenizer_config.json"), 0);
    cl_chat_template_free(t);
    cJSON_Delete(cases);
}

static cl_chat_template *template_file(const char *rel)
{
    char *src;
    size_t len;
    const char *path = tu_shared(rel);
    if (cl_read_file(path, &src, &len) != CL_OK)
        fail_msg("%s", cl_errmsg());
    cl_chat_template *t;
    if (cl_chat_template_from_string(src, path, &t) != CL_OK)
        fail_msg("%s", cl_errmsg());
    free(src);
    assert_int_equal(cl_chat_template_set_var(t, "eos_token", "<|im_end|>"), CL_OK);
    return t;
}

/* The same template from chat_template.jinja through cl_chat_template_from_string. */
static void test_official_from_string(void **state)
{
    (void)state;
    cJSON *cases = load_cases();
    cl_chat_template *t = template_file("assets/qwen3-tokenizer/chat_template.jinja");
    assert_int_equal(render_all(t, cases, "chat_template.jinja"), 0);
    cl_chat_template_free(t);
    cJSON_Delete(cases);
}

/* The original (April 2025) Qwen3 template kept by llama.cpp. On the 10 reference
 * cases it renders exactly what the official one does: every message there has
 * string content. The two differ where content is not a string: the official
 * template treats it as '' (guards `message.content is string`), the old one
 * calls string methods on it and fails, as it does under Python jinja2 (checked
 * below: an assistant tool call with "content": null, and list content). */
static void test_llama_cpp_template(void **state)
{
    (void)state;
    cJSON *cases = load_cases();
    cl_chat_template *old = template_file(
        "assets/qwen3-tokenizer/chat_template.llama.cpp-Qwen-Qwen3-0.6B.jinja");
    cl_chat_template *official = template_file("assets/qwen3-tokenizer/chat_template.jinja");
    assert_int_equal(render_all(old, cases, "llama.cpp template"), 0);

    static const struct {
        const char *messages, *official, *old_error;
    } differ[] = {
        {"[{\"role\": \"user\", \"content\": \"Q\"}, {\"role\": \"assistant\", \"content\": null,"
         " \"tool_calls\": [{\"function\": {\"name\": \"f\", \"arguments\": {\"a\": 1}}}]}]",
         "<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
         "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": 1}}\n</tool_call><|im_end|>\n"
         "<|im_start|>assistant\n",
         "argument of type 'NoneType' is not iterable"},
        {"[{\"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": \"hi\"}]}]",
         "<|im_start|>user\n<|im_end|>\n<|im_start|>assistant\n",
         "'list' object has no method 'startswith'"},
    };
    for (size_t i = 0; i < sizeof differ / sizeof differ[0]; i++) {
        cJSON *msgs = cJSON_Parse(differ[i].messages);
        char *out = NULL;
        assert_int_equal(cl_chat_render_cjson(official, msgs, NULL, 1, -1, &out), CL_OK);
        assert_string_equal(out, differ[i].official);
        free(out);
        out = NULL;
        assert_int_not_equal(cl_chat_render_cjson(old, msgs, NULL, 1, -1, &out), CL_OK);
        assert_null(out);
        if (!strstr(cl_errmsg(), differ[i].old_error))
            fail_msg("unexpected error: %s", cl_errmsg());
        cJSON_Delete(msgs);
    }
    cl_chat_template_free(old);
    cl_chat_template_free(official);
    cJSON_Delete(cases);
}

/* `collage template --model DIR --input CASE.json` prints each render byte for
 * byte; --template FILE renders another template file the same way. */
static void test_cli(void **state)
{
    (void)state;
    cJSON *cases = load_cases();
    const char *dir = official_model_dir();
    const char *old = tu_shared("assets/qwen3-tokenizer/chat_template.llama.cpp-Qwen-Qwen3-0.6B.jinja");
    int i = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cases)
    {
        char path[4200];
        snprintf(path, sizeof path, "%s/case%d.json", dir, i++);
        char *text = cJSON_Print(c);
        assert_int_equal(cl_write_file_atomic(path, text, strlen(text)), CL_OK);
        free(text);
        for (int k = 0; k < 2; k++) {
            char *out = NULL;
            int rc = k == 0 ? tu_runf(&out, "'%s' template --model '%s' --input '%s'", tu_bin(),
                                      dir, path)
                            : tu_runf(&out, "'%s' template --model '%s' --template '%s' --input '%s'",
                                      tu_bin(), dir, old, path);
            assert_int_equal(rc, 0);
            assert_non_null(out);
            if (strcmp(out, case_str(c, "rendered")) != 0)
                fail_msg("case %s (%s): got [%s]", case_str(c, "name"), k ? "--template" : "--model",
                         out);
            free(out);
        }
    }
    cJSON_Delete(cases);
}

/* The tiny test models' tokenizer_config.json (written by mkmodel) carries a
 * ChatML template: it renders, and enable_thinking=false adds the empty think
 * block. Needs no ../shared. */
static void test_tiny_model_template(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("template_tiny");
    char *out = NULL;
    int rc = tu_runf(&out, "'%s' mkmodel --preset tiny-gka --out '%s/m' 2>&1", tu_bin(), dir);
    if (rc != 0)
        fail_msg("mkmodel failed: %s", out ? out : "");
    free(out);
    char model[4200];
    snprintf(model, sizeof model, "%s/m", dir);
    cl_chat_template *t;
    if (cl_chat_template_load_dir(model, &t) != CL_OK)
        fail_msg("%s", cl_errmsg());
    cJSON *msgs = cJSON_Parse("[{\"role\": \"system\", \"content\": \"Be brief.\"},"
                              " {\"role\": \"user\", \"content\": \"Hello!\"}]");
    const char *base = "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHello!<|im_end|>\n"
                       "<|im_start|>assistant\n";
    char expected[512];
    assert_int_equal(cl_chat_render_cjson(t, msgs, NULL, 1, -1, &out), CL_OK);
    assert_string_equal(out, base);
    free(out);
    assert_int_equal(cl_chat_render_cjson(t, msgs, NULL, 1, 1, &out), CL_OK);
    assert_string_equal(out, base);
    free(out);
    snprintf(expected, sizeof expected, "%s<think>\n\n</think>\n\n", base);
    assert_int_equal(cl_chat_render_cjson(t, msgs, NULL, 1, 0, &out), CL_OK);
    assert_string_equal(out, expected);
    free(out);
    cJSON_Delete(msgs);
    cl_chat_template_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_official_from_model_dir),
        cmocka_unit_test(test_official_from_string),
        cmocka_unit_test(test_llama_cpp_template),
        cmocka_unit_test(test_cli),
        cmocka_unit_test(test_tiny_model_template),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
