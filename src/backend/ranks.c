/* ranks.c - see ranks.h. */
#include "backend/ranks.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/status.h"

typedef struct {
    cl_ranks *p;
    int rank;
    pthread_t tid;
    int started;
    cl_backend *bind; /* bind before the next work (NULL: none pending) */
} rank_thread;

struct cl_ranks {
    int n;
    rank_thread *t;
    pthread_mutex_t mu;
    pthread_cond_t work_cv, done_cv;
    uint64_t generation; /* work item number */
    int only;            /* -1: every rank; else only this rank runs the item */
    int pending;         /* ranks still running the item */
    int stop;
    cl_rank_fn fn;
    void *user;
    void (*on_fail)(void *user, int rank);
    int rc;              /* first failure */
    char msg[1024];
};

static int run_bind(rank_thread *t)
{
    cl_backend *b = t->bind;
    t->bind = NULL;
    return b && b->ops->bind_thread ? b->ops->bind_thread(b) : CL_OK;
}

static void *rank_main(void *arg)
{
    rank_thread *t = arg;
    cl_ranks *p = t->p;
    uint64_t seen = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->stop && p->generation == seen)
            pthread_cond_wait(&p->work_cv, &p->mu);
        if (p->stop)
            break;
        seen = p->generation;
        if (p->only >= 0 && p->only != t->rank)
            continue;
        cl_rank_fn fn = p->fn;
        void *user = p->user;
        pthread_mutex_unlock(&p->mu);
        int rc = t->bind ? run_bind(t) : CL_OK;
        if (rc == CL_OK && fn)
            rc = fn(user, t->rank);
        if (rc != CL_OK) {
            /* the root cause is recorded before on_fail wakes the other ranks, whose
             * own "another rank failed" must not take its place */
            pthread_mutex_lock(&p->mu);
            if (p->rc == CL_OK) {
                p->rc = rc;
                snprintf(p->msg, sizeof p->msg, "%s", cl_errmsg());
            }
            pthread_mutex_unlock(&p->mu);
            if (p->on_fail)
                p->on_fail(user, t->rank);
        }
        pthread_mutex_lock(&p->mu);
        if (--p->pending == 0)
            pthread_cond_broadcast(&p->done_cv);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

int cl_ranks_create(int n, cl_ranks **out)
{
    if (n < 1)
        return cl_err(CL_ERR_ARG, "tensor parallel: at least one rank");
    cl_ranks *p = calloc(1, sizeof *p);
    if (!p || !(p->t = calloc((size_t)n, sizeof *p->t))) {
        free(p);
        return cl_err(CL_ERR_NOMEM, "out of memory");
    }
    p->n = n;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->work_cv, NULL);
    pthread_cond_init(&p->done_cv, NULL);
    for (int r = 0; r < n; r++) {
        p->t[r].p = p;
        p->t[r].rank = r;
        if (pthread_create(&p->t[r].tid, NULL, rank_main, &p->t[r]) != 0) {
            cl_ranks_free(p);
            return cl_err(CL_ERR_INTERNAL, "tensor parallel: cannot start rank thread %d", r);
        }
        p->t[r].started = 1;
    }
    *out = p;
    return CL_OK;
}

void cl_ranks_free(cl_ranks *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->work_cv);
    pthread_mutex_unlock(&p->mu);
    for (int r = 0; r < p->n; r++)
        if (p->t[r].started)
            pthread_join(p->t[r].tid, NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->work_cv);
    pthread_cond_destroy(&p->done_cv);
    free(p->t);
    free(p);
}

int cl_ranks_count(const cl_ranks *p) { return p->n; }

/* One work item for `only` (-1: all ranks). */
static int run_item(cl_ranks *p, int only, cl_rank_fn fn, void *user,
                    void (*on_fail)(void *user, int rank))
{
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->user = user;
    p->on_fail = on_fail;
    p->only = only;
    p->pending = only >= 0 ? 1 : p->n;
    p->rc = CL_OK;
    p->msg[0] = 0;
    p->generation++;
    pthread_cond_broadcast(&p->work_cv);
    while (p->pending > 0)
        pthread_cond_wait(&p->done_cv, &p->mu);
    int rc = p->rc;
    pthread_mutex_unlock(&p->mu);
    return rc == CL_OK ? CL_OK : cl_err(rc, "%s", p->msg);
}

int cl_ranks_bind(cl_ranks *p, int r, cl_backend *b)
{
    if (r < 0 || r >= p->n)
        return cl_err(CL_ERR_ARG, "tensor parallel: no rank %d", r);
    p->t[r].bind = b;
    return run_item(p, r, NULL, NULL, NULL);
}

int cl_ranks_run(cl_ranks *p, cl_rank_fn fn, void *user, void (*on_fail)(void *user, int rank))
{
    return run_item(p, -1, fn, user, on_fail);
}

int cl_ranks_run_serial(cl_ranks *p, cl_rank_fn fn, void *user)
{
    for (int r = 0; r < p->n; r++)
        CL_TRY(run_item(p, r, fn, user, NULL));
    return CL_OK;
}
