/* cuda.h - what the CUDA backend offers beyond the op table: device facts, the
 * two ceilings benchmarks compare against (copy bandwidth, bf16 GEMM rate),
 * filling device memory from the counter-based generator (random-weight
 * models, random KV / state for pure-decode benchmarks), and the per-op
 * profile. All functions fail with CL_ERR_UNSUPPORTED when `b` is not a CUDA
 * backend or the build has none. */
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

/* Element i of dst (n elements of dtype) = value(first + i) of stream `key`
 * (see kernels.h kl_fill_random for the kinds). */
enum { CL_RNG_NORMAL = 0, CL_RNG_UNIFORM, CL_RNG_A_LOG, CL_RNG_DT_BIAS, CL_RNG_CONST };
int cl_cuda_fill_random(cl_backend *b, void *dst, cl_dtype dtype, size_t n, uint64_t key,
                        uint64_t first, int kind, float a, float bias);

/* Device-to-device copy bandwidth, counting bytes read plus written (GB/s), of
 * a `bytes`-sized copy (median of `reps`). */
int cl_cuda_measure_copy(cl_backend *b, size_t bytes, int reps, double *gbps);
/* bf16 GEMM rate (TFLOP/s) of an n x n x n cuBLAS product on random data. */
int cl_cuda_measure_gemm(cl_backend *b, int n, int reps, double *tflops);

/* Per-op profile (COLLAGE_CUDA_PROFILE=1): prints a table to stderr and clears it. */
void cl_cuda_profile_report(cl_backend *b, const char *title);
/* Decode graphs captured / replayed so far. */
void cl_cuda_graph_stats(cl_backend *b, uint64_t *captures, uint64_t *replays);

#endif
