#include "request.h"

#include "jfield.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_STOP 16         /* stop strings per request */
#define MAX_DOCS 64         /* documents composed per request */
#define MAX_PROMPTS 64      /* prompts of one completions request */

int srv_fail(srv_error *e, int http, const char *param, const char *fmt, ...)
{
    e->http = http;
    e->type = http == 401   ? "authentication_error"
              : http == 404 ? "not_found_error"
              : http == 429 ? "rate_limit_error"
              : http >= 500 ? "server_error"
                            : "invalid_request_error";
    snprintf(e->param, sizeof e->param, "%s", param ? param : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    return -1;
}

const char *srv_json_type(const cJSON *j)
{
    if (!j || cJSON_IsNull(j))
        return "null";
    if (cJSON_IsBool(j))
        return "a boolean";
    if (cJSON_IsNumber(j))
        return "a number";
    if (cJSON_IsString(j))
        return "a string";
    if (cJSON_IsArray(j))
        return "an array";
    return "an object";
}

int srv_parse_object(const char *body, size_t len, cJSON **out, srv_error *e)
{
    *out = NULL;
    if (len == 0)
        return srv_fail(e, 400, NULL, "body: empty (expected a JSON object)");
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(body, len, &end, 0);
    if (!j) {
        size_t at = end && end >= body ? (size_t)(end - body) : 0;
        return srv_fail(e, 400, NULL, "body: malformed JSON at byte %zu", at);
    }
    /* only whitespace may follow the value */
    for (const char *p = end; p && p < body + len; p++)
        if (*p != ' ' && *p != '\n' && *p != '\r' && *p != '\t' && *p != 0) {
            cJSON_Delete(j);
            return srv_fail(e, 400, NULL, "body: malformed JSON at byte %zu (text after the "
                                          "value)", (size_t)(p - body));
        }
    if (!cJSON_IsObject(j)) {
        srv_fail(e, 400, NULL, "body: expected a JSON object, got %s", srv_json_type(j));
        cJSON_Delete(j);
        return -1;
    }
    *out = j;
    return 0;
}

/* ---- sampling and common fields ------------------------------------------------------ */

static int parse_stop(const cJSON *o, srv_gen_req *r, srv_error *e)
{
    const cJSON *j = jf_get(o, "stop");
    if (!j)
        return 0;
    int n = cJSON_IsString(j) ? 1 : cJSON_IsArray(j) ? cJSON_GetArraySize(j) : -1;
    if (n < 0)
        return srv_fail(e, 400, "stop", "stop: expected a string or an array of strings, got %s",
                        srv_json_type(j));
    if (n > MAX_STOP)
        return srv_fail(e, 400, "stop", "stop: at most %d strings (got %d)", MAX_STOP, n);
    r->stop = calloc((size_t)(n ? n : 1), sizeof *r->stop);
    if (!r->stop)
        return srv_fail(e, 500, NULL, "out of memory");
    for (int i = 0; i < n; i++) {
        const cJSON *s = cJSON_IsString(j) ? j : cJSON_GetArrayItem(j, i);
        if (!cJSON_IsString(s))
            return srv_fail(e, 400, "stop", "stop[%d]: expected a string, got %s", i,
                            srv_json_type(s));
        if (!s->valuestring[0])
            return srv_fail(e, 400, "stop", "stop[%d]: empty string", i);
        if (!(r->stop[r->n_stop++] = strdup(s->valuestring)))
            return srv_fail(e, 500, NULL, "out of memory");
    }
    return 0;
}

static int parse_sampling(const srv_model_view *v, const cJSON *o, srv_gen_req *r, srv_error *e)
{
    cl_sampler_opts *s = &r->sampling;
    *s = v->defaults;
    double d;
    int given;
    int64_t k;
    if (jf_num(o, "temperature", 0, 2, &d, &given, e))
        return -1;
    if (given) {
        s->greedy = d < 1e-5;
        s->temperature = s->greedy ? 1.0f : (float)d;
    }
    if (jf_num(o, "top_p", 0, 1, &d, &given, e))
        return -1;
    if (given) {
        if (d <= 0)
            return srv_fail(e, 400, "top_p", "top_p: must be > 0 (got %g)", d);
        s->top_p = (float)d;
    }
    if (jf_int(o, "top_k", -1, 1 << 30, &k, &given, e))
        return -1;
    if (given)
        s->top_k = k <= 0 ? 0 : k; /* -1 and 0: off (vLLM) */
    if (jf_num(o, "min_p", 0, 1, &d, &given, e))
        return -1;
    if (given) {
        if (d >= 1)
            return srv_fail(e, 400, "min_p", "min_p: must be < 1 (got %g)", d);
        s->min_p = (float)d;
    }
    if (jf_num(o, "repetition_penalty", 0, 100, &d, &given, e))
        return -1;
    if (given) {
        if (d <= 0)
            return srv_fail(e, 400, "repetition_penalty", "repetition_penalty: must be > 0");
        s->repetition_penalty = (float)d;
    }
    if (jf_num(o, "presence_penalty", -2, 2, &d, &given, e))
        return -1;
    if (given)
        s->presence_penalty = (float)d;
    if (jf_num(o, "frequency_penalty", -2, 2, &d, &given, e))
        return -1;
    if (given)
        s->frequency_penalty = (float)d;
    int64_t seed;
    if (jf_int(o, "seed", INT64_MIN / 2, INT64_MAX / 2, &seed, &r->seed_given, e))
        return -1;
    if (r->seed_given)
        s->seed = (uint64_t)seed;
    if (cl_sampler_opts_check(s) != CL_OK)
        return srv_fail(e, 400, NULL, "%s", cl_errmsg());
    return 0;
}

/* Fields that ask for what collage does not do: refused by name. */
static int refuse_unsupported(const cJSON *o, int api, srv_error *e)
{
    const cJSON *j;
    if ((j = jf_get(o, "logit_bias")) && !(cJSON_IsObject(j) && !j->child))
        return srv_fail(e, 400, "logit_bias", "logit_bias: not yet supported");
    if ((j = jf_get(o, "response_format"))) {
        const cJSON *t = cJSON_IsObject(j) ? jf_get(j, "type") : NULL;
        if (!cJSON_IsString(t) || strcmp(t->valuestring, "text"))
            return srv_fail(e, 400, "response_format",
                            "response_format: only {\"type\": \"text\"} is supported (structured "
                            "output is not yet supported)");
    }
    int64_t k;
    if (jf_int(o, "min_tokens", 0, 0, &k, NULL, e))
        return srv_fail(e, 400, "min_tokens", "min_tokens: not yet supported (only 0)");
    if (jf_int(o, "best_of", 1, 1, &k, NULL, e))
        return srv_fail(e, 400, "best_of", "best_of: not yet supported (only 1)");
    if (api == SRV_API_COMPLETIONS && jf_get(o, "suffix"))
        return srv_fail(e, 400, "suffix", "suffix: not yet supported");
    if (api == SRV_API_CHAT) {
        int b = 0;
        if (jf_bool(o, "continue_final_message", &b, e) || b)
            return srv_fail(e, 400, "continue_final_message",
                            "continue_final_message: not yet supported");
    }
    return 0;
}

static int parse_common(const srv_model_view *v, const cJSON *o, srv_gen_req *r, srv_error *e)
{
    const char *model = NULL;
    if (jf_str(o, "model", &model, e))
        return -1;
    if (model && strcmp(model, v->model_name))
        return srv_fail(e, 400, "model", "model: '%s' is not served here (this server serves "
                                         "'%s')", model, v->model_name);
    if (refuse_unsupported(o, r->api, e) || parse_sampling(v, o, r, e) || parse_stop(o, r, e))
        return -1;
    int64_t k;
    int given;
    r->n = 1;
    if (jf_int(o, "n", 1, v->max_n, &k, &given, e))
        return -1;
    if (given)
        r->n = (int)k;
    r->max_tokens = -1;
    if (jf_int(o, "max_tokens", 1, 1LL << 40, &k, &given, e))
        return -1;
    r->max_tokens_field = "max_tokens";
    if (given)
        r->max_tokens = k, r->max_tokens_given = 1;
    if (r->api == SRV_API_CHAT) {
        if (jf_int(o, "max_completion_tokens", 1, 1LL << 40, &k, &given, e))
            return -1;
        if (given) {
            r->max_tokens = k, r->max_tokens_given = 1;
            r->max_tokens_field = "max_completion_tokens";
        }
    }
    if (jf_bool(o, "stream", &r->stream, e) || jf_bool(o, "ignore_eos", &r->ignore_eos, e) ||
        jf_bool(o, "echo", &r->echo, e))
        return -1;
    if (r->echo && r->api != SRV_API_COMPLETIONS)
        return srv_fail(e, 400, "echo", "echo: only for /v1/completions");
    const cJSON *so = jf_get(o, "stream_options");
    if (so) {
        if (!cJSON_IsObject(so))
            return srv_fail(e, 400, "stream_options", "stream_options: expected an object, got %s",
                            srv_json_type(so));
        if (!r->stream)
            return srv_fail(e, 400, "stream_options", "stream_options: only with stream: true");
        if (jf_bool(so, "include_usage", &r->include_usage, e))
            return srv_fail(e, 400, "stream_options.include_usage",
                            "stream_options.include_usage: expected a boolean");
    }
    /* logprobs: chat has a boolean and top_logprobs, completions an integer */
    if (r->api == SRV_API_CHAT) {
        if (jf_bool(o, "logprobs", &r->logprobs, e) ||
            jf_int(o, "top_logprobs", 0, 20, &k, &given, e))
            return -1;
        if (given) {
            if (!r->logprobs && k > 0)
                return srv_fail(e, 400, "top_logprobs", "top_logprobs: needs logprobs: true");
            r->top_logprobs = (int)k;
        }
    } else {
        if (jf_int(o, "logprobs", 0, 20, &k, &given, e))
            return -1;
        if (given) {
            r->logprobs = 1;
            r->top_logprobs = (int)k;
        }
        if (r->echo && r->logprobs)
            return srv_fail(e, 400, "logprobs",
                            "logprobs with echo: prompt logprobs are not yet supported");
    }
    r->num_iter = -1;
    if (jf_int(o, "num_iter", 0, 1000, &k, &given, e))
        return -1;
    if (given) {
        if (!v->has_gka)
            return srv_fail(e, 400, "num_iter", "num_iter: the model has no GKA layers");
        r->num_iter = k;
    }
    /* the documents extension */
    const cJSON *docs = jf_get(o, "documents");
    if (docs && srv_parse_doc_ids(docs, "documents", &r->docs, &r->n_docs, e))
        return -1;
    const char *ct = "concat_kv_soup_ssm";
    if (jf_str(o, "compose_type", &ct, e))
        return -1;
    if (cl_compose_type_parse(ct, &r->kv, &r->ssm) != CL_OK)
        return srv_fail(e, 400, "compose_type", "compose_type: %s", cl_errmsg());
    if (r->kv == CL_COMPOSE_KV_FULL)
        return srv_fail(e, 400, "compose_type", "compose_type: '%s' needs the whole context "
                                                "prefilled at once (use a concat_* or sw_* type "
                                                "with stored documents)", ct);
    if (jf_get(o, "compose_type") && !r->n_docs)
        return srv_fail(e, 400, "compose_type", "compose_type: only with documents");
    if (r->n_docs && r->num_iter >= 0)
        return srv_fail(e, 400, "num_iter",
                        "num_iter: not with documents (their states hold the model's iterations)");
    const char *force = NULL;
    if (v->test_hooks && jf_str(o, "collage_force_text", &force, e))
        return -1;
    if (force && cl_tokenizer_encode(v->tok, force, strlen(force), 1, &r->force) != CL_OK)
        return srv_fail(e, 400, "collage_force_text", "collage_force_text: %s", cl_errmsg());
    return 0;
}

int srv_parse_doc_ids(const cJSON *arr, const char *name, cl_key **ids, int *n, srv_error *e)
{
    if (!cJSON_IsArray(arr))
        return srv_fail(e, 400, name, "%s: expected an array of document ids, got %s", name,
                        srv_json_type(arr));
    int count = cJSON_GetArraySize(arr);
    if (count == 0)
        return srv_fail(e, 400, name, "%s: empty (give at least one document id)", name);
    if (count > MAX_DOCS)
        return srv_fail(e, 400, name, "%s: at most %d documents (got %d)", name, MAX_DOCS, count);
    *ids = calloc((size_t)count, sizeof **ids);
    if (!*ids)
        return srv_fail(e, 500, NULL, "out of memory");
    for (int i = 0; i < count; i++) {
        const cJSON *s = cJSON_GetArrayItem(arr, i);
        if (!cJSON_IsString(s) || strlen(s->valuestring) != 32 ||
            cl_key_parse(s->valuestring, &(*ids)[i]) != CL_OK)
            return srv_fail(e, 400, name, "%s[%d]: expected a document id (32 hex digits)", name,
                            i);
    }
    *n = count;
    return 0;
}

static int parse_chat(const srv_model_view *v, const cJSON *o, srv_gen_req *r, srv_error *e)
{
    if (!(r->prompts = calloc(1, sizeof *r->prompts)))
        return srv_fail(e, 500, NULL, "out of memory");
    r->n_prompts = 1;
    int parse_tools = 0;
    if (srv_chat_prompt(v, o, &r->prompts[0], &parse_tools, e))
        return -1;
    r->reasoning = v->reasoning;
    r->tools = v->tools && parse_tools;
    return 0;
}

/* ---- completions: one prompt or a batch, as text or token ids ------------------------ */

static int prompt_ids(const srv_model_view *v, const cJSON *p, int i, srv_gen_req *r,
                      srv_error *e)
{
    char param[32];
    snprintf(param, sizeof param, i < 0 ? "prompt" : "prompt[%d]", i);
    int k = i < 0 ? 0 : i;
    if (cJSON_IsString(p)) {
        if (cl_tokenizer_encode(v->tok, p->valuestring, strlen(p->valuestring), 1,
                                &r->prompts[k]) != CL_OK)
            return srv_fail(e, 400, "prompt", "%s: %s", param, cl_errmsg());
        if (r->echo && !(r->echo_text[k] = strdup(p->valuestring)))
            return srv_fail(e, 500, NULL, "out of memory");
        return 0;
    }
    int32_t vocab = cl_tokenizer_vocab_size(v->tok);
    int j = 0;
    for (const cJSON *t = p->child; t; t = t->next, j++) {
        if (!cJSON_IsNumber(t) || t->valuedouble != floor(t->valuedouble) ||
            t->valuedouble < 0 || t->valuedouble >= vocab)
            return srv_fail(e, 400, "prompt", "%s[%d]: expected a token id in [0, %d)", param, j,
                            vocab);
        if (cl_ids_push(&r->prompts[k], (int32_t)t->valuedouble) != CL_OK)
            return srv_fail(e, 500, NULL, "out of memory");
    }
    if (r->echo) {
        char *txt = NULL;
        size_t len;
        if (cl_tokenizer_decode(v->tok, r->prompts[k].v, r->prompts[k].n, &txt, &len) != CL_OK)
            return srv_fail(e, 400, "prompt", "%s: %s", param, cl_errmsg());
        char *clean = cl_utf8_sanitize(txt, len);
        cl_free(txt);
        r->echo_text[k] = clean ? strdup(clean) : NULL;
        cl_free(clean);
        if (!r->echo_text[k])
            return srv_fail(e, 500, NULL, "out of memory");
    }
    return 0;
}

static int parse_completion(const srv_model_view *v, const cJSON *o, srv_gen_req *r,
                            srv_error *e)
{
    const cJSON *p = jf_get(o, "prompt");
    if (!p)
        return srv_fail(e, 400, "prompt", "prompt: required");
    /* a batch: an array of strings or of token-id arrays; else a single prompt */
    int batch = cJSON_IsArray(p) && p->child &&
                (cJSON_IsString(p->child) || cJSON_IsArray(p->child));
    int n = batch ? cJSON_GetArraySize(p) : 1;
    if (!cJSON_IsString(p) && !cJSON_IsArray(p))
        return srv_fail(e, 400, "prompt",
                        "prompt: expected a string, an array of strings, an array of token ids "
                        "or an array of such arrays, got %s", srv_json_type(p));
    if (n > MAX_PROMPTS)
        return srv_fail(e, 400, "prompt", "prompt: at most %d prompts (got %d)", MAX_PROMPTS, n);
    r->prompts = calloc((size_t)n, sizeof *r->prompts);
    r->echo_text = calloc((size_t)n, sizeof *r->echo_text);
    if (!r->prompts || !r->echo_text)
        return srv_fail(e, 500, NULL, "out of memory");
    r->n_prompts = n;
    if (!batch)
        return prompt_ids(v, p, -1, r, e);
    int i = 0;
    for (const cJSON *q = p->child; q; q = q->next, i++) {
        if (!cJSON_IsString(q) && !cJSON_IsArray(q))
            return srv_fail(e, 400, "prompt", "prompt[%d]: expected a string or an array of "
                                              "token ids, got %s", i, srv_json_type(q));
        if (prompt_ids(v, q, i, r, e))
            return -1;
    }
    return 0;
}

/* Every prompt must leave room for its budget in the context; without max_tokens the
 * budget is what is left (as vLLM). With documents the composed state adds its tokens:
 * the engine checks that part. */
static int check_context(const srv_model_view *v, srv_gen_req *r, srv_error *e)
{
    const char *what = r->api == SRV_API_CHAT ? "messages" : "prompt";
    int64_t longest = 0;
    for (int i = 0; i < r->n_prompts; i++) {
        int64_t n = (int64_t)r->prompts[i].n;
        if (n == 0)
            return srv_fail(e, 400, what, "%s: empty (no tokens)", what);
        if (n > longest)
            longest = n;
    }
    if (longest >= v->context)
        return srv_fail(e, 400, what,
                        "%s: this model's maximum context length is %lld tokens. However, "
                        "your %s has %lld tokens: reduce its length.",
                        what, (long long)v->context, what, (long long)longest);
    if (r->max_tokens < 0) {
        r->max_tokens = v->context - longest;
        if (v->default_max_tokens > 0 && v->default_max_tokens < r->max_tokens)
            r->max_tokens = v->default_max_tokens;
    } else if (!r->n_docs && longest + r->max_tokens > v->context) {
        return srv_fail(e, 400, r->max_tokens_field,
                        "%s: this model's maximum context length is %lld tokens. However, you "
                        "requested %lld tokens (%lld in the %s, %lld in the completion). Reduce "
                        "the length of the %s or of the completion.",
                        r->max_tokens_field, (long long)v->context, (long long)(longest + r->max_tokens),
                        (long long)longest, what, (long long)r->max_tokens, what);
    }
    return 0;
}

int srv_parse_gen(const srv_model_view *v, int api, const char *body, size_t len,
                  srv_gen_req *r, srv_error *e)
{
    memset(r, 0, sizeof *r);
    r->api = api;
    cJSON *o = NULL;
    if (srv_parse_object(body, len, &o, e))
        return -1;
    int rc = parse_common(v, o, r, e);
    if (!rc)
        rc = api == SRV_API_CHAT ? parse_chat(v, o, r, e) : parse_completion(v, o, r, e);
    if (!rc)
        rc = check_context(v, r, e);
    cJSON_Delete(o);
    return rc;
}

void srv_gen_req_free(srv_gen_req *r)
{
    for (int i = 0; i < r->n_stop; i++)
        free(r->stop[i]);
    free(r->stop);
    for (int i = 0; i < r->n_prompts; i++) {
        cl_ids_free(&r->prompts[i]);
        if (r->echo_text)
            free(r->echo_text[i]);
    }
    free(r->prompts);
    free(r->echo_text);
    free(r->docs);
    cl_ids_free(&r->force);
    memset(r, 0, sizeof *r);
}
