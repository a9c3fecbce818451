/* collage bench prefill - GPU prefill tokens/s of 8B-shaped models with random
 * bf16 weights made on the GPU, for prompts of 8K-128K tokens (one sequence,
 * fed in forward calls of --chunk tokens, logits of the last token only).
 *
 * Each figure is printed next to its limit measured in the same run: the
 * FLOPs the prompt needs over the bf16 GEMM rate of an 8192^3 cuBLAS product.
 * FLOPs counted: 2 x (matrix parameters of the layers) per token, lm_head for
 * the last token, causal attention 4 * D * Hq per visible (query, key) pair,
 * and the chunked SSM forms as implemented (per 64-token chunk and head; GKA
 * includes its num_iter Chebyshev iterations).
 *
 * --tp N splits the model over N GPUs (bench_tp.h: the weights from a host-memory
 * checkpoint through the engine's sharded loader); the FLOPs are those of all ranks
 * (replicated KV projections counted on each) and the limit is N x the GEMM rate of
 * device 0. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "bench.h"
#include "bench_models.h"
#include "bench_tp.h"
#include "ceilings.h"
#include "common/log.h"
#include "common/status.h"
#include "engine/seq.h"
#include "mkmodel/model_random.h"
#ifdef COLLAGE_HAVE_CUDA
#include "backend/cuda.h"
#endif

#ifndef COLLAGE_HAVE_CUDA
int bench_prefill(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "collage: bench prefill needs the CUDA backend (this build has none)\n");
    return 1;
}
#else

typedef struct {
    double linear, attention, ssm;
} flops;

/* FLOPs of a T-token prompt on one model (see the file comment). */
static flops model_flops(const cl_model *m, int64_t T)
{
    const cl_config *cf = m->cfg;
    flops f = {0, 0, 0};
    double params = 0;
    for (int64_t l = 0; l < cf->num_layers; l++)
        for (int r = 0; r < CL_W_ROLE_COUNT; r++) {
            const cl_bweight *w = &m->layers[l].w[r];
            if (w->data && w->rows > 1)
                params += (double)(w->rows * w->cols);
        }
    f.linear = 2.0 * params * (double)T + 2.0 * (double)(m->lm_head.rows * m->lm_head.cols);
    const double D = (double)cf->head_dim, Hq = (double)cf->num_heads, L = 64.0;
    const double chunks = (double)((T + 63) / 64), t = (double)T;
    for (int64_t l = 0; l < cf->num_layers; l++) {
        switch (cf->layer_types[l]) {
        case CL_LAYER_ATTN: f.attention += 4.0 * D * Hq * t * (t + 1) / 2.0; break;
        case CL_LAYER_SWA: {
            double w = (double)cf->swa.window, pairs = 0;
            pairs = t <= w ? t * (t + 1) / 2 : w * (w + 1) / 2 + (t - w) * w;
            f.attention += 4.0 * D * Hq * pairs;
            break;
        }
        case CL_LAYER_M2: f.ssm += chunks * Hq * 2.0 * (2 * L * L * D + 2 * L * D * D); break;
        case CL_LAYER_GDN: f.ssm += chunks * Hq * 2.0 * (3 * L * L * D + 3 * L * D * D); break;
        case CL_LAYER_GKA: {
            double it = (double)m->gka_num_iter;
            double per = 2 * L * D * D + (it > 0 ? L * D * D + L * L * D : 0) +
                         it * (L * D * D + 2 * L * L * D) + 2 * L * L * D + L * D * D;
            f.ssm += chunks * Hq * 2.0 * per;
            break;
        }
        default: break;
        }
    }
    return f;
}

/* ... summed over the ranks of a sharded model (each its heads and slices). */
static flops prompt_flops(cl_model *m, int64_t T)
{
    flops f = {0, 0, 0};
    for (int r = 0; r < bench_tp_ranks(m); r++) {
        flops g = model_flops(bench_tp_rank_model(m, r), T);
        f.linear += g.linear;
        f.attention += g.attention;
        f.ssm += g.ssm;
    }
    return f;
}

/* Prefill of T tokens in calls of `chunk`; seconds of the timed run. */
static int run_prompt(cl_model *m, int64_t T, int64_t chunk, int64_t page_tokens, double *secs)
{
    cl_cache_opts co;
    cl_cache_opts_for_model(m, &co);
    co.page_tokens = page_tokens;
    co.growable = 0;
    co.init_pages = (T + page_tokens) / page_tokens + 1;
    co.init_slots = 1;
    cl_cache *c = NULL;
    CL_TRY(cl_cache_create(m, &co, &c));
    int64_t V = m->cfg->vocab_size;
    int32_t *ids = malloc((size_t)T * sizeof *ids);
    float *logits = malloc((size_t)V * sizeof *logits);
    cl_seq s;
    memset(&s, 0, sizeof s);
    int rc = ids && logits ? cl_seq_init(&s, c) : cl_err(CL_ERR_NOMEM, "out of memory");
    for (int64_t i = 0; ids && i < T; i++)
        ids[i] = (int32_t)((i * 2654435761u + 17) % (uint64_t)V);
    /* warm-up: one short call (kernel loading, cuBLAS heuristics) */
    if (rc == CL_OK)
        rc = cl_seq_feed(m, &s, ids, chunk < T ? chunk : T, chunk, CL_LOGITS_LAST, logits);
    if (rc == CL_OK)
        rc = cl_seq_reset(&s);
    if (rc == CL_OK)
        rc = bench_tp_sync(m);
    double t0 = cl_now();
    if (rc == CL_OK)
        rc = cl_seq_feed(m, &s, ids, T, chunk, CL_LOGITS_LAST, logits);
    if (rc == CL_OK)
        rc = bench_tp_sync(m);
    *secs = cl_now() - t0;
    if (s.c)
        cl_seq_release(&s);
    cl_cache_free(c);
    free(ids);
    free(logits);
    return rc;
}

typedef struct {
    const int64_t *lens;
    int n_len;
    int64_t chunk, page_tokens;
    int quick, json;
    double gemm; /* of all ranks */
    FILE *js[2];
    int first;
} pre_loop;

/* Every prompt length of one model and num_iter. */
static int prefill_model(void *user, cl_model *m, const char *preset, int64_t num_iter, int it)
{
    pre_loop *lp = user;
    int rc = CL_OK;
    for (int li = 0; li < lp->n_len && rc == CL_OK; li++) {
        int64_t T = lp->lens[li];
        /* the other iteration counts: at 32K (quick), at 32K and 128K (full) */
        if (num_iter && it > 0 && lp->n_len > 1 && T != 32768 && (lp->quick || T != 131072))
            continue;
        double secs = 0;
        rc = run_prompt(m, T, lp->chunk, lp->page_tokens, &secs);
        if (rc != CL_OK)
            break;
        flops f = prompt_flops(m, T);
        double total = f.linear + f.attention + f.ssm;
        double tf = total / secs / 1e12, lim = lp->gemm * 1e12 / total * (double)T;
        double tps = (double)T / secs;
        for (int k = 0; k < 2; k++)
            if (lp->js[k])
                fprintf(lp->js[k],
                        "%s    {\"preset\": \"%s\", \"num_iter\": %lld, \"tokens\": %lld, "
                        "\"seconds\": %.4f, \"tokens_per_s\": %.1f, \"TFLOPs\": %.1f, "
                        "\"limit_tokens_per_s\": %.1f, \"pct_of_limit\": %.1f, "
                        "\"linear_TFLOP\": %.2f, \"attention_TFLOP\": %.2f, "
                        "\"ssm_TFLOP\": %.2f}",
                        lp->first ? "" : ",\n", preset, (long long)num_iter, (long long)T, secs,
                        tps, tf, lim, 100.0 * tps / lim, f.linear / 1e12, f.attention / 1e12,
                        f.ssm / 1e12);
        if (!lp->json)
            printf("%-8s %4lld %7lld %10.1f %9.1f %9.1f %6.1f%% %8.1f %8.1f %8.1f\n", preset,
                   (long long)num_iter, (long long)T, tps, tf, lim, 100.0 * tps / lim,
                   f.linear / 1e12, f.attention / 1e12, f.ssm / 1e12);
        lp->first = 0;
        fflush(stdout);
    }
    return rc;
}

int bench_prefill(int argc, char **argv)
{
    const char *presets = "gka-8b,gdn-8b,m2-8b", *len_arg = NULL, *iters_arg = NULL;
    int quick = 0, json = 0;
    const char *json_out = NULL;
    int64_t chunk = 8192, layers = 0, page_tokens = 64, tp = 1;
    cli_opt opts[] = {
        {"preset", OPT_STR, &presets, "NAMES", "comma-separated presets (default gka-8b,gdn-8b,m2-8b)", 0, 0},
        {"lengths", OPT_STR, &len_arg, "LIST", "prompt lengths (default 8192,...,131072)", 0, 0},
        {"num-iter", OPT_STR, &iters_arg, "LIST", "GKA num_iter values (default 30,10,1)", 0, 0},
        {"chunk", OPT_INT, &chunk, "N", "tokens per forward call (default 8192)", 0, 0},
        {"layers", OPT_INT, &layers, "N", "layer count override (0: preset)", 0, 0},
        {"page-tokens", OPT_INT, &page_tokens, "N", "KV page size (default 64)", 0, 0},
        {"tp", OPT_INT, &tp, "N",
         "tensor-parallel ranks, one GPU each (default 1: the unsharded model); the weights "
         "then come from a host-memory checkpoint (the model's size in host RAM)", 1, 64},
        {"quick", OPT_FLAG, &quick, NULL, "8K and 32K prompts (GKA num_iter 10/1 at 32K only)", 0, 0},
        {"json", OPT_FLAG, &json, NULL, "one JSON object on stdout", 0, 0},
        {"json-out", OPT_STR, &json_out, "FILE", "also write the JSON object to FILE", 0, 0},
        {0},
    };
    cli_spec spec = {"bench prefill", "[--preset P] [--tp N] [--quick] [--json]",
                     "GPU prefill tokens/s vs the FLOPs limit at the bf16 GEMM rate.", opts, 0, 0};
    int rc = cli_parse(&spec, argc, argv, NULL, NULL);
    if (rc)
        return rc < 0 ? 0 : rc;
    int64_t lens[16], iters[8];
    int n_len = bench_parse_list(len_arg ? len_arg : quick ? "8192,32768" : "8192,16384,32768,65536,131072",
                           lens, 16);
    int n_it = bench_parse_list(iters_arg ? iters_arg : "30,10,1", iters, 8);
    if (n_len <= 0 || n_it <= 0 || chunk <= 0)
        return cli_usage_error("bench prefill", "--lengths / --num-iter: comma-separated integers");
    int n = (int)tp, visible = cl_cuda_device_count();
    if (n > 1 && visible < n)
        return cli_fail(cl_err(CL_ERR_UNSUPPORTED,
                               "bench prefill: --tp %d needs %d CUDA devices (%d visible)", n, n,
                               visible));

    cl_backend *probe;
    if ((rc = cl_backend_create("cuda", 1, &probe)) != CL_OK)
        return cli_fail(rc);
    cl_cuda_info info;
    double gemm = 0;
    rc = cl_cuda_get_info(probe, &info);
    if (rc == CL_OK)
        rc = bench_gpu_gemm_tflops(8192, 10, &gemm);
    cl_backend_destroy(probe);
    if (rc != CL_OK)
        return cli_fail(rc);
    FILE *jf = NULL;
    if (json_out && !(jf = fopen(json_out, "w")))
        return cli_fail(cl_err(CL_ERR_IO, "%s: cannot write", json_out));
    FILE *js[2] = {json ? stdout : NULL, jf};
    for (int k = 0; k < 2; k++)
        if (js[k])
        {
            fprintf(js[k],
                    "{\n  \"bench\": \"prefill\", \"device\": \"%s\", \"gemm_bf16_TFLOPs\": %.1f, "
                    "\"chunk\": %lld, \"quick\": %s,\n",
                    info.name, gemm, (long long)chunk, quick ? "true" : "false");
            if (n > 1)
                fprintf(js[k], "  \"tp\": %d, \"limit\": \"FLOPs of all ranks / (tp x "
                               "gemm_bf16_TFLOPs of device 0)\",\n",
                        n);
            fprintf(js[k], "  \"results\": [\n");
        }
    if (!json) {
        printf("device %s; bf16 GEMM %.0f TFLOP/s; forward calls of %lld tokens\n", info.name,
               gemm, (long long)chunk);
        if (n > 1)
            printf("tensor parallel %d: limit = FLOPs of all ranks / (%d x the GEMM rate of "
                   "device 0)\n",
                   n, n);
        printf("%-8s %4s %7s %10s %9s %9s %7s %8s %8s %8s\n", "preset", "iter", "tokens", "tok/s",
               "TFLOP/s", "limit", "%", "lin TF", "attn TF", "ssm TF");
    }
    pre_loop lp = {lens, n_len, chunk, page_tokens, quick, json, gemm * n, {js[0], js[1]}, 1};
    rc = bench_each_model_tp(presets, "cuda", layers, n > 1 ? n : 0, 0, iters, n_it,
                             prefill_model, &lp);
    for (int k = 0; k < 2; k++)
        if (js[k])
            fprintf(js[k], "\n  ]%s\n}\n", rc == CL_OK ? "" : ", \"error\": true");
    if (jf)
        fclose(jf);
    return rc == CL_OK ? 0 : cli_fail(rc);
}
#endif
