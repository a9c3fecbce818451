/* cuda.h - what the CUDA backend offers beyond the op table: device facts and the
 * per-op profile (the ceilings benchmarks compare against live in bench/). All
 * functions fail with CL_ERR_UNSUPPORTED when `b` is not a CUDA backend. */
#ifndef CL_BACKEND_CUDA_H
#define CL_BACKEND_CUDA_H

#include <stddef.h>
#include <stdint.h>

#include "backend/backend.h"

/* Number of visible CUDA devices (0 without a driver or a build without CUDA). */
int cl_cuda_device_count(void);
/* 1 if b is the CUDA backend. */
int cl_cuda_is(const cl_backend *b);

typedef struct {
    char name[256];
    int sm_count;
    size_t mem_total, mem_free;
    int cc_major, cc_minor;
} cl_cuda_info;

int cl_cuda_get_info(cl_backend *b, cl_cuda_info *out);

/* Per-op profile (COLLAGE_CUDA_PROFILE=1): prints a table to stderr and clears it. */
void cl_cuda_profile_report(cl_backend *b, const char *title);
/* Decode graphs captured / replayed so far. */
void cl_cuda_graph_stats(cl_backend *b, uint64_t *captures, uint64_t *replays);

#endif
