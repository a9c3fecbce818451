#include "engine.h"

#include <microhttpd.h>
#include <omp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "documents.h"
#include "gen.h"
#include "output.h"

enum { MSG_SUBMIT = 0, MSG_CANCEL };

typedef struct msg {
    int op;
    srv_job *j;
    struct msg *next;
} msg;

struct srv_engine {
    srv *s;
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    msg *head, *tail;
    int stop, cancel_all;
    /* engine thread only */
    cl_sched *sched;
    srv_job **jobs;
    int n_jobs, cap_jobs;
    double busy_s, last_watch;
    double loop_cpu_s, step_cpu_s; /* this thread's CPU time: busy, and within steps */
};

static double clock_s(clockid_t id)
{
    struct timespec t;
    clock_gettime(id, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static double now_s(void) { return clock_s(CLOCK_MONOTONIC); }
static double cpu_s(void) { return clock_s(CLOCK_THREAD_CPUTIME_ID); }

static void post(srv_engine *e, int op, srv_job *j)
{
    msg *m = calloc(1, sizeof *m);
    if (!m) { /* cannot queue: a submitted job fails now (its connection gets a 500) */
        if (op == MSG_SUBMIT) {
            if (j->kind == JOB_GEN)
                atomic_fetch_sub(&e->s->pending, 1);
            srv_error err;
            srv_fail(&err, 500, NULL, "out of memory");
            job_error(j, &err);
        }
        job_unref(j);
        return;
    }
    m->op = op;
    m->j = j;
    pthread_mutex_lock(&e->mu);
    if (e->tail)
        e->tail->next = m;
    else
        e->head = m;
    e->tail = m;
    pthread_cond_signal(&e->cv);
    pthread_mutex_unlock(&e->mu);
}

void eng_submit(srv *s, srv_job *j)
{
    job_ref(j);
    post(s->eng, MSG_SUBMIT, j);
}

void eng_cancel(srv *s, srv_job *j)
{
    job_ref(j);
    post(s->eng, MSG_CANCEL, j);
}

void eng_cancel_all(srv *s)
{
    pthread_mutex_lock(&s->eng->mu);
    s->eng->cancel_all = 1;
    pthread_cond_signal(&s->eng->cv);
    pthread_mutex_unlock(&s->eng->mu);
}

/* ---- the job list ------------------------------------------------------------------- */

static int add_job(srv_engine *e, srv_job *j)
{
    if (e->n_jobs == e->cap_jobs) {
        int cap = e->cap_jobs ? 2 * e->cap_jobs : 64;
        srv_job **p = realloc(e->jobs, (size_t)cap * sizeof *p);
        if (!p)
            return cl_err(CL_ERR_NOMEM, "out of memory");
        e->jobs = p;
        e->cap_jobs = cap;
    }
    e->jobs[e->n_jobs++] = j;
    return CL_OK;
}

/* Drops job k from the list (and the engine's reference). */
static void drop_job(srv_engine *e, int k)
{
    srv_job *j = e->jobs[k];
    e->jobs[k] = e->jobs[--e->n_jobs];
    if (j->kind == JOB_GEN)
        atomic_fetch_sub(&e->s->pending, 1);
    job_unref(j);
}

/* Stops every scheduler request of j that is still running. */
static void stop_choices(srv_engine *e, srv_job *j)
{
    for (int i = 0; i < j->n_ch; i++) {
        srv_choice *c = &j->ch[i];
        if (c->submitted && !c->done) {
            cl_sched_cancel(e->sched, c->sched_id);
            cl_sched_release(e->sched, c->sched_id);
            c->done = 1;
            j->n_done++;
        }
    }
}

/* j failed on the engine: an error answer (or an error event in a started stream). */
static void fail_job(srv_engine *e, srv_job *j, int status)
{
    srv_error err;
    int http = status == CL_ERR_ARG || status == CL_ERR_RANGE ? 400
               : status == CL_ERR_NOTFOUND                    ? 404
               : status == CL_ERR_FULL                        ? 503 /* retry later */
                                                              : 500;
    srv_fail(&err, http, NULL, "%s", cl_errmsg()[0] ? cl_errmsg() : cl_status_name(status));
    stop_choices(e, j);
    pthread_mutex_lock(&j->mu);
    int streaming = j->accepted;
    pthread_mutex_unlock(&j->mu);
    if (!streaming) {
        job_error(j, &err);
        return;
    }
    out_stream_error(j, err.msg);
    pthread_mutex_lock(&j->mu);
    j->finished = 1;
    pthread_mutex_unlock(&j->mu);
    job_wake(j);
}

static void on_submit(srv_engine *e, srv_job *j)
{
    pthread_mutex_lock(&j->mu);
    int gone = j->cancel;
    pthread_mutex_unlock(&j->mu);
    if (j->kind != JOB_GEN) {
        if (!gone)
            docs_run(e->s, j);
        job_unref(j);
        return;
    }
    if (gone || add_job(e, j) != CL_OK) {
        atomic_fetch_sub(&e->s->pending, 1);
        if (!gone)
            fail_job(e, j, CL_ERR_NOMEM);
        job_unref(j);
        return;
    }
    int rc = gen_start(e->s, e->sched, j);
    if (rc != CL_OK) {
        fail_job(e, j, rc);
        drop_job(e, e->n_jobs - 1);
    }
}

/* ---- finishing ------------------------------------------------------------------------- */

static void finish_job(srv_engine *e, int k)
{
    srv_job *j = e->jobs[k];
    srv_metrics *m = &e->s->metrics;
    srv_metrics_lock(m);
    m->prompt_tokens += (uint64_t)j->prompt_tokens;
    m->cached_tokens += (uint64_t)j->cached_tokens;
    srv_hist_observe(&m->e2e, now_s() - j->t_arrival);
    srv_metrics_unlock(m);
    if (j->req.stream) {
        out_stream_end(j);
        pthread_mutex_lock(&j->mu);
        j->finished = 1;
        pthread_mutex_unlock(&j->mu);
        job_wake(j);
    } else {
        size_t len = 0;
        char *body = out_body(j, &len);
        if (body) {
            job_answer(j, 200, body, len);
        } else {
            srv_error err;
            srv_fail(&err, 500, NULL, "out of memory building the answer");
            job_error(j, &err);
        }
    }
    drop_job(e, k);
}

/* Collects the choices that finished in the last step. */
static void collect(srv_engine *e)
{
    srv_metrics *m = &e->s->metrics;
    for (int k = e->n_jobs - 1; k >= 0; k--) {
        srv_job *j = e->jobs[k];
        for (int i = 0; i < j->n_ch; i++) {
            srv_choice *c = &j->ch[i];
            if (!c->submitted || c->done ||
                cl_sched_result_get(e->sched, c->sched_id, NULL, &c->res) != CL_OK)
                continue;
            c->done = 1;
            j->n_done++;
            /* the end token is generated too: it counts in completion_tokens, as in vLLM
             * (the text and the token callbacks leave it out) */
            if (c->res.stop == CL_STOP_EOS)
                c->tokens++;
            if (!j->req.n_docs && c->index % j->req.n == 0) {
                j->cached_tokens += c->res.cached_tokens;
                srv_metrics_lock(m);
                m->prefix_hits += c->res.cached_tokens > 0;
                srv_hist_observe(&m->queue, c->res.queued_s);
                srv_metrics_unlock(m);
            }
            out_choice_end(c);
            cl_sched_release(e->sched, c->sched_id);
        }
        if (j->n_done == j->n_ch)
            finish_job(e, k);
    }
}

/* Stops j: the client left (disconnected: nothing more is sent, the connection closes),
 * or shutdown ran out of time (the answer ends with an error: a 503, or an error event
 * and [DONE] in a stream). */
static void cancel_job(srv_engine *e, srv_job *j, int disconnected)
{
    int k = 0;
    while (k < e->n_jobs && e->jobs[k] != j)
        k++;
    if (k == e->n_jobs)
        return; /* already finished */
    stop_choices(e, j);
    if (disconnected) {
        pthread_mutex_lock(&j->mu);
        j->cancel = 1;
        j->finished = 1;
        pthread_mutex_unlock(&j->mu);
        job_wake(j);
    } else {
        cl_err(CL_ERR_IO, "the server is shutting down: the request was stopped");
        srv_error err;
        srv_fail(&err, 503, NULL, "%s", cl_errmsg());
        pthread_mutex_lock(&j->mu);
        int streaming = j->accepted;
        pthread_mutex_unlock(&j->mu);
        if (streaming) {
            out_stream_error(j, err.msg);
            pthread_mutex_lock(&j->mu);
            j->finished = 1;
            pthread_mutex_unlock(&j->mu);
            job_wake(j);
        } else {
            job_error(j, &err);
        }
    }
    srv_metrics_lock(&e->s->metrics);
    e->s->metrics.cancelled++;
    e->s->metrics.disconnects += disconnected;
    srv_metrics_unlock(&e->s->metrics);
    drop_job(e, k);
}

/* Clients that closed their connection while it waits (suspended connections are not
 * watched by libmicrohttpd): their requests stop at once. */
static void watch_disconnects(srv_engine *e)
{
    double t = now_s();
    if (t - e->last_watch < 0.02 || e->n_jobs == 0)
        return;
    e->last_watch = t;
    struct pollfd *fds = calloc((size_t)e->n_jobs, sizeof *fds);
    srv_job **who = calloc((size_t)e->n_jobs, sizeof *who);
    int n = 0;
    for (int k = 0; fds && who && k < e->n_jobs; k++) {
        srv_job *j = e->jobs[k];
        pthread_mutex_lock(&j->mu);
        if (j->suspended && j->conn && j->fd >= 0) {
            fds[n].fd = j->fd;
            fds[n].events = POLLRDHUP;
            who[n++] = j;
        }
        pthread_mutex_unlock(&j->mu);
    }
    if (n > 0 && poll(fds, (nfds_t)n, 0) > 0) {
        for (int i = 0; i < n; i++) {
            if (!(fds[i].revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)))
                continue;
            srv_job *j = who[i];
            pthread_mutex_lock(&j->mu);
            int still = j->suspended && j->conn && !j->http_done; /* the fd is still its */
            pthread_mutex_unlock(&j->mu);
            if (still)
                cancel_job(e, j, 1);
        }
    }
    free(fds);
    free(who);
}

static void publish(srv_engine *e)
{
    srv *s = e->s;
    srv_engine_snap snap;
    memset(&snap, 0, sizeof snap);
    cl_sched_counts sc;
    cl_sched_counts_get(e->sched, &sc);
    snap.running = sc.running;
    snap.waiting = sc.queued;
    snap.jobs = e->n_jobs;
    snap.steps = sc.steps;
    snap.rows = sc.rows;
    cl_cache_stats_get(s->c, &snap.cache);
    if (s->p) {
        cl_prefix_stats_get(s->p, &snap.prefix);
        snap.has_prefix = 1;
    }
    snap.busy_s = e->busy_s;
    snap.loop_cpu_s = e->loop_cpu_s;
    snap.step_cpu_s = e->step_cpu_s;
    snap.callback_s = out_callback_seconds();
    srv_metrics_publish(&s->metrics, &snap);
}

/* A failed step: every running request fails (the scheduler state is unknown). */
static void step_failed(srv_engine *e, int rc)
{
    char msg[512];
    snprintf(msg, sizeof msg, "%s", cl_errmsg());
    fprintf(stderr, "collage serve: engine step failed: %s\n", msg);
    while (e->n_jobs > 0) {
        srv_job *j = e->jobs[e->n_jobs - 1];
        cl_err(rc, "%s", msg);
        fail_job(e, j, rc);
        drop_job(e, e->n_jobs - 1);
    }
}

static void *engine_main(void *arg)
{
    srv_engine *e = arg;
    if (e->s->o.threads > 0) /* OpenMP's thread count is per thread: set it for this one */
        omp_set_num_threads(e->s->o.threads);
    for (;;) {
        pthread_mutex_lock(&e->mu);
        while (!e->head && !e->stop && !e->cancel_all && e->n_jobs == 0)
            pthread_cond_wait(&e->cv, &e->mu);
        msg *m = e->head;
        e->head = e->tail = NULL;
        int stop = e->stop, cancel_all = e->cancel_all;
        e->cancel_all = 0;
        pthread_mutex_unlock(&e->mu);
        double cpu_wake = cpu_s();
        while (m) {
            msg *next = m->next;
            if (m->op == MSG_SUBMIT)
                on_submit(e, m->j);
            else {
                cancel_job(e, m->j, 1);
                job_unref(m->j);
            }
            free(m);
            m = next;
        }
        if (cancel_all || stop)
            while (e->n_jobs > 0)
                cancel_job(e, e->jobs[e->n_jobs - 1], 0);
        if (stop)
            break;
        if (e->n_jobs > 0) {
            int active = 0;
            double t0 = now_s(), c0 = cpu_s();
            int rc = cl_sched_step(e->sched, &active);
            e->step_cpu_s += cpu_s() - c0;
            e->busy_s += now_s() - t0;
            if (rc != CL_OK)
                step_failed(e, rc);
            else
                collect(e);
            watch_disconnects(e);
        }
        e->loop_cpu_s += cpu_s() - cpu_wake;
        publish(e);
    }
    publish(e);
    out_thread_cleanup();
    return NULL;
}

int eng_start(srv *s)
{
    srv_engine *e = calloc(1, sizeof *e);
    if (!e)
        return cl_err(CL_ERR_NOMEM, "out of memory");
    e->s = s;
    cl_sched_opts so;
    cl_sched_opts_default(&so);
    so.max_seqs = s->o.max_seqs;
    if (s->o.max_batch_tokens > 0)
        so.max_batch_tokens = s->o.max_batch_tokens;
    if (so.max_batch_tokens < so.max_seqs)
        so.max_batch_tokens = so.max_seqs; /* every running sequence decodes each step */
    so.prefix = s->p;
    int rc = cl_sched_create(s->m, s->c, &so, &e->sched);
    if (rc != CL_OK) {
        free(e);
        return rc;
    }
    pthread_mutex_init(&e->mu, NULL);
    pthread_cond_init(&e->cv, NULL);
    s->eng = e;
    publish(e);
    if (pthread_create(&e->th, NULL, engine_main, e) != 0) {
        cl_sched_free(e->sched);
        pthread_mutex_destroy(&e->mu);
        pthread_cond_destroy(&e->cv);
        free(e);
        s->eng = NULL;
        return cl_err(CL_ERR_INTERNAL, "cannot start the engine thread");
    }
    return CL_OK;
}

void eng_stop(srv *s)
{
    srv_engine *e = s->eng;
    if (!e)
        return;
    pthread_mutex_lock(&e->mu);
    e->stop = 1;
    pthread_cond_signal(&e->cv);
    pthread_mutex_unlock(&e->mu);
    pthread_join(e->th, NULL);
    for (msg *m = e->head; m;) { /* posted after the thread left: refused */
        msg *next = m->next;
        if (m->op == MSG_SUBMIT) {
            if (m->j->kind == JOB_GEN)
                atomic_fetch_sub(&s->pending, 1);
            srv_error err;
            srv_fail(&err, 503, NULL, "the server is shutting down");
            job_error(m->j, &err);
        }
        job_unref(m->j);
        free(m);
        m = next;
    }
    cl_sched_free(e->sched);
    free(e->jobs);
    pthread_mutex_destroy(&e->mu);
    pthread_cond_destroy(&e->cv);
    free(e);
    s->eng = NULL;
}
