/* test_parsers - the qwen3 reasoning parser and the hermes tool-call parser give the
 * same split whether the text comes whole or streamed in pieces cut at every byte, hold
 * back partial tags, and follow vLLM on the edge cases; JSON strings are escaped into
 * valid UTF-8. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <cmocka.h>
#include <math.h>

#include "reasoning.h"
#include "sbuf.h"
#include "testutil.h"
#include "toolcall.h"

static char *dup_n(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    assert_non_null(d);
    if (n)
        memcpy(d, s, n);
    d[n] = 0;
    return d;
}

/* Whole-text reasoning split as strings ("" for NULL, marked by *_null). */
static void whole(const char *text, char **r, int *r_null, char **c, int *c_null)
{
    const char *rp, *cp;
    size_t rl, cl;
    rsn_extract(text, strlen(text), &rp, &rl, &cp, &cl);
    *r_null = rp == NULL;
    *c_null = cp == NULL;
    *r = dup_n(rp ? rp : "", rl);
    *c = dup_n(cp ? cp : "", cl);
}

static void expect_whole(const char *text, const char *reasoning, const char *content)
{
    char *r, *c;
    int rn, cn;
    whole(text, &r, &rn, &c, &cn);
    if (reasoning) {
        assert_false(rn);
        assert_string_equal(r, reasoning);
    } else {
        assert_true(rn);
    }
    if (content) {
        assert_false(cn);
        assert_string_equal(c, content);
    } else {
        assert_true(cn);
    }
    free(r);
    free(c);
}

static void test_reasoning_whole(void **st)
{
    (void)st;
    expect_whole("<think>\nplan</think>\n\nanswer", "\nplan", "\n\nanswer");
    expect_whole("<think>only thinking</think>", "only thinking", NULL);
    expect_whole("no tags at all", NULL, "no tags at all");
    /* vLLM's qwen3: both tags are needed; otherwise everything is content */
    expect_whole("<think>cut short", NULL, "<think>cut short");
    expect_whole("thinking</think>answer", NULL, "thinking</think>answer");
    expect_whole("pre<think>r</think>c", "r", "c"); /* text before <think> is dropped */
    expect_whole("</think>x<think>y", NULL, "y");
}

/* Streams text in pieces of `step` bytes (step 0: split at every position `cut` into two
 * pieces) and returns reasoning + content. */
static void stream(const char *text, size_t cut, size_t step, sbuf *r, sbuf *c)
{
    rsn_stream s;
    rsn_init(&s);
    size_t n = strlen(text);
    if (step == 0) {
        rsn_push(&s, text, cut, r, c);
        rsn_push(&s, text + cut, n - cut, r, c);
    } else {
        for (size_t i = 0; i < n; i += step)
            rsn_push(&s, text + i, i + step <= n ? step : n - i, r, c);
    }
    rsn_finish(&s, r, c);
    rsn_free(&s);
}

static void test_reasoning_stream(void **st)
{
    (void)st;
    static const struct {
        const char *text, *reasoning, *content;
    } cases[] = {
        {"<think>\nplan</think>\n\nanswer", "\nplan", "\n\nanswer"},
        {"plain answer", "", "plain answer"},
        {"<think>cut short", "cut short", ""}, /* streamed: reasoning until </think> */
        {"a<b</thin</think>c<think>d", "d", "a<b</thin</think>c"}, /* content first */
        {"<think>x</thin y</think>z", "x</thin y", "z"},
        {"<thi", "", "<thi"}, /* a partial tag at the end is released as text */
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        size_t n = strlen(cases[k].text);
        for (size_t cut = 0; cut <= n; cut++) {
            for (size_t step = 0; step <= 3; step++) {
                if (step && cut)
                    continue;
                sbuf r = {0}, c = {0};
                stream(cases[k].text, cut, step, &r, &c);
                assert_string_equal(r.p ? r.p : "", cases[k].reasoning);
                assert_string_equal(c.p ? c.p : "", cases[k].content);
                sb_free(&r);
                sb_free(&c);
            }
        }
    }
}

static void test_tools_whole(void **st)
{
    (void)st;
    const char *text = "Sure.<tool_call>\n{\"name\": \"f\", \"arguments\": {\"x\": [1, \"}\"]}}\n"
                       "</tool_call>\n<tool_call>{\"name\": \"g\", \"arguments\": {}}";
    tc_call *calls;
    int n;
    const char *content;
    size_t cl;
    assert_int_equal(tc_extract(text, strlen(text), &calls, &n, &content, &cl), 0);
    assert_int_equal(n, 2);
    assert_string_equal(calls[0].name, "f");
    assert_string_equal(calls[0].arguments, "{\"x\":[1,\"}\"]}");
    assert_string_equal(calls[1].name, "g"); /* an open region at the end counts */
    assert_string_equal(calls[1].arguments, "{}");
    assert_int_equal(cl, 5);
    assert_memory_equal(content, "Sure.", 5);
    tc_calls_free(calls, n);
    /* a region that is not a call: no calls, all content */
    const char *bad = "x<tool_call>{\"name\": 3}</tool_call>";
    assert_int_equal(tc_extract(bad, strlen(bad), &calls, &n, &content, &cl), 0);
    assert_int_equal(n, 0);
    assert_int_equal(cl, strlen(bad));
    /* no tag: content untouched */
    assert_int_equal(tc_extract("hello", 5, &calls, &n, &content, &cl), 0);
    assert_int_equal(n, 0);
    assert_int_equal(cl, 5);
    /* only calls: content NULL */
    const char *only = "<tool_call>{\"name\": \"h\", \"arguments\": {\"a\": 1}}</tool_call>";
    assert_int_equal(tc_extract(only, strlen(only), &calls, &n, &content, &cl), 0);
    assert_int_equal(n, 1);
    assert_null(content);
    tc_calls_free(calls, n);
}

typedef struct {
    char names[4][32];
    sbuf args[4];
    int n;
} tool_log;

static void on_delta(void *user, int index, const char *name, const char *args, size_t len)
{
    tool_log *t = user;
    assert_true(index >= 0 && index < 4);
    if (name) {
        assert_int_equal(index, t->n); /* calls are reported in order, each name once */
        snprintf(t->names[index], sizeof t->names[index], "%s", name);
        t->n++;
    }
    if (args) {
        assert_true(index < t->n); /* arguments only after the name */
        sb_put(&t->args[index], args, len);
    }
}

static void test_tools_stream(void **st)
{
    (void)st;
    const char *text = "Let me look.<tool_call>\n{\"name\": \"get_weather\", \"arguments\": "
                       "{\"city\": \"Pa{ris\", \"d\": [1, 2]}}\n</tool_call>\n<tool_call>\n"
                       "{\"name\": \"now\", \"arguments\": {}}\n</tool_call>";
    size_t n = strlen(text);
    for (size_t step = 1; step <= 7; step++) {
        tc_stream s;
        tc_init(&s);
        tool_log log;
        memset(&log, 0, sizeof log);
        sbuf content = {0};
        for (size_t i = 0; i < n; i += step)
            tc_push(&s, text + i, i + step <= n ? step : n - i, &content, on_delta, &log);
        tc_finish(&s, &content, on_delta, &log);
        assert_string_equal(content.p, "Let me look.");
        assert_int_equal(log.n, 2);
        assert_int_equal(tc_count(&s), 2);
        assert_string_equal(log.names[0], "get_weather");
        assert_string_equal(log.args[0].p, "{\"city\": \"Pa{ris\", \"d\": [1, 2]}");
        assert_string_equal(log.names[1], "now");
        assert_string_equal(log.args[1].p, "{}");
        /* the streamed arguments are valid JSON */
        cJSON *j = cJSON_Parse(log.args[0].p);
        assert_non_null(j);
        cJSON_Delete(j);
        for (int k = 0; k < 4; k++)
            sb_free(&log.args[k]);
        sb_free(&content);
        tc_free(&s);
    }
    /* text with a '<' that is not a tag streams as content; a partial tag is released
     * at the end */
    tc_stream s;
    tc_init(&s);
    tool_log log;
    memset(&log, 0, sizeof log);
    sbuf content = {0};
    tc_push(&s, "a < b <tool_c", 13, &content, on_delta, &log);
    assert_string_equal(content.p, "a < b ");
    tc_finish(&s, &content, on_delta, &log);
    assert_string_equal(content.p, "a < b <tool_c");
    assert_int_equal(log.n, 0);
    sb_free(&content);
    tc_free(&s);
}

static void test_json_strings(void **st)
{
    (void)st;
    sbuf b = {0};
    const char raw[] = "a\"b\\c\n\t\x01 \xc3\xa9 \xe2\x82 \xff end\0x";
    sb_json_str(&b, raw, sizeof raw - 1);
    /* escapes, é kept, a cut 3-byte sequence and 0xff become U+FFFD, NUL dropped */
    assert_string_equal(b.p, "\"a\\\"b\\\\c\\n\\t\\u0001 \xc3\xa9 \xef\xbf\xbd\xef\xbf\xbd "
                             "\xef\xbf\xbd endx\"");
    cJSON *j = cJSON_Parse(b.p);
    assert_non_null(j);
    cJSON_Delete(j);
    sb_free(&b);
    sb_double(&b, -INFINITY);
    assert_string_equal(b.p, "-9999.0");
    sb_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reasoning_whole),
        cmocka_unit_test(test_reasoning_stream),
        cmocka_unit_test(test_tools_whole),
        cmocka_unit_test(test_tools_stream),
        cmocka_unit_test(test_json_strings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
