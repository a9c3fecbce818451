/* cuda_memory.c - device memory of the CUDA backend: the op table's alloc / realloc /
 * free / copies, deferred frees, growable scratch buffers, and batched uploads through
 * the pinned staging buffer. */
#include <stdlib.h>
#include <string.h>

#include "backend/cuda_internal.h"


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

static int cuda_mem_info(cl_backend *b, size_t *free_bytes, size_t *total_bytes)
{
    cuda_ctx *c = cuda_of(b);
    CL_TRY(cuda_flush(c));
    CU_CHECK(cudaMemGetInfo(free_bytes, total_bytes));
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

void cuda_memory_ops(cl_backend_ops *o)
{
    o->alloc = cuda_alloc;
    o->realloc = cuda_realloc;
    o->free = cuda_free;
    o->to_host = cuda_to_host;
    o->from_host = cuda_from_host;
    o->copy = cuda_copy;
    o->zero = cuda_zero;
    o->sync = cuda_sync;
    o->mem_info = cuda_mem_info;
}
