/* rope.cu - rotate-half RoPE (spec MODEL.md §3.7). inv_freq and the phase are
 * computed as the CPU backend does (inv_freq in double then rounded to fp32,
 * phase = fp32 position * inv_freq in fp32, cos/sin of that phase in double),
 * so fp32 models agree to the last bits. One thread per (row, frequency), all
 * heads of the row. */
#include "common.cuh"

__global__ void rope_kernel(float *x, int64_t ld, const int64_t *positions, int64_t rows,
                            int64_t heads, int64_t dim, double theta)
{
    int64_t half = dim / 2;
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= rows * half)
        return;
    int64_t t = i / half, j = i - t * half;
    float inv = (float)(1.0 / pow(theta, (double)(2 * j) / (double)dim));
    float ph = (float)positions[t] * inv;
    float cs = (float)cos((double)ph), sn = (float)sin((double)ph);
    float *row = x + t * ld;
    for (int64_t h = 0; h < heads; h++) {
        float *v = row + h * dim;
        float a = v[j], c = v[j + half];
        v[j] = a * cs - c * sn;
        v[j + half] = c * cs + a * sn;
    }
}

extern "C" cudaError_t kl_rope(float *x, int64_t ld, const int64_t *positions, int64_t rows,
                               int64_t heads, int64_t dim, double theta, cudaStream_t stream)
{
    int64_t n = rows * (dim / 2);
    if (n <= 0)
        return cudaSuccess;
    rope_kernel<<<kl_blocks(n, 128), 128, 0, stream>>>(x, ld, positions, rows, heads, dim, theta);
    return cudaGetLastError();
}
