/* ranks.h - one persistent thread per tensor-parallel rank.
 *
 * Work for the ranks fans out to their threads and the caller waits for all of them:
 * a rank's backend is only ever used from its own thread (a CUDA device stays current
 * there; the CPU backend's OpenMP team size is set there once). Rank functions must
 * not call back into the same cl_ranks. */
#ifndef CL_RANKS_H
#define CL_RANKS_H

#include "backend/backend.h"

typedef struct cl_ranks cl_ranks;

/* Work of one rank; returns a status (message set on the rank's thread). */
typedef int (*cl_rank_fn)(void *user, int rank);

/* n threads, started at once; each waits for work. */
int cl_ranks_create(int n, cl_ranks **out);
/* Stops and joins the threads. */
void cl_ranks_free(cl_ranks *p);
int cl_ranks_count(const cl_ranks *p);
/* Binds rank r's thread to backend b (backend op bind_thread, e.g. the CUDA device);
 * later work on that rank runs bound. */
int cl_ranks_bind(cl_ranks *p, int r, cl_backend *b);
/* Runs fn(user, r) on every rank's thread at once and waits for all. Returns CL_OK or
 * the status of the first rank that failed, with its message on the calling thread.
 * on_fail (may be NULL) is called from a failing rank's thread at once, before the
 * others finish (to abort collectives they wait in). */
int cl_ranks_run(cl_ranks *p, cl_rank_fn fn, void *user, void (*on_fail)(void *user, int rank));
/* Runs fn on one rank after the other, rank 0 first (work that must not overlap). */
int cl_ranks_run_serial(cl_ranks *p, cl_rank_fn fn, void *user);

#endif
