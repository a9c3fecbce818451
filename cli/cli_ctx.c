#include "cli_ctx.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "common/status.h"

int cli_ctx_open(cli_ctx *x, const char *verb, const cli_model_flags *mf,
                 const cli_store_flags *sf, int store_default_on, const cl_cache_opts *co)
{
    memset(x, 0, sizeof *x);
    int rc = cli_load_model(verb, mf, &x->m);
    if (rc != 0)
        return rc;
    int st = cl_cache_create(x->m, co, &x->c);
    if (st == CL_OK)
        st = cl_seq_init(&x->s, x->c);
    if (st != CL_OK)
        return cli_fail(st);
    x->has_seq = 1;
    if (sf)
        return cli_open_store(verb, sf, store_default_on, x->m, x->c, &x->store, &x->pc);
    return 0;
}

void cli_ctx_close(cli_ctx *x)
{
    if (x->has_seq)
        cl_seq_release(&x->s);
    if (x->c)
        cl_cache_free(x->c);
    if (x->store)
        cl_store_close(x->store);
    cl_model_free(x->m);
    memset(x, 0, sizeof *x);
}

cl_prefix *cli_ctx_prefix(cli_ctx *x) { return x->store ? &x->pc : NULL; }

int cli_text_on_token(void *user, int32_t id)
{
    cli_text *t = user;
    int rc = cl_textstream_push(&t->ts, id);
    if (rc < 0) {
        t->failed = -rc;
        return 1;
    }
    return rc;
}

int cli_stop_ids(const cl_model *m, const cl_tokenizer *tok, int64_t ids[CL_MAX_EOS + 2])
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
        if (!dup)
            ids[n++] = id;
    }
    return n;
}

int cli_render_user_turn(const cl_chat_template *t, const char *system, const char *user,
                         int no_think, char **out)
{
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
    return rc;
}

void cli_json_ids(const char *key, const cl_ids *ids)
{
    printf("\"%s\":[", key);
    for (size_t i = 0; i < ids->n; i++)
        printf("%s%d", i ? "," : "", ids->v[i]);
    printf("]");
}

const char *cli_stop_name(cl_stop_reason r)
{
    return r == CL_STOP_EOS ? "eos" : r == CL_STOP_CALLBACK ? "stop" : "length";
}

void cli_json_gen_stats(int64_t prompt_tokens, const cl_session_stats *ss, const char *stop)
{
    const cl_gen_stats *st = &ss->gen;
    printf(",\"prompt_tokens\":%lld,\"cached_tokens\":%lld,\"prefill_tokens\":%lld,"
           "\"new_tokens\":%lld,\"prefill_s\":%.6f,\"decode_s\":%.6f,"
           "\"prefill_tok_s\":%.3f,\"decode_tok_s\":%.3f,\"stop\":\"%s\"",
           (long long)prompt_tokens, (long long)ss->cached_tokens, (long long)ss->prefill_tokens,
           (long long)st->new_tokens, ss->prefill_s, st->decode_s,
           ss->prefill_s > 0 ? (double)ss->prefill_tokens / ss->prefill_s : 0.0,
           st->decode_s > 0 && st->new_tokens > 1 ? (double)(st->new_tokens - 1) / st->decode_s
                                                  : 0.0,
           stop ? stop : cli_stop_name(st->stop));
}
