/* collage bench decode - GPU decode tokens/s of 8B-shaped models with random
 * bf16 weights made on the GPU (no checkpoint), KV and SSM states filled with
 * random data (pure decode, no prefill), at the memory-full batch for each
 * context length and at batch 1.
 *
 * Each figure is printed next to its limit, measured in the same run: the bytes
 * a step must move (every weight but the embedding read once; every sequence's
 * visible KV read; every SSM state and conv state read and written) over the
 * device-to-device copy bandwidth (bytes read + written of a large copy). The
 * memory-full batch is the number of sequences whose KV pages and SSM slots fit
 * in the free memory after the weights; it is reported next to what the
 * arithmetic (device memory - weights) / bytes per sequence allows. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "args.h"
#include "bench.h"
#include "bench_models.h"
#include "ceilings.h"
#include "common/log.h"
#include "common/status.h"
#include "engine/seq.h"
#include "model/forward.h"
#include "mkmodel/model_random.h"
#ifdef COLLAGE_HAVE_CUDA
#include "backend/cuda.h"
#endif

#ifndef COLLAGE_HAVE_CUDA
int bench_decode(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "collage: bench decode needs the CUDA backend (this build has none)\n");
    return 1;
}
#else

typedef struct {
    char preset[32];
    int64_t num_iter, context, batch, batch_arith, steps;
    uint64_t graph_captures, graph_replays;
    double tps, limit_tps, step_ms, bytes_step, weight_bytes, kv_bytes, ssm_bytes;
} dec_result;

/* Bytes of all weights a decode step reads (every matrix and vector; of the
 * embedding only the batch's rows, negligible). */
static double weight_bytes(const cl_model *m)
{
    double t = 0;
    const cl_bweight *ws[3] = {&m->lm_head, &m->norm, NULL};
    for (int i = 0; ws[i]; i++)
        t += (double)(ws[i]->rows * ws[i]->cols) * (double)cl_dtype_size(ws[i]->dtype);
    for (int64_t l = 0; l < m->cfg->num_layers; l++) {
        const cl_layer_bw *lb = &m->layers[l];
        for (int r = 0; r < CL_W_ROLE_COUNT; r++)
            if (lb->w[r].data)
                t += (double)(lb->w[r].rows * lb->w[r].cols) * (double)cl_dtype_size(lb->w[r].dtype);
        if (lb->conv.data)
            t += (double)(lb->conv.rows * lb->conv.cols) * 4.0;
    }
    return t;
}

static double all_weight_bytes(const cl_model *m)
{
    return weight_bytes(m) +
           (double)(m->embed.rows * m->embed.cols) * (double)cl_dtype_size(m->embed.dtype);
}

/* fp32 bytes of one sequence's SSM slot (conv, state(s), log decay). */
static double ssm_slot_bytes(const cl_cache *c)
{
    double t = 0;
    for (int i = 0; i < c->n_ssm; i++) {
        t += (double)cl_cache_conv_floats(c, i) * 4 + (double)c->ssm[i].n_heads * 4;
        t += (double)cl_cache_state_floats(c, i) * 4 * (c->ssm[i].state2 ? 2 : 1);
    }
    return t;
}

static int fill(cl_backend *b, void *p, cl_dtype dt, size_t n, uint64_t key, int kind, float a,
                float bias)
{
    if (!p || !n)
        return CL_OK;
    return b->ops->fill_random(b, p, dt, n, key, 0, kind, a, bias, CL_F32);
}

/* Random KV and SSM state in the whole pools (what a prefill would have left). */
static int fill_cache(cl_model *m, cl_cache *c)
{
    cl_backend *b = m->b;
    size_t page = cl_cache_page_bytes(c);
    for (int i = 0; i < c->n_attn; i++) {
        size_t n = page * (size_t)c->cap_pages / cl_dtype_size(c->kv_dtype);
        CL_TRY(fill(b, c->kv[i].k, c->kv_dtype, n, 1000 + (uint64_t)i, CL_RNG_UNIFORM, 2, -1));
        CL_TRY(fill(b, c->kv[i].v, c->kv_dtype, n, 2000 + (uint64_t)i, CL_RNG_UNIFORM, 2, -1));
    }
    for (int i = 0; i < c->n_ssm; i++) {
        size_t sf = cl_cache_state_floats(c, i) * (size_t)c->cap_slots;
        size_t cf = cl_cache_conv_floats(c, i) * (size_t)c->cap_slots;
        CL_TRY(fill(b, c->ssm[i].conv, CL_F32, cf, 3000 + (uint64_t)i, CL_RNG_UNIFORM, 1, -0.5f));
        CL_TRY(fill(b, c->ssm[i].state, CL_F32, sf, 4000 + (uint64_t)i, CL_RNG_UNIFORM, 0.02f,
                    -0.01f));
        CL_TRY(fill(b, c->ssm[i].state2, CL_F32, sf, 5000 + (uint64_t)i, CL_RNG_UNIFORM, 0.02f,
                    0.0f));
    }
    return b->ops->sync(b);
}

/* `steps` decode steps of all sequences; returns seconds for the timed ones. */
static int decode_steps(cl_model *m, cl_cache *c, cl_seq *seqs, int64_t B, int64_t warm,
                        int64_t steps, double *secs)
{
    int64_t V = m->cfg->vocab_size;
    cl_batch_seq *bs = calloc((size_t)B, sizeof *bs);
    int32_t *tok = malloc((size_t)B * sizeof *tok), *ids = malloc((size_t)B * sizeof *ids);
    int64_t *pos = malloc((size_t)B * sizeof *pos), *rows = malloc((size_t)B * sizeof *rows);
    int rc = bs && tok && ids && pos && rows ? CL_OK : cl_err(CL_ERR_NOMEM, "out of memory");
    for (int64_t i = 0; i < B && rc == CL_OK; i++) {
        rows[i] = i;
        tok[i] = (int32_t)((i * 7919 + 11) % V);
    }
    double t0 = 0;
    for (int64_t k = 0; k < warm + steps && rc == CL_OK; k++) {
        if (k == warm) {
            rc = m->b->ops->sync(m->b);
            t0 = cl_now();
        }
        for (int64_t i = 0; i < B; i++) {
            cl_seq *s = &seqs[i];
            bs[i] = (cl_batch_seq){i, 1, s->kv_len, s->pages, s->slot, 0, 0};
            pos[i] = s->pos;
        }
        cl_batch bt = {(int)B, B, bs, tok, pos, NULL};
        cl_forward_out fo = {rows, B, NULL, ids, NULL};
        if (rc == CL_OK)
            rc = cl_forward(m, c, &bt, &fo);
        for (int64_t i = 0; i < B && rc == CL_OK; i++) {
            seqs[i].kv_len++;
            seqs[i].pos++;
            tok[i] = ids[i];
        }
    }
    if (rc == CL_OK)
        rc = m->b->ops->sync(m->b);
    *secs = cl_now() - t0;
    free(bs);
    free(tok);
    free(ids);
    free(pos);
    free(rows);
    return rc;
}

typedef struct {
    int64_t steps, warm, page_tokens, settle_ms;
    double copy_gbps;
    size_t mem_total;
} dec_setup;

/* An idle pause before a point's steps: right after a memory-full point the
 * GPU ran a batch-1 step 10% slower than from idle (H200, 2026-11-23: 6.37 vs
 * 5.74 ms), so without it each figure would depend on the point before it. */
static void settle(int64_t ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* One (context, batch) point; B = 0 means the memory-full batch. */
static int run_point(cl_model *m, const dec_setup *su, int64_t L, int64_t B_want, dec_result *r)
{
    const cl_config *cf = m->cfg;
    cl_cache_opts co;
    cl_cache_opts_for_model(m, &co);
    co.page_tokens = su->page_tokens;
    co.growable = 0;
    int64_t P = co.page_tokens;
    int64_t pages_per_seq = (L + su->warm + su->steps + P) / P;
    /* a 1-page, 1-slot cache tells the per-slot and per-page sizes */
    co.init_pages = 1;
    co.init_slots = 1;
    cl_cache *probe;
    CL_TRY(cl_cache_create(m, &co, &probe));
    double page_bytes = (double)cl_cache_page_bytes(probe) * 2.0 * probe->n_attn;
    double slot_bytes = ssm_slot_bytes(probe);
    cl_cache_free(probe);
    double per_seq = page_bytes * (double)pages_per_seq + slot_bytes;
    double wb = all_weight_bytes(m);
    int64_t B_arith = (int64_t)(((double)su->mem_total - wb) / per_seq);
    int64_t B = B_want;
    if (B <= 0) {
        cl_cuda_info info;
        CL_TRY(cl_cuda_get_info(m->b, &info));
        /* keep room for activations, logits, cuBLAS and the CUDA context */
        double reserve = 1.5e9 + 64.0 * (double)cf->vocab_size * 4.0;
        B = (int64_t)(((double)info.mem_free - reserve) / per_seq);
    }
    if (B < 1)
        return cl_err(CL_ERR_FULL, "context %lld: not even one sequence fits", (long long)L);
    cl_cache *c = NULL;
    int rc;
    for (;;) {
        co.init_pages = B * pages_per_seq;
        co.init_slots = B;
        rc = cl_cache_create(m, &co, &c);
        if (rc == CL_OK || B <= 1 || B_want > 0)
            break;
        B = B * 49 / 50; /* 2% less, until it fits */
    }
    if (rc != CL_OK)
        return rc;
    cl_seq *seqs = calloc((size_t)B, sizeof *seqs);
    rc = seqs ? CL_OK : cl_err(CL_ERR_NOMEM, "out of memory");
    for (int64_t i = 0; i < B && rc == CL_OK; i++) {
        rc = cl_seq_init(&seqs[i], c);
        if (rc == CL_OK)
            rc = cl_seq_reserve(&seqs[i], L + su->warm + su->steps + 1);
        seqs[i].kv_len = seqs[i].pos = seqs[i].n_tokens = L;
    }
    if (rc == CL_OK)
        rc = fill_cache(m, c);
    settle(su->settle_ms);
    double secs = 0;
    uint64_t cap0, rep0;
    cl_cuda_graph_stats(m->b, &cap0, &rep0);
    if (rc == CL_OK)
        rc = decode_steps(m, c, seqs, B, su->warm, su->steps, &secs);
    cl_cuda_graph_stats(m->b, &r->graph_captures, &r->graph_replays);
    r->graph_captures -= cap0;
    r->graph_replays -= rep0;
    if (rc == CL_OK) {
        snprintf(r->preset, sizeof r->preset, "%s", "");
        r->num_iter = m->gka_num_iter;
        r->context = L;
        r->batch = B;
        r->batch_arith = B_arith;
        r->steps = su->steps;
        r->step_ms = secs / (double)su->steps * 1e3;
        r->tps = (double)(B * su->steps) / secs;
        /* bytes per step at the mean context of the timed steps */
        double ctx = (double)L + (double)su->warm + (double)su->steps / 2.0;
        double kv_tok = page_bytes / (double)P; /* K + V of all attention layers, per token */
        r->weight_bytes = weight_bytes(m);
        r->kv_bytes = (double)B * kv_tok * ctx;
        r->ssm_bytes = 2.0 * (double)B * slot_bytes;
        r->bytes_step = r->weight_bytes + r->kv_bytes + r->ssm_bytes;
        double t_lim = r->bytes_step / (su->copy_gbps * 1e9);
        r->limit_tps = (double)B / t_lim;
    }
    for (int64_t i = 0; seqs && i < B; i++)
        if (seqs[i].c)
            cl_seq_release(&seqs[i]);
    free(seqs);
    cl_cache_free(c);
    return rc;
}

static void print_result(FILE *f, const dec_result *r, int json, int first)
{
    double pct = 100.0 * r->tps / r->limit_tps;
    if (json) {
        fprintf(f, "%s    {\"preset\": \"%s\", \"num_iter\": %lld, \"context\": %lld, \"batch\": %lld, "
               "\"batch_arith\": %lld, \"steps\": %lld, \"tokens_per_s\": %.1f, "
               "\"limit_tokens_per_s\": %.1f, \"pct_of_limit\": %.1f, \"step_ms\": %.3f, "
               "\"bytes_per_step\": %.4g, \"weight_bytes\": %.4g, \"kv_bytes\": %.4g, "
               "\"ssm_bytes\": %.4g, \"graph_captures\": %llu, \"graph_replays\": %llu}",
               first ? "" : ",\n", r->preset, (long long)r->num_iter, (long long)r->context,
               (long long)r->batch, (long long)r->batch_arith, (long long)r->steps, r->tps,
               r->limit_tps, pct, r->step_ms, r->bytes_step, r->weight_bytes, r->kv_bytes,
               r->ssm_bytes, (unsigned long long)r->graph_captures,
               (unsigned long long)r->graph_replays);
        return;
    }
    fprintf(f, "%-8s %4lld %7lld %6lld %6lld %10.1f %10.1f %6.1f%% %9.2f %8.1f %3llu/%llu\n",
            r->preset, (long long)r->num_iter, (long long)r->context, (long long)r->batch,
            (long long)r->batch_arith, r->tps, r->limit_tps, pct, r->step_ms,
            r->bytes_step / 1e9, (unsigned long long)r->graph_captures,
            (unsigned long long)r->graph_replays);
}

typedef struct {
    const dec_setup *su;
    const int64_t *ctxs;
    int n_ctx;
    int64_t batch;
    int quick, json;
    FILE *js[2];
    int first;
} dec_loop;

/* Every context (and batch 1 unless a batch is given) of one model and num_iter. */
static int decode_model(void *user, cl_model *m, const char *preset, int64_t num_iter, int it)
{
    dec_loop *lp = user;
    int rc = CL_OK;
    for (int ci = 0; ci < lp->n_ctx && rc == CL_OK; ci++) {
        if (num_iter && it > 0 && lp->quick && ci > 0)
            break; /* quick: the other iteration counts at the first context only */
        int64_t bsz[2] = {lp->batch > 0 ? lp->batch : 0, 1};
        for (int bi = 0; bi < (lp->batch > 0 ? 1 : 2) && rc == CL_OK; bi++) {
            dec_result r;
            memset(&r, 0, sizeof r);
            rc = run_point(m, lp->su, lp->ctxs[ci], bsz[bi], &r);
            if (rc != CL_OK)
                break;
            snprintf(r.preset, sizeof r.preset, "%s", preset);
            r.num_iter = num_iter;
            if (!lp->json)
                print_result(stdout, &r, 0, lp->first);
            for (int k = 0; k < 2; k++)
                if (lp->js[k])
                    print_result(lp->js[k], &r, 1, lp->first);
            lp->first = 0;
            fflush(stdout);
        }
    }
    return rc;
}

int bench_decode(int argc, char **argv)
{
    const char *presets = "gka-8b,gdn-8b,m2-8b", *ctx_arg = NULL, *iters_arg = NULL;
    int quick = 0, json = 0;
    const char *json_out = NULL;
    int64_t steps = 0, batch = -1, layers = 0, page_tokens = 64, settle_ms = 1000;
    cli_opt opts[] = {
        {"preset", OPT_STR, &presets, "NAMES", "comma-separated presets (default gka-8b,gdn-8b,m2-8b)", 0, 0},
        {"contexts", OPT_STR, &ctx_arg, "LIST", "context lengths (default 16384,32768,65536,131072)", 0, 0},
        {"num-iter", OPT_STR, &iters_arg, "LIST", "GKA num_iter values (default 30,10,1)", 0, 0},
        {"steps", OPT_INT, &steps, "N", "timed decode steps per point (default 24, quick 8)", 0, 0},
        {"batch", OPT_INT, &batch, "N", "one batch size instead of memory-full and 1", 0, 0},
        {"layers", OPT_INT, &layers, "N", "layer count override (0: preset)", 0, 0},
        {"page-tokens", OPT_INT, &page_tokens, "N", "KV page size (default 64)", 0, 0},
        {"settle-ms", OPT_INT, &settle_ms, "MS", "idle pause before each point (default 1000)", 0, 0},
        {"quick", OPT_FLAG, &quick, NULL, "16K and 32K contexts, GKA iterations at 16K only", 0, 0},
        {"json", OPT_FLAG, &json, NULL, "one JSON object on stdout", 0, 0},
        {"json-out", OPT_STR, &json_out, "FILE", "also write the JSON object to FILE", 0, 0},
        {0},
    };
    cli_spec spec = {"bench decode", "[--preset P] [--quick] [--json]",
                     "GPU decode tokens/s vs the bytes-moved limit at the copy bandwidth.", opts, 0,
                     0};
    int rc = cli_parse(&spec, argc, argv, NULL, NULL);
    if (rc)
        return rc < 0 ? 0 : rc;
    int64_t ctxs[16], iters[8];
    int n_ctx = bench_parse_list(ctx_arg ? ctx_arg : quick ? "16384,32768" : "16384,32768,65536,131072",
                           ctxs, 16);
    int n_it = bench_parse_list(iters_arg ? iters_arg : "30,10,1", iters, 8);
    if (n_ctx <= 0 || n_it <= 0)
        return cli_usage_error("bench decode", "--contexts / --num-iter: comma-separated integers");
    if (!steps)
        steps = quick ? 8 : 24;

    cl_backend *probe;
    if ((rc = cl_backend_create("cuda", 1, &probe)) != CL_OK)
        return cli_fail(rc);
    dec_setup su = {steps, 2, page_tokens, settle_ms, 0, 0};
    cl_cuda_info info;
    double gemm = 0;
    rc = cl_cuda_get_info(probe, &info);
    if (rc == CL_OK)
        rc = bench_gpu_copy_gbps((size_t)2 << 30, 20, &su.copy_gbps);
    if (rc == CL_OK)
        rc = bench_gpu_gemm_tflops(8192, 10, &gemm);
    cl_backend_destroy(probe);
    if (rc != CL_OK)
        return cli_fail(rc);
    su.mem_total = info.mem_total;
    FILE *jf = NULL;
    if (json_out && !(jf = fopen(json_out, "w")))
        return cli_fail(cl_err(CL_ERR_IO, "%s: cannot write", json_out));
    FILE *js[2] = {json ? stdout : NULL, jf};
    for (int k = 0; k < 2; k++)
        if (js[k])
            fprintf(js[k],
                    "{\n  \"bench\": \"decode\", \"device\": \"%s\", \"sm_count\": %d, "
                    "\"mem_total_bytes\": %zu, \"copy_GBps\": %.1f, \"gemm_bf16_TFLOPs\": %.1f,\n"
                    "  \"quick\": %s, \"page_tokens\": %lld, \"steps\": %lld, "
                    "\"settle_ms\": %lld,\n  \"results\": [\n",
                    info.name, info.sm_count, info.mem_total, su.copy_gbps, gemm,
                    quick ? "true" : "false", (long long)page_tokens, (long long)steps,
                    (long long)settle_ms);
    if (!json) {
        printf("device %s, %.1f GiB; copy %.0f GB/s (read + write); bf16 GEMM %.0f TFLOP/s\n",
               info.name, (double)info.mem_total / (1 << 30), su.copy_gbps, gemm);
        printf("%-8s %4s %7s %6s %6s %10s %10s %7s %9s %8s %s\n", "preset", "iter", "context",
               "batch", "arith", "tok/s", "limit", "%", "step ms", "GB/step", "graphs cap/rep");
    }
    dec_loop lp = {&su, ctxs, n_ctx, batch, quick, json, {js[0], js[1]}, 1};
    rc = bench_each_model(presets, "cuda", layers, iters, n_it, decode_model, &lp);
    for (int k = 0; k < 2; k++)
        if (js[k])
            fprintf(js[k], "\n  ]%s\n}\n", rc == CL_OK ? "" : ", \"error\": true");
    if (jf)
        fclose(jf);
    return rc == CL_OK ? 0 : cli_fail(rc);
}
#endif
