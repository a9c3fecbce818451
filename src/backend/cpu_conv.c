/* CPU short causal depthwise conv + SiLU (spec MODEL.md §3.4). The conv state
 * holds the pre-activation inputs of the last W-1 tokens, oldest first. */
#include <stdlib.h>
#include <string.h>

#include "backend/cpu_internal.h"
#include "common/status.h"

int cpu_conv1d(cl_backend *b, float *out, const float *x, int64_t ldx, const cl_bweight *w,
               const cl_bweight *bias, const cl_ssm_layer *s, const cl_batch *batch)
{
    (void)b;
    const int64_t C = s->conv_channels, W = s->conv_width, Wm1 = W - 1;
    const float *wt = cpu_w(w), *bs = bias ? cpu_w(bias) : NULL;
    for (int q = 0; q < batch->n_seq; q++) {
        const cl_batch_seq *sq = &batch->seq[q];
        float *state = s->conv + (int64_t)sq->slot * Wm1 * C;
        int64_t n = sq->n_tok;
        const float *xs = x + sq->tok_start * ldx;
        float *os = out + sq->tok_start * C;
#pragma omp parallel for schedule(static) if (n * C > 65536)
        for (int64_t c = 0; c < C; c++) {
            for (int64_t t = 0; t < n; t++) {
                float acc = bs ? bs[c] : 0.0f;
                for (int64_t j = 0; j < W; j++) {
                    int64_t src = t - Wm1 + j; /* < 0: from the state */
                    float xv = src >= 0 ? xs[src * ldx + c] : state[(Wm1 + src) * C + c];
                    acc += wt[c * W + j] * xv;
                }
                os[t * C + c] = cpu_silu(acc);
            }
            /* new state: last W-1 inputs of (old state ++ new rows) */
            float tail[16];
            for (int64_t j = 0; j < Wm1; j++) {
                int64_t src = n - Wm1 + j;
                tail[j] = src >= 0 ? xs[src * ldx + c] : state[(Wm1 + src) * C + c];
            }
            for (int64_t j = 0; j < Wm1; j++)
                state[j * C + c] = tail[j];
        }
    }
    return CL_OK;
}
