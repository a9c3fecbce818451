/* cuda_internal.h - shared pieces of the CUDA backend (not a public contract).
 *
 * The backend is one stream on one device. Ops are thin wrappers: each packs
 * its arguments into a plain struct and hands it to cuda_dispatch(), which runs
 * it at once or, inside a decode step, records it; at the end of the step the
 * recorded list is replayed as a CUDA graph when an identical list (same op
 * sequence, same argument bytes, so the same pointers and shapes) was captured
 * before (cuda_graph.c). Per-batch data lives on the device (kl_batch), so the
 * argument bytes of a decode step do not change from one step to the next.
 */
#ifndef CL_CUDA_INTERNAL_H
#define CL_CUDA_INTERNAL_H

#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <stddef.h>
#include <stdint.h>

#include "backend/backend.h"
#include "backend/cuda_blas.h"
#include "common/status.h"
#include "kernels.h"

/* Every CUDA runtime / cuBLAS call and kernel launch is checked; a failure
 * becomes CL_ERR_BACKEND naming the call and its place. */
#define CU_CHECK(call)                                                                      \
    do {                                                                                    \
        cudaError_t cu_e_ = (call);                                                         \
        if (cu_e_ != cudaSuccess)                                                           \
            return cl_err(CL_ERR_BACKEND, "cuda: %s: %s (%s:%d)", #call,                    \
                          cudaGetErrorString(cu_e_), __FILE__, __LINE__);                   \
    } while (0)

#define CUBLAS_CHECK(call)                                                                  \
    do {                                                                                    \
        cublasStatus_t cb_e_ = (call);                                                      \
        if (cb_e_ != CUBLAS_STATUS_SUCCESS)                                                 \
            return cl_err(CL_ERR_BACKEND, "cublas: %s: %s (%s:%d)", #call,                  \
                          cuda_blas_status(cb_e_), __FILE__, __LINE__);                \
    } while (0)

/* A device buffer that only grows. */
typedef struct {
    void *p;
    size_t bytes;
} cuda_buf;

typedef struct cuda_ctx cuda_ctx;
typedef int (*cuda_run_fn)(cuda_ctx *c, const void *args);

/* One recorded op: its run function, a name (profiles) and its argument bytes. */
typedef struct {
    cuda_run_fn fn;
    const char *name;
    size_t off, size; /* into the recorder's byte arena */
} cuda_rec_op;

typedef struct {
    cuda_rec_op *ops;
    size_t n_ops, cap_ops;
    unsigned char *bytes;
    size_t n_bytes, cap_bytes;
} cuda_rec_list;

typedef struct {
    cuda_rec_list list;
    cudaGraphExec_t exec;
    uint64_t last_used;
} cuda_graph_entry;

/* An op held back for fusion with the ops after it (cuda_dense.c). */
#define CUDA_HELD_MAX 4
#define CUDA_HELD_BYTES 256
typedef struct {
    cuda_run_fn fn;
    const char *name;
    size_t size;
    int kind; /* CUDA_HELD_* */
    unsigned char args[CUDA_HELD_BYTES];
} cuda_held_op;
enum { CUDA_HELD_ADD = 1, CUDA_HELD_HEAD_NORM, CUDA_HELD_ROPE };

/* What the held q/k norms and RoPEs of an attention layer were (cuda_take_qk). */
typedef struct {
    const float *wq, *wk;
    double theta;
    float eps;
    int pad_;
} cuda_qk_fuse;

enum { CUDA_GEMM_AUTO = 0, CUDA_GEMM_SKINNY, CUDA_GEMM_WGMMA, CUDA_GEMM_SMALL, CUDA_GEMM_CUBLAS };

#define CUDA_GRAPH_CACHE 8
#define CUDA_XFER_EVENTS 64
#define CUDA_PROFILE_MAX 48

struct cuda_ctx {
    int device, sm_count;
    char name[256];
    cudaStream_t stream;
    cublasHandle_t blas;
    void *blas_ws;

    /* the batch of the current forward, on the device */
    kl_batch kb;
    int kb_valid;
    int64_t kb_page_tokens; /* page size the block tables were laid out for (0: none) */
    int64_t page_tokens;    /* last page size seen by an attention op */
    cuda_buf meta;          /* device copy of the batch metadata */
    void *pinned;           /* host staging for uploads */
    size_t pinned_bytes;
    cudaEvent_t pinned_free; /* the last upload from `pinned` has been read */
    const cl_batch *host_batch;

    /* scratch */
    cuda_buf act16;    /* GEMM inputs converted to the weight dtype */
    /* what act16 holds: the bf16/f16 copy of fp32 `act16_src` (rows x cols at
     * stride ld) in buffer act16_buf; NULL src: nothing (checked at run time) */
    const void *act16_src;
    const void *act16_buf;
    int64_t act16_rows, act16_ld, act16_cols;
    int act16_dtype;
    int bf16_gemms; /* a bf16 projection was seen: norms also write bf16 copies */
    int gemm_mode;  /* CUDA_GEMM_* (COLLAGE_CUDA_GEMM) */
    int fuse; /* COLLAGE_CUDA_FUSE: residual add + RMSNorm, q/k norm + RoPE + KV append */
    /* a projection held back to be merged with the next one (cuda_gemm.c) */
    unsigned char pend[160];
    int has_pend;
    /* ops held back for fusion: a residual add (fused with the RMSNorm after it),
     * q/k head norms and RoPEs (fused with the attention op's KV append) */
    cuda_held_op held[CUDA_HELD_MAX];
    int n_held;
    cuda_buf attn_part; /* decode split partials */
    cuda_buf ssm;       /* chunked SSM scratch */
    cuda_buf idx;       /* gather row indices */
    cuda_buf move_meta; /* kv_copy_runs / kv_scatter: pool pointers + runs or slots */
    cudaEvent_t xfer_ev[CUDA_XFER_EVENTS]; /* tickets of asynchronous copies (ring) */
    uint64_t xfer_last;
    int32_t *ids_dev, *ids_pinned;
    size_t ids_cap;

    /* 16-bit weight matrices are carved from slabs in upload order, so that
     * projections uploaded one after the other (gate|up, q|k|v) are adjacent and
     * merge into one GEMM; slabs are freed with the backend */
    void **slabs;
    size_t n_slabs, slab_off, slab_size;

    /* buffers replaced while recorded ops may still point at them */
    void **deferred;
    size_t n_deferred, cap_deferred;

    /* decode-step graphs */
    int graphs;     /* COLLAGE_CUDA_GRAPHS (default 1) */
    int sticky_rc;  /* a failure batch_release could not report (next call reports it) */
    char sticky_msg[512];
    int recording;
    cuda_rec_list rec;
    cuda_graph_entry cache[CUDA_GRAPH_CACHE];
    uint64_t clock;
    uint64_t graph_hits, graph_captures;

    char skip[256]; /* COLLAGE_CUDA_SKIP: ops not run (timing experiments) */

    /* COLLAGE_CUDA_PROFILE=1: synchronous per-op timing (graphs off) */
    int profile;
    int n_prof;
    cudaEvent_t prof_ev[2];
    const char *prof_name[CUDA_PROFILE_MAX];
    double prof_ms[CUDA_PROFILE_MAX];
    uint64_t prof_calls[CUDA_PROFILE_MAX];
};

static inline cuda_ctx *cuda_of(cl_backend *b) { return (cuda_ctx *)b->impl; }

/* Runs (or records, inside a decode step) one op. `args` is copied. */
int cuda_dispatch(cuda_ctx *c, const char *name, cuda_run_fn fn, const void *args, size_t size);
/* Ends recording: replays or captures the recorded ops. Called by everything
 * that needs the results or touches memory outside the op stream. */
int cuda_flush(cuda_ctx *c);
void cuda_graphs_free(cuda_ctx *c);

/* Dispatches the ops held back for fusion, in order. */
int cuda_held_flush(cuda_ctx *c);
/* If the held ops are exactly the q and k head norms and RoPEs of an attention
 * layer whose q, k, v start at q (row stride ld, k = q + Hq D, v = k + Hkv D),
 * drops them and describes them in *f (the attention op then runs them fused
 * with its KV append); returns 1 then, else 0. */
int cuda_take_qk(cuda_ctx *c, const float *q, int64_t ld, int64_t rows, int64_t Hq, int64_t Hkv,
                 int64_t D, cuda_qk_fuse *f);

/* Dispatches a held-back projection (call before any other op or a flush). */
int cuda_gemm_flush(cuda_ctx *c);
/* Records that act16 now holds a bf16 copy of `src` (run functions). */
void cuda_act16_set(cuda_ctx *c, const void *src, const void *buf, int64_t rows, int64_t ld,
                    int64_t cols);

/* Grows a scratch buffer to at least `bytes` (the old one is freed later). */
int cuda_buf_reserve(cuda_ctx *c, cuda_buf *b, size_t bytes);
/* Frees buffers deferred by cuda_buf_reserve (synchronises the device). */
int cuda_free_deferred(cuda_ctx *c);

/* Upload through the pinned staging buffer (async on the stream). */
int cuda_upload(cuda_ctx *c, void *dst, const void *const *parts, const size_t *sizes, int n);

/* Lays out and uploads the block tables for page size P (attention ops). */
int cuda_batch_blocks(cuda_ctx *c, int64_t P);

/* Op families (cuda_memory.c, cuda_weights.c, cuda_dense.c, cuda_gemm.c,
 * cuda_mixers.c, cuda_compose.c) fill the op table. */
void cuda_memory_ops(cl_backend_ops *o);
void cuda_weight_ops(cl_backend_ops *o);
void cuda_dense_ops(cl_backend_ops *o);
void cuda_gemm_ops(cl_backend_ops *o);
void cuda_mixer_ops(cl_backend_ops *o);
void cuda_compose_ops(cl_backend_ops *o);
void cuda_state_ops(cl_backend_ops *o);
int cuda_batch_prepare(cl_backend *b, cl_batch *batch);
void cuda_batch_release(cl_backend *b, cl_batch *batch);

/* The kernels' dtype code of a cl_dtype. */
static inline int cuda_kdtype(cl_dtype t)
{
    return t == CL_BF16 ? KL_BF16 : t == CL_F16 ? KL_F16 : KL_F32;
}

#define CU_LAUNCH(call) CU_CHECK(call)

#endif
