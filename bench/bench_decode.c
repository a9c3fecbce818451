/* collage bench decode - GPU decode tokens/s of 8B-shaped models with random
 * bf16 weights made on the GPU (no checkpoint), KV and SSM states filled with
 * random data (pure decode, no prefill), at the memory-full batch for each
 * context length and at batch 1.
 *
 * --tp N splits the model over N GPUs (rank r on device r): the weights come from a
 * host-memory checkpoint through the engine's sharded loader (bench_tp.h), each rank
 * holds its heads' KV pages and SSM slots (KV heads replicated when N exceeds them)
 * and 1/N of the weights. The memory-full batch is the smallest over the ranks; the
 * limit counts the bytes of all ranks over N x the copy bandwidth of one device
 * (measured on each); the collectives of one step (2 x layers + 1 all-reduces of
 * batch x hidden floats, one all-gather of the logits) are timed alone through the
 * comm layer and reported next to the step time. --tp 1 is the unsharded model.
 * --backend cpu runs the same code on the CPU backend with a given batch (tiny presets:
 * a test of the benchmark itself, not a figure).
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
#include "bench_tp.h"
#include "ceilings.h"
#include "common/log.h"
#include "common/status.h"
#include "engine/seq.h"
#include "model/forward.h"
#include "mkmodel/model_random.h"
#ifdef COLLAGE_HAVE_CUDA
#include "backend/cuda.h"
#endif

/* What a benchmark needs to know of a device (or of the host, --backend cpu). */
typedef struct {
    char name[256];
    int sm_count;
    size_t mem_total, mem_free;
} dev_info;

static int backend_info(cl_backend *b, dev_info *out)
{
    memset(out, 0, sizeof *out);
#ifdef COLLAGE_HAVE_CUDA
    if (cl_cuda_is(b)) {
        cl_cuda_info ci;
        CL_TRY(cl_cuda_get_info(b, &ci));
        snprintf(out->name, sizeof out->name, "%s", ci.name);
        out->sm_count = ci.sm_count;
        out->mem_total = ci.mem_total;
        out->mem_free = ci.mem_free;
        return CL_OK;
    }
#endif
    snprintf(out->name, sizeof out->name, "%s", b->ops->name);
    return b->ops->mem_info(b, &out->mem_free, &out->mem_total);
}

static void graph_stats(cl_backend *b, uint64_t *captures, uint64_t *replays)
{
    *captures = *replays = 0;
#ifdef COLLAGE_HAVE_CUDA
    cl_cuda_graph_stats(b, captures, replays);
#else
    (void)b;
#endif
}

typedef struct {
    char preset[32];
    int tp;
    int64_t num_iter, context, batch, batch_arith, steps;
    uint64_t graph_captures, graph_replays;
    double tps, limit_tps, step_ms, bytes_step, weight_bytes, kv_bytes, ssm_bytes;
    /* tp > 1: the most bytes one rank moves per step; a step's collectives run alone */
    double rank_bytes_max, allreduce_ms, allgather_ms;
    int64_t n_allreduce, allreduce_floats, allgather_floats;
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

typedef struct {
    cl_model *m;
    cl_cache *c;
} model_cache;

/* fill_cache on rank r's pools (its thread). */
static int rank_fill(void *user, int r)
{
    model_cache *j = user;
    return fill_cache(bench_tp_rank_model(j->m, r), bench_tp_rank_cache(j->c, r));
}

typedef struct {
    cl_model *m;
    dev_info *info; /* [ranks] */
} info_job;

static int rank_info(void *user, int r)
{
    info_job *j = user;
    return backend_info(bench_tp_rank_model(j->m, r)->b, &j->info[r]);
}

typedef struct {
    cl_model *m;
    int64_t rows, reps;
    double *ar_secs, *ag_secs; /* [ranks] */
} coll_job;

/* The collectives of one decode step of `rows` sequences on rank r, run alone: the
 * 2 x layers + 1 all-reduces of rows x hidden floats (embedding, mixer and MLP
 * outputs) timed over `reps` steps, then the all-gather of the logits (rows x V / n
 * floats per rank) likewise. */
static int rank_collectives(void *user, int r)
{
    coll_job *j = user;
    cl_model *sh = bench_tp_rank_model(j->m, r);
    cl_backend *b = sh->b;
    const cl_backend_ops *o = b->ops;
    int n = cl_comm_size(sh->comm);
    int64_t n_ar = 2 * sh->cfg->num_layers + 1;
    size_t nh = (size_t)(j->rows * sh->cfg->hidden_size), np = (size_t)j->rows *
                                                                (size_t)sh->lm_head.rows;
    float *h = o->alloc(b, nh * sizeof *h), *part = o->alloc(b, np * sizeof *part);
    float *gath = o->alloc(b, (size_t)n * np * sizeof *gath);
    int rc = h && part && gath ? CL_OK
                               : cl_err(CL_ERR_NOMEM, "out of device memory for the collectives "
                                                      "of a step of %lld sequences",
                                        (long long)j->rows);
    /* zeros: sums that stay finite however often they are taken */
    if (rc == CL_OK)
        rc = o->fill_random(b, h, CL_F32, nh, 1, 0, CL_RNG_CONST, 0, 0, CL_F32);
    if (rc == CL_OK)
        rc = o->fill_random(b, part, CL_F32, np, 2, 0, CL_RNG_CONST, 0, 0, CL_F32);
    for (int pass = 0; pass < 2 && rc == CL_OK; pass++) {
        double t0 = 0;
        for (int64_t k = -1; k < j->reps && rc == CL_OK; k++) { /* one warm-up step */
            if (k == 0 && (rc = o->sync(b)) == CL_OK)
                t0 = cl_now();
            if (pass == 0)
                for (int64_t i = 0; i < n_ar && rc == CL_OK; i++)
                    rc = cl_comm_all_reduce(sh->comm, h, nh);
            else if (rc == CL_OK)
                rc = cl_comm_all_gather(sh->comm, part, np, gath);
        }
        if (rc == CL_OK)
            rc = o->sync(b);
        (pass == 0 ? j->ar_secs : j->ag_secs)[r] = (cl_now() - t0) / (double)j->reps;
    }
    if (h)
        o->free(b, h);
    if (part)
        o->free(b, part);
    if (gath)
        o->free(b, gath);
    return rc;
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
            rc = bench_tp_sync(m);
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
        rc = bench_tp_sync(m);
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
    double copy_gbps;  /* of one device (tp > 1: the mean over the devices) */
    size_t mem_total;  /* of one device */
    int64_t coll_reps; /* steps of collectives timed (tp > 1) */
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

/* What one rank's cache holds per sequence: K + V of all attention layers per page, and
 * the SSM slot. */
typedef struct {
    double page_bytes, slot_bytes;
} rank_geom;

/* One (context, batch) point; B = 0 means the memory-full batch. */
static int run_point(cl_model *m, const dec_setup *su, int64_t L, int64_t B_want, dec_result *r)
{
    const cl_config *cf = m->cfg;
    int n = bench_tp_ranks(m);
    cl_cache_opts co;
    cl_cache_opts_for_model(m, &co);
    co.page_tokens = su->page_tokens;
    co.growable = 0;
    int64_t P = co.page_tokens;
    int64_t pages_per_seq = (L + su->warm + su->steps + P) / P;
    /* a 1-page, 1-slot cache tells each rank's per-slot and per-page sizes */
    co.init_pages = 1;
    co.init_slots = 1;
    cl_cache *probe;
    CL_TRY(cl_cache_create(m, &co, &probe));
    rank_geom *g = calloc((size_t)n, sizeof *g);
    dev_info *info = calloc((size_t)n, sizeof *info);
    if (!g || !info) {
        cl_cache_free(probe);
        free(g);
        free(info);
        return cl_err(CL_ERR_NOMEM, "out of memory");
    }
    for (int k = 0; k < n; k++) {
        cl_cache *rc_ = bench_tp_rank_cache(probe, k);
        g[k].page_bytes = (double)cl_cache_page_bytes(rc_) * 2.0 * rc_->n_attn;
        g[k].slot_bytes = ssm_slot_bytes(rc_);
    }
    cl_cache_free(probe);
    /* a sharded model's scratch also holds every rank's logits block and the gathered
     * logits, twice over (forward.c) */
    double logit_extra = m->shard ? (2.0 + 1.0 / n) * (double)cf->vocab_size * 4.0 : 0.0;
    int64_t B_arith = -1;
    for (int k = 0; k < n; k++) {
        double per_seq = g[k].page_bytes * (double)pages_per_seq + g[k].slot_bytes;
        double wb = all_weight_bytes(bench_tp_rank_model(m, k));
        int64_t b = (int64_t)(((double)su->mem_total - wb) / per_seq);
        if (B_arith < 0 || b < B_arith)
            B_arith = b;
    }
    int64_t B = B_want;
    int rc = CL_OK;
    if (B <= 0) {
        info_job ij = {m, info};
        rc = bench_tp_on_ranks(m, rank_info, &ij);
        for (int k = 0; k < n && rc == CL_OK; k++) {
            double per_seq = g[k].page_bytes * (double)pages_per_seq + g[k].slot_bytes;
            /* keep room for activations, logits, cuBLAS and the CUDA context */
            double reserve = 1.5e9 + 64.0 * (double)cf->vocab_size * 4.0;
            int64_t b = (int64_t)(((double)info[k].mem_free - reserve) / (per_seq + logit_extra));
            if (k == 0 || b < B)
                B = b;
        }
    }
    free(info);
    if (rc == CL_OK && B < 1)
        rc = cl_err(CL_ERR_FULL, "context %lld: not even one sequence fits", (long long)L);
    if (rc != CL_OK) {
        free(g);
        return rc;
    }
    cl_cache *c = NULL;
    for (;;) {
        co.init_pages = B * pages_per_seq;
        co.init_slots = B;
        rc = cl_cache_create(m, &co, &c);
        if (rc == CL_OK || B <= 1 || B_want > 0)
            break;
        B = B * 49 / 50; /* 2% less, until it fits */
    }
    if (rc != CL_OK) {
        free(g);
        return rc;
    }
    cl_seq *seqs = calloc((size_t)B, sizeof *seqs);
    rc = seqs ? CL_OK : cl_err(CL_ERR_NOMEM, "out of memory");
    for (int64_t i = 0; i < B && rc == CL_OK; i++) {
        rc = cl_seq_init(&seqs[i], c);
        if (rc == CL_OK)
            rc = cl_seq_reserve(&seqs[i], L + su->warm + su->steps + 1);
        seqs[i].kv_len = seqs[i].pos = seqs[i].n_tokens = L;
    }
    model_cache mc = {m, c};
    if (rc == CL_OK)
        rc = bench_tp_on_ranks(m, rank_fill, &mc);
    settle(su->settle_ms);
    double secs = 0;
    uint64_t cap0, rep0;
    graph_stats(m->b, &cap0, &rep0);
    if (rc == CL_OK)
        rc = decode_steps(m, c, seqs, B, su->warm, su->steps, &secs);
    graph_stats(m->b, &r->graph_captures, &r->graph_replays);
    r->graph_captures -= cap0;
    r->graph_replays -= rep0;
    if (rc == CL_OK) {
        snprintf(r->preset, sizeof r->preset, "%s", "");
        r->tp = n;
        r->num_iter = m->gka_num_iter;
        r->context = L;
        r->batch = B;
        r->batch_arith = B_arith;
        r->steps = su->steps;
        r->step_ms = secs / (double)su->steps * 1e3;
        r->tps = (double)(B * su->steps) / secs;
        /* bytes per step at the mean context of the timed steps, summed over the ranks */
        double ctx = (double)L + (double)su->warm + (double)su->steps / 2.0;
        r->weight_bytes = r->kv_bytes = r->ssm_bytes = r->rank_bytes_max = 0;
        for (int k = 0; k < n; k++) {
            double kv_tok = g[k].page_bytes / (double)P; /* K + V of all attention layers */
            double w = weight_bytes(bench_tp_rank_model(m, k)), kv = (double)B * kv_tok * ctx;
            double ssm = 2.0 * (double)B * g[k].slot_bytes;
            r->weight_bytes += w;
            r->kv_bytes += kv;
            r->ssm_bytes += ssm;
            if (w + kv + ssm > r->rank_bytes_max)
                r->rank_bytes_max = w + kv + ssm;
        }
        r->bytes_step = r->weight_bytes + r->kv_bytes + r->ssm_bytes;
        /* the ranks move their bytes at once: N devices' bandwidth */
        double t_lim = r->bytes_step / ((double)n * su->copy_gbps * 1e9);
        r->limit_tps = (double)B / t_lim;
    }
    free(g);
    for (int64_t i = 0; seqs && i < B; i++)
        if (seqs[i].c)
            cl_seq_release(&seqs[i]);
    free(seqs);
    cl_cache_free(c);
    if (rc == CL_OK && m->shard && n > 1) { /* the step's collectives alone */
        double *ar = calloc((size_t)n, sizeof *ar), *ag = calloc((size_t)n, sizeof *ag);
        coll_job cj = {m, B, su->coll_reps, ar, ag};
        rc = ar && ag ? bench_tp_on_ranks(m, rank_collectives, &cj)
                      : cl_err(CL_ERR_NOMEM, "out of memory");
        /* the rank that started last waited least for the others: the closest to the
         * collectives' own time */
        r->allreduce_ms = r->allgather_ms = -1;
        for (int k = 0; rc == CL_OK && k < n; k++) {
            if (r->allreduce_ms < 0 || ar[k] * 1e3 < r->allreduce_ms)
                r->allreduce_ms = ar[k] * 1e3;
            if (r->allgather_ms < 0 || ag[k] * 1e3 < r->allgather_ms)
                r->allgather_ms = ag[k] * 1e3;
        }
        r->n_allreduce = 2 * cf->num_layers + 1;
        r->allreduce_floats = B * cf->hidden_size;
        r->allgather_floats = B * bench_tp_rank_model(m, 0)->lm_head.rows;
        free(ar);
        free(ag);
    }
    return rc;
}

static void print_result(FILE *f, const dec_result *r, int json, int first)
{
    double pct = 100.0 * r->tps / r->limit_tps;
    double comm_ms = r->allreduce_ms + r->allgather_ms;
    if (json) {
        fprintf(f, "%s    {\"preset\": \"%s\", \"num_iter\": %lld, \"context\": %lld, \"batch\": %lld, "
               "\"batch_arith\": %lld, \"steps\": %lld, \"tokens_per_s\": %.1f, "
               "\"limit_tokens_per_s\": %.1f, \"pct_of_limit\": %.1f, \"step_ms\": %.3f, "
               "\"bytes_per_step\": %.4g, \"weight_bytes\": %.4g, \"kv_bytes\": %.4g, "
               "\"ssm_bytes\": %.4g, \"graph_captures\": %llu, \"graph_replays\": %llu",
               first ? "" : ",\n", r->preset, (long long)r->num_iter, (long long)r->context,
               (long long)r->batch, (long long)r->batch_arith, (long long)r->steps, r->tps,
               r->limit_tps, pct, r->step_ms, r->bytes_step, r->weight_bytes, r->kv_bytes,
               r->ssm_bytes, (unsigned long long)r->graph_captures,
               (unsigned long long)r->graph_replays);
        if (r->tp > 1)
            fprintf(f, ", \"tp\": %d, \"rank_bytes_per_step_max\": %.4g, \"allreduce_count\": %lld, "
                       "\"allreduce_floats\": %lld, \"allreduce_ms\": %.3f, "
                       "\"allgather_floats\": %lld, \"allgather_ms\": %.3f, "
                       "\"comm_ms\": %.3f, \"comm_pct_of_step\": %.1f",
                    r->tp, r->rank_bytes_max, (long long)r->n_allreduce,
                    (long long)r->allreduce_floats, r->allreduce_ms,
                    (long long)r->allgather_floats, r->allgather_ms, comm_ms,
                    100.0 * comm_ms / r->step_ms);
        fprintf(f, "}");
        return;
    }
    fprintf(f, "%-8s %4lld %7lld %6lld %6lld %10.1f %10.1f %6.1f%% %9.2f %8.1f %3llu/%llu",
            r->preset, (long long)r->num_iter, (long long)r->context, (long long)r->batch,
            (long long)r->batch_arith, r->tps, r->limit_tps, pct, r->step_ms,
            r->bytes_step / 1e9, (unsigned long long)r->graph_captures,
            (unsigned long long)r->graph_replays);
    if (r->tp > 1)
        fprintf(f, " %9.3f %5.1f%%", comm_ms, 100.0 * comm_ms / r->step_ms);
    fprintf(f, "\n");
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

/* Bytes read + written per second of a host memcpy (--backend cpu). */
static int host_copy_gbps(size_t bytes, int reps, double *gbps)
{
    char *a = malloc(bytes), *b = malloc(bytes);
    if (!a || !b) {
        free(a);
        free(b);
        return cl_err(CL_ERR_NOMEM, "out of memory for a %zu-byte copy test", bytes);
    }
    memset(a, 1, bytes);
    memset(b, 2, bytes);
    double best = 0;
    for (int i = 0; i < reps; i++) {
        double t0 = cl_now();
        memcpy(i % 2 ? a : b, i % 2 ? b : a, bytes);
        double t = cl_now() - t0;
        if (t > 0 && 2.0 * (double)bytes / t > best)
            best = 2.0 * (double)bytes / t;
    }
    *gbps = best / 1e9;
    free(a);
    free(b);
    return CL_OK;
}

/* Device facts, copy bandwidth and GEMM rate of devices 0..n-1, measured one after the
 * other on this thread (device 0 current at the end, as before); --backend cpu: the
 * host's memory and memcpy rate (no GEMM rate). */
static int measure_devices(const char *backend, int n, dev_info *info, double *copy_gbps,
                           double *gemm)
{
    int rc = CL_OK;
    for (int d = n - 1; d >= 0 && rc == CL_OK; d--) {
        cl_backend *probe;
        if ((rc = cl_backend_create_device(backend, 1, d, &probe)) != CL_OK)
            break;
        rc = backend_info(probe, &info[d]);
        if (rc == CL_OK && strcmp(backend, "cuda"))
            rc = host_copy_gbps((size_t)256 << 20, 5, &copy_gbps[d]);
        else if (rc == CL_OK)
            rc = bench_gpu_copy_gbps((size_t)2 << 30, 20, &copy_gbps[d]);
        if (rc == CL_OK && d == 0 && !strcmp(backend, "cuda"))
            rc = bench_gpu_gemm_tflops(8192, 10, gemm);
        cl_backend_destroy(probe);
    }
    return rc;
}

int bench_decode(int argc, char **argv)
{
    const char *presets = "gka-8b,gdn-8b,m2-8b", *ctx_arg = NULL, *iters_arg = NULL;
    int quick = 0, json = 0;
    const char *json_out = NULL;
    int64_t steps = 0, batch = -1, layers = 0, page_tokens = 64, settle_ms = 1000, tp = 1;
    int64_t coll_reps = 10, threads = 0;
    const char *backend = "cuda";
    cli_opt opts[] = {
        {"preset", OPT_STR, &presets, "NAMES", "comma-separated presets (default gka-8b,gdn-8b,m2-8b)", 0, 0},
        {"contexts", OPT_STR, &ctx_arg, "LIST", "context lengths (default 16384,32768,65536,131072)", 0, 0},
        {"num-iter", OPT_STR, &iters_arg, "LIST", "GKA num_iter values (default 30,10,1)", 0, 0},
        {"steps", OPT_INT, &steps, "N", "timed decode steps per point (default 24, quick 8)", 0, 0},
        {"batch", OPT_INT, &batch, "N", "one batch size instead of memory-full and 1", 0, 0},
        {"layers", OPT_INT, &layers, "N", "layer count override (0: preset)", 0, 0},
        {"page-tokens", OPT_INT, &page_tokens, "N", "KV page size (default 64)", 0, 0},
        {"settle-ms", OPT_INT, &settle_ms, "MS", "idle pause before each point (default 1000)", 0, 0},
        {"tp", OPT_INT, &tp, "N",
         "tensor-parallel ranks, one GPU each (default 1: the unsharded model); the weights "
         "then come from a host-memory checkpoint (the model's size in host RAM)", 1, 64},
        {"comm-reps", OPT_INT, &coll_reps, "N", "steps of collectives timed alone (--tp > 1; default 10)", 1, 1000},
        {"backend", OPT_STR, &backend, "NAME",
         "cuda (default), or cpu to try the benchmark itself on tiny presets (needs --batch; "
         "no GPU figures)", 0, 0},
        {"threads", OPT_INT, &threads, "N", "CPU threads (--backend cpu; 0: all cores)", 0, 1024},
        {"quick", OPT_FLAG, &quick, NULL, "16K and 32K contexts, GKA iterations at 16K only", 0, 0},
        {"json", OPT_FLAG, &json, NULL, "one JSON object on stdout", 0, 0},
        {"json-out", OPT_STR, &json_out, "FILE", "also write the JSON object to FILE", 0, 0},
        {0},
    };
    cli_spec spec = {"bench decode", "[--preset P] [--tp N] [--quick] [--json]",
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
    if (strcmp(backend, "cuda") && strcmp(backend, "cpu"))
        return cli_usage_error("bench decode", "--backend: cuda or cpu (got '%s')", backend);
    if (!strcmp(backend, "cpu") && batch <= 0)
        return cli_usage_error("bench decode", "--backend cpu needs --batch (the memory-full "
                                               "batch is a GPU figure)");
    if (!steps)
        steps = quick ? 8 : 24;
    int n = (int)tp;
    if (!strcmp(backend, "cuda")) {
#ifdef COLLAGE_HAVE_CUDA
        int visible = cl_cuda_device_count();
        if (n > 1 && visible < n)
            return cli_fail(cl_err(CL_ERR_UNSUPPORTED,
                                   "bench decode: --tp %d needs %d CUDA devices (%d visible)", n,
                                   n, visible));
#else
        fprintf(stderr, "collage: bench decode needs the CUDA backend (this build has none)\n");
        return 1;
#endif
    }

    dec_setup su = {steps, 2, page_tokens, settle_ms, 0, 0, coll_reps};
    dev_info *info = calloc((size_t)n, sizeof *info);
    double *copy = calloc((size_t)n, sizeof *copy), gemm = 0, copy_min = 0;
    rc = info && copy ? measure_devices(backend, strcmp(backend, "cuda") ? 1 : n, info, copy, &gemm)
                      : cl_err(CL_ERR_NOMEM, "out of memory");
    for (int d = 1; d < n && rc == CL_OK && strcmp(backend, "cuda"); d++) { /* one host */
        info[d] = info[0];
        copy[d] = copy[0];
    }
    for (int d = 0; d < n && rc == CL_OK; d++) {
        su.copy_gbps += copy[d] / n;
        if (d == 0 || copy[d] < copy_min)
            copy_min = copy[d];
    }
    FILE *jf = NULL;
    if (rc == CL_OK && json_out && !(jf = fopen(json_out, "w")))
        rc = cl_err(CL_ERR_IO, "%s: cannot write", json_out);
    if (rc != CL_OK) {
        free(info);
        free(copy);
        return cli_fail(rc);
    }
    su.mem_total = info[0].mem_total;
    FILE *js[2] = {json ? stdout : NULL, jf};
    for (int k = 0; k < 2; k++) {
        if (!js[k])
            continue;
        fprintf(js[k],
                "{\n  \"bench\": \"decode\", \"device\": \"%s\", \"sm_count\": %d, "
                "\"mem_total_bytes\": %zu, \"copy_GBps\": %.1f, \"gemm_bf16_TFLOPs\": %.1f,\n"
                "  \"quick\": %s, \"page_tokens\": %lld, \"steps\": %lld, "
                "\"settle_ms\": %lld,\n",
                info[0].name, info[0].sm_count, info[0].mem_total, su.copy_gbps, gemm,
                quick ? "true" : "false", (long long)page_tokens, (long long)steps,
                (long long)settle_ms);
        if (strcmp(backend, "cuda"))
            fprintf(js[k], "  \"backend\": \"%s\",\n", backend);
        if (n > 1) {
            fprintf(js[k], "  \"tp\": %d, \"copy_GBps_per_device\": [", n);
            for (int d = 0; d < n; d++)
                fprintf(js[k], "%s%.1f", d ? ", " : "", copy[d]);
            fprintf(js[k], "], \"comm_reps\": %lld,\n  \"limit\": \"bytes per step of all "
                           "ranks / (tp x copy_GBps, the mean copy bandwidth of one device)\",\n"
                           "  \"comm\": \"a step's collectives run alone through the comm layer "
                           "(launched directly, not in a graph)\",\n",
                    (long long)coll_reps);
        }
        fprintf(js[k], "  \"results\": [\n");
    }
    if (!json) {
        if (strcmp(backend, "cuda"))
            printf("backend %s: a check of the benchmark itself, not a GPU figure; host copy "
                   "%.0f GB/s (read + write)\n",
                   backend, su.copy_gbps);
        else if (n > 1) {
            printf("devices %d x %s, %.1f GiB each; copy %.0f GB/s per device (read + write; "
                   "slowest %.0f); bf16 GEMM %.0f TFLOP/s (device 0)\n",
                   n, info[0].name, (double)info[0].mem_total / (1 << 30), su.copy_gbps, copy_min,
                   gemm);
            printf("tensor parallel %d: limit = bytes per step of all ranks / (%d x copy bandwidth "
                   "of one device); comm = the step's collectives run alone (2 x layers + 1 "
                   "all-reduces of batch x hidden floats, the logits' all-gather)\n",
                   n, n);
        } else {
            printf("device %s, %.1f GiB; copy %.0f GB/s (read + write); bf16 GEMM %.0f TFLOP/s\n",
                   info[0].name, (double)info[0].mem_total / (1 << 30), su.copy_gbps, gemm);
        }
        printf("%-8s %4s %7s %6s %6s %10s %10s %7s %9s %8s %s%s\n", "preset", "iter", "context",
               "batch", "arith", "tok/s", "limit", "%", "step ms", "GB/step", "graphs cap/rep",
               n > 1 ? "   comm ms  comm %" : "");
    }
    free(info);
    free(copy);
    dec_loop lp = {&su, ctxs, n_ctx, batch, quick, json, {js[0], js[1]}, 1};
    rc = bench_each_model_tp(presets, backend, layers, n > 1 ? n : 0, (int)threads, iters, n_it,
                             decode_model, &lp);
    for (int k = 0; k < 2; k++)
        if (js[k])
            fprintf(js[k], "\n  ]%s\n}\n", rc == CL_OK ? "" : ", \"error\": true");
    if (jf)
        fclose(jf);
    return rc == CL_OK ? 0 : cli_fail(rc);
}
