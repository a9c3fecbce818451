#include "cli_ctx.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int cli_ctx_open(cli_ctx *x, const char *verb, const cli_model_flags *mf,
                 const cli_store_flags *sf, int store_default_on, const cl_cache_opts *co)
{
    memset(x, 0, sizeof *x);
    int rc = cli_load_model(verb, mf, &x->m);
    if (rc != 0)
        return rc;
    cl_model_info info;
    cl_model_info_get(x->m, &info);
    x->vocab = info.vocab_size;
    int st = cl_cache_create(x->m, co, &x->c);
    if (st == CL_OK)
        st = cl_seq_create(x->c, &x->s);
    if (st != CL_OK)
        return cli_fail(st);
    if (sf)
        return cli_open_store(verb, sf, store_default_on, x->m, x->c, &x->store, &x->pc);
    return 0;
}

void cli_ctx_close(cli_ctx *x)
{
    cl_prefix_free(x->pc);
    cl_seq_free(x->s);
    cl_cache_free(x->c);
    if (x->store)
        cl_store_close(x->store);
    cl_model_free(x->m);
    memset(x, 0, sizeof *x);
}

int cli_text_open(cli_text *t, const cl_tokenizer *tok, FILE *out, const char *const *stop,
                  int n_stop, const int64_t *eos, int n_eos)
{
    memset(t, 0, sizeof *t);
    t->out = out;
    return cl_textstream_create(tok, stop, n_stop, eos, n_eos, &t->ts);
}

static void write_delta(cli_text *t, const char *d, size_t n)
{
    if (t->out && n) {
        fwrite(d, 1, n, t->out);
        fflush(t->out);
    }
}

int cli_text_on_token(void *user, int32_t id)
{
    cli_text *t = user;
    const char *d;
    size_t n;
    int rc = cl_textstream_push(t->ts, id, &d, &n);
    if (rc < 0) {
        t->failed = -rc;
        return 1;
    }
    write_delta(t, d, n);
    return rc;
}

void cli_text_finish(cli_text *t)
{
    const char *d;
    size_t n;
    if (!t->ts)
        return;
    cl_textstream_finish(t->ts, &d, &n);
    write_delta(t, d, n);
}

void cli_text_close(cli_text *t)
{
    cl_textstream_free(t->ts);
    memset(t, 0, sizeof *t);
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
    char *json = cJSON_PrintUnformatted(msgs);
    cJSON_Delete(msgs);
    if (!json)
        return cl_err(CL_ERR_NOMEM, "out of memory");
    int rc = cl_chat_render(t, json, NULL, 1, no_think ? 0 : -1, out);
    free(json);
    return rc;
}

void cli_json_text(cJSON *o, const char *key, const char *text, size_t len)
{
    char *clean = cl_utf8_sanitize(text ? text : "", text ? len : 0);
    cJSON_AddStringToObject(o, key, clean ? clean : "");
    cl_free(clean);
}

cJSON *cli_json_ids(const cl_ids *ids)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; a && i < ids->n; i++)
        cJSON_AddItemToArray(a, cJSON_CreateNumber(ids->v[i]));
    return a;
}

const char *cli_stop_name(cl_stop_reason r)
{
    return r == CL_STOP_EOS        ? "eos"
           : r == CL_STOP_CALLBACK ? "stop"
           : r == CL_STOP_CANCELLED ? "cancelled"
                                   : "length";
}

void cli_json_gen_stats(cJSON *o, int64_t prompt_tokens, const cl_session_stats *ss,
                        const char *stop)
{
    const cl_gen_stats *st = &ss->gen;
    cJSON_AddNumberToObject(o, "prompt_tokens", (double)prompt_tokens);
    cJSON_AddNumberToObject(o, "cached_tokens", (double)ss->cached_tokens);
    cJSON_AddNumberToObject(o, "prefill_tokens", (double)ss->prefill_tokens);
    cJSON_AddNumberToObject(o, "new_tokens", (double)st->new_tokens);
    cJSON_AddNumberToObject(o, "max_new_tokens", (double)st->max_new_tokens);
    cJSON_AddNumberToObject(o, "prefill_s", ss->prefill_s);
    cJSON_AddNumberToObject(o, "decode_s", st->decode_s);
    cJSON_AddNumberToObject(o, "prefill_tok_s",
                            ss->prefill_s > 0 ? (double)ss->prefill_tokens / ss->prefill_s : 0.0);
    cJSON_AddNumberToObject(o, "decode_tok_s",
                            st->decode_s > 0 && st->new_tokens > 1
                                ? (double)(st->new_tokens - 1) / st->decode_s
                                : 0.0);
    cJSON_AddStringToObject(o, "stop", stop ? stop : cli_stop_name(st->stop));
}

int cli_json_emit(cJSON *obj)
{
    char *s = obj ? cJSON_PrintUnformatted(obj) : NULL;
    cJSON_Delete(obj);
    if (!s) {
        fprintf(stderr, "collage: out of memory writing the JSON report\n");
        return 1;
    }
    int ok = fputs(s, stdout) >= 0 && fputc('\n', stdout) != EOF && fflush(stdout) == 0;
    free(s);
    if (!ok) {
        fprintf(stderr, "collage: stdout: write failed\n");
        return 1;
    }
    return 0;
}

int cli_json_fail(int status, cJSON *obj)
{
    const char *msg = cl_errmsg();
    if (!obj)
        obj = cJSON_CreateObject();
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "message", msg[0] ? msg : cl_status_name(status));
    cJSON_AddStringToObject(e, "code", cl_status_name(status));
    cJSON_AddItemToObject(obj, "error", e);
    int code = cli_fail(status);
    cli_json_emit(obj);
    return code;
}

static int read_stream(FILE *f, const char *name, char **out, size_t *len)
{
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    if (!buf)
        return cl_err(CL_ERR_NOMEM, "out of memory reading %s", name);
    for (;;) {
        if (n + 1 >= cap) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb) {
                free(buf);
                return cl_err(CL_ERR_NOMEM, "out of memory reading %s", name);
            }
            buf = nb;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0)
            break;
    }
    if (ferror(f)) {
        int e = errno;
        free(buf);
        return cl_err(CL_ERR_IO, "%s: read failed: %s", name, strerror(e));
    }
    buf[n] = 0;
    *out = buf;
    if (len)
        *len = n;
    return CL_OK;
}

int cli_read_file(const char *path, char **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return cl_err(CL_ERR_IO, "%s: %s", path, strerror(errno));
    int rc = read_stream(f, path, out, len);
    fclose(f);
    return rc;
}

int cli_read_stdin(char **out, size_t *len) { return read_stream(stdin, "stdin", out, len); }

double cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
