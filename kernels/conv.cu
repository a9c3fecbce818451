/* conv.cu - causal depthwise conv + SiLU over C channels with its rolling state
 * (spec MODEL.md §3.4): the state holds the pre-activation inputs of the last
 * W-1 tokens, oldest first. Decode batches: one thread per (sequence, channel)
 * does output and state shift in one pass. Prefill: outputs first (every row in
 * parallel, reading the old state), then the state update. */
#include "common.cuh"

#define KL_MAX_CONV 16

__global__ void conv_decode_kernel(float *out, const float *x, int64_t ldx, const float *w,
                                   const float *bias, float *state, int64_t C, int64_t W,
                                   kl_batch b)
{
    kl_pdl_wait();
    kl_pdl_trigger();
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (int64_t)b.n_seq * C)
        return;
    int64_t q = i / C, c = i - q * C;
    const kl_seq sq = b.seq[q];
    int64_t Wm1 = W - 1;
    float *st = state + (int64_t)sq.slot * Wm1 * C + c;
    float xv = x[sq.tok_start * ldx + c];
    float acc = bias ? bias[c] : 0.0f;
    for (int64_t j = 0; j < Wm1; j++)
        acc += w[c * W + j] * st[j * C];
    acc += w[c * W + Wm1] * xv;
    out[sq.tok_start * C + c] = kl_silu(acc);
    for (int64_t j = 0; j + 1 < Wm1; j++)
        st[j * C] = st[(j + 1) * C];
    if (Wm1 > 0)
        st[(Wm1 - 1) * C] = xv;
}

__global__ void conv_rows_kernel(float *out, const float *x, int64_t ldx, const float *w,
                                 const float *bias, const float *state, int64_t C, int64_t W,
                                 kl_batch b)
{
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= b.n_tok * C)
        return;
    int64_t row = i / C, c = i - row * C;
    const kl_seq sq = b.seq[b.row_seq[row]];
    int64_t t = row - sq.tok_start, Wm1 = W - 1;
    const float *st = state + (int64_t)sq.slot * Wm1 * C;
    float acc = bias ? bias[c] : 0.0f;
    for (int64_t j = 0; j < W; j++) {
        int64_t src = t - Wm1 + j; /* < 0: from the state */
        float xv = src >= 0 ? x[(sq.tok_start + src) * ldx + c] : st[(Wm1 + src) * C + c];
        acc += w[c * W + j] * xv;
    }
    out[row * C + c] = kl_silu(acc);
}

/* The same, 4 channels per thread and one row per block (C % 4 == 0, 16-byte
 * aligned rows): the row's sequence is looked up once per block instead of per
 * element, x and the state come as float4, and the 4 x W taps as 16-byte loads.
 * The scalar kernel ran at ~1/8 of the bandwidth (54 ms per 32K-token M2
 * prefill). Per channel the same sum in the same order as conv_rows_kernel. */
template <int W>
__global__ void conv_rows4_kernel(float *out, const float *x, int64_t ldx, const float *w,
                                  const float *bias, const float *state, int64_t C, kl_batch b)
{
    const int64_t row = blockIdx.x;
    const int64_t c = 4 * ((int64_t)blockIdx.y * blockDim.x + threadIdx.x);
    if (c >= C)
        return;
    const kl_seq sq = b.seq[b.row_seq[row]];
    const int64_t t = row - sq.tok_start;
    const float *st = state + (int64_t)sq.slot * (W - 1) * C;
    float4 acc = bias ? *reinterpret_cast<const float4 *>(bias + c)
                      : make_float4(0.f, 0.f, 0.f, 0.f);
    float wt[4][W];
#pragma unroll
    for (int k = 0; k < 4; k++)
#pragma unroll
        for (int j = 0; j < W; j++)
            wt[k][j] = w[(c + k) * W + j];
#pragma unroll
    for (int j = 0; j < W; j++) {
        const int64_t src = t - (W - 1) + j; /* < 0: from the state */
        const float *xp = src >= 0 ? x + (sq.tok_start + src) * ldx + c
                                   : st + ((W - 1) + src) * C + c;
        const float4 xv = *reinterpret_cast<const float4 *>(xp);
        acc.x += wt[0][j] * xv.x;
        acc.y += wt[1][j] * xv.y;
        acc.z += wt[2][j] * xv.z;
        acc.w += wt[3][j] * xv.w;
    }
    *reinterpret_cast<float4 *>(out + row * C + c) =
        make_float4(kl_silu(acc.x), kl_silu(acc.y), kl_silu(acc.z), kl_silu(acc.w));
}

__global__ void conv_state_kernel(const float *x, int64_t ldx, float *state, int64_t C,
                                  int64_t W, kl_batch b)
{
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (int64_t)b.n_seq * C)
        return;
    int64_t q = i / C, c = i - q * C;
    const kl_seq sq = b.seq[q];
    int64_t Wm1 = W - 1, n = sq.n_tok;
    float *st = state + (int64_t)sq.slot * Wm1 * C;
    float tail[KL_MAX_CONV];
    for (int64_t j = 0; j < Wm1; j++) {
        int64_t src = n - Wm1 + j;
        tail[j] = src >= 0 ? x[(sq.tok_start + src) * ldx + c] : st[(Wm1 + src) * C + c];
    }
    for (int64_t j = 0; j < Wm1; j++)
        st[j * C + c] = tail[j];
}

extern "C" cudaError_t kl_conv1d(float *out, const float *x, int64_t ldx, const float *w,
                                 const float *bias, const kl_ssm *s, const kl_batch *b,
                                 cudaStream_t stream)
{
    int64_t C = s->conv_channels, W = s->conv_width;
    if (W > KL_MAX_CONV || W < 1)
        return cudaErrorInvalidValue;
    if (b->decode) {
        (void)kl_launch(conv_decode_kernel, dim3(kl_blocks((int64_t)b->n_seq * C, 256)), dim3(256),
                        0, stream, out, x, ldx, w, bias, s->conv, C, W, *b);
        return cudaGetLastError();
    }
    const uintptr_t ptrs = (uintptr_t)out | (uintptr_t)x | (uintptr_t)s->conv | (uintptr_t)bias;
    const bool vec = C % 4 == 0 && ldx % 4 == 0 && ptrs % 16 == 0;
    dim3 g4((unsigned)b->n_tok, kl_blocks(C / 4, 128));
    if (vec && W == 4)
        conv_rows4_kernel<4><<<g4, 128, 0, stream>>>(out, x, ldx, w, bias, s->conv, C, *b);
    else if (vec && W == 2)
        conv_rows4_kernel<2><<<g4, 128, 0, stream>>>(out, x, ldx, w, bias, s->conv, C, *b);
    else
        conv_rows_kernel<<<kl_blocks(b->n_tok * C, 256), 256, 0, stream>>>(out, x, ldx, w, bias,
                                                                           s->conv, C, W, *b);
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess)
        return e;
    conv_state_kernel<<<kl_blocks((int64_t)b->n_seq * C, 256), 256, 0, stream>>>(x, ldx, s->conv,
                                                                                C, W, *b);
    return cudaGetLastError();
}
