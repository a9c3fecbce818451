/* cuda.c - the CUDA backend: device, stream and cuBLAS handle, the op table and
 * the extras of cuda.h. Memory ops live in cuda_memory.c, weight upload in
 * cuda_weights.c; ops in cuda_dense.c
 * (norms, RoPE, elementwise, argmax), cuda_gemm.c (projections), cuda_mixers.c
 * (attention and the SSM layers); batch metadata in cuda_batch.c; decode-step
 * graphs in cuda_graph.c; kernels in kernels/.
 *
 * Precision: weights of bf16 / f16 checkpoints stay bf16 / f16 (matrices and the
 * embedding; small vectors are fp32), fp32 checkpoints stay fp32 and run fp32
 * GEMMs without TF32, so fp32 models match the CPU backend to rounding. KV is
 * bf16 for 16-bit checkpoints, fp32 otherwise; SSM states are fp32 always. */
#include "backend/cuda.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda_internal.h"
#include "common/half.h"
#include "common/log.h"

#define CUBLAS_WORKSPACE_BYTES ((size_t)64 << 20)

int cl_cuda_device_count(void)
{
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError();
        return 0;
    }
    return n;
}

int cl_cuda_is(const cl_backend *b) { return b && b->ops && !strcmp(b->ops->name, "cuda"); }

/* ---------------------------------------------------------------- lifetime */

static void cuda_destroy(cl_backend *b)
{
    if (!b)
        return;
    cuda_ctx *c = cuda_of(b);
    if (c) {
        cuda_flush(c);
        cudaStreamSynchronize(c->stream);
        if (c->profile)
            cl_cuda_profile_report(b, "cuda backend");
        cuda_graphs_free(c);
        cuda_free_deferred(c);
        cuda_buf *bufs[] = {&c->meta, &c->act16, &c->attn_part, &c->ssm, &c->idx,
                            &c->move_meta};
        for (int i = 0; i < CUDA_XFER_EVENTS; i++)
            if (c->xfer_ev[i])
                cudaEventDestroy(c->xfer_ev[i]);
        for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
            cudaFree(bufs[i]->p);
        cudaFree(c->ids_dev);
        if (c->ids_pinned)
            cudaFreeHost(c->ids_pinned);
        if (c->pinned)
            cudaFreeHost(c->pinned);
        if (c->pinned_free)
            cudaEventDestroy(c->pinned_free);
        for (int i = 0; i < 2; i++)
            if (c->prof_ev[i])
                cudaEventDestroy(c->prof_ev[i]);
        if (c->blas)
            cuda_blas()->destroy(c->blas);
        cudaFree(c->blas_ws);
        for (size_t i = 0; i < c->n_slabs; i++)
            cudaFree(c->slabs[i]);
        free(c->slabs);
        if (c->stream)
            cudaStreamDestroy(c->stream);
        free(c->deferred);
        free(c);
    }
    free(b);
}

static cl_backend_ops cuda_ops_table;

/* A tensor-parallel rank thread runs this backend's ops on its device. */
static int cuda_bind_thread(cl_backend *b)
{
    CU_CHECK(cudaSetDevice(cuda_of(b)->device));
    return CL_OK;
}

static int env_flag(const char *name, int def)
{
    const char *v = getenv(name);
    if (!v || !*v)
        return def;
    return strcmp(v, "0") != 0;
}

static int cuda_init(cuda_ctx *c, int device)
{
    int n = cl_cuda_device_count();
    if (n <= 0)
        return cl_err(CL_ERR_UNSUPPORTED, "--backend cuda: no CUDA device is visible");
    if (device < 0 || device >= n)
        return cl_err(CL_ERR_ARG, "cuda device %d out of range (%d visible)", device, n);
    c->device = device;
    CU_CHECK(cudaSetDevice(device));
    struct cudaDeviceProp prop;
    CU_CHECK(cudaGetDeviceProperties(&prop, device));
    c->sm_count = prop.multiProcessorCount;
    snprintf(c->name, sizeof c->name, "%s", prop.name);
    CU_CHECK(cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking));
    CU_CHECK(cudaEventCreateWithFlags(&c->pinned_free, cudaEventDisableTiming));
    CU_CHECK(cudaEventRecord(c->pinned_free, c->stream));
    const cuda_blas_api *blas = cuda_blas();
    if (!blas)
        return CL_ERR_BACKEND;
    CUBLAS_CHECK(blas->create(&c->blas));
    CUBLAS_CHECK(blas->set_stream(c->blas, c->stream));
    /* an explicit workspace keeps cuBLAS from allocating inside graph capture */
    CU_CHECK(cudaMalloc(&c->blas_ws, CUBLAS_WORKSPACE_BYTES));
    CUBLAS_CHECK(blas->set_workspace(c->blas, c->blas_ws, CUBLAS_WORKSPACE_BYTES));
    /* default math for the 16-bit GEMMs (pedantic mode rules out cuBLAS's fast
     * small-batch kernels); fp32 GEMMs ask for CUBLAS_COMPUTE_32F_PEDANTIC per
     * call (no TF32: fp32 checkpoints must match the CPU to 1e-4) */
    CUBLAS_CHECK(blas->set_math_mode(c->blas, CUBLAS_DEFAULT_MATH));
    CU_CHECK(kl_gemm_skinny_prepare());
    CU_CHECK(kl_gemm_wgmma_prepare());
    CU_CHECK(kl_ssm_prepare());
    /* decode GEMM paths (A/B comparisons): COLLAGE_CUDA_GEMM=skinny (the first
     * round's kernel for every decode batch), wgmma, small, cublas; default: see
     * cuda_gemm.c */
    const char *gm = getenv("COLLAGE_CUDA_GEMM");
    c->gemm_mode = !gm || !*gm                ? CUDA_GEMM_AUTO
                   : !strcmp(gm, "skinny")    ? CUDA_GEMM_SKINNY
                   : !strcmp(gm, "wgmma")     ? CUDA_GEMM_WGMMA
                   : !strcmp(gm, "small")     ? CUDA_GEMM_SMALL
                   : !strcmp(gm, "cublas")    ? CUDA_GEMM_CUBLAS
                                              : CUDA_GEMM_AUTO;
    /* prefill attention kernel for A/B runs: COLLAGE_CUDA_FA=nopack (fa2, heads
     * not packed), =fa2 (mma.sync, the second round's), =wg128s|wg64|wg64s
     * (wgmma variants, see kernels.h) */
    const char *fa = getenv("COLLAGE_CUDA_FA");
    kl_fa_old = !fa                     ? 0
                : !strcmp(fa, "nopack") ? 2
                : !strcmp(fa, "fa2")    ? 3
                                        : 0;
    kl_fa3_variant = !fa                     ? 0
                     : !strcmp(fa, "wg128s") ? 1
                     : !strcmp(fa, "wg64")   ? 2
                     : !strcmp(fa, "wg64s")  ? 3
                                             : 0;
    /* tuning: block shape of the small-batch GEMM, first-round decode split count */
    const char *sv = getenv("COLLAGE_CUDA_SMALL_VARIANT");
    kl_small_variant = sv ? atoi(sv) : 0;
    const char *sp = getenv("COLLAGE_CUDA_SPLITS");
    kl_attn_splits_old = sp && !strcmp(sp, "old");
    /* programmatic dependent launch of the decode-path kernels (COLLAGE_CUDA_PDL=0: off;
     * Hopper and later only) */
    kl_pdl = env_flag("COLLAGE_CUDA_PDL", 1) && prop.major >= 9;
    /* the decode-step fusions of the op stream (COLLAGE_CUDA_FUSE=0: off) */
    c->fuse = env_flag("COLLAGE_CUDA_FUSE", 1);
    const char *skip = getenv("COLLAGE_CUDA_SKIP");
    if (skip) {
        snprintf(c->skip, sizeof c->skip, "%s", skip);
        cl_log_warn("cuda: COLLAGE_CUDA_SKIP=%s: those ops are not run (results are wrong)", skip);
    }
    c->profile = env_flag("COLLAGE_CUDA_PROFILE", 0);
    c->graphs = env_flag("COLLAGE_CUDA_GRAPHS", 1) && !c->profile;
    return CL_OK;
}

int cl_backend_cuda_create(int device, cl_backend **out)
{
    static int table_ready = 0;
    if (!table_ready) {
        cl_backend_ops *o = &cuda_ops_table;
        memset(o, 0, sizeof *o);
        o->name = "cuda";
        /* m2-8b 32K prefill, H100: chunk 512 -> 19675 tok/s, 4096 -> 20625, 8192 -> 20684 */
        o->feed_tokens = 4096;
        cuda_memory_ops(o);
        cuda_weight_ops(o);
        o->batch_prepare = cuda_batch_prepare;
        o->batch_release = cuda_batch_release;
        o->destroy = cuda_destroy;
        o->bind_thread = cuda_bind_thread;
        cuda_dense_ops(o);
        cuda_gemm_ops(o);
        cuda_mixer_ops(o);
        cuda_compose_ops(o);
        cuda_state_ops(o);
        table_ready = 1;
    }
    cl_backend *b = calloc(1, sizeof *b);
    cuda_ctx *c = calloc(1, sizeof *c);
    if (!b || !c) {
        free(b);
        free(c);
        return cl_err(CL_ERR_NOMEM, "out of memory");
    }
    b->ops = &cuda_ops_table;
    b->threads = 1;
    b->impl = c;
    int rc = cuda_init(c, device);
    if (rc != CL_OK) {
        cuda_destroy(b);
        return rc;
    }
    *out = b;
    return CL_OK;
}

/* ------------------------------------------------------------------ extras */

int cl_cuda_get_info(cl_backend *b, cl_cuda_info *out)
{
    if (!cl_cuda_is(b))
        return cl_err(CL_ERR_UNSUPPORTED, "not a CUDA backend");
    cuda_ctx *c = cuda_of(b);
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "%s", c->name);
    out->sm_count = c->sm_count;
    struct cudaDeviceProp prop;
    CU_CHECK(cudaGetDeviceProperties(&prop, c->device));
    out->cc_major = prop.major;
    out->cc_minor = prop.minor;
    CU_CHECK(cudaMemGetInfo(&out->mem_free, &out->mem_total));
    return CL_OK;
}

void cl_cuda_profile_report(cl_backend *b, const char *title)
{
    if (!cl_cuda_is(b))
        return;
    cuda_ctx *c = cuda_of(b);
    if (!c->n_prof)
        return;
    double total = 0;
    for (int i = 0; i < c->n_prof; i++)
        total += c->prof_ms[i];
    fprintf(stderr, "-- %s: per-op device time (events, COLLAGE_CUDA_PROFILE=1)\n", title);
    fprintf(stderr, "   %-22s %10s %10s %6s\n", "op", "calls", "ms", "%");
    for (int i = 0; i < c->n_prof; i++)
        fprintf(stderr, "   %-22s %10llu %10.2f %6.1f\n", c->prof_name[i],
                (unsigned long long)c->prof_calls[i], c->prof_ms[i],
                total > 0 ? 100.0 * c->prof_ms[i] / total : 0.0);
    fprintf(stderr, "   %-22s %10s %10.2f\n", "total", "", total);
    c->n_prof = 0;
}

void cl_cuda_graph_stats(cl_backend *b, uint64_t *captures, uint64_t *replays)
{
    *captures = *replays = 0;
    if (!cl_cuda_is(b))
        return;
    *captures = cuda_of(b)->graph_captures;
    *replays = cuda_of(b)->graph_hits;
}
