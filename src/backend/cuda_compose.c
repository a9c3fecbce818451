/* cuda_compose.c - state composition on the device: GDN fuse (the matrix
 * PICASO of compose/picaso.c, same recurrence and weights) with every head of a
 * layer in one strided-batched cuBLAS call per step.
 *
 * Why: on host copies the matrix form costs O(n^2) D x D products per head (16
 * documents of a 92 M model: 0.4-1.3 s on a 16-core host, more than
 * re-prefilling them); here each of the ~3n^2/2 steps of a layer is one fp32
 * batched GEMM over the layer's heads (pedantic math, no TF32: the CPU backend
 * is the reference). */
#include <stdlib.h>
#include <string.h>

#include "backend/cuda_internal.h"

/* C[h] += A[h] B[h] for the H heads (row-major D x D times D x V), A and B with
 * head strides sa, sb; C with stride sc. Column-major cuBLAS: C^T = B^T A^T. */
static int batched_mm(cuda_ctx *c, const float *A, int64_t sa, const float *B, int64_t sb,
                      float *C, int64_t sc, int64_t D, int64_t V, int64_t H)
{
    const float one = 1.0f;
    CUBLAS_CHECK(cuda_blas()->gemm_strided_batched_ex(
        c->blas, CUBLAS_OP_N, CUBLAS_OP_N, (int)V, (int)D, (int)D, &one, B, CUDA_R_32F, (int)V,
        sb, A, CUDA_R_32F, (int)D, sa, &one, C, CUDA_R_32F, (int)V, sc, (int)H,
        CUBLAS_COMPUTE_32F_PEDANTIC, CUBLAS_GEMM_DEFAULT));
    return CL_OK;
}

static int cuda_gdn_fuse(cl_backend *b, const cl_ssm_layer *s, const int32_t *slots, int n,
                         const float *weight, int32_t out_slot)
{
    cuda_ctx *c = cuda_of(b);
    if (n < 1)
        return cl_err(CL_ERR_ARG, "compose: no documents to fuse");
    if (!s->trans)
        return cl_err(CL_ERR_ARG, "compose: GDN fuse needs the layers' transition products");
    CL_TRY(cuda_flush(c));
    const int64_t H = s->n_heads, D = s->head_dim, dd = D * D, hdd = H * dd;
    /* workspace: pre[k] and X[k], k < n, each [H][D][D] */
    CL_TRY(cuda_buf_reserve(c, &c->ssm, (size_t)(2 * n) * (size_t)hdd * sizeof(float)));
    float *pre = (float *)c->ssm.p, *X = pre + (size_t)n * hdd;
    CU_CHECK(cudaMemsetAsync(pre, 0, (size_t)(2 * n) * (size_t)hdd * sizeof(float), c->stream));
    /* pre[0] = I for every head: each head's diagonal by one strided 2-D copy */
    float *ones = malloc((size_t)D * sizeof *ones);
    if (!ones)
        return cl_err(CL_ERR_NOMEM, "out of memory");
    for (int64_t d = 0; d < D; d++)
        ones[d] = 1.0f;
    cudaError_t e = cudaSuccess;
    for (int64_t h = 0; h < H && e == cudaSuccess; h++)
        e = cudaMemcpy2DAsync(pre + (size_t)h * dd, (size_t)(D + 1) * sizeof(float), ones,
                              sizeof(float), sizeof(float), (size_t)D, cudaMemcpyHostToDevice,
                              c->stream);
    if (e == cudaSuccess)
        e = cudaStreamSynchronize(c->stream); /* ones is pageable and freed next */
    free(ones);
    CU_CHECK(e);
    /* The recurrence of cl_picaso_matrix_combine: adding document m,
     *   X[k] += P_m X[k-1] (k = top..1),  X[k] += pre[k] S_m (k = 0..top),
     *   pre[k] += P_m pre[k-1] (k = ptop..1). */
    for (int m = 0; m < n; m++) {
        const float *P = s->trans + (size_t)slots[m] * hdd, *S = s->state + (size_t)slots[m] * hdd;
        const int top = m < n - 1 ? m : n - 1;
        for (int k = top; k >= 1; k--)
            CL_TRY(batched_mm(c, P, dd, X + (size_t)(k - 1) * hdd, dd, X + (size_t)k * hdd, dd,
                              D, D, H));
        for (int k = 0; k <= top; k++)
            CL_TRY(batched_mm(c, pre + (size_t)k * hdd, dd, S, dd, X + (size_t)k * hdd, dd, D,
                              D, H));
        if (m == n - 1)
            break;
        const int ptop = m + 1 < n - 1 ? m + 1 : n - 1;
        for (int k = ptop; k >= 1; k--)
            CL_TRY(batched_mm(c, P, dd, pre + (size_t)(k - 1) * hdd, dd, pre + (size_t)k * hdd,
                              dd, D, D, H));
    }
    /* out = sum_k weight[k] X[k] */
    float *out = s->state + (size_t)out_slot * hdd;
    CU_CHECK(cudaMemsetAsync(out, 0, (size_t)hdd * sizeof(float), c->stream));
    for (int k = 0; k < n; k++)
        CUBLAS_CHECK(cuda_blas()->saxpy(c->blas, (int)hdd, &weight[k], X + (size_t)k * hdd, 1, out, 1));
    CU_CHECK(cudaStreamSynchronize(c->stream));
    return CL_OK;
}

/* GDN CASO: state = Horner over the documents (S <- P_i S + S_i), trans = P_n ... P_1. */
static int cuda_gdn_caso(cl_backend *b, const cl_ssm_layer *s, const int32_t *slots, int n,
                         int32_t out_slot)
{
    cuda_ctx *c = cuda_of(b);
    if (n < 1)
        return cl_err(CL_ERR_ARG, "compose: no documents to combine");
    if (!s->trans)
        return cl_err(CL_ERR_ARG, "compose: GDN caso needs the layers' transition products");
    CL_TRY(cuda_flush(c));
    const int64_t H = s->n_heads, D = s->head_dim, dd = D * D, hdd = H * dd;
    const size_t bytes = (size_t)hdd * sizeof(float);
    CL_TRY(cuda_buf_reserve(c, &c->ssm, 2 * bytes));
    float *acc = (float *)c->ssm.p, *tmp = acc + hdd;
    float *out = s->state + (size_t)out_slot * hdd, *tout = s->trans + (size_t)out_slot * hdd;
    CU_CHECK(cudaMemcpyAsync(acc, s->state + (size_t)slots[0] * hdd, bytes,
                             cudaMemcpyDeviceToDevice, c->stream));
    for (int i = 1; i < n; i++) {
        const float *P = s->trans + (size_t)slots[i] * hdd;
        CU_CHECK(cudaMemcpyAsync(tmp, s->state + (size_t)slots[i] * hdd, bytes,
                                 cudaMemcpyDeviceToDevice, c->stream));
        CL_TRY(batched_mm(c, P, dd, acc, dd, tmp, dd, D, D, H));
        float *t = acc;
        acc = tmp;
        tmp = t;
    }
    CU_CHECK(cudaMemcpyAsync(out, acc, bytes, cudaMemcpyDeviceToDevice, c->stream));
    /* trans: tmp = P_1, then tmp <- P_i tmp */
    CU_CHECK(cudaMemcpyAsync(acc, s->trans + (size_t)slots[0] * hdd, bytes,
                             cudaMemcpyDeviceToDevice, c->stream));
    for (int i = 1; i < n; i++) {
        CU_CHECK(cudaMemsetAsync(tmp, 0, bytes, c->stream));
        CL_TRY(batched_mm(c, s->trans + (size_t)slots[i] * hdd, dd, acc, dd, tmp, dd, D, D, H));
        float *t = acc;
        acc = tmp;
        tmp = t;
    }
    CU_CHECK(cudaMemcpyAsync(tout, acc, bytes, cudaMemcpyDeviceToDevice, c->stream));
    CU_CHECK(cudaStreamSynchronize(c->stream));
    return CL_OK;
}

static int cuda_ssm_lincomb(cl_backend *b, float *pool, size_t per_slot, int64_t blocks,
                            const int32_t *slots, int n, const float *coef, int32_t out_slot)
{
    cuda_ctx *c = cuda_of(b);
    if (n < 1)
        return CL_OK;
    CL_TRY(cuda_flush(c));
    size_t sb = (size_t)n * sizeof *slots, cb = (size_t)n * (size_t)blocks * sizeof *coef;
    size_t coff = (sb + 15) & ~(size_t)15;
    CL_TRY(cuda_buf_reserve(c, &c->move_meta, coff + cb));
    const void *p1[1] = {slots}, *p2[1] = {coef};
    CL_TRY(cuda_upload(c, c->move_meta.p, p1, &sb, 1));
    CL_TRY(cuda_upload(c, (char *)c->move_meta.p + coff, p2, &cb, 1));
    CU_CHECK(kl_ssm_lincomb(pool, (int64_t)per_slot, blocks, (const int32_t *)c->move_meta.p, n,
                            (const float *)((char *)c->move_meta.p + coff), out_slot,
                            c->stream));
    return CL_OK;
}

void cuda_compose_ops(cl_backend_ops *o)
{
    o->gdn_fuse = cuda_gdn_fuse;
    o->gdn_caso = cuda_gdn_caso;
    o->ssm_lincomb = cuda_ssm_lincomb;
}
