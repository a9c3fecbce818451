#include "routes.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "jfield.h"
#include "job.h"

static void ok_json(srv_answer *a, sbuf *b)
{
    a->status = 200;
    a->ctype = "application/json";
    a->body = sb_take(b, &a->len);
    if (!a->body) {
        srv_error e;
        srv_fail(&e, 500, NULL, "out of memory");
        route_error(&e, a);
    }
}

void route_error(const srv_error *e, srv_answer *a)
{
    a->status = e->http;
    a->ctype = "application/json";
    a->body = srv_error_json(e, &a->len);
}

static void model_json(srv *s, sbuf *b)
{
    sb_puts(b, "{\"id\":");
    sb_json_str(b, s->model_name, strlen(s->model_name));
    sb_printf(b, ",\"object\":\"model\",\"created\":%lld,\"owned_by\":\"collage\",\"root\":",
              (long long)s->created);
    sb_json_str(b, s->o.model_dir, strlen(s->o.model_dir));
    sb_printf(b, ",\"parent\":null,\"max_model_len\":%lld}", (long long)s->view.context);
}

void route_models(srv *s, const char *name, srv_answer *a)
{
    sbuf b = {0};
    if (name) {
        if (strcmp(name, s->model_name)) {
            srv_error e;
            srv_fail(&e, 404, "model", "model '%s' is not served here", name);
            route_error(&e, a);
            return;
        }
        model_json(s, &b);
    } else {
        sb_puts(&b, "{\"object\":\"list\",\"data\":[");
        model_json(s, &b);
        sb_puts(&b, "]}");
    }
    ok_json(a, &b);
}

void route_health(srv *s, srv_answer *a)
{
    sbuf b = {0};
    int draining = atomic_load(&s->draining);
    sb_puts(&b, draining ? "{\"status\":\"draining\"}" : "{\"status\":\"ok\"}");
    ok_json(a, &b);
    if (draining)
        a->status = 503;
}

void route_version(srv_answer *a)
{
    sbuf b = {0};
    sb_printf(&b, "{\"version\":\"%s\"}", cl_version());
    ok_json(a, &b);
}

void route_metrics(srv *s, srv_answer *a)
{
    sbuf b = {0};
    srv_metrics_render(&s->metrics, s->st, &b);
    a->status = 200;
    a->ctype = "text/plain; version=0.0.4; charset=utf-8";
    a->body = sb_take(&b, &a->len);
    if (!a->body) {
        srv_error e;
        srv_fail(&e, 500, NULL, "out of memory");
        route_error(&e, a);
    }
}

void route_tokenize(srv *s, const char *body, size_t len, srv_answer *a)
{
    srv_error e;
    cJSON *o = NULL;
    cl_ids ids = {0};
    if (srv_parse_object(body, len, &o, &e)) {
        route_error(&e, a);
        return;
    }
    const cJSON *prompt = jf_get(o, "prompt");
    const cJSON *msgs = jf_get(o, "messages");
    const cJSON *model = jf_get(o, "model");
    const cJSON *strs = jf_get(o, "return_token_strs");
    int rc = 0;
    if (model && !cJSON_IsNull(model) &&
        (!cJSON_IsString(model) || strcmp(model->valuestring, s->model_name)))
        rc = srv_fail(&e, 400, "model", "model: not served here (this server serves '%s')",
                      s->model_name);
    else if (strs && !cJSON_IsBool(strs) && !cJSON_IsNull(strs))
        rc = srv_fail(&e, 400, "return_token_strs", "return_token_strs: expected a boolean");
    else if (!prompt == !msgs)
        rc = srv_fail(&e, 400, "prompt", "give exactly one of \"prompt\" and \"messages\"");
    else if (prompt && !cJSON_IsString(prompt))
        rc = srv_fail(&e, 400, "prompt", "prompt: expected a string, got %s",
                      srv_json_type(prompt));
    else if (prompt && cl_tokenizer_encode(s->tok, prompt->valuestring,
                                           strlen(prompt->valuestring), 1, &ids) != CL_OK)
        rc = srv_fail(&e, 400, "prompt", "prompt: %s", cl_errmsg());
    else if (msgs)
        rc = srv_chat_prompt(&s->view, o, &ids, NULL, &e);
    if (rc) {
        cJSON_Delete(o);
        cl_ids_free(&ids);
        route_error(&e, a);
        return;
    }
    sbuf b = {0};
    sb_printf(&b, "{\"count\":%zu,\"max_model_len\":%lld,\"tokens\":[", ids.n,
              (long long)s->view.context);
    for (size_t i = 0; i < ids.n; i++)
        sb_printf(&b, i ? ",%d" : "%d", ids.v[i]);
    sb_puts(&b, "],\"token_strs\":");
    if (cJSON_IsTrue(strs)) {
        sb_puts(&b, "[");
        for (size_t i = 0; i < ids.n; i++) {
            const char *t = "";
            size_t n = 0;
            cl_tokenizer_token_bytes(s->tok, ids.v[i], &t, &n);
            if (i)
                sb_puts(&b, ",");
            sb_json_str(&b, t, n);
        }
        sb_puts(&b, "]}");
    } else {
        sb_puts(&b, "null}");
    }
    cJSON_Delete(o);
    cl_ids_free(&ids);
    ok_json(a, &b);
}

void route_detokenize(srv *s, const char *body, size_t len, srv_answer *a)
{
    srv_error e;
    cJSON *o = NULL;
    cl_ids ids = {0};
    if (srv_parse_object(body, len, &o, &e)) {
        route_error(&e, a);
        return;
    }
    const cJSON *toks = jf_get(o, "tokens");
    int rc = 0;
    int32_t vocab = cl_tokenizer_vocab_size(s->tok);
    if (!cJSON_IsArray(toks))
        rc = srv_fail(&e, 400, "tokens", "tokens: expected an array of token ids, got %s",
                      srv_json_type(toks));
    int k = 0;
    for (const cJSON *t = toks ? toks->child : NULL; t && !rc; t = t->next, k++) {
        if (!cJSON_IsNumber(t) || t->valuedouble != floor(t->valuedouble) ||
            t->valuedouble < 0 || t->valuedouble >= vocab)
            rc = srv_fail(&e, 400, "tokens", "tokens[%d]: expected a token id in [0, %d)", k,
                          vocab);
        else if (cl_ids_push(&ids, (int32_t)t->valuedouble) != CL_OK)
            rc = srv_fail(&e, 500, NULL, "out of memory");
    }
    char *text = NULL;
    size_t tl = 0;
    if (!rc && cl_tokenizer_decode(s->tok, ids.v, ids.n, &text, &tl) != CL_OK)
        rc = srv_fail(&e, 400, "tokens", "tokens: %s", cl_errmsg());
    cJSON_Delete(o);
    cl_ids_free(&ids);
    if (rc) {
        route_error(&e, a);
        return;
    }
    sbuf b = {0};
    sb_puts(&b, "{\"prompt\":");
    sb_json_str(&b, text, tl);
    sb_puts(&b, "}");
    cl_free(text);
    ok_json(a, &b);
}
