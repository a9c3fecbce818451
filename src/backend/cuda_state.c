/* cuda_state.c - moving sequence state on the CUDA backend: KV rows of every
 * attention layer between pages and contiguous buffers, or between slots, in one
 * kernel launch (kernels/kv_move.cu); page-locked host staging and asynchronous
 * copies on the backend's stream, so host threads fill the next staging buffer while
 * the previous one is on the bus. */
#include <stdlib.h>
#include <string.h>

#include "backend/cuda_internal.h"

/* The K and V pool pointers of every layer, uploaded with the other metadata. */
static int upload_pools(cuda_ctx *c, const cl_kv_layer *kv, int n_layers, const void *extra,
                        size_t extra_bytes, void ***pools_dev, void **extra_dev)
{
    size_t pools_bytes = (size_t)(2 * n_layers) * sizeof(void *);
    size_t off = (pools_bytes + 15) & ~(size_t)15;
    CL_TRY(cuda_buf_reserve(c, &c->move_meta, off + extra_bytes));
    void **host = malloc(pools_bytes);
    if (!host)
        return cl_err(CL_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n_layers; i++) {
        host[2 * i] = kv[i].k;
        host[2 * i + 1] = kv[i].v;
    }
    const void *parts[2] = {host, extra};
    size_t sizes[2] = {pools_bytes, extra_bytes};
    int rc = cuda_upload(c, c->move_meta.p, parts, sizes, 1);
    if (rc == CL_OK && extra_bytes) {
        const void *p2[1] = {extra};
        rc = cuda_upload(c, (char *)c->move_meta.p + off, p2, &sizes[1], 1);
    }
    free(host);
    *pools_dev = (void **)c->move_meta.p;
    *extra_dev = (char *)c->move_meta.p + off;
    return rc;
}

static int64_t row_bytes(const cl_kv_layer *kv)
{
    return kv->n_kv_heads * kv->head_dim * (int64_t)cl_dtype_size(kv->kv_dtype);
}

static int cuda_kv_copy_runs(cl_backend *b, const cl_kv_layer *kv, int n_layers,
                             const cl_kv_run *runs, int64_t n_runs)
{
    cuda_ctx *c = cuda_of(b);
    if (n_layers <= 0 || n_runs <= 0)
        return CL_OK;
    if (n_runs > INT32_MAX)
        return cl_err(CL_ERR_ARG, "kv_copy_runs: too many runs");
    CL_TRY(cuda_flush(c));
    void **pools = NULL;
    void *runs_dev = NULL;
    CL_TRY(upload_pools(c, kv, n_layers, runs, (size_t)n_runs * sizeof *runs, &pools, &runs_dev));
    CU_CHECK(kl_kv_copy_runs(pools, 2 * n_layers, row_bytes(&kv[0]), (const kl_kv_run *)runs_dev,
                             (int)n_runs, c->stream));
    return CL_OK;
}

static int cuda_kv_move_rows(cl_backend *b, void *const *pools, int64_t row_bytes,
                             const cl_kv_row *rows, int64_t n, void *buf, int gather)
{
    cuda_ctx *c = cuda_of(b);
    if (n <= 0)
        return CL_OK;
    CL_TRY(cuda_flush(c));
    CU_CHECK(kl_kv_move_rows(pools, row_bytes, (const kl_kv_row *)rows, n, buf, gather,
                             c->stream));
    return CL_OK;
}

static void *cuda_host_alloc(cl_backend *b, size_t bytes)
{
    (void)b;
    void *p = NULL;
    if (cudaHostAlloc(&p, bytes ? bytes : 1, cudaHostAllocDefault) != cudaSuccess) {
        cudaGetLastError();
        return NULL;
    }
    return p;
}

static void cuda_host_free(cl_backend *b, void *p)
{
    (void)b;
    if (p)
        cudaFreeHost(p);
}

/* A ticket: an event recorded on the stream after the copy. The ring is reused: a
 * ticket whose event was recorded again names a later point of the same stream,
 * so waiting on it still waits for (at least) the copy it named. */
static int record_ticket(cuda_ctx *c, uint64_t *ticket)
{
    uint64_t t = ++c->xfer_last;
    cudaEvent_t *ev = &c->xfer_ev[t % CUDA_XFER_EVENTS];
    if (!*ev)
        CU_CHECK(cudaEventCreateWithFlags(ev, cudaEventDisableTiming));
    CU_CHECK(cudaEventRecord(*ev, c->stream));
    *ticket = t;
    return CL_OK;
}

static int cuda_upload_async(cl_backend *b, void *dst, const void *host, size_t bytes,
                             uint64_t *ticket)
{
    cuda_ctx *c = cuda_of(b);
    CL_TRY(cuda_flush(c));
    CU_CHECK(cudaMemcpyAsync(dst, host, bytes, cudaMemcpyHostToDevice, c->stream));
    return record_ticket(c, ticket);
}

static int cuda_download_async(cl_backend *b, void *host, const void *src, size_t bytes,
                               uint64_t *ticket)
{
    cuda_ctx *c = cuda_of(b);
    CL_TRY(cuda_flush(c));
    CU_CHECK(cudaMemcpyAsync(host, src, bytes, cudaMemcpyDeviceToHost, c->stream));
    return record_ticket(c, ticket);
}

static int cuda_transfer_wait(cl_backend *b, uint64_t ticket)
{
    cuda_ctx *c = cuda_of(b);
    if (ticket == 0 || ticket > c->xfer_last)
        return CL_OK;
    CU_CHECK(cudaEventSynchronize(c->xfer_ev[ticket % CUDA_XFER_EVENTS]));
    return CL_OK;
}

void cuda_state_ops(cl_backend_ops *o)
{
    o->kv_copy_runs = cuda_kv_copy_runs;
    o->kv_move_rows = cuda_kv_move_rows;
    o->host_alloc = cuda_host_alloc;
    o->host_free = cuda_host_free;
    o->upload_async = cuda_upload_async;
    o->download_async = cuda_download_async;
    o->transfer_wait = cuda_transfer_wait;
}
