/* kv_move.cu - moves KV rows between paged pools and contiguous buffers, for every
 * attention layer in one launch: restoring a stored state (scatter from a staging
 * buffer into a sequence's pages), storing one (gather), and composing states (copy
 * runs of slots between sequences). The host never walks pages one by one. */
#include "common.cuh"

/* Rows are copied as 16-byte vectors (row_bytes % 16 == 0; the host checks). */
__global__ void kv_copy_runs_kernel(void *const *pools, int64_t row_vec, const kl_kv_run *runs,
                                    int n_runs)
{
    uint4 *base = (uint4 *)pools[blockIdx.y];
    for (int r = blockIdx.x; r < n_runs; r += gridDim.x) {
        kl_kv_run run = runs[r];
        const uint4 *src = base + run.src * row_vec;
        uint4 *dst = base + run.dst * row_vec;
        int64_t n = run.n * row_vec;
        for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
            dst[i] = src[i];
    }
}

/* gather = 0: pool rows[i].pool slot rows[i].slot <- buf row i; gather = 1: reverse. */
__global__ void kv_move_rows_kernel(void *const *pools, int64_t row_vec, const kl_kv_row *rows,
                                    int64_t n, uint4 *buf, int gather)
{
    for (int64_t i = blockIdx.x; i < n; i += gridDim.x) {
        kl_kv_row r = rows[i];
        uint4 *slot_row = (uint4 *)pools[r.pool] + (int64_t)r.slot * row_vec;
        uint4 *buf_row = buf + i * row_vec;
        for (int64_t v = threadIdx.x; v < row_vec; v += blockDim.x) {
            if (gather)
                buf_row[v] = slot_row[v];
            else
                slot_row[v] = buf_row[v];
        }
    }
}

extern "C" cudaError_t kl_kv_copy_runs(void *const *pools, int n_pools, int64_t row_bytes,
                                       const kl_kv_run *runs, int n_runs, cudaStream_t stream)
{
    if (n_runs <= 0 || n_pools <= 0)
        return cudaSuccess;
    if (row_bytes % 16)
        return cudaErrorInvalidValue;
    unsigned gx = (unsigned)(n_runs < 4096 ? n_runs : 4096);
    kv_copy_runs_kernel<<<dim3(gx, (unsigned)n_pools), 256, 0, stream>>>(
        pools, row_bytes / 16, runs, n_runs);
    return cudaGetLastError();
}

extern "C" cudaError_t kl_kv_move_rows(void *const *pools, int64_t row_bytes,
                                       const kl_kv_row *rows, int64_t n, void *buf, int gather,
                                       cudaStream_t stream)
{
    if (n <= 0)
        return cudaSuccess;
    if (row_bytes % 16 || (uintptr_t)buf % 16)
        return cudaErrorInvalidValue;
    int64_t row_vec = row_bytes / 16;
    unsigned threads = row_vec >= 256 ? 256 : row_vec >= 128 ? 128 : 64;
    unsigned blocks = (unsigned)(n < 65536 ? n : 65536);
    kv_move_rows_kernel<<<blocks, threads, 0, stream>>>(pools, row_vec, rows, n, (uint4 *)buf,
                                                        gather);
    return cudaGetLastError();
}

/* ---- composition: linear combinations of SSM slots ---- */

__global__ void ssm_lincomb_kernel(float *pool, int64_t per_slot, int64_t bs, const int32_t *slots,
                                   int n, const float *coef, int64_t blocks, int32_t out_slot)
{
    float *out = pool + (int64_t)out_slot * per_slot;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < per_slot;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t k = i / bs;
        float acc = 0.0f;
        for (int d = 0; d < n; d++)
            acc += coef[(int64_t)d * blocks + k] * pool[(int64_t)slots[d] * per_slot + i];
        out[i] = acc;
    }
}

extern "C" cudaError_t kl_ssm_lincomb(float *pool, int64_t per_slot, int64_t blocks,
                                      const int32_t *slots, int n, const float *coef,
                                      int32_t out_slot, cudaStream_t stream)
{
    if (per_slot <= 0 || n <= 0)
        return cudaSuccess;
    if (blocks <= 0 || per_slot % blocks)
        return cudaErrorInvalidValue;
    int64_t grid = (per_slot + 255) / 256;
    ssm_lincomb_kernel<<<(unsigned)(grid < 65536 ? grid : 65536), 256, 0, stream>>>(
        pool, per_slot, per_slot / blocks, slots, n, coef, blocks, out_slot);
    return cudaGetLastError();
}
