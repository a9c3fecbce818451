/* test_request - chat and completion request bodies: every malformed or out-of-range
 * field is a 400 naming that field (before the engine sees anything), context overflow
 * names the limit, and good requests come out with the values asked for (sampling,
 * stops, budgets, prompts, documents). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "collage.h"
#include "request.h"
#include "testutil.h"

static cl_tokenizer *tok;
static cl_chat_template *tpl;
static srv_model_view view;

static int setup(void **st)
{
    (void)st;
    const char *dir = tu_tmpdir("server-request");
    cl_mkmodel_opts o = {"tiny-gka", dir, 0, NULL, NULL, 0, 0};
    if (cl_mkmodel(&o) != CL_OK || cl_tokenizer_load_dir(dir, &tok) != CL_OK ||
        cl_chat_template_load_dir(dir, &tpl) != CL_OK)
        fail_msg("%s", cl_errmsg());
    memset(&view, 0, sizeof view);
    view.model_name = "tiny";
    view.context = 256;
    view.has_gka = 1;
    view.reasoning = 1;
    view.tools = 1;
    view.max_n = 4;
    cl_sampler_opts_default(&view.defaults);
    view.tok = tok;
    view.tpl = tpl;
    return 0;
}

static int teardown(void **st)
{
    (void)st;
    cl_chat_template_free(tpl);
    cl_tokenizer_free(tok);
    return 0;
}

#define MSGS "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]"

/* body must fail with HTTP 400 naming param ("" for the body itself). */
static void bad(int api, const char *body, const char *param)
{
    srv_gen_req r;
    srv_error e;
    int rc = srv_parse_gen(&view, api, body, strlen(body), &r, &e);
    srv_gen_req_free(&r);
    if (rc == 0)
        fail_msg("accepted: %s", body);
    if (e.http != 400 || strcmp(e.param, param))
        fail_msg("%s -> %d param '%s' (want 400 '%s'): %s", body, e.http, e.param, param, e.msg);
    if (param[0] && !strstr(e.msg, param))
        fail_msg("message does not name %s: %s", param, e.msg);
}

static void good(int api, const char *body, srv_gen_req *r)
{
    srv_error e;
    if (srv_parse_gen(&view, api, body, strlen(body), r, &e) != 0)
        fail_msg("%s: %s", body, e.msg);
}

static void test_malformed(void **st)
{
    (void)st;
    const int C = SRV_API_CHAT, P = SRV_API_COMPLETIONS;
    bad(C, "", "");
    bad(C, "{", "");
    bad(C, "[1,2]", "");
    bad(C, "{\"messages\":[]} x", "");
    bad(C, "{}", "messages");
    bad(C, "{\"messages\":\"hi\"}", "messages");
    bad(C, "{\"messages\":[]}", "messages");
    bad(C, "{\"messages\":[1]}", "messages[0]");
    bad(C, "{\"messages\":[{\"content\":\"x\"}]}", "messages[0]");
    bad(C, "{\"messages\":[{\"role\":\"wizard\",\"content\":\"x\"}]}", "messages[0]");
    bad(C, "{\"messages\":[{\"role\":\"user\"}]}", "messages[0]");
    bad(C, "{\"messages\":[{\"role\":\"user\",\"content\":5}]}", "messages[0].content");
    bad(C, "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\"}]}]}",
        "messages[0].content");
    bad(C, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\",\"tool_calls\":[]}]}",
        "messages[0]");
    bad(C, "{" MSGS ",\"model\":\"other\"}", "model");
    bad(C, "{" MSGS ",\"model\":3}", "model");
    bad(C, "{" MSGS ",\"temperature\":\"hot\"}", "temperature");
    bad(C, "{" MSGS ",\"temperature\":2.5}", "temperature");
    bad(C, "{" MSGS ",\"temperature\":-1}", "temperature");
    bad(C, "{" MSGS ",\"top_p\":0}", "top_p");
    bad(C, "{" MSGS ",\"top_p\":1.5}", "top_p");
    bad(C, "{" MSGS ",\"top_k\":1.5}", "top_k");
    bad(C, "{" MSGS ",\"top_k\":-2}", "top_k");
    bad(C, "{" MSGS ",\"min_p\":1}", "min_p");
    bad(C, "{" MSGS ",\"repetition_penalty\":0}", "repetition_penalty");
    bad(C, "{" MSGS ",\"presence_penalty\":3}", "presence_penalty");
    bad(C, "{" MSGS ",\"frequency_penalty\":-2.5}", "frequency_penalty");
    bad(C, "{" MSGS ",\"seed\":\"x\"}", "seed");
    bad(C, "{" MSGS ",\"seed\":1.5}", "seed");
    bad(C, "{" MSGS ",\"stop\":5}", "stop");
    bad(C, "{" MSGS ",\"stop\":[\"a\",7]}", "stop");
    bad(C, "{" MSGS ",\"stop\":[\"\"]}", "stop");
    bad(C, "{" MSGS ",\"n\":0}", "n");
    bad(C, "{" MSGS ",\"n\":5}", "n");
    bad(C, "{" MSGS ",\"max_tokens\":0}", "max_tokens");
    bad(C, "{" MSGS ",\"max_tokens\":1e300}", "max_tokens");
    bad(C, "{" MSGS ",\"max_tokens\":250}", "max_tokens"); /* context overflow */
    bad(C, "{" MSGS ",\"max_completion_tokens\":300}", "max_completion_tokens");
    bad(C, "{" MSGS ",\"stream\":\"yes\"}", "stream");
    bad(C, "{" MSGS ",\"stream_options\":{\"include_usage\":true}}", "stream_options");
    bad(C, "{" MSGS ",\"stream\":true,\"stream_options\":[]}", "stream_options");
    bad(C, "{" MSGS ",\"logprobs\":1}", "logprobs");
    bad(C, "{" MSGS ",\"top_logprobs\":3}", "top_logprobs");
    bad(C, "{" MSGS ",\"logprobs\":true,\"top_logprobs\":21}", "top_logprobs");
    bad(C, "{" MSGS ",\"tools\":{}}", "tools");
    bad(C, "{" MSGS ",\"tools\":[{\"type\":\"function\"}]}", "tools");
    bad(C, "{" MSGS ",\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}],"
           "\"tool_choice\":\"required\"}", "tool_choice");
    bad(C, "{" MSGS ",\"chat_template_kwargs\":[]}", "chat_template_kwargs");
    bad(C, "{" MSGS ",\"chat_template_kwargs\":{\"enable_thinking\":1}}",
        "chat_template_kwargs.enable_thinking");
    bad(C, "{" MSGS ",\"num_iter\":-1}", "num_iter");
    bad(C, "{" MSGS ",\"num_iter\":2000}", "num_iter");
    bad(C, "{" MSGS ",\"documents\":\"abc\"}", "documents");
    bad(C, "{" MSGS ",\"documents\":[]}", "documents");
    bad(C, "{" MSGS ",\"documents\":[\"xyz\"]}", "documents");
    bad(C, "{" MSGS ",\"documents\":[\"0123456789abcdef0123456789abcdeg\"]}", "documents");
    bad(C, "{" MSGS ",\"documents\":[\"0123456789abcdef0123456789abcdef\"],"
           "\"compose_type\":\"bogus\"}", "compose_type");
    bad(C, "{" MSGS ",\"documents\":[\"0123456789abcdef0123456789abcdef\"],"
           "\"compose_type\":\"full_kv_soup_ssm\"}", "compose_type");
    bad(C, "{" MSGS ",\"compose_type\":\"concat_kv_soup_ssm\"}", "compose_type");
    bad(C, "{" MSGS ",\"logit_bias\":{\"5\":10}}", "logit_bias");
    bad(C, "{" MSGS ",\"response_format\":{\"type\":\"json_object\"}}", "response_format");
    bad(C, "{" MSGS ",\"echo\":true}", "echo");
    bad(P, "{}", "prompt");
    bad(P, "{\"prompt\":5}", "prompt");
    bad(P, "{\"prompt\":[1,-1]}", "prompt");
    bad(P, "{\"prompt\":[1,99999]}", "prompt");
    bad(P, "{\"prompt\":[\"a\",5]}", "prompt");
    bad(P, "{\"prompt\":\"\"}", "prompt");
    bad(P, "{\"prompt\":\"hi\",\"logprobs\":true}", "logprobs");
    bad(P, "{\"prompt\":\"hi\",\"logprobs\":21}", "logprobs");
    bad(P, "{\"prompt\":\"hi\",\"echo\":true,\"logprobs\":1}", "logprobs");
    bad(P, "{\"prompt\":\"hi\",\"suffix\":\"x\"}", "suffix");
    bad(P, "{\"prompt\":\"hi\",\"best_of\":2}", "best_of");
    char big[600];
    memset(big, 0, sizeof big);
    strcpy(big, "{\"prompt\":[");
    for (int i = 0; i < 256; i++)
        strcat(big, i ? ",1" : "1");
    strcat(big, "]}");
    bad(P, big, "prompt"); /* the prompt alone fills the context */
}

static void test_good(void **st)
{
    (void)st;
    srv_gen_req r;
    good(SRV_API_CHAT,
         "{" MSGS ",\"model\":\"tiny\",\"temperature\":0,\"top_p\":0.5,\"top_k\":-1,"
         "\"seed\":9,\"stop\":\"END\",\"n\":2,\"max_completion_tokens\":7,\"stream\":true,"
         "\"stream_options\":{\"include_usage\":true},\"logprobs\":true,\"top_logprobs\":2,"
         "\"num_iter\":5,\"user\":\"ignored\",\"tools\":[{\"type\":\"function\",\"function\":"
         "{\"name\":\"f\"}}]}",
         &r);
    assert_true(r.sampling.greedy);
    assert_true(r.sampling.top_p == 0.5f);
    assert_int_equal(r.sampling.top_k, 0);
    assert_true(r.seed_given);
    assert_int_equal(r.n_stop, 1);
    assert_string_equal(r.stop[0], "END");
    assert_int_equal(r.n, 2);
    assert_int_equal(r.max_tokens, 7);
    assert_true(r.stream && r.include_usage && r.logprobs && r.tools && r.reasoning);
    assert_int_equal(r.top_logprobs, 2);
    assert_int_equal(r.num_iter, 5);
    assert_int_equal(r.n_prompts, 1);
    assert_true(r.prompts[0].n > 3);
    srv_gen_req_free(&r);

    /* without max_tokens the budget is what the context leaves */
    good(SRV_API_CHAT, "{" MSGS "}", &r);
    assert_int_equal(r.max_tokens + (int64_t)r.prompts[0].n, 256);
    assert_false(r.max_tokens_given);
    assert_false(r.tools);
    srv_gen_req_free(&r);

    good(SRV_API_COMPLETIONS,
         "{\"prompt\":[[1,2,3],\"four\"],\"echo\":true,\"max_tokens\":3}", &r);
    assert_int_equal(r.n_prompts, 2);
    assert_int_equal(r.prompts[0].n, 3);
    assert_true(r.echo_text[1] && !strcmp(r.echo_text[1], "four"));
    srv_gen_req_free(&r);

    good(SRV_API_COMPLETIONS,
         "{\"prompt\":\"x\",\"documents\":[\"0123456789ABCDEF0123456789abcdef\"],"
         "\"compose_type\":\"sw_fuse_ssm\",\"max_tokens\":3}", &r);
    assert_int_equal(r.n_docs, 1);
    assert_int_equal(r.kv, CL_COMPOSE_KV_SW);
    assert_int_equal(r.ssm, CL_COMPOSE_SSM_FUSE);
    srv_gen_req_free(&r);

    /* content as text parts, developer as system, thinking off */
    good(SRV_API_CHAT,
         "{\"messages\":[{\"role\":\"developer\",\"content\":\"be brief\"},{\"role\":\"user\","
         "\"content\":[{\"type\":\"text\",\"text\":\"a\"},{\"type\":\"text\",\"text\":\"b\"}]}],"
         "\"chat_template_kwargs\":{\"enable_thinking\":false}}", &r);
    char *text = NULL;
    size_t len;
    assert_int_equal(cl_tokenizer_decode(tok, r.prompts[0].v, r.prompts[0].n, &text, &len), 0);
    assert_non_null(strstr(text, "<|im_start|>system\nbe brief"));
    assert_non_null(strstr(text, "<|im_start|>user\nab<|im_end|>"));
    assert_non_null(strstr(text, "<think>\n\n</think>"));
    cl_free(text);
    srv_gen_req_free(&r);

    /* num_iter only where the model has GKA layers */
    view.has_gka = 0;
    bad(SRV_API_CHAT, "{" MSGS ",\"num_iter\":5}", "num_iter");
    view.has_gka = 1;

    /* the test hook is refused unless enabled */
    good(SRV_API_CHAT, "{" MSGS ",\"collage_force_text\":\"x\"}", &r);
    assert_int_equal(r.force.n, 0);
    srv_gen_req_free(&r);
    view.test_hooks = 1;
    good(SRV_API_CHAT, "{" MSGS ",\"collage_force_text\":\"<think>\"}", &r);
    assert_int_equal(r.force.n, 1);
    srv_gen_req_free(&r);
    view.test_hooks = 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_good),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
