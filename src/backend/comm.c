/* comm.c - see comm.h: the dispatch and the in-process (CPU) group. */
#include "backend/comm.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/status.h"

#ifdef COLLAGE_HAVE_CUDA
#include "backend/cuda.h"
#endif

/* ---------------------------------------------------------------- CPU group */

typedef struct {
    int n;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int arrived;
    uint64_t generation;
    int failed;
    const float **ptr; /* [n] each rank's published buffer */
    float *sum;        /* the reduced values (each rank fills its share) */
    size_t sum_cap;
} cpu_group;

/* Waits until every rank has arrived; CL_ERR_BACKEND once the group failed. */
static int barrier(cpu_group *g)
{
    pthread_mutex_lock(&g->mu);
    if (g->failed) {
        pthread_mutex_unlock(&g->mu);
        return cl_err(CL_ERR_BACKEND, "tensor parallel: another rank failed");
    }
    uint64_t gen = g->generation;
    if (++g->arrived == g->n) {
        g->arrived = 0;
        g->generation++;
        pthread_cond_broadcast(&g->cv);
    } else {
        while (gen == g->generation && !g->failed)
            pthread_cond_wait(&g->cv, &g->mu);
    }
    int failed = g->failed && gen == g->generation;
    pthread_mutex_unlock(&g->mu);
    return failed ? cl_err(CL_ERR_BACKEND, "tensor parallel: another rank failed") : CL_OK;
}

static int cpu_all_reduce(cl_comm *c, float *x, size_t n)
{
    cpu_group *g = c->group;
    if (g->n == 1 || n == 0)
        return CL_OK;
    /* the sum buffer is only touched between the first and the last barrier, and
     * rank 0 resizes it before the first */
    int grow_failed = 0;
    if (c->rank == 0 && g->sum_cap < n) {
        float *s = realloc(g->sum, n * sizeof *s);
        if (s) {
            g->sum = s;
            g->sum_cap = n;
        } else {
            grow_failed = 1;
        }
    }
    if (grow_failed) {
        cl_comm_abort(c);
        return cl_err(CL_ERR_NOMEM, "tensor parallel: out of memory for an all-reduce of %zu "
                      "floats", n);
    }
    g->ptr[c->rank] = x;
    CL_TRY(barrier(g));
    /* this rank's share of the elements, summed in rank order: every rank then copies
     * the same bits */
    size_t lo = n * (size_t)c->rank / (size_t)g->n, hi = n * (size_t)(c->rank + 1) / (size_t)g->n;
    for (size_t i = lo; i < hi; i++) { /* in double: one rounding, as one rank's sum */
        double s = g->ptr[0][i];
        for (int r = 1; r < g->n; r++)
            s += g->ptr[r][i];
        g->sum[i] = (float)s;
    }
    CL_TRY(barrier(g));
    memcpy(x, g->sum, n * sizeof *x);
    return barrier(g);
}

static int cpu_all_gather(cl_comm *c, const float *x, size_t n, float *out)
{
    cpu_group *g = c->group;
    g->ptr[c->rank] = x;
    CL_TRY(barrier(g));
    for (int r = 0; r < g->n; r++)
        if (out + (size_t)r * n != g->ptr[r])
            memmove(out + (size_t)r * n, g->ptr[r], n * sizeof *out);
    return barrier(g);
}

static void cpu_abort(cl_comm *c)
{
    cpu_group *g = c->group;
    pthread_mutex_lock(&g->mu);
    g->failed = 1;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

static void cpu_recover(cl_comm *c)
{
    cpu_group *g = c->group;
    pthread_mutex_lock(&g->mu);
    g->failed = 0;
    g->arrived = 0;
    g->generation++;
    pthread_mutex_unlock(&g->mu);
}

static void cpu_group_free(cl_comm **comms, int n)
{
    cpu_group *g = n > 0 && comms[0] ? comms[0]->group : NULL;
    for (int r = 0; r < n; r++)
        free(comms[r]);
    if (g) {
        pthread_mutex_destroy(&g->mu);
        pthread_cond_destroy(&g->cv);
        free(g->ptr);
        free(g->sum);
        free(g);
    }
}

static const cl_comm_ops cpu_comm_ops = {"cpu", cpu_all_reduce, cpu_all_gather, cpu_abort,
                                         cpu_recover, cpu_group_free};

static int cpu_group_create(cl_backend *const *backends, int n, cl_comm **comms)
{
    cpu_group *g = calloc(1, sizeof *g);
    if (!g || !(g->ptr = calloc((size_t)n, sizeof *g->ptr))) {
        free(g);
        return cl_err(CL_ERR_NOMEM, "out of memory");
    }
    g->n = n;
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    for (int r = 0; r < n; r++) {
        comms[r] = calloc(1, sizeof **comms);
        if (!comms[r]) {
            for (int i = r; i < n; i++)
                comms[i] = NULL;
            if (r == 0) { /* nothing points at the group yet */
                pthread_mutex_destroy(&g->mu);
                pthread_cond_destroy(&g->cv);
                free(g->ptr);
                free(g);
            } else {
                cpu_group_free(comms, r);
            }
            return cl_err(CL_ERR_NOMEM, "out of memory");
        }
        *comms[r] = (cl_comm){&cpu_comm_ops, r, n, backends[r], g, NULL};
    }
    return CL_OK;
}

/* ------------------------------------------------------------------ dispatch */

int cl_comm_group_create(cl_backend *const *backends, int n, cl_comm **comms)
{
    if (n < 1)
        return cl_err(CL_ERR_ARG, "tensor parallel: a group needs at least one rank");
    memset(comms, 0, (size_t)n * sizeof *comms);
    for (int r = 1; r < n; r++)
        if (strcmp(backends[r]->ops->name, backends[0]->ops->name))
            return cl_err(CL_ERR_ARG, "tensor parallel: ranks on different backends");
    if (!strcmp(backends[0]->ops->name, "cpu"))
        return cpu_group_create(backends, n, comms);
#ifdef COLLAGE_HAVE_CUDA
    if (cl_cuda_is(backends[0]))
        return cl_comm_nccl_group_create(backends, n, comms);
#endif
    return cl_err(CL_ERR_UNSUPPORTED, "tensor parallel on the %s backend is not yet supported",
                  backends[0]->ops->name);
}

void cl_comm_group_free(cl_comm **comms, int n)
{
    if (n > 0 && comms && comms[0])
        comms[0]->ops->group_free(comms, n);
}

int cl_comm_rank(const cl_comm *c) { return c->rank; }
int cl_comm_size(const cl_comm *c) { return c->size; }

int cl_comm_all_reduce(cl_comm *c, float *x, size_t n) { return c->ops->all_reduce(c, x, n); }

int cl_comm_all_gather(cl_comm *c, const float *x, size_t n, float *out)
{
    return c->ops->all_gather(c, x, n, out);
}

void cl_comm_abort(cl_comm *c)
{
    if (c)
        c->ops->abort(c);
}

void cl_comm_recover(cl_comm *c)
{
    if (c)
        c->ops->recover(c);
}
