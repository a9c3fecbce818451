/* collage run - text in, text out: a raw prompt or a chat message rendered with
 * the model's own chat template, generated text streamed as it comes. Uses the
 * state store (default ~/.cache/collage/store) unless --no-store. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "cli_ctx.h"
#include "common/ids.h"
#include "common/json.h"
#include "common/status.h"
#include "verbs.h"

int cmd_run(int argc, char **argv)
{
    cli_model_flags mf;
    cli_sampling_flags sf;
    cli_store_flags stf;
    cli_model_flags_init(&mf);
    cli_sampling_flags_init(&sf);
    cli_store_flags_init(&stf);
    const char *prompt = NULL, *chat = NULL, *system = NULL;
    cli_multi stops = {0};
    int64_t max_new = 128;
    int no_think = 0, json = 0;
    cli_opt opts[] = {
        CLI_MODEL_OPTS(mf),
        CLI_SAMPLING_OPTS(sf),
        CLI_STORE_OPTS(stf),
        {"prompt", OPT_STR, &prompt, "TEXT", "raw text to continue"},
        {"chat", OPT_STR, &chat, "TEXT", "a user message, rendered with the chat template"},
        {"system", OPT_STR, &system, "TEXT", "a system message (with --chat)"},
        {"no-think", OPT_FLAG, &no_think, NULL, "chat with thinking off (enable_thinking=false)"},
        {"max-new-tokens", OPT_INT, &max_new, "N", "tokens to generate (default 128)"},
        {"stop", OPT_MULTI, &stops, "STR", "stop when this text appears (repeatable)"},
        {"json", OPT_FLAG, &json, NULL, "one JSON object: ids, text, timings"},
        {0},
    };
    cli_spec spec = {"run", "--model DIR (--prompt TEXT | --chat TEXT) [--no-think] [--json]",
                     "Generates text with the model's tokenizer (and chat template for --chat),\n"
                     "streaming it to stdout as it is generated.",
                     opts, 0, 0};
    int rc = cli_parse(&spec, argc, argv, NULL, NULL);
    if (rc) {
        free(stops.v);
        return rc < 0 ? 0 : rc;
    }
    if (!prompt == !chat) {
        free(stops.v);
        return cli_usage_error("run", "give exactly one of --prompt and --chat");
    }
    cli_ctx x;
    int exit_code = cli_ctx_open(&x, "run", &mf, &stf, 1, NULL);
    cl_tokenizer *tok = NULL;
    cl_chat_template *tpl = NULL;
    char *text = NULL;
    cl_ids ids = {0}, out = {0};
    cli_text tx;
    memset(&tx, 0, sizeof tx);
    cl_session_stats ss;
    memset(&ss, 0, sizeof ss);
    rc = CL_OK;
    if (!exit_code) {
        rc = cl_tokenizer_load_dir(mf.model, &tok);
        if (rc == CL_OK && chat)
            rc = cl_chat_template_load_dir(mf.model, &tpl);
        if (rc == CL_OK && chat)
            rc = cli_render_user_turn(tpl, system, chat, no_think, &text);
        const char *in = chat ? text : prompt;
        if (rc == CL_OK)
            rc = cl_tokenizer_encode(tok, in, strlen(in), 1, &ids);
        if (rc == CL_OK && ids.n == 0)
            rc = cl_err(CL_ERR_ARG, "the prompt is empty");
    }
    if (rc == CL_OK && !exit_code) {
        int64_t eos[CL_MAX_EOS + 2];
        int n_eos = cli_stop_ids(x.m, tok, eos);
        cl_textstream_init(&tx.ts, tok, json ? NULL : stdout, stops.v, stops.n, eos, n_eos);
        cl_gen_opts go;
        cl_gen_opts_default(&go);
        go.max_new_tokens = max_new;
        cli_sampling_to_opts(&sf, &go.sampling);
        go.eos_ids = eos;
        go.n_eos = n_eos;
        go.on_token = cli_text_on_token;
        go.user = &tx;
        go.max_context = mf.max_context;
        rc = cl_session_generate(x.m, &x.s, cli_ctx_prefix(&x), NULL, ids.v, (int64_t)ids.n, &go,
                                 &out, &ss);
        if (rc == CL_OK && tx.failed)
            rc = tx.failed;
        cl_textstream_finish(&tx.ts);
    }
    if (rc == CL_OK && !exit_code) {
        if (json) {
            printf("{");
            cli_json_ids("ids", &out);
            printf(",\"text\":");
            cl_json_fputs(stdout, tx.ts.text ? tx.ts.text : "");
            cli_json_gen_stats((int64_t)ids.n, &ss, tx.ts.stopped ? "stop_string" : NULL);
            printf("}\n");
        } else {
            printf("\n");
        }
    }
    cl_textstream_free(&tx.ts);
    cl_chat_template_free(tpl);
    cl_tokenizer_free(tok);
    free(text);
    free(stops.v);
    cl_ids_free(&ids);
    cl_ids_free(&out);
    cli_ctx_close(&x);
    return rc != CL_OK ? cli_fail(rc) : exit_code;
}
