/* collage chat - a conversation: one user message per line on stdin (or --message,
 * repeatable). The conversation is kept as the exact token sequence the model saw:
 * each turn appends the new user turn rendered by the model's chat template to the
 * previous prompt + answer, so with the store every turn resumes from the state the
 * previous turn (in this process or an earlier one) left. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "cli_ctx.h"
#include "collage.h"
#include "verbs.h"

int cmd_chat(int argc, char **argv)
{
    cli_model_flags mf;
    cli_sampling_flags sf;
    cli_store_flags stf;
    cli_model_flags_init(&mf);
    cli_sampling_flags_init(&sf);
    cli_store_flags_init(&stf);
    const char *system = NULL;
    cli_multi msgs = {0};
    int64_t max_new = 128;
    int no_think = 0, json = 0;
    cli_opt opts[] = {
        CLI_MODEL_OPTS(mf),
        CLI_SAMPLING_OPTS(sf),
        CLI_STORE_OPTS(stf),
        {"message", OPT_MULTI, &msgs, "TEXT", "a user turn (repeatable; default: stdin lines)",
         0, 0},
        {"system", OPT_STR, &system, "TEXT", "system message", 0, 0},
        {"no-think", OPT_FLAG, &no_think, NULL, "thinking off (enable_thinking=false)", 0, 0},
        {"max-new-tokens", OPT_INT, &max_new, "N",
         "tokens per answer (default 128; shortened to fit the context)", 0, 1073741824},
        {"json", OPT_FLAG, &json, NULL, "one JSON object with every turn at the end", 0, 0},
        {0},
    };
    cli_spec spec = {"chat", "--model DIR [--message TEXT ...] [--no-think] [--json]",
                     "A multi-turn conversation; user turns from --message or stdin lines.",
                     opts, 0, 0};
    int rc = cli_parse(&spec, argc, argv, NULL, NULL);
    if (rc) {
        free(msgs.v);
        return rc < 0 ? 0 : rc;
    }
    char *input = NULL;
    if (msgs.n == 0) { /* stdin lines */
        if ((rc = cli_read_stdin(&input, NULL)) != CL_OK) {
            free(msgs.v);
            return cli_fail(rc);
        }
        for (char *line = strtok(input, "\n"); line; line = strtok(NULL, "\n")) {
            const char **nv = realloc(msgs.v, (size_t)(msgs.n + 1) * sizeof *nv);
            if (!nv)
                break;
            msgs.v = nv;
            msgs.v[msgs.n++] = line;
        }
    }
    cli_ctx x;
    int exit_code = cli_ctx_open(&x, "chat", &mf, &stf, 1, NULL);
    cl_model *m = x.m;
    cl_tokenizer *tok = NULL;
    cl_chat_template *tpl = NULL;
    cl_ids hist = {0};
    rc = CL_OK;
    if (!exit_code)
        rc = cl_tokenizer_load_dir(mf.model, &tok);
    if (rc == CL_OK && !exit_code)
        rc = cl_chat_template_load_dir(mf.model, &tpl);
    int32_t im_end = tok ? cl_tokenizer_find(tok, "<|im_end|>") : -1;
    int64_t eos[CL_MAX_STOP_IDS];
    int n_eos = tok ? cl_model_stop_ids(m, tok, eos) : 0;
    cJSON *report = json ? cJSON_CreateObject() : NULL;
    cJSON *turns = json ? cJSON_AddArrayToObject(report, "turns") : NULL;
    for (int turn = 0; turn < msgs.n && rc == CL_OK && !exit_code; turn++) {
        char *text = NULL;
        rc = cli_render_user_turn(tpl, turn == 0 ? system : NULL, msgs.v[turn], no_think, &text);
        cl_ids prompt = {0};
        if (rc == CL_OK && turn > 0) { /* close the previous answer, then the new turn */
            if (im_end >= 0 && (hist.n == 0 || hist.v[hist.n - 1] != im_end))
                rc = cl_ids_push(&hist, im_end);
            if (rc == CL_OK)
                rc = cl_tokenizer_encode(tok, "\n", 1, 1, &hist);
        }
        if (rc == CL_OK)
            rc = cl_ids_append(&prompt, hist.v, hist.n);
        if (rc == CL_OK)
            rc = cl_tokenizer_encode(tok, text, strlen(text), 1, &prompt);
        cl_free(text);
        cli_text ctx;
        memset(&ctx, 0, sizeof ctx);
        if (rc == CL_OK)
            rc = cli_text_open(&ctx, tok, json ? NULL : stdout, NULL, 0, eos, n_eos);
        cl_gen_opts go;
        cl_gen_opts_default(&go);
        go.max_new_tokens = max_new;
        cli_sampling_to_opts(&sf, &go.sampling);
        go.sampling.seed += (uint64_t)turn;
        go.eos_ids = eos;
        go.n_eos = n_eos;
        go.on_token = cli_text_on_token;
        go.user = &ctx;
        go.max_context = mf.max_context;
        go.shorten_to_fit = 1;
        cl_ids ans = {0};
        cl_session_stats ss = {0};
        if (rc == CL_OK && x.store) {
            rc = cl_seq_reset(x.s);
            if (rc == CL_OK)
                rc = cl_session_generate(x.pc, m, x.s, NULL, prompt.v, (int64_t)prompt.n, &go,
                                         &ans, &ss);
        } else if (rc == CL_OK) { /* no store: continue the live state */
            int64_t had = cl_seq_kv_len(x.s);
            go.feed_last = 1;
            rc = cl_generate(m, x.s, prompt.v + had, (int64_t)prompt.n - had, &go, &ans, &ss.gen);
            ss.cached_tokens = had;
            ss.prefill_tokens = (int64_t)prompt.n - had;
            ss.prefill_s = ss.gen.prefill_s;
        }
        if (rc == CL_OK && ctx.failed)
            rc = ctx.failed;
        cli_text_finish(&ctx);
        if (rc == CL_OK) {
            cl_ids_free(&hist);
            rc = cl_ids_append(&hist, prompt.v, prompt.n);
            if (rc == CL_OK)
                rc = cl_ids_append(&hist, ans.v, ans.n);
        }
        if (rc == CL_OK) {
            if (json) {
                cJSON *t = cJSON_CreateObject();
                cJSON_AddNumberToObject(t, "prompt_tokens", (double)prompt.n);
                cJSON_AddNumberToObject(t, "cached_tokens", (double)ss.cached_tokens);
                cJSON_AddNumberToObject(t, "prefill_tokens", (double)ss.prefill_tokens);
                cJSON_AddNumberToObject(t, "new_tokens", (double)ans.n);
                size_t tl;
                const char *tt = cl_textstream_text(ctx.ts, &tl);
                cli_json_text(t, "text", tt, tl);
                cJSON_AddItemToArray(turns, t);
            } else {
                printf("\n");
            }
            fflush(stdout);
        }
        cli_text_close(&ctx);
        cl_ids_free(&prompt);
        cl_ids_free(&ans);
    }
    if (json && rc == CL_OK && !exit_code)
        exit_code = cli_json_emit(report);
    else if (json && rc != CL_OK) /* the turns answered so far, then the error */
        exit_code = cli_json_fail(rc, report);
    else
        cJSON_Delete(report);
    cl_chat_template_free(tpl);
    cl_tokenizer_free(tok);
    cl_ids_free(&hist);
    cli_ctx_close(&x);
    free(msgs.v);
    free(input);
    if (rc != CL_OK && !json)
        return cli_fail(rc);
    return exit_code;
}
