/* test_attention - the tensor-core prefill attention kernels against the plain one.
 *
 * kl_attn_prefill (one warp per row and head, fp32 scores and softmax) is the
 * reference; kl_attn_prefill_mma with kl_fa_old = 3 (fa2, mma.sync) and
 * kl_attn_prefill_wgmma (sm_90a builds) round Q and P to bf16 as the tensor
 * cores need, so they are held to 2e-2 of max|ref| against it, and to 2e-3 of
 * each other (same roundings, different summation order). Cases cover one and
 * several sequences per batch, partial query tiles, calls that continue a
 * sequence (kv_start > 0), page sizes that are and are not powers of two, block
 * tables out of order, GQA 1 and 4, a sliding window and a hidden key range (sw
 * composition). The output is poisoned with NaN first: every element must be
 * written. With --bench it then times fa2 and wgmma on the 8B shape (32 query
 * heads, 8 KV heads, pages of 64) for one forward call of 8192 rows at offsets
 * 0..24576 (the four calls of a 32K prefill): ms and TFLOP/s (4 D FLOPs per
 * visible query-key pair and head). Skips (77) without a GPU or in builds
 * without CUDA. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef COLLAGE_HAVE_CUDA
int main(void)
{
    printf("test_attention: CUDA not built, skipped\n");
    return 77;
}
#else
#include <cuda_runtime_api.h>
#include <math.h>

#include "cuda_check.h"
#include "kernels.h"

#define D 128
#define MAX_SEQ 3

typedef struct {
    const char *name;
    int n_seq;
    int64_t n_tok[MAX_SEQ], kv_start[MAX_SEQ], hide_lo[MAX_SEQ], hide_hi[MAX_SEQ];
    int64_t Hq, Hkv, P, window;
} attn_case;

static cudaStream_t st;
static int n_fail;

static double max_err(const float *a, const float *b, size_t n, double *bmax)
{
    double e = 0, m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= e))
            e = isnan(d) ? INFINITY : d;
        m = fmax(m, fabs(b[i]));
    }
    *bmax = m;
    return e;
}

static void check(const char *what, const char *name, double err, double tol)
{
    int ok = err <= tol;
    n_fail += !ok;
    printf("  %-34s %-10s rel err %.2e (tol %.0e) %s\n", name, what, err, tol, ok ? "ok" : "FAIL");
}

static void run_case(const attn_case *c, uint64_t seed)
{
    kl_seq seqs[MAX_SEQ];
    int64_t n_tok = 0, n_pages = 0, n_tiles = 0;
    for (int i = 0; i < c->n_seq; i++) {
        n_pages += (c->kv_start[i] + c->n_tok[i] + c->P - 1) / c->P;
        n_tiles += (c->n_tok[i] + KL_ATTN_TILE - 1) / KL_ATTN_TILE;
        n_tok += c->n_tok[i];
    }
    int32_t *blocks = malloc((size_t)n_pages * sizeof *blocks);
    int32_t *row_seq = malloc((size_t)n_tok * sizeof *row_seq);
    int32_t *tiles = malloc((size_t)n_tiles * 2 * sizeof *tiles);
    int64_t tok = 0, nb = 0, nt = 0;
    for (int i = 0; i < c->n_seq; i++) {
        int64_t np = (c->kv_start[i] + c->n_tok[i] + c->P - 1) / c->P;
        memset(&seqs[i], 0, sizeof seqs[i]);
        seqs[i].tok_start = tok;
        seqs[i].n_tok = c->n_tok[i];
        seqs[i].kv_start = c->kv_start[i];
        seqs[i].hide_lo = c->hide_lo[i];
        seqs[i].hide_hi = c->hide_hi[i];
        seqs[i].blocks_off = nb;
        for (int64_t j = 0; j < np; j++) /* pages in reverse order: the table is used */
            blocks[nb + j] = (int32_t)(n_pages - 1 - (nb + j));
        nb += np;
        for (int64_t r = 0; r < c->n_tok[i]; r++)
            row_seq[tok + r] = i;
        for (int64_t r = 0; r < c->n_tok[i]; r += KL_ATTN_TILE) {
            tiles[2 * nt] = i;
            tiles[2 * nt + 1] = (int32_t)r;
            nt++;
        }
        tok += c->n_tok[i];
    }

    const int64_t ldq = c->Hq * D, kv_n = n_pages * c->P * c->Hkv * D, out_n = n_tok * c->Hq * D;
    void *k, *v, *d_seq, *d_blocks, *d_rows, *d_tiles;
    float *q, *ref, *out;
    CK(cudaMalloc(&k, (size_t)kv_n * 2));
    CK(cudaMalloc(&v, (size_t)kv_n * 2));
    CK(cudaMalloc((void **)&q, (size_t)(n_tok * ldq) * 4));
    CK(cudaMalloc((void **)&ref, (size_t)out_n * 4));
    CK(cudaMalloc((void **)&out, (size_t)out_n * 4));
    CK(cudaMalloc(&d_seq, sizeof seqs));
    CK(cudaMalloc(&d_blocks, (size_t)n_pages * 4));
    CK(cudaMalloc(&d_rows, (size_t)n_tok * 4));
    CK(cudaMalloc(&d_tiles, (size_t)n_tiles * 8));
    CK(cudaMemcpy(d_seq, seqs, sizeof seqs, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(d_blocks, blocks, (size_t)n_pages * 4, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(d_rows, row_seq, (size_t)n_tok * 4, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(d_tiles, tiles, (size_t)n_tiles * 8, cudaMemcpyHostToDevice));
    /* K, V in [-1, 1]; Q in [-8, 8] so that the softmax is peaked, not uniform */
    CK(kl_fill_random(k, KL_BF16, kv_n, seed, 0, KL_RNG_UNIFORM, 2.0f, -1.0f, st));
    CK(kl_fill_random(v, KL_BF16, kv_n, seed + 1, 0, KL_RNG_UNIFORM, 2.0f, -1.0f, st));
    CK(kl_fill_random(q, KL_F32, n_tok * ldq, seed + 2, 0, KL_RNG_UNIFORM, 16.0f, -8.0f, st));

    kl_batch b;
    memset(&b, 0, sizeof b);
    b.n_seq = c->n_seq;
    b.n_tok = n_tok;
    b.row_seq = d_rows;
    b.seq = d_seq;
    b.blocks = d_blocks;
    b.tiles = d_tiles;
    b.n_tiles = (int)n_tiles;
    kl_kv kv = {k, v, c->P, c->Hkv, D, KL_BF16};
    kl_mix mix;
    memset(&mix, 0, sizeof mix);
    mix.n_heads = c->Hq;
    mix.n_kv_heads = c->Hkv;
    mix.head_dim = D;
    mix.scale = 1.0f / sqrtf((float)D);
    mix.window = c->window;
    mix.fast = 1;

    float *h_ref = malloc((size_t)out_n * 4), *h_fa2 = malloc((size_t)out_n * 4);
    float *h_wg = malloc((size_t)out_n * 4);
    CK(kl_attn_prefill(ref, q, ldq, &kv, &b, &mix, st));
    CK(cudaMemcpyAsync(h_ref, ref, (size_t)out_n * 4, cudaMemcpyDeviceToHost, st));

    CK(cudaMemsetAsync(out, 0xff, (size_t)out_n * 4, st));
    kl_fa_old = 3;
    CK(kl_attn_prefill_mma(out, q, ldq, &kv, &b, &mix, st));
    kl_fa_old = 0;
    CK(cudaMemcpyAsync(h_fa2, out, (size_t)out_n * 4, cudaMemcpyDeviceToHost, st));
    CK(cudaStreamSynchronize(st));
    double m, e = max_err(h_fa2, h_ref, (size_t)out_n, &m);
    check("fa2", c->name, e / m, 2e-2);

    static const char *vname[4] = {"wg128p", "wg128s", "wg64p", "wg64s"};
    for (int var = 0; var < 4; var++) {
        kl_fa3_variant = var;
        CK(cudaMemsetAsync(out, 0xff, (size_t)out_n * 4, st));
        cudaError_t we = kl_attn_prefill_wgmma(out, q, ldq, &kv, &b, &mix, st);
        kl_fa3_variant = 0;
        if (we == cudaErrorNotSupported) {
            cudaGetLastError();
            printf("  %-34s wgmma  not built (sm_90a only)\n", c->name);
            break;
        }
        CK(we);
        CK(cudaMemcpyAsync(h_wg, out, (size_t)out_n * 4, cudaMemcpyDeviceToHost, st));
        CK(cudaStreamSynchronize(st));
        char what[32];
        e = max_err(h_wg, h_ref, (size_t)out_n, &m);
        check(vname[var], c->name, e / m, 2e-2);
        e = max_err(h_wg, h_fa2, (size_t)out_n, &m);
        snprintf(what, sizeof what, "%s/fa2", vname[var]);
        check(what, c->name, e / m, 2e-3);
    }
    free(h_ref);
    free(h_fa2);
    free(h_wg);
    free(blocks);
    free(row_seq);
    free(tiles);
    cudaFree(k);
    cudaFree(v);
    cudaFree(q);
    cudaFree(ref);
    cudaFree(out);
    cudaFree(d_seq);
    cudaFree(d_blocks);
    cudaFree(d_rows);
    cudaFree(d_tiles);
}

/* ms per call of kernel `which` (-1 fa2, else the wgmma variant), median of 5
 * after a warm-up */
static double time_call(int which, float *out, const float *q, const kl_kv *kv, const kl_batch *b,
                        const kl_mix *mix)
{
    cudaEvent_t e0, e1;
    CK(cudaEventCreate(&e0));
    CK(cudaEventCreate(&e1));
    double t[5];
    for (int r = -1; r < 5; r++) {
        CK(cudaEventRecord(e0, st));
        kl_fa_old = which < 0 ? 3 : 0;
        kl_fa3_variant = which < 0 ? 0 : which;
        cudaError_t e = which >= 0 ? kl_attn_prefill_wgmma(out, q, mix->n_heads * D, kv, b, mix, st)
                                   : kl_attn_prefill_mma(out, q, mix->n_heads * D, kv, b, mix, st);
        kl_fa_old = 0;
        kl_fa3_variant = 0;
        if (e == cudaErrorNotSupported) {
            cudaGetLastError();
            return NAN;
        }
        CK(e);
        CK(cudaEventRecord(e1, st));
        CK(cudaEventSynchronize(e1));
        float ms;
        CK(cudaEventElapsedTime(&ms, e0, e1));
        if (r >= 0)
            t[r] = ms;
    }
    for (int i = 0; i < 5; i++) /* sort for the median */
        for (int j = i + 1; j < 5; j++)
            if (t[j] < t[i]) {
                double x = t[i];
                t[i] = t[j];
                t[j] = x;
            }
    cudaEventDestroy(e0);
    cudaEventDestroy(e1);
    return t[2];
}

static void bench(void)
{
    const int64_t rows = 8192, Hq = 32, Hkv = 8, P = 64, max_kv = 32768;
    const int64_t n_pages = max_kv / P, kv_n = n_pages * P * Hkv * D;
    void *k, *v, *d_seq, *d_blocks, *d_rows, *d_tiles;
    float *q, *out;
    CK(cudaMalloc(&k, (size_t)kv_n * 2));
    CK(cudaMalloc(&v, (size_t)kv_n * 2));
    CK(cudaMalloc((void **)&q, (size_t)(rows * Hq * D) * 4));
    CK(cudaMalloc((void **)&out, (size_t)(rows * Hq * D) * 4));
    CK(cudaMalloc(&d_seq, sizeof(kl_seq)));
    CK(cudaMalloc(&d_blocks, (size_t)n_pages * 4));
    CK(cudaMalloc(&d_rows, (size_t)rows * 4));
    CK(cudaMalloc(&d_tiles, (size_t)(rows / KL_ATTN_TILE) * 8));
    int32_t *blocks = malloc((size_t)n_pages * 4), *row_seq = calloc((size_t)rows, 4);
    int32_t *tiles = malloc((size_t)(rows / KL_ATTN_TILE) * 8);
    for (int64_t i = 0; i < n_pages; i++)
        blocks[i] = (int32_t)i;
    for (int64_t t = 0; t < rows / KL_ATTN_TILE; t++) {
        tiles[2 * t] = 0;
        tiles[2 * t + 1] = (int32_t)(t * KL_ATTN_TILE);
    }
    CK(cudaMemcpy(d_blocks, blocks, (size_t)n_pages * 4, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(d_rows, row_seq, (size_t)rows * 4, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(d_tiles, tiles, (size_t)(rows / KL_ATTN_TILE) * 8, cudaMemcpyHostToDevice));
    CK(kl_fill_random(k, KL_BF16, kv_n, 1, 0, KL_RNG_UNIFORM, 2.0f, -1.0f, st));
    CK(kl_fill_random(v, KL_BF16, kv_n, 2, 0, KL_RNG_UNIFORM, 2.0f, -1.0f, st));
    CK(kl_fill_random(q, KL_F32, rows * Hq * D, 3, 0, KL_RNG_UNIFORM, 2.0f, -1.0f, st));
    kl_kv kv = {k, v, P, Hkv, D, KL_BF16};
    kl_mix mix;
    memset(&mix, 0, sizeof mix);
    mix.n_heads = Hq;
    mix.n_kv_heads = Hkv;
    mix.head_dim = D;
    mix.scale = 1.0f / sqrtf((float)D);
    mix.fast = 1;
    printf("prefill attention, 8B shape (Hq 32, Hkv 8, D 128), 8192 rows per call\n");
    static const char *name[5] = {"fa2", "wg128p", "wg128s", "wg64p", "wg64s"};
    printf("TFLOP/s per kernel (ms in brackets); wg128p is the default\n%-10s %7s", "kv_start",
           "TFLOP");
    for (int v = 0; v < 5; v++)
        printf(" %16s", name[v]);
    printf("\n");
    double sum[5] = {0}, flop_all = 0;
    for (int64_t start = 0; start < max_kv; start += rows) {
        kl_seq sq;
        memset(&sq, 0, sizeof sq);
        sq.n_tok = rows;
        sq.kv_start = start;
        CK(cudaMemcpy(d_seq, &sq, sizeof sq, cudaMemcpyHostToDevice));
        kl_batch b;
        memset(&b, 0, sizeof b);
        b.n_seq = 1;
        b.n_tok = rows;
        b.row_seq = d_rows;
        b.seq = d_seq;
        b.blocks = d_blocks;
        b.tiles = d_tiles;
        b.n_tiles = (int)(rows / KL_ATTN_TILE);
        /* visible pairs: row i (slot start + i) sees start + i + 1 keys */
        double pairs = (double)rows * (double)start + (double)rows * (rows + 1) / 2.0;
        double flop = 4.0 * D * Hq * pairs;
        flop_all += flop;
        printf("%-10lld %7.2f", (long long)start, flop / 1e12);
        for (int v = 0; v < 5; v++) {
            double t = time_call(v - 1, out, q, &kv, &b, &mix);
            sum[v] += t;
            printf(" %7.1f (%6.2f)", flop / t / 1e9, t);
        }
        printf("\n");
    }
    printf("%-10s %7.2f", "32K total", flop_all / 1e12);
    for (int v = 0; v < 5; v++)
        printf(" %7.1f (%6.2f)", flop_all / sum[v] / 1e9, sum[v]);
    printf("\n");
    free(blocks);
    free(row_seq);
    free(tiles);
    cudaFree(k);
    cudaFree(v);
    cudaFree(q);
    cudaFree(out);
    cudaFree(d_seq);
    cudaFree(d_blocks);
    cudaFree(d_rows);
    cudaFree(d_tiles);
}

int main(int argc, char **argv)
{
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess || n <= 0) {
        printf("test_attention: no CUDA device, skipped\n");
        return 77;
    }
    CK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
    static const attn_case cases[] = {
        {"one sequence, 300 rows, GQA 4", 1, {300}, {0}, {0}, {0}, 32, 8, 64, 0},
        {"continuation 37 rows at 300, P 16", 1, {37}, {300}, {0}, {0}, 32, 8, 16, 0},
        {"continuation 200 rows at 1000", 1, {200}, {1000}, {0}, {0}, 32, 8, 256, 0},
        {"3 sequences, P 48, GQA 1", 3, {200, 129, 5}, {0, 70, 11}, {0}, {0}, 8, 8, 48, 0},
        {"window 100, 400 rows", 1, {400}, {0}, {0}, {0}, 16, 4, 64, 100},
        {"window 64 continuation", 2, {150, 40}, {90, 300}, {0}, {0}, 16, 4, 32, 64},
        {"hidden keys [50, 190), 260 rows", 1, {260}, {0}, {50}, {190}, 16, 4, 64, 0},
        {"one row", 1, {1}, {513}, {0}, {0}, 32, 8, 64, 0},
    };
    uint64_t seed = 101;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        run_case(&cases[i], seed += 3);
    printf("attention checks: %s (%d failed)\n", n_fail ? "FAIL" : "ok", n_fail);
    if (argc > 1 && !strcmp(argv[1], "--bench"))
        bench();
    cudaStreamDestroy(st);
    return n_fail ? 1 : 0;
}
#endif
