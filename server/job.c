#include "job.h"

#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

srv_job *job_new(srv *s, job_kind kind, int endpoint)
{
    srv_job *j = calloc(1, sizeof *j);
    if (!j)
        return NULL;
    pthread_mutex_init(&j->mu, NULL);
    j->refs = 1;
    j->s = s;
    j->kind = kind;
    j->endpoint = endpoint;
    j->fd = -1;
    j->created = (int64_t)time(NULL);
    pthread_mutex_lock(&s->alive_mu);
    s->alive++;
    pthread_mutex_unlock(&s->alive_mu);
    return j;
}

void job_ref(srv_job *j)
{
    pthread_mutex_lock(&j->mu);
    j->refs++;
    pthread_mutex_unlock(&j->mu);
}

static void choice_free(srv_choice *c)
{
    cl_textstream_free(c->ts);
    rsn_free(&c->rsn);
    tc_free(&c->tc);
    free(c->tool_ids);
    sb_free(&c->lp);
    sb_free(&c->lp_pending);
    sb_free(&c->lp_tok);
    sb_free(&c->lp_val);
    sb_free(&c->lp_top);
    sb_free(&c->lp_off);
}

void job_unref(srv_job *j)
{
    pthread_mutex_lock(&j->mu);
    int left = --j->refs;
    pthread_mutex_unlock(&j->mu);
    if (left > 0)
        return;
    srv *s = j->s;
    for (int i = 0; i < j->n_ch; i++)
        choice_free(&j->ch[i]);
    free(j->ch);
    srv_gen_req_free(&j->req);
    cl_ids_free(&j->doc.prefix);
    for (int i = 0; i < j->doc.n_docs; i++) {
        cl_ids_free(&j->doc.docs[i]);
        if (j->doc.names)
            free(j->doc.names[i]);
    }
    free(j->doc.docs);
    free(j->doc.names);
    sb_free(&j->out);
    free(j->body);
    pthread_mutex_destroy(&j->mu);
    free(j);
    pthread_mutex_lock(&s->alive_mu);
    s->alive--;
    pthread_cond_broadcast(&s->alive_cv);
    pthread_mutex_unlock(&s->alive_mu);
}

struct MHD_Connection *job_wake_take(srv_job *j)
{
    if (!j->suspended || !j->conn)
        return NULL;
    j->suspended = 0;
    return j->conn;
}

void job_resume(struct MHD_Connection *c)
{
    if (c)
        MHD_resume_connection(c);
}

void job_wake(srv_job *j)
{
    pthread_mutex_lock(&j->mu);
    struct MHD_Connection *c = job_wake_take(j);
    pthread_mutex_unlock(&j->mu);
    job_resume(c);
}

void job_answer(srv_job *j, int status, char *body, size_t len)
{
    pthread_mutex_lock(&j->mu);
    free(j->body);
    j->body = body;
    j->body_len = len;
    j->status = status;
    j->finished = 1;
    struct MHD_Connection *c = job_wake_take(j);
    pthread_mutex_unlock(&j->mu);
    job_resume(c);
}

char *srv_error_json(const srv_error *e, size_t *len)
{
    sbuf b = {0};
    sb_puts(&b, "{\"error\":{\"message\":");
    sb_json_str(&b, e->msg, strlen(e->msg));
    sb_puts(&b, ",\"type\":");
    sb_json_str(&b, e->type ? e->type : "invalid_request_error",
                strlen(e->type ? e->type : "invalid_request_error"));
    sb_puts(&b, ",\"param\":");
    if (e->param[0])
        sb_json_str(&b, e->param, strlen(e->param));
    else
        sb_puts(&b, "null");
    sb_printf(&b, ",\"code\":%d}}", e->http);
    return sb_take(&b, len);
}

void job_error(srv_job *j, const srv_error *e)
{
    size_t len = 0;
    char *body = srv_error_json(e, &len);
    job_answer(j, e->http, body, len);
}
