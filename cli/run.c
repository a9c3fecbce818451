/* collage run - text in, text out: a raw prompt or a chat message rendered with
 * the model's own chat template, generated text streamed as it comes. Uses the
 * state store (default ~/.cache/collage/store) unless --no-store. An answer that would
 * not fit in the context is shortened to fit (said on stderr). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "cli_ctx.h"
#include "collage.h"
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
        {"prompt", OPT_STR, &prompt, "TEXT", "raw text to continue", 0, 0},
        {"chat", OPT_STR, &chat, "TEXT", "a user message, rendered with the chat template", 0, 0},
        {"system", OPT_STR, &system, "TEXT", "a system message (with --chat)", 0, 0},
        {"no-think", OPT_FLAG, &no_think, NULL, "chat with thinking off (enable_thinking=false)",
         0, 0},
        {"max-new-tokens", OPT_INT, &max_new, "N",
         "tokens to generate (default 128; shortened to fit the context)", 0, 1073741824},
        {"stop", OPT_MULTI, &stops, "STR", "stop when this text appears (repeatable)", 0, 0},
        {"json", OPT_FLAG, &json, NULL, "one JSON object: ids, text, timings", 0, 0},
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
    if (system && !chat) {
        free(stops.v);
        return cli_usage_error("run", "--system goes with --chat");
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
    int64_t eos[CL_MAX_STOP_IDS];
    int n_eos = !exit_code && rc == CL_OK ? cl_model_stop_ids(x.m, tok, eos) : 0;
    if (rc == CL_OK && !exit_code)
        rc = cli_text_open(&tx, tok, json ? NULL : stdout, stops.v, stops.n, eos, n_eos);
    if (rc == CL_OK && !exit_code) {
        cl_gen_opts go;
        cl_gen_opts_default(&go);
        go.max_new_tokens = max_new;
        cli_sampling_to_opts(&sf, &go.sampling);
        go.eos_ids = eos;
        go.n_eos = n_eos;
        go.on_token = cli_text_on_token;
        go.user = &tx;
        go.max_context = mf.max_context;
        go.shorten_to_fit = 1;
        rc = cl_session_generate(x.pc, x.m, x.s, NULL, ids.v, (int64_t)ids.n, &go, &out, &ss);
        if (rc == CL_OK && tx.failed)
            rc = tx.failed;
        cli_text_finish(&tx);
    }
    if (rc == CL_OK && !exit_code) {
        if (json) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddItemToObject(o, "ids", cli_json_ids(&out));
            size_t tl;
            const char *t = cl_textstream_text(tx.ts, &tl);
            cli_json_text(o, "text", t, tl);
            cli_json_gen_stats(o, (int64_t)ids.n, &ss,
                               cl_textstream_stopped(tx.ts) ? "stop_string" : NULL);
            exit_code = cli_json_emit(o);
        } else {
            printf("\n");
        }
    }
    cli_text_close(&tx);
    cl_chat_template_free(tpl);
    cl_tokenizer_free(tok);
    cl_free(text);
    free(stops.v);
    cl_ids_free(&ids);
    cl_ids_free(&out);
    cli_ctx_close(&x);
    if (rc != CL_OK)
        return json ? cli_json_fail(rc, NULL) : cli_fail(rc);
    return exit_code;
}
