/* cuda_comm.c - the NCCL group of comm.h (CUDA builds only).
 *
 * libnccl.so.2 is opened on first use (dlopen), as cuda_blas.c does for cuBLAS: the
 * binary has no link-time NCCL dependency, `collage --help` stays cheap, and a machine
 * without NCCL runs single-GPU models. The few NCCL types and constants used are
 * declared here (stable ABI: ncclFloat32 = 7, ncclSum = 0, ncclSuccess = 0).
 * Collectives go through the rank's backend dispatch (cuda_dispatch), so they run on
 * its stream in order with its ops and are recorded into decode-step graphs.
 *
 * Abort (a rank failed while the others may wait for it in a collective): every
 * rank's communicator is ended with ncclCommAbort, which makes NCCL kernels waiting
 * for a peer return, so the others' streams drain and their threads come back. From
 * then on collectives fail at once. Recover (once every rank has returned) makes new
 * communicators (ncclCommInitAll on the same devices) and drops the ranks' captured
 * decode graphs, which hold the old ones; if that fails the group stays failed and
 * says to load the model again. NCCL calls on one communicator never overlap (a lock
 * per rank); abort waits for a rank's call in progress at most ABORT_WAIT_S seconds,
 * then aborts anyway (a call blocked inside NCCL is what ncclCommAbort releases). */
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/comm.h"
#include "backend/cuda_internal.h"

#ifndef COLLAGE_NCCL_SONAME
#define COLLAGE_NCCL_SONAME "libnccl.so.2"
#endif

typedef struct nccl_comm *nccl_comm_t;
enum { NCCL_OK = 0, NCCL_FLOAT32 = 7, NCCL_SUM = 0 };

#define ABORT_WAIT_S 2

typedef struct {
    int (*init_all)(nccl_comm_t *comms, int n, const int *devs);
    int (*destroy)(nccl_comm_t comm);
    int (*abort)(nccl_comm_t comm);
    int (*all_reduce)(const void *send, void *recv, size_t count, int dtype, int op,
                      nccl_comm_t comm, cudaStream_t stream);
    int (*all_gather)(const void *send, void *recv, size_t count, int dtype, nccl_comm_t comm,
                      cudaStream_t stream);
    const char *(*error_string)(int result);
} nccl_api;

static nccl_api api;
static int loaded; /* 1 ok, -1 failed */
static char load_error[512];
static pthread_once_t once = PTHREAD_ONCE_INIT;

#define SYM(field, name)                                                                   \
    do {                                                                                   \
        *(void **)&api.field = dlsym(h, name);                                             \
        if (!api.field) {                                                                  \
            snprintf(load_error, sizeof load_error, "%s: no symbol %s", COLLAGE_NCCL_SONAME, \
                     name);                                                                \
            return;                                                                        \
        }                                                                                  \
    } while (0)

static void load(void)
{
    loaded = -1;
    const char *env = getenv("COLLAGE_NCCL");
    const char *path = env && *env ? env : COLLAGE_NCCL_SONAME;
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        snprintf(load_error, sizeof load_error, "%s", dlerror());
        return;
    }
    SYM(init_all, "ncclCommInitAll");
    SYM(destroy, "ncclCommDestroy");
    SYM(abort, "ncclCommAbort");
    SYM(all_reduce, "ncclAllReduce");
    SYM(all_gather, "ncclAllGather");
    SYM(error_string, "ncclGetErrorString");
    loaded = 1;
}

static int nccl_check(int r, const char *what)
{
    if (r == NCCL_OK)
        return CL_OK;
    return cl_err(CL_ERR_BACKEND, "nccl: %s: %s", what, api.error_string(r));
}

/* ---- the group: every rank's communicator, shared by the ranks' handles ---- */

typedef struct {
    int n;
    int *dev;              /* [n] device of rank r */
    cl_backend **b;        /* [n] */
    int *graphs0;          /* [n] each backend's decode-graph setting when the group was made */
    nccl_comm_t *nc;       /* [n] NULL once aborted */
    pthread_mutex_t *mu;   /* [n] one NCCL call on rank r's communicator at a time */
    pthread_mutex_t state; /* abort and recover */
    atomic_int aborted;
    int failed_rank;
    char rebuild_error[384]; /* why recover could not make new communicators */
} nccl_group;

static int aborted_error(nccl_group *g)
{
    if (g->rebuild_error[0])
        return cl_err(CL_ERR_BACKEND,
                      "tensor parallel: the NCCL group was aborted after rank %d failed and "
                      "could not be rebuilt (%s): load the model again",
                      g->failed_rank, g->rebuild_error);
    return cl_err(CL_ERR_BACKEND, "tensor parallel: the NCCL group was aborted (rank %d failed)",
                  g->failed_rank);
}

/* ---- collectives as backend ops ---- */

/* Compared byte for byte with the ops of captured graphs (cuda_graph.c): no padding
 * left unset (coll_set). */
typedef struct {
    const float *send;
    float *recv;
    size_t count;
    nccl_group *g;
    int64_t rank;
} coll_args;

static coll_args coll_set(const float *send, float *recv, size_t count, nccl_group *g, int rank)
{
    coll_args a;
    memset(&a, 0, sizeof a);
    a.send = send;
    a.recv = recv;
    a.count = count;
    a.g = g;
    a.rank = rank;
    return a;
}

static int run_all_reduce(cuda_ctx *c, const void *a)
{
    const coll_args *x = a;
    nccl_group *g = x->g;
    pthread_mutex_lock(&g->mu[x->rank]);
    int rc = atomic_load(&g->aborted) || !g->nc[x->rank]
                 ? aborted_error(g)
                 : nccl_check(api.all_reduce(x->send, x->recv, x->count, NCCL_FLOAT32, NCCL_SUM,
                                             g->nc[x->rank], c->stream),
                              "ncclAllReduce");
    pthread_mutex_unlock(&g->mu[x->rank]);
    return rc;
}

static int run_all_gather(cuda_ctx *c, const void *a)
{
    const coll_args *x = a;
    nccl_group *g = x->g;
    pthread_mutex_lock(&g->mu[x->rank]);
    int rc = atomic_load(&g->aborted) || !g->nc[x->rank]
                 ? aborted_error(g)
                 : nccl_check(api.all_gather(x->send, x->recv, x->count, NCCL_FLOAT32,
                                             g->nc[x->rank], c->stream),
                              "ncclAllGather");
    pthread_mutex_unlock(&g->mu[x->rank]);
    return rc;
}

static int nccl_all_reduce(cl_comm *c, float *x, size_t n)
{
    nccl_group *g = c->group;
    if (atomic_load(&g->aborted)) /* not even recorded into a decode step */
        return aborted_error(g);
    if (n == 0)
        return CL_OK;
    coll_args a = coll_set(x, x, n, g, c->rank);
    return cuda_dispatch(cuda_of(c->b), "nccl_all_reduce", run_all_reduce, &a, sizeof a);
}

static int nccl_all_gather(cl_comm *c, const float *x, size_t n, float *out)
{
    nccl_group *g = c->group;
    if (atomic_load(&g->aborted))
        return aborted_error(g);
    if (n == 0)
        return CL_OK;
    coll_args a = coll_set(x, out, n, g, c->rank);
    return cuda_dispatch(cuda_of(c->b), "nccl_all_gather", run_all_gather, &a, sizeof a);
}

/* Locks m, waiting at most ABORT_WAIT_S seconds; 1 if locked. */
static int lock_a_while(pthread_mutex_t *m)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    t.tv_sec += ABORT_WAIT_S;
    return pthread_mutex_timedlock(m, &t) == 0;
}

static void nccl_abort(cl_comm *c)
{
    nccl_group *g = c->group;
    pthread_mutex_lock(&g->state);
    if (atomic_load(&g->aborted)) {
        pthread_mutex_unlock(&g->state);
        return;
    }
    g->failed_rank = c->rank;
    g->rebuild_error[0] = 0;
    atomic_store(&g->aborted, 1); /* no new collective starts from here */
    int saved = -1;
    if (cudaGetDevice(&saved) != cudaSuccess)
        saved = -1;
    for (int r = 0; r < g->n; r++) {
        int locked = lock_a_while(&g->mu[r]);
        if (g->nc[r]) {
            cudaSetDevice(g->dev[r]);
            api.abort(g->nc[r]); /* frees it; its pending kernels return */
            g->nc[r] = NULL;
        }
        if (locked)
            pthread_mutex_unlock(&g->mu[r]);
    }
    cudaGetLastError();
    if (saved >= 0)
        cudaSetDevice(saved);
    pthread_mutex_unlock(&g->state);
}

/* New communicators for an aborted group (every rank has returned: nothing runs). */
static void nccl_recover(cl_comm *c)
{
    nccl_group *g = c->group;
    pthread_mutex_lock(&g->state);
    if (!atomic_load(&g->aborted) || g->rebuild_error[0]) {
        pthread_mutex_unlock(&g->state);
        return;
    }
    int saved = -1;
    if (cudaGetDevice(&saved) != cudaSuccess)
        saved = -1;
    int ok = 1;
    for (int r = 0; r < g->n && ok; r++) {
        /* what the aborted kernels left queued has run by now; a device whose context
         * failed cannot be used again */
        cudaError_t e = cudaSetDevice(g->dev[r]);
        if (e == cudaSuccess)
            e = cudaDeviceSynchronize();
        if (e != cudaSuccess) {
            snprintf(g->rebuild_error, sizeof g->rebuild_error, "device %d: %s", g->dev[r],
                     cudaGetErrorString(e));
            ok = 0;
            break;
        }
        /* the captured graphs hold the aborted communicators; a capture that failed
         * during the abort may have turned graphs off */
        cuda_ctx *ctx = cuda_of(g->b[r]);
        cuda_graphs_free(ctx);
        ctx->graphs = g->graphs0[r];
        ctx->sticky_rc = 0;
    }
    if (ok) {
        int res = api.init_all(g->nc, g->n, g->dev);
        if (res != NCCL_OK) {
            snprintf(g->rebuild_error, sizeof g->rebuild_error, "ncclCommInitAll: %s",
                     api.error_string(res));
            for (int r = 0; r < g->n; r++)
                g->nc[r] = NULL;
        } else {
            atomic_store(&g->aborted, 0);
        }
    }
    cudaGetLastError();
    if (saved >= 0)
        cudaSetDevice(saved);
    pthread_mutex_unlock(&g->state);
}

static void group_free(nccl_group *g)
{
    if (!g)
        return;
    for (int r = 0; g->mu && r < g->n; r++)
        pthread_mutex_destroy(&g->mu[r]);
    pthread_mutex_destroy(&g->state);
    free(g->dev);
    free(g->b);
    free(g->graphs0);
    free(g->nc);
    free(g->mu);
    free(g);
}

static void nccl_group_free(cl_comm **comms, int n)
{
    nccl_group *g = n > 0 && comms[0] ? comms[0]->group : NULL;
    for (int r = 0; g && r < g->n; r++) /* an aborted communicator is gone already */
        if (g->nc[r]) {
            cudaSetDevice(g->dev[r]);
            api.destroy(g->nc[r]);
            g->nc[r] = NULL;
        }
    for (int r = 0; r < n; r++)
        free(comms[r]);
    group_free(g);
}

static const cl_comm_ops nccl_ops = {"nccl", nccl_all_reduce, nccl_all_gather, nccl_abort,
                                     nccl_recover, nccl_group_free};

int cl_comm_nccl_group_create(cl_backend *const *backends, int n, cl_comm **comms)
{
    pthread_once(&once, load);
    if (loaded != 1)
        return cl_err(CL_ERR_UNSUPPORTED,
                      "tensor parallel: cannot load NCCL (%s): install libnccl2 or set "
                      "COLLAGE_NCCL to the library's path",
                      load_error);
    nccl_group *g = calloc(1, sizeof *g);
    if (!g)
        return cl_err(CL_ERR_NOMEM, "out of memory");
    g->n = n;
    g->dev = malloc((size_t)n * sizeof *g->dev);
    g->b = malloc((size_t)n * sizeof *g->b);
    g->graphs0 = malloc((size_t)n * sizeof *g->graphs0);
    g->nc = calloc((size_t)n, sizeof *g->nc);
    g->mu = malloc((size_t)n * sizeof *g->mu);
    pthread_mutex_init(&g->state, NULL);
    atomic_init(&g->aborted, 0);
    g->failed_rank = -1;
    int rc = g->dev && g->b && g->graphs0 && g->nc && g->mu ? CL_OK
                                                            : cl_err(CL_ERR_NOMEM, "out of memory");
    if (rc != CL_OK) {
        free(g->mu);
        g->mu = NULL;
        group_free(g);
        return rc;
    }
    for (int r = 0; r < n; r++)
        pthread_mutex_init(&g->mu[r], NULL);
    for (int r = 0; rc == CL_OK && r < n; r++) {
        g->dev[r] = cuda_of(backends[r])->device;
        g->b[r] = backends[r];
        g->graphs0[r] = cuda_of(backends[r])->graphs;
        for (int q = 0; q < r; q++)
            if (g->dev[q] == g->dev[r])
                rc = cl_err(CL_ERR_ARG, "tensor parallel: ranks %d and %d on one device (%d)", q,
                            r, g->dev[r]);
    }
    /* the backends' pending work first: NCCL initialisation synchronises the devices */
    for (int r = 0; rc == CL_OK && r < n; r++)
        rc = backends[r]->ops->sync(backends[r]);
    if (rc == CL_OK)
        rc = nccl_check(api.init_all(g->nc, n, g->dev), "ncclCommInitAll");
    for (int r = 0; rc == CL_OK && r < n; r++) {
        comms[r] = calloc(1, sizeof **comms);
        if (!comms[r]) {
            rc = cl_err(CL_ERR_NOMEM, "out of memory");
            break;
        }
        *comms[r] = (cl_comm){&nccl_ops, r, n, backends[r], g, NULL};
    }
    if (rc != CL_OK) {
        for (int r = 0; r < n; r++) {
            if (g->nc[r])
                api.destroy(g->nc[r]);
            free(comms[r]);
            comms[r] = NULL;
        }
        group_free(g);
    }
    return rc;
}
