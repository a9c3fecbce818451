/* ceilings.h - the machine's own limits that GPU benchmarks print their figures next
 * to, measured in the same run: device-to-device copy bandwidth and the bf16 GEMM
 * rate (cuBLAS). CL_ERR_UNSUPPORTED in builds without CUDA or without a GPU. */
#ifndef BENCH_CEILINGS_H
#define BENCH_CEILINGS_H

#include <stddef.h>

/* Device-to-device copy bandwidth, counting bytes read plus written (GB/s), of a
 * `bytes`-sized copy: the median of `reps` after two warm-ups. */
int bench_gpu_copy_gbps(size_t bytes, int reps, double *gbps);
/* bf16 GEMM rate (TFLOP/s) of an n x n x n cuBLAS product on random data (median). */
int bench_gpu_gemm_tflops(int n, int reps, double *tflops);

#endif
