/* collage run - text in, text out: a raw prompt or a chat message rendered with
 * the model's own chat template, generated text streamed as it comes. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "common/ids.h"
#include "common/json.h"
#include "common/status.h"
#include "engine/generate.h"
#include "engine/session.h"
#include "engine/textstream.h"
#include "model_flags.h"
#include "tokenizer/bpe.h"
#include "tokenizer/chat.h"
#include "verbs.h"

typedef struct {
    cl_textstream ts;
    int failed;
} run_ctx;

static int on_token(void *user, int32_t id)
{
    run_ctx *r = user;
    int rc = cl_textstream_push(&r->ts, id);
    if (rc < 0) {
        r->failed = -rc;
        return 1;
    }
    return rc;
}

/* The chat prompt: system + user messages rendered by the model's template. */
static int render_chat(const char *dir, const char *system, const char *user, int no_think,
                       char **out)
{
    cl_chat_template *t;
    CL_TRY(cl_chat_template_load_dir(dir, &t));
    cJSON *msgs = cJSON_CreateArray();
    if (system) {
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "role", "system");
        cJSON_AddStringToObject(m, "content", system);
        cJSON_AddItemToArray(msgs, m);
    }
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "role", "user");
    cJSON_AddStringToObject(m, "content", user);
    cJSON_AddItemToArray(msgs, m);
    int rc = cl_chat_render(t, msgs, NULL, 1, no_think ? 0 : -1, out);
    cJSON_Delete(msgs);
    cl_chat_template_free(t);
    return rc;
}

/* Stop ids: the config's EOS ids plus the chat end-of-turn / end-of-text tokens. */
static int stop_ids(const cl_model *m, const cl_tokenizer *tok, int64_t *ids)
{
    int n = 0;
    for (int i = 0; i < m->cfg->n_eos && n < CL_MAX_EOS; i++)
        ids[n++] = m->cfg->eos_ids[i];
    const char *names[] = {"<|im_end|>", "<|endoftext|>"};
    for (int k = 0; k < 2; k++) {
        int32_t id = cl_tokenizer_find(tok, names[k]);
        int dup = id < 0;
        for (int i = 0; i < n && !dup; i++)
            dup = ids[i] == id;
        if (!dup && n < CL_MAX_EOS + 2)
            ids[n++] = id;
    }
    return n;
}

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
    cl_model *m = NULL;
    cl_tokenizer *tok = NULL;
    char *text = NULL;
    cl_ids ids = {0}, out = {0};
    cl_cache *c = NULL;
    cl_seq s = {0};
    run_ctx rctx;
    memset(&rctx, 0, sizeof rctx);
    if ((rc = cli_load_model("run", &mf, &m)) != 0) {
        free(stops.v);
        return rc;
    }
    rc = cl_tokenizer_load_dir(mf.model, &tok);
    if (rc == CL_OK && chat)
        rc = render_chat(mf.model, system, chat, no_think, &text);
    const char *in = chat ? text : prompt;
    if (rc == CL_OK)
        rc = cl_tokenizer_encode(tok, in, strlen(in), 1, &ids);
    if (rc == CL_OK && ids.n == 0)
        rc = cl_err(CL_ERR_ARG, "the prompt is empty");
    int64_t eos[CL_MAX_EOS + 2];
    int n_eos = rc == CL_OK ? stop_ids(m, tok, eos) : 0;
    cl_session_stats ss = {0};
    cl_store *store = NULL;
    cl_prefix pc;
    int exit_code = 0;
    if (rc == CL_OK)
        rc = cl_cache_create(m, NULL, &c);
    if (rc == CL_OK)
        rc = cl_seq_init(&s, c);
    if (rc == CL_OK)
        exit_code = cli_open_store("run", &stf, 1, m, c, &store, &pc);
    if (rc == CL_OK && !exit_code) {
        cl_textstream_init(&rctx.ts, tok, json ? NULL : stdout, stops.v, stops.n, eos, n_eos);
        cl_gen_opts go;
        cl_gen_opts_default(&go);
        go.max_new_tokens = max_new;
        cli_sampling_to_opts(&sf, &go.sampling);
        go.eos_ids = eos;
        go.n_eos = n_eos;
        go.on_token = on_token;
        go.user = &rctx;
        go.max_context = mf.max_context;
        rc = cl_session_generate(m, &s, store ? &pc : NULL, NULL, ids.v, (int64_t)ids.n, &go,
                                 &out, &ss);
        if (rc == CL_OK && rctx.failed)
            rc = rctx.failed;
        cl_textstream_finish(&rctx.ts);
    }
    cl_gen_stats st = ss.gen;
    if (rc == CL_OK && !exit_code) {
        if (json) {
            printf("{\"ids\":[");
            for (size_t i = 0; i < out.n; i++)
                printf("%s%d", i ? "," : "", out.v[i]);
            printf("],\"text\":");
            cl_json_fputs(stdout, rctx.ts.text ? rctx.ts.text : "");
            printf(",\"prompt_tokens\":%lld,\"cached_tokens\":%lld,\"prefill_tokens\":%lld,"
                   "\"new_tokens\":%lld,\"prefill_s\":%.6f,\"decode_s\":%.6f,"
                   "\"prefill_tok_s\":%.3f,\"decode_tok_s\":%.3f,\"stop\":\"%s\"}\n",
                   (long long)ids.n, (long long)ss.cached_tokens, (long long)ss.prefill_tokens,
                   (long long)st.new_tokens, ss.prefill_s, st.decode_s,
                   ss.prefill_s > 0 ? (double)ss.prefill_tokens / ss.prefill_s : 0.0,
                   st.decode_s > 0 && st.new_tokens > 1 ? (double)(st.new_tokens - 1) / st.decode_s
                                                        : 0.0,
                   rctx.ts.stopped             ? "stop_string"
                   : st.stop == CL_STOP_EOS    ? "eos"
                                               : "length");
        } else {
            printf("\n");
        }
    }
    cl_textstream_free(&rctx.ts);
    if (c) {
        cl_seq_release(&s);
        cl_cache_free(c);
    }
    if (store)
        cl_store_close(store);
    cl_tokenizer_free(tok);
    free(text);
    free(stops.v);
    cl_ids_free(&ids);
    cl_ids_free(&out);
    cl_model_free(m);
    return rc != CL_OK ? cli_fail(rc) : exit_code;
}
