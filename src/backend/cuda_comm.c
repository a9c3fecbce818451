/* cuda_comm.c - the NCCL group of comm.h (CUDA builds only).
 *
 * libnccl.so.2 is opened on first use (dlopen), as cuda_blas.c does for cuBLAS: the
 * binary has no link-time NCCL dependency, `collage --help` stays cheap, and a machine
 * without NCCL runs single-GPU models. The few NCCL types and constants used are
 * declared here (stable ABI: ncclFloat32 = 7, ncclSum = 0, ncclSuccess = 0).
 * Collectives go through the rank's backend dispatch (cuda_dispatch), so they run on
 * its stream in order with its ops and are recorded into decode-step graphs. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/comm.h"
#include "backend/cuda_internal.h"

#ifndef COLLAGE_NCCL_SONAME
#define COLLAGE_NCCL_SONAME "libnccl.so.2"
#endif

typedef struct nccl_comm *nccl_comm_t;
enum { NCCL_OK = 0, NCCL_FLOAT32 = 7, NCCL_SUM = 0 };

typedef struct {
    int (*init_all)(nccl_comm_t *comms, int n, const int *devs);
    int (*destroy)(nccl_comm_t comm);
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

/* ---- collectives as backend ops ---- */

typedef struct {
    const float *send;
    float *recv;
    size_t count;
    nccl_comm_t comm;
} coll_args;

static int run_all_reduce(cuda_ctx *c, const void *a)
{
    const coll_args *x = a;
    return nccl_check(api.all_reduce(x->send, x->recv, x->count, NCCL_FLOAT32, NCCL_SUM, x->comm,
                                     c->stream),
                      "ncclAllReduce");
}

static int run_all_gather(cuda_ctx *c, const void *a)
{
    const coll_args *x = a;
    return nccl_check(api.all_gather(x->send, x->recv, x->count, NCCL_FLOAT32, x->comm,
                                     c->stream),
                      "ncclAllGather");
}

static int nccl_all_reduce(cl_comm *c, float *x, size_t n)
{
    if (n == 0)
        return CL_OK;
    coll_args a = {x, x, n, c->impl};
    return cuda_dispatch(cuda_of(c->b), "nccl_all_reduce", run_all_reduce, &a, sizeof a);
}

static int nccl_all_gather(cl_comm *c, const float *x, size_t n, float *out)
{
    if (n == 0)
        return CL_OK;
    coll_args a = {x, out, n, c->impl};
    return cuda_dispatch(cuda_of(c->b), "nccl_all_gather", run_all_gather, &a, sizeof a);
}

static void nccl_abort(cl_comm *c)
{
    /* NCCL collectives of the other ranks are enqueued, not waited for on the host:
     * nothing blocks here (ncclCommAbort would end the communicator for good) */
    (void)c;
}

static void nccl_recover(cl_comm *c) { (void)c; }

static void nccl_group_free(cl_comm **comms, int n)
{
    for (int r = 0; r < n; r++) {
        if (!comms[r])
            continue;
        if (comms[r]->impl) {
            cudaSetDevice(cuda_of(comms[r]->b)->device);
            api.destroy(comms[r]->impl);
        }
        free(comms[r]);
    }
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
    int *devs = malloc((size_t)n * sizeof *devs);
    nccl_comm_t *nc = calloc((size_t)n, sizeof *nc);
    int rc = devs && nc ? CL_OK : cl_err(CL_ERR_NOMEM, "out of memory");
    for (int r = 0; rc == CL_OK && r < n; r++) {
        devs[r] = cuda_of(backends[r])->device;
        for (int q = 0; q < r; q++)
            if (devs[q] == devs[r])
                rc = cl_err(CL_ERR_ARG, "tensor parallel: ranks %d and %d on one device (%d)", q,
                            r, devs[r]);
    }
    /* the backends' pending work first: NCCL initialisation synchronises the devices */
    for (int r = 0; rc == CL_OK && r < n; r++)
        rc = backends[r]->ops->sync(backends[r]);
    if (rc == CL_OK)
        rc = nccl_check(api.init_all(nc, n, devs), "ncclCommInitAll");
    for (int r = 0; rc == CL_OK && r < n; r++) {
        comms[r] = calloc(1, sizeof **comms);
        if (!comms[r]) {
            rc = cl_err(CL_ERR_NOMEM, "out of memory");
            break;
        }
        *comms[r] = (cl_comm){&nccl_ops, r, n, backends[r], NULL, nc[r]};
        nc[r] = NULL;
    }
    if (rc != CL_OK) {
        for (int r = 0; nc && r < n; r++)
            if (nc[r])
                api.destroy(nc[r]);
        for (int r = 0; r < n; r++)
            if (comms[r]) {
                if (comms[r]->impl)
                    api.destroy(comms[r]->impl);
                free(comms[r]);
                comms[r] = NULL;
            }
    }
    free(devs);
    free(nc);
    return rc;
}
