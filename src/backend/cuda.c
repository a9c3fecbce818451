/* cuda.c - the CUDA backend: device, stream and cuBLAS handle, memory, weight
 * upload, the op table and the extras of cuda.h. Ops live in cuda_dense.c
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

/* ---------------------------------------------------------------- memory */

int cuda_free_deferred(cuda_ctx *c)
{
    if (!c->n_deferred)
        return CL_OK;
    CU_CHECK(cudaStreamSynchronize(c->stream));
    for (size_t i = 0; i < c->n_deferred; i++)
        cudaFree(c->deferred[i]);
    c->n_deferred = 0;
    return CL_OK;
}

int cuda_buf_reserve(cuda_ctx *c, cuda_buf *b, size_t bytes)
{
    if (bytes <= b->bytes)
        return CL_OK;
    size_t want = b->bytes ? b->bytes : ((size_t)1 << 20);
    while (want < bytes)
        want *= 2;
    void *p = NULL;
    if (cudaMalloc(&p, want) != cudaSuccess) {
        cudaGetLastError();
        /* retry at the exact size before giving up */
        if (cudaMalloc(&p, bytes) != cudaSuccess) {
            cudaGetLastError();
            return cl_err(CL_ERR_NOMEM, "cuda: out of device memory for %zu bytes of scratch",
                          bytes);
        }
        want = bytes;
    }
    if (b->p) { /* recorded ops may still use the old buffer: free it later */
        if (c->n_deferred == c->cap_deferred) {
            size_t cap = c->cap_deferred ? 2 * c->cap_deferred : 8;
            void **d = realloc(c->deferred, cap * sizeof *d);
            if (!d) {
                cudaFree(p);
                return cl_err(CL_ERR_NOMEM, "out of memory");
            }
            c->deferred = d;
            c->cap_deferred = cap;
        }
        c->deferred[c->n_deferred++] = b->p;
    }
    b->p = p;
    b->bytes = want;
    if (b == &c->act16)
        c->act16_src = NULL;
    return CL_OK;
}

static void *cuda_alloc(cl_backend *b, size_t bytes)
{
    cuda_ctx *c = cuda_of(b);
    if (cuda_flush(c) != CL_OK)
        return NULL;
    void *p = NULL;
    if (cudaMalloc(&p, bytes ? bytes : 1) != cudaSuccess) {
        cudaGetLastError();
        return NULL;
    }
    if (cudaMemsetAsync(p, 0, bytes, c->stream) != cudaSuccess ||
        cudaStreamSynchronize(c->stream) != cudaSuccess) {
        cudaGetLastError();
        cudaFree(p);
        return NULL;
    }
    return p;
}

static void *cuda_realloc(cl_backend *b, void *old, size_t old_bytes, size_t new_bytes)
{
    cuda_ctx *c = cuda_of(b);
    void *p = cuda_alloc(b, new_bytes);
    if (!p)
        return NULL;
    if (old && old_bytes) {
        size_t keep = old_bytes < new_bytes ? old_bytes : new_bytes;
        if (cudaMemcpyAsync(p, old, keep, cudaMemcpyDeviceToDevice, c->stream) != cudaSuccess ||
            cudaStreamSynchronize(c->stream) != cudaSuccess) {
            cudaGetLastError();
            cudaFree(p);
            return NULL;
        }
    }
    if (old)
        cudaFree(old);
    return p;
}

static void cuda_free(cl_backend *b, void *p)
{
    if (!p)
        return;
    cuda_flush(cuda_of(b));
    cudaFree(p);
}

static int cuda_to_host(cl_backend *b, void *host, const void *src, size_t bytes)
{
    cuda_ctx *c = cuda_of(b);
    CL_TRY(cuda_flush(c));
    if (!bytes)
        return CL_OK;
    CU_CHECK(cudaMemcpyAsync(host, src, bytes, cudaMemcpyDeviceToHost, c->stream));
    CU_CHECK(cudaStreamSynchronize(c->stream));
    return CL_OK;
}

static int cuda_from_host(cl_backend *b, void *dst, const void *host, size_t bytes)
{
    cuda_ctx *c = cuda_of(b);
    CL_TRY(cuda_flush(c));
    if (!bytes)
        return CL_OK;
    CU_CHECK(cudaMemcpyAsync(dst, host, bytes, cudaMemcpyHostToDevice, c->stream));
    /* pageable source: the copy has been staged when the call returns, but keep
     * the contract simple (host buffer reusable, data visible to later ops) */
    CU_CHECK(cudaStreamSynchronize(c->stream));
    return CL_OK;
}

static int cuda_copy(cl_backend *b, void *dst, const void *src, size_t bytes)
{
    cuda_ctx *c = cuda_of(b);
    CL_TRY(cuda_flush(c));
    if (bytes && dst != src)
        CU_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, c->stream));
    return CL_OK;
}

static int cuda_zero(cl_backend *b, void *dst, size_t bytes)
{
    cuda_ctx *c = cuda_of(b);
    CL_TRY(cuda_flush(c));
    if (bytes)
        CU_CHECK(cudaMemsetAsync(dst, 0, bytes, c->stream));
    return CL_OK;
}

static int cuda_sync(cl_backend *b)
{
    cuda_ctx *c = cuda_of(b);
    CL_TRY(cuda_flush(c));
    CU_CHECK(cudaStreamSynchronize(c->stream));
    return CL_OK;
}

int cuda_upload(cuda_ctx *c, void *dst, const void *const *parts, const size_t *sizes, int n)
{
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += sizes[i];
    if (!total)
        return CL_OK;
    /* the previous upload must have left the staging buffer */
    CU_CHECK(cudaEventSynchronize(c->pinned_free));
    if (total > c->pinned_bytes) {
        if (c->pinned)
            cudaFreeHost(c->pinned);
        c->pinned = NULL;
        size_t want = c->pinned_bytes ? c->pinned_bytes : ((size_t)1 << 16);
        while (want < total)
            want *= 2;
        CU_CHECK(cudaMallocHost(&c->pinned, want));
        c->pinned_bytes = want;
    }
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        if (sizes[i])
            memcpy((char *)c->pinned + off, parts[i], sizes[i]);
        off += sizes[i];
    }
    CU_CHECK(cudaMemcpyAsync(dst, c->pinned, total, cudaMemcpyHostToDevice, c->stream));
    CU_CHECK(cudaEventRecord(c->pinned_free, c->stream));
    return CL_OK;
}

/* --------------------------------------------------------------- weights */

#define SLAB_BYTES ((size_t)1 << 30)

/* Space for a 16-bit matrix in the current slab (256-byte aligned), or a new slab. */
static void *slab_alloc(cuda_ctx *c, size_t bytes)
{
    size_t off = (c->slab_off + 255) & ~(size_t)255;
    if (!c->n_slabs || off + bytes > c->slab_size) {
        size_t size = bytes > SLAB_BYTES ? bytes : SLAB_BYTES;
        void **l = realloc(c->slabs, (c->n_slabs + 1) * sizeof *l);
        if (!l)
            return NULL;
        c->slabs = l;
        void *p = NULL;
        if (cudaMalloc(&p, size) != cudaSuccess) {
            cudaGetLastError();
            /* the last slab of a model: exactly what is left to place */
            if (size == bytes || cudaMalloc(&p, bytes) != cudaSuccess) {
                cudaGetLastError();
                return NULL;
            }
            size = bytes;
        }
        c->slabs[c->n_slabs++] = p;
        c->slab_size = size;
        off = 0;
    }
    c->slab_off = off + bytes;
    return (char *)c->slabs[c->n_slabs - 1] + off;
}

static int cuda_weight_upload(cl_backend *b, const cl_st_tensor *t, int64_t rows, int64_t cols,
                              int matrix, cl_bweight *out)
{
    cuda_ctx *c = cuda_of(b);
    CL_TRY(cuda_flush(c));
    memset(out, 0, sizeof *out);
    size_t n = (size_t)(rows * cols);
    /* 16-bit checkpoints keep their type for matrices and the embedding table
     * (half the memory and bytes moved); vectors are fp32 for the kernels */
    int keep = (t->dtype == CL_BF16 || t->dtype == CL_F16) && (matrix || rows > 1);
    cl_dtype dt = keep ? t->dtype : CL_F32;
    size_t bytes = n * cl_dtype_size(dt);
    void *p = NULL;
    int slab = matrix && keep && bytes > 0;
    if (slab ? !(p = slab_alloc(c, bytes)) : cudaMalloc(&p, bytes ? bytes : 1) != cudaSuccess) {
        cudaGetLastError();
        return cl_err(CL_ERR_NOMEM, "%s: out of device memory for tensor '%s' (%zu bytes)",
                      t->file, t->name, bytes);
    }
    int rc = CL_OK;
    if (keep || t->dtype == CL_F32) {
        if (cudaMemcpy(p, t->data, bytes, cudaMemcpyHostToDevice) != cudaSuccess)
            rc = cl_err(CL_ERR_BACKEND, "%s: copying tensor '%s' to the device: %s", t->file,
                        t->name, cudaGetErrorString(cudaGetLastError()));
    } else {
        float *tmp = malloc(bytes ? bytes : 1);
        if (!tmp) {
            rc = cl_err(CL_ERR_NOMEM, "out of memory converting tensor '%s'", t->name);
        } else {
            cl_convert_to_f32(tmp, t->data, t->dtype, n);
            if (cudaMemcpy(p, tmp, bytes, cudaMemcpyHostToDevice) != cudaSuccess)
                rc = cl_err(CL_ERR_BACKEND, "copying tensor '%s' to the device: %s", t->name,
                            cudaGetErrorString(cudaGetLastError()));
            free(tmp);
        }
    }
    if (rc != CL_OK) {
        if (!slab)
            cudaFree(p);
        return rc;
    }
    *out = (cl_bweight){p, dt, rows, cols, !slab}; /* slab members go with the backend */
    return CL_OK;
}

static int cuda_weight_from_f32(cl_backend *b, const float *host, int64_t rows, int64_t cols,
                                cl_bweight *out)
{
    cuda_ctx *c = cuda_of(b);
    CL_TRY(cuda_flush(c));
    memset(out, 0, sizeof *out);
    size_t bytes = (size_t)(rows * cols) * sizeof(float);
    void *p = NULL;
    if (cudaMalloc(&p, bytes ? bytes : 1) != cudaSuccess) {
        cudaGetLastError();
        return cl_err(CL_ERR_NOMEM, "out of device memory (weights, %zu bytes)", bytes);
    }
    if (bytes && cudaMemcpy(p, host, bytes, cudaMemcpyHostToDevice) != cudaSuccess) {
        cudaFree(p);
        return cl_err(CL_ERR_BACKEND, "copying weights to the device: %s",
                      cudaGetErrorString(cudaGetLastError()));
    }
    *out = (cl_bweight){p, CL_F32, rows, cols, 1};
    return CL_OK;
}

static void cuda_weight_free(cl_backend *b, cl_bweight *w)
{
    if (w->owned && w->data) {
        cuda_flush(cuda_of(b));
        cudaFree(w->data);
    }
    memset(w, 0, sizeof *w);
}

static cl_dtype cuda_kv_dtype(cl_backend *b, cl_dtype weights)
{
    (void)b;
    return weights == CL_F32 ? CL_F32 : CL_BF16;
}

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
        cuda_buf *bufs[] = {&c->meta, &c->act16, &c->attn_part, &c->ssm, &c->idx};
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
            cublasDestroy(c->blas);
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
    CUBLAS_CHECK(cublasCreate(&c->blas));
    CUBLAS_CHECK(cublasSetStream(c->blas, c->stream));
    /* an explicit workspace keeps cuBLAS from allocating inside graph capture */
    CU_CHECK(cudaMalloc(&c->blas_ws, CUBLAS_WORKSPACE_BYTES));
    CUBLAS_CHECK(cublasSetWorkspace(c->blas, c->blas_ws, CUBLAS_WORKSPACE_BYTES));
    /* default math for the 16-bit GEMMs (pedantic mode rules out cuBLAS's fast
     * small-batch kernels); fp32 GEMMs ask for CUBLAS_COMPUTE_32F_PEDANTIC per
     * call (no TF32: fp32 checkpoints must match the CPU to 1e-4) */
    CUBLAS_CHECK(cublasSetMathMode(c->blas, CUBLAS_DEFAULT_MATH));
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
        o->alloc = cuda_alloc;
        o->realloc = cuda_realloc;
        o->free = cuda_free;
        o->to_host = cuda_to_host;
        o->from_host = cuda_from_host;
        o->copy = cuda_copy;
        o->zero = cuda_zero;
        o->sync = cuda_sync;
        o->weight_upload = cuda_weight_upload;
        o->weight_from_f32 = cuda_weight_from_f32;
        o->weight_free = cuda_weight_free;
        o->batch_prepare = cuda_batch_prepare;
        o->batch_release = cuda_batch_release;
        o->kv_dtype = cuda_kv_dtype;
        o->destroy = cuda_destroy;
        cuda_dense_ops(o);
        cuda_gemm_ops(o);
        cuda_mixer_ops(o);
        cuda_compose_ops(o);
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

int cl_cuda_fill_random(cl_backend *b, void *dst, cl_dtype dtype, size_t n, uint64_t key,
                        uint64_t first, int kind, float a, float bias)
{
    if (!cl_cuda_is(b))
        return cl_err(CL_ERR_UNSUPPORTED, "not a CUDA backend");
    cuda_ctx *c = cuda_of(b);
    CL_TRY(cuda_flush(c));
    CU_CHECK(kl_fill_random(dst, cuda_kdtype(dtype), (int64_t)n, key, first, kind, a, bias,
                            c->stream));
    return CL_OK;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int cl_cuda_measure_copy(cl_backend *b, size_t bytes, int reps, double *gbps)
{
    if (!cl_cuda_is(b))
        return cl_err(CL_ERR_UNSUPPORTED, "not a CUDA backend");
    cuda_ctx *c = cuda_of(b);
    CL_TRY(cuda_flush(c));
    void *src = NULL, *dst = NULL;
    cudaEvent_t e0 = NULL, e1 = NULL;
    double *ms = calloc((size_t)(reps > 0 ? reps : 1), sizeof *ms);
    int rc = CL_OK;
    if (!ms || cudaMalloc(&src, bytes) != cudaSuccess || cudaMalloc(&dst, bytes) != cudaSuccess) {
        cudaGetLastError();
        rc = cl_err(CL_ERR_NOMEM, "cuda: no room for a %zu-byte copy test", bytes);
        goto out;
    }
    if (kl_fill_random(src, KL_F32, (int64_t)(bytes / 4), 12345, 0, KL_RNG_NORMAL, 1.0f, 0.0f,
                       c->stream) != cudaSuccess ||
        cudaEventCreate(&e0) != cudaSuccess || cudaEventCreate(&e1) != cudaSuccess) {
        rc = cl_err(CL_ERR_BACKEND, "cuda: copy test setup failed");
        goto out;
    }
    for (int i = -2; i < reps; i++) { /* two warm-ups */
        cudaEventRecord(e0, c->stream);
        cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, c->stream);
        cudaEventRecord(e1, c->stream);
        if (cudaEventSynchronize(e1) != cudaSuccess) {
            rc = cl_err(CL_ERR_BACKEND, "cuda: copy test failed");
            goto out;
        }
        float t = 0;
        cudaEventElapsedTime(&t, e0, e1);
        if (i >= 0)
            ms[i] = t;
    }
    qsort(ms, (size_t)reps, sizeof *ms, cmp_double);
    *gbps = 2.0 * (double)bytes / (ms[reps / 2] * 1e-3) / 1e9;
out:
    if (e0)
        cudaEventDestroy(e0);
    if (e1)
        cudaEventDestroy(e1);
    cudaFree(src);
    cudaFree(dst);
    free(ms);
    cudaGetLastError();
    return rc;
}

int cl_cuda_measure_gemm(cl_backend *b, int n, int reps, double *tflops)
{
    if (!cl_cuda_is(b))
        return cl_err(CL_ERR_UNSUPPORTED, "not a CUDA backend");
    cuda_ctx *c = cuda_of(b);
    CL_TRY(cuda_flush(c));
    size_t elems = (size_t)n * (size_t)n;
    void *A = NULL, *B = NULL, *C = NULL;
    cudaEvent_t e0 = NULL, e1 = NULL;
    double *ms = calloc((size_t)(reps > 0 ? reps : 1), sizeof *ms);
    int rc = CL_OK;
    if (!ms || cudaMalloc(&A, elems * 2) != cudaSuccess ||
        cudaMalloc(&B, elems * 2) != cudaSuccess || cudaMalloc(&C, elems * 2) != cudaSuccess) {
        cudaGetLastError();
        rc = cl_err(CL_ERR_NOMEM, "cuda: no room for a %d^3 GEMM test", n);
        goto out;
    }
    kl_fill_random(A, KL_BF16, (int64_t)elems, 1, 0, KL_RNG_NORMAL, 1.0f, 0.0f, c->stream);
    kl_fill_random(B, KL_BF16, (int64_t)elems, 2, 0, KL_RNG_NORMAL, 1.0f, 0.0f, c->stream);
    cudaEventCreate(&e0);
    cudaEventCreate(&e1);
    const float one = 1.0f, zero = 0.0f;
    for (int i = -3; i < reps; i++) {
        cudaEventRecord(e0, c->stream);
        cublasStatus_t st = cublasGemmEx(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, n, n, n, &one, A,
                                         CUDA_R_16BF, n, B, CUDA_R_16BF, n, &zero, C,
                                         CUDA_R_16BF, n, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
        cudaEventRecord(e1, c->stream);
        if (st != CUBLAS_STATUS_SUCCESS || cudaEventSynchronize(e1) != cudaSuccess) {
            rc = cl_err(CL_ERR_BACKEND, "cuda: GEMM test failed (%s)", cublasGetStatusString(st));
            goto out;
        }
        float t = 0;
        cudaEventElapsedTime(&t, e0, e1);
        if (i >= 0)
            ms[i] = t;
    }
    qsort(ms, (size_t)reps, sizeof *ms, cmp_double);
    *tflops = 2.0 * (double)n * n * n / (ms[reps / 2] * 1e-3) / 1e12;
out:
    if (e0)
        cudaEventDestroy(e0);
    if (e1)
        cudaEventDestroy(e1);
    cudaFree(A);
    cudaFree(B);
    cudaFree(C);
    free(ms);
    cudaGetLastError();
    return rc;
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
