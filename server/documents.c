#include "documents.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jfield.h"

#define MAX_INGEST 256 /* documents per ingest request */

static int ids_field(const srv *s, const cJSON *arr, const char *param, cl_ids *out,
                     srv_error *e)
{
    if (!cJSON_IsArray(arr))
        return srv_fail(e, 400, param, "%s: expected an array of token ids, got %s", param,
                        srv_json_type(arr));
    int32_t vocab = cl_tokenizer_vocab_size(s->tok);
    int k = 0;
    for (const cJSON *t = arr->child; t; t = t->next, k++) {
        if (!cJSON_IsNumber(t) || t->valuedouble != floor(t->valuedouble) ||
            t->valuedouble < 0 || t->valuedouble >= vocab)
            return srv_fail(e, 400, param, "%s[%d]: expected a token id in [0, %d)", param, k,
                            vocab);
        if (cl_ids_push(out, (int32_t)t->valuedouble) != CL_OK)
            return srv_fail(e, 500, NULL, "out of memory");
    }
    return 0;
}

static int text_field(const srv *s, const char *text, int special, const char *param,
                      cl_ids *out, srv_error *e)
{
    if (cl_tokenizer_encode(s->tok, text, strlen(text), special, out) != CL_OK)
        return srv_fail(e, 400, param, "%s: %s", param, cl_errmsg());
    return 0;
}

static int parse_doc(const srv *s, const cJSON *d, int i, srv_doc_op *op, srv_error *e)
{
    char param[48];
    snprintf(param, sizeof param, "documents[%d]", i);
    cl_ids *ids = &op->docs[i];
    /* documents are plain text: special-token strings in them are not tokens */
    if (cJSON_IsString(d))
        return text_field(s, d->valuestring, 0, param, ids, e);
    if (!cJSON_IsObject(d))
        return srv_fail(e, 400, param, "%s: expected a string or an object, got %s", param,
                        srv_json_type(d));
    const cJSON *text = jf_get(d, "text");
    const cJSON *tok = jf_get(d, "token_ids");
    const cJSON *name = jf_get(d, "name");
    if (!text == !tok)
        return srv_fail(e, 400, param, "%s: give exactly one of \"text\" and \"token_ids\"",
                        param);
    if (name && !cJSON_IsString(name))
        return srv_fail(e, 400, param, "%s.name: expected a string", param);
    if (name && !(op->names[i] = strdup(name->valuestring)))
        return srv_fail(e, 500, NULL, "out of memory");
    if (text && !cJSON_IsString(text))
        return srv_fail(e, 400, param, "%s.text: expected a string, got %s", param,
                        srv_json_type(text));
    char sub[64];
    snprintf(sub, sizeof sub, "%s.%s", param, text ? "text" : "token_ids");
    return text ? text_field(s, text->valuestring, 0, sub, ids, e)
                : ids_field(s, tok, sub, ids, e);
}

int docs_parse_ingest(srv *s, const char *body, size_t len, srv_doc_op *op, srv_error *e)
{
    cJSON *o = NULL;
    if (srv_parse_object(body, len, &o, e))
        return -1;
    int rc = 0;
    const cJSON *docs = jf_get(o, "documents");
    const cJSON *prefix = jf_get(o, "prefix");
    const cJSON *prefix_ids = jf_get(o, "prefix_token_ids");
    const cJSON *pin = jf_get(o, "pin");
    int n = cJSON_IsArray(docs) ? cJSON_GetArraySize(docs) : 0;
    if (!cJSON_IsArray(docs))
        rc = srv_fail(e, 400, "documents", "documents: expected an array, got %s",
                      srv_json_type(docs));
    else if (n == 0 || n > MAX_INGEST)
        rc = srv_fail(e, 400, "documents", "documents: give 1 to %d documents (got %d)",
                      MAX_INGEST, n);
    else if (prefix && prefix_ids)
        rc = srv_fail(e, 400, "prefix", "prefix: give \"prefix\" or \"prefix_token_ids\", not both");
    else if (pin && !cJSON_IsBool(pin))
        rc = srv_fail(e, 400, "pin", "pin: expected a boolean, got %s", srv_json_type(pin));
    if (!rc && prefix) {
        if (!cJSON_IsString(prefix))
            rc = srv_fail(e, 400, "prefix", "prefix: expected a string, got %s",
                          srv_json_type(prefix));
        else /* a task prompt may hold the template's special tokens */
            rc = text_field(s, prefix->valuestring, 1, "prefix", &op->prefix, e);
    }
    if (!rc && prefix_ids)
        rc = ids_field(s, prefix_ids, "prefix_token_ids", &op->prefix, e);
    if (!rc) {
        op->pin = cJSON_IsTrue(pin);
        op->docs = calloc((size_t)n, sizeof *op->docs);
        op->names = calloc((size_t)n, sizeof *op->names);
        if (!op->docs || !op->names)
            rc = srv_fail(e, 500, NULL, "out of memory");
        else
            op->n_docs = n;
    }
    int i = 0;
    for (const cJSON *d = docs ? docs->child : NULL; d && !rc; d = d->next, i++) {
        rc = parse_doc(s, d, i, op, e);
        if (!rc && op->docs[i].n == 0)
            rc = srv_fail(e, 400, "documents", "documents[%d]: empty (no tokens)", i);
        if (!rc && (int64_t)(op->prefix.n + op->docs[i].n) > s->view.context)
            rc = srv_fail(e, 400, "documents",
                          "documents[%d]: %zu tokens after a prefix of %zu exceed the context of "
                          "%lld positions", i, op->docs[i].n, op->prefix.n,
                          (long long)s->view.context);
    }
    cJSON_Delete(o);
    return rc;
}

/* ---- engine side ---------------------------------------------------------------------- */

static void meta_json(sbuf *b, const cl_doc_meta *m)
{
    char hex[33];
    sb_puts(b, "{\"id\":\"");
    sb_puts(b, cl_key_hex(&m->id, hex));
    sb_puts(b, "\",\"object\":\"document\",\"name\":");
    if (m->name[0])
        sb_json_str(b, m->name, strlen(m->name));
    else
        sb_puts(b, "null");
    sb_printf(b, ",\"tokens\":%lld,\"prefix_tokens\":%lld,\"bytes\":%llu,\"pinned\":%s,"
                 "\"has_transition\":%s,\"created\":%lld}",
              (long long)m->doc_tokens, (long long)m->prefix_tokens, (unsigned long long)m->bytes,
              m->pinned ? "true" : "false", m->has_transition ? "true" : "false",
              (long long)(m->created_ns / 1000000000));
}

static int list_one(void *user, const cl_doc_meta *m)
{
    sbuf *b = user;
    if (b->p && b->p[b->n - 1] != '[')
        sb_puts(b, ",");
    meta_json(b, m);
    return 0;
}

static void answer(srv_job *j, int rc, sbuf *b)
{
    if (rc != CL_OK) {
        srv_error e;
        int http = rc == CL_ERR_NOTFOUND                  ? 404
                   : rc == CL_ERR_ARG || rc == CL_ERR_RANGE ? 400
                                                          : 500;
        srv_fail(&e, http, NULL, "%s", cl_errmsg());
        sb_free(b);
        job_error(j, &e);
        return;
    }
    size_t len = 0;
    char *body = sb_take(b, &len);
    if (!body) {
        srv_error e;
        srv_fail(&e, 500, NULL, "out of memory");
        job_error(j, &e);
        return;
    }
    job_answer(j, j->kind == JOB_DOC_INGEST ? 201 : 200, body, len);
}

static int run_ingest(srv *s, srv_job *j, sbuf *b)
{
    srv_doc_op *op = &j->doc;
    cl_doc_input *in = calloc((size_t)op->n_docs, sizeof *in);
    cl_doc_result *res = calloc((size_t)op->n_docs, sizeof *res);
    int rc = in && res ? CL_OK : cl_err(CL_ERR_NOMEM, "out of memory");
    for (int i = 0; i < op->n_docs && rc == CL_OK; i++) {
        in[i].ids = op->docs[i].v;
        in[i].n = (int64_t)op->docs[i].n;
        in[i].name = op->names[i];
    }
    cl_ingest_opts io;
    cl_ingest_opts_default(&io);
    io.pin = op->pin;
    io.max_context = s->view.context;
    if (rc == CL_OK)
        rc = cl_doc_ingest(s->p, op->prefix.v, (int64_t)op->prefix.n, in, op->n_docs, &io, res);
    uint64_t fresh = 0;
    if (rc == CL_OK) {
        sb_puts(b, "{\"object\":\"list\",\"data\":[");
        for (int i = 0; i < op->n_docs; i++) {
            char hex[33];
            sb_printf(b, "%s{\"id\":\"%s\",\"object\":\"document\",\"name\":", i ? "," : "",
                      cl_key_hex(&res[i].id, hex));
            if (op->names[i])
                sb_json_str(b, op->names[i], strlen(op->names[i]));
            else
                sb_puts(b, "null");
            sb_printf(b, ",\"tokens\":%lld,\"prefix_tokens\":%zu,\"cached\":%s,\"pinned\":%s}",
                      (long long)res[i].tokens, op->prefix.n, res[i].cached ? "true" : "false",
                      op->pin ? "true" : "false");
            fresh += !res[i].cached;
        }
        sb_puts(b, "]}");
    }
    free(in);
    free(res);
    srv_metrics_lock(&s->metrics);
    s->metrics.documents_ingested += fresh;
    srv_metrics_unlock(&s->metrics);
    return rc;
}

void docs_run(srv *s, srv_job *j)
{
    sbuf b = {0};
    int rc = CL_OK;
    cl_doc_meta m;
    char hex[33];
    if (!s->p) {
        rc = cl_err(CL_ERR_ARG, "documents need the state store (the server runs with "
                                "--no-store)");
    } else {
        switch (j->kind) {
        case JOB_DOC_INGEST:
            rc = run_ingest(s, j, &b);
            break;
        case JOB_DOC_LIST:
            sb_puts(&b, "{\"object\":\"list\",\"data\":[");
            rc = cl_doc_list(s->p, list_one, &b);
            sb_puts(&b, "]}");
            break;
        case JOB_DOC_GET:
            rc = cl_doc_meta_get(s->p, &j->doc.id, &m);
            if (rc == CL_OK)
                meta_json(&b, &m);
            break;
        case JOB_DOC_DELETE:
            rc = cl_doc_delete(s->p, &j->doc.id);
            if (rc == CL_OK)
                sb_printf(&b, "{\"id\":\"%s\",\"object\":\"document\",\"deleted\":true}",
                          cl_key_hex(&j->doc.id, hex));
            break;
        case JOB_DOC_PIN:
            rc = cl_doc_pin(s->p, &j->doc.id, j->doc.pin);
            if (rc == CL_OK)
                rc = cl_doc_meta_get(s->p, &j->doc.id, &m);
            if (rc == CL_OK)
                meta_json(&b, &m);
            break;
        default:
            rc = cl_err(CL_ERR_INTERNAL, "unknown document operation");
        }
    }
    if (b.oom && rc == CL_OK)
        rc = cl_err(CL_ERR_NOMEM, "out of memory");
    answer(j, rc, &b);
}
