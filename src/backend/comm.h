/* comm.h - collectives across the ranks of a tensor-parallel group in one process:
 * all-reduce (sum) and all-gather of fp32 buffers in backend memory.
 *
 * Every rank calls the same sequence of collectives from its own thread, on its
 * own backend's memory. A call returns when the result may be used by the rank's
 * later backend ops (CPU: it is written; CUDA: it is enqueued on the rank's stream,
 * before the ops that follow, and recorded into decode graphs like any op).
 *   CPU: ranks are threads sharing memory; a barrier and a fixed reduction order
 *     (rank 0 + rank 1 + ...), so every rank gets bit-identical sums.
 *   CUDA: NCCL, loaded on first use (dlopen of libnccl.so.2: no link-time
 *     dependency), one communicator per rank (ncclCommInitAll), device = rank.
 */
#ifndef CL_COMM_H
#define CL_COMM_H

#include <stddef.h>

#include "backend/backend.h"

typedef struct cl_comm cl_comm;

/* A group of n ranks, rank r on backends[r] (all CPU, or all CUDA on distinct
 * devices): comms[r] receives rank r's handle. A CUDA group needs libnccl.so.2 (a
 * clear error names it when it cannot be loaded). */
int cl_comm_group_create(cl_backend *const *backends, int n, cl_comm **comms);
/* Frees the handles of a group (all n, from one thread, after the last collective). */
void cl_comm_group_free(cl_comm **comms, int n);

int cl_comm_rank(const cl_comm *c);
int cl_comm_size(const cl_comm *c);
/* x[0..n) = the sum over the ranks of their x[0..n) (in place). */
int cl_comm_all_reduce(cl_comm *c, float *x, size_t n);
/* out[r * n .. (r + 1) * n) = rank r's x[0..n), on every rank (out: size * n floats). */
int cl_comm_all_gather(cl_comm *c, const float *x, size_t n, float *out);
/* Marks the group failed: a rank whose work failed calls it (from its own thread, at
 * once) so that the other ranks do not wait for it. CPU: their collectives return an
 * error. CUDA: every rank's NCCL communicator is aborted (ncclCommAbort), so kernels
 * waiting for a peer return and the ranks' streams drain; later collectives return an
 * error. Once failed, a group stays failed until recovered. */
void cl_comm_abort(cl_comm *c);
/* After an aborted collective, once every rank has returned: the group is usable again
 * (CUDA: new communicators on the same devices, the ranks' captured decode graphs
 * dropped; if that fails, collectives keep failing with a message saying to load the
 * model again). Calling it for every rank is fine; a group not aborted is left alone. */
void cl_comm_recover(cl_comm *c);

/* ---- for the implementations (comm.c, cuda_comm.c) ---- */
typedef struct {
    const char *name;
    int (*all_reduce)(cl_comm *c, float *x, size_t n);
    int (*all_gather)(cl_comm *c, const float *x, size_t n, float *out);
    void (*abort)(cl_comm *c);
    void (*recover)(cl_comm *c);
    void (*group_free)(cl_comm **comms, int n);
} cl_comm_ops;

struct cl_comm {
    const cl_comm_ops *ops;
    int rank, size;
    cl_backend *b;
    void *group; /* shared by the ranks of a group */
    void *impl;  /* this rank's */
};

#ifdef COLLAGE_HAVE_CUDA
int cl_comm_nccl_group_create(cl_backend *const *backends, int n, cl_comm **comms);
#endif

#endif
