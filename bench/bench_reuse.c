/* collage bench reuse - does reuse pay at real model size? For 8B-shaped models with
 * random bf16 weights made on the GPU (no checkpoint), measured in one run:
 *
 *   compose  a query composed from stored documents (N x L tokens, concat_kv_soup_ssm):
 *            time to first token from the page cache (store streamed), from the host tier
 *            and from the GPU tier, next to the prefill of the documents' concatenation
 *   prefix   a prompt whose all but last token are stored: TTFT from the page cache, the
 *            host tier and the GPU tier, next to its cold prefill
 *   ingest   storing the documents (prefill + write-behind, start-up excluded), next to
 *            prefilling the same documents
 *   ceilings the machine's own: page cache -> page-locked memory (1 and T threads) and
 *            page-locked -> GPU, measured on the same store directory
 *
 * Restore bandwidth = state bytes restored / restore time. Stores go to --dir (a
 * temporary directory under it, removed per model). */
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "args.h"
#include "bench.h"
#include "bench_models.h"
#include "collage.h"
#include "common/log.h"
#include "common/rng.h"
#include "common/status.h"
#include "engine/docs.h"
#include "engine/prefix.h"
#include "engine/state.h"
#include "engine/state_load.h"
#include "mkmodel/model_random.h"

typedef struct {
    const char *dir;
    int64_t prefix_tokens; /* the prefix-hit prompt */
    int threads, quick, json, growable;
    uint64_t gpu_tier, host_tier;
    FILE *js[2];
    int first;
    double ceil_page1, ceil_pageN, ceil_h2d, ceil_disk;
} reuse_setup;

static void fill_ids(int32_t *ids, int64_t n, int64_t V, uint64_t stream)
{
    uint64_t key = cl_rng_key(stream, "bench-reuse");
    for (int64_t i = 0; i < n; i++)
        ids[i] = 1 + (int32_t)(cl_rng_uniform(key, (uint64_t)i) * (float)(V - 2));
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *f)
{
    (void)sb;
    (void)flag;
    (void)f;
    return remove(path);
}

static void rm_tree(const char *dir) { nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS); }

/* One row; parts (may be NULL): a composed query's restore and compose times. */
static void emit_row(reuse_setup *su, const char *preset, const char *what, const char *from,
                     double s, double base_s, double gbps, double target,
                     const cl_compose_info *parts)
{
    double pct = base_s > 0 ? 100.0 * s / base_s : 0;
    if (!su->json)
        printf("%-8s %-26s %-11s %9.3f s %9.3f s %7.1f%% %8.1f %8s\n", preset, what, from, s,
               base_s, pct, gbps, target > 0 ? (pct <= target ? "met" : "missed") : "");
    if (!su->json && parts)
        printf("%-8s   = restore %.3f s + compose %.3f s + query body and first token %.3f s\n",
               "", parts->load_s, parts->compose_s, s - parts->load_s - parts->compose_s);
    for (int k = 0; k < 2; k++)
        if (su->js[k]) {
            fprintf(su->js[k],
                    "%s    {\"preset\": \"%s\", \"what\": \"%s\", \"from\": \"%s\", "
                    "\"seconds\": %.4f, \"baseline_seconds\": %.4f, \"pct_of_baseline\": %.2f, "
                    "\"restore_GBps\": %.2f, \"target_pct\": %.1f",
                    su->first ? "" : ",\n", preset, what, from, s, base_s, pct, gbps, target);
            if (parts)
                fprintf(su->js[k], ", \"restore_s\": %.4f, \"compose_s\": %.4f",
                        parts->load_s, parts->compose_s);
            fputs("}", su->js[k]);
        }
    su->first = 0;
    fflush(stdout);
}

static void emit(reuse_setup *su, const char *preset, const char *what, const char *from,
                 double s, double base_s, double gbps, double target)
{
    emit_row(su, preset, what, from, s, base_s, gbps, target, NULL);
}

/* ---- the machine's ceilings ---- */

static int ceilings(cl_model *m, reuse_setup *su)
{
    cl_backend *b = m->b;
    const size_t bytes = (size_t)1 << 30;
    char path[4200];
    snprintf(path, sizeof path, "%s/ceiling.bin", su->dir);
    char *host = b->ops->host_alloc(b, bytes);
    void *dev = b->ops->alloc(b, bytes);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    int rc = host && dev && fd >= 0 ? CL_OK : cl_err(CL_ERR_NOMEM, "ceiling buffers");
    if (rc == CL_OK) { /* page-locked -> disk, durable (what a full-durability commit pays) */
        memset(host, 0x5a, bytes);
        double t0 = cl_now();
        rc = write(fd, host, bytes) == (ssize_t)bytes && fdatasync(fd) == 0
                 ? CL_OK
                 : cl_err(CL_ERR_IO, "%s: write", path);
        su->ceil_disk = (double)bytes / (cl_now() - t0) / 1e9;
    }
    void *map = rc == CL_OK ? mmap(NULL, bytes, PROT_READ, MAP_SHARED, fd, 0) : MAP_FAILED;
    if (rc == CL_OK && map == MAP_FAILED)
        rc = cl_err(CL_ERR_IO, "%s: mmap", path);
    for (int pass = 0; rc == CL_OK && pass < 2; pass++) { /* page cache -> page-locked */
        int T = pass ? su->threads : 1;
        double best = 1e30;
        for (int rep = 0; rep < 3; rep++) {
            double t0 = cl_now();
#pragma omp parallel for num_threads(T) schedule(static)
            for (int64_t i = 0; i < (int64_t)(bytes >> 20); i++)
                memcpy(host + ((size_t)i << 20), (const char *)map + ((size_t)i << 20),
                       (size_t)1 << 20);
            double dt = cl_now() - t0;
            best = dt < best ? dt : best;
        }
        *(pass ? &su->ceil_pageN : &su->ceil_page1) = (double)bytes / best / 1e9;
    }
    double best = 1e30;
    for (int rep = 0; rc == CL_OK && rep < 4; rep++) { /* page-locked -> GPU */
        uint64_t t;
        double t0 = cl_now();
        rc = b->ops->upload_async(b, dev, host, bytes, &t);
        if (rc == CL_OK)
            rc = b->ops->transfer_wait(b, t);
        double dt = cl_now() - t0;
        best = dt < best ? dt : best;
    }
    su->ceil_h2d = (double)bytes / best / 1e9;
    if (map != MAP_FAILED)
        munmap(map, bytes);
    if (fd >= 0)
        close(fd);
    unlink(path);
    if (host)
        b->ops->host_free(b, host);
    if (dev)
        b->ops->free(b, dev);
    return rc;
}

/* ---- measurements ---- */

static int open_prefix(cl_store *st, cl_model *m, cl_cache *c, uint64_t gpu, uint64_t host,
                       int threads, cl_prefix **p)
{
    cl_prefix_opts po;
    cl_prefix_opts_default(&po);
    po.gpu_tier_bytes = gpu;
    po.host_tier_bytes = host;
    po.io_threads = threads;
    return cl_prefix_create(st, m, c, &po, p);
}

/* Prefill of `n` tokens from an empty state; seconds. */
static int prefill_s(cl_model *m, cl_cache *c, const int32_t *ids, int64_t n, double *s)
{
    cl_seq *q;
    CL_TRY(cl_seq_create(c, &q));
    float *lg = malloc((size_t)m->cfg->vocab_size * sizeof *lg);
    double t0 = cl_now();
    int rc = lg ? cl_seq_feed(m, q, ids, n, 0, CL_LOGITS_LAST, lg)
                : cl_err(CL_ERR_NOMEM, "out of memory");
    *s = cl_now() - t0;
    free(lg);
    cl_seq_free(q);
    return rc;
}

/* TTFT of a composed query: restore + compose + query body + first token. */
static int query_ttft(cl_prefix *p, const cl_key *ids, int n, const int32_t *q, int64_t nq,
                      double *ttft, cl_compose_info *info)
{
    cl_compose_opts co;
    cl_compose_opts_default(&co); /* concat_kv_soup_ssm */
    cl_seq *s;
    CL_TRY(cl_seq_create(p->c, &s));
    float *lg = malloc((size_t)p->m->cfg->vocab_size * sizeof *lg);
    memset(info, 0, sizeof *info);
    double t0 = cl_now();
    int rc = lg ? cl_doc_query(p, ids, n, &co, q, nq, s, info)
                : cl_err(CL_ERR_NOMEM, "out of memory");
    if (rc == CL_OK)
        rc = cl_seq_feed(p->m, s, q + nq - 1, 1, 1, CL_LOGITS_LAST, lg);
    *ttft = cl_now() - t0;
    free(lg);
    cl_seq_free(s);
    return rc;
}

static int bench_compose_case(cl_model *m, cl_cache *c, cl_store *st, reuse_setup *su,
                              const char *preset, int n_docs, int64_t L)
{
    int64_t V = m->cfg->vocab_size, nq = 16;
    int32_t *all = malloc((size_t)(n_docs * L + nq) * sizeof *all);
    cl_doc_input *in = calloc((size_t)n_docs, sizeof *in);
    cl_doc_result *res = calloc((size_t)n_docs, sizeof *res);
    cl_key *ids = calloc((size_t)n_docs, sizeof *ids);
    int rc = all && in && res && ids ? CL_OK : cl_err(CL_ERR_NOMEM, "out of memory");
    if (rc == CL_OK)
        fill_ids(all, n_docs * L + nq, V, (uint64_t)(n_docs * 1000 + L));
    for (int i = 0; i < n_docs; i++)
        in[i] = (cl_doc_input){all + (int64_t)i * L, L, NULL};
    const int32_t *q = all + (int64_t)n_docs * L;
    char what[64];
    snprintf(what, sizeof what, "query %d x %lld docs", n_docs, (long long)L);
    /* baselines: the concatenation (what a query without reuse prefills), and the
     * documents one by one (what ingest must prefill) */
    double concat_s = 0, docs_s = 0, s;
    if (rc == CL_OK)
        rc = prefill_s(m, c, all, (int64_t)n_docs * L + nq, &concat_s);
    for (int i = 0; i < n_docs && rc == CL_OK; i++) {
        rc = prefill_s(m, c, in[i].ids, L, &s);
        docs_s += s;
    }
    /* ingest (write-behind; returns when the last document is committed) */
    cl_prefix *p = NULL;
    if (rc == CL_OK)
        rc = open_prefix(st, m, c, 0, 0, su->threads, &p);
    double t0 = cl_now();
    if (rc == CL_OK)
        rc = cl_doc_ingest(p, NULL, 0, in, n_docs, NULL, res);
    double ingest_s = cl_now() - t0;
    cl_prefix_free(p);
    p = NULL;
    for (int i = 0; i < n_docs; i++)
        ids[i] = res[i].id;
    uint64_t state_bytes = (uint64_t)n_docs * ((uint64_t)cl_state_kv_bytes(c, L) +
                                               (uint64_t)cl_state_ssm_bytes(c, 1));
    if (rc == CL_OK) {
        snprintf(what, sizeof what, "ingest %d x %lld docs", n_docs, (long long)L);
        emit(su, preset, what, "(prefill+store)", ingest_s, docs_s, 0, 130);
        /* the floor a durable store allows: the prefill or writing the states to this disk
         * (the write + fdatasync ceiling), whichever is longer */
        double disk_s = su->ceil_disk > 0 ? (double)state_bytes / (su->ceil_disk * 1e9) : 0;
        emit(su, preset, "ingest floor (disk)", "(ceiling)", disk_s > docs_s ? disk_s : docs_s,
             docs_s, 0, 0);
        snprintf(what, sizeof what, "query %d x %lld docs", n_docs, (long long)L);
    }
    /* from the page cache (the store was just written: its pages are cached), the host
     * tier and the GPU tier: the first query warms up (and fills the tier), the second is
     * measured */
    const struct {
        const char *from;
        uint64_t gpu, host;
        double target;
    } tiers[] = {{"page cache", 0, 0, 10},
                 {"host tier", 0, su->host_tier, 10},
                 {"GPU tier", su->gpu_tier, 0, 2}};
    for (int t = 0; t < 3 && rc == CL_OK; t++) {
        if (t && !tiers[t].gpu && !tiers[t].host)
            continue; /* that tier skipped (budget 0) */
        double ttft = 0;
        cl_compose_info qi;
        rc = open_prefix(st, m, c, tiers[t].gpu, tiers[t].host, su->threads, &p);
        for (int k = 0; k < 2 && rc == CL_OK; k++)
            rc = query_ttft(p, ids, n_docs, q, nq, &ttft, &qi);
        if (rc == CL_OK)
            emit_row(su, preset, what, tiers[t].from, ttft, concat_s,
                     tiers[t].gpu ? 0 : (double)state_bytes / qi.load_s / 1e9, tiers[t].target,
                     &qi);
        cl_prefix_free(p);
        p = NULL;
    }
    free(all);
    free(in);
    free(res);
    free(ids);
    return rc;
}

/* A prompt of n tokens stored but its last token: TTFT = restore + last token. */
static int prefix_ttft(cl_prefix *p, const int32_t *ids, int64_t n, double *ttft, double *load,
                       int64_t *cached)
{
    cl_seq *s;
    CL_TRY(cl_seq_create(p->c, &s));
    float *lg = malloc((size_t)p->m->cfg->vocab_size * sizeof *lg);
    double t0 = cl_now();
    int rc = lg ? cl_prefix_restore(p, s, ids, n - 1, cached) : cl_err(CL_ERR_NOMEM, "memory");
    *load = cl_now() - t0;
    if (rc == CL_OK)
        rc = cl_seq_feed(p->m, s, ids + *cached, n - *cached, 0, CL_LOGITS_LAST, lg);
    *ttft = cl_now() - t0;
    free(lg);
    cl_seq_free(s);
    return rc;
}

static int bench_prefix_case(cl_model *m, cl_cache *c, cl_store *st, reuse_setup *su,
                             const char *preset)
{
    int64_t n = su->prefix_tokens, V = m->cfg->vocab_size;
    int32_t *ids = malloc((size_t)n * sizeof *ids);
    if (!ids)
        return cl_err(CL_ERR_NOMEM, "out of memory");
    fill_ids(ids, n, V, 77);
    double cold = 0, ttft, load;
    int64_t cached = 0;
    int rc = prefill_s(m, c, ids, n, &cold);
    /* store it: prefill all but the last token, then blocks + the snapshot there */
    cl_prefix *p = NULL;
    if (rc == CL_OK)
        rc = open_prefix(st, m, c, 0, 0, su->threads, &p);
    cl_seq *s = NULL;
    if (rc == CL_OK)
        rc = cl_seq_create(c, &s);
    if (rc == CL_OK)
        rc = cl_seq_feed(m, s, ids, n - 1, 0, CL_LOGITS_NONE, NULL);
    double t0 = cl_now();
    if (rc == CL_OK)
        rc = cl_prefix_store(p, s, ids, n - 1);
    if (rc == CL_OK)
        rc = cl_prefix_flush(p);
    double store_s = cl_now() - t0;
    cl_seq_free(s);
    cl_prefix_free(p);
    p = NULL;
    char what[64];
    snprintf(what, sizeof what, "prefix hit %lld", (long long)n);
    uint64_t bytes = (uint64_t)cl_state_kv_bytes(c, n - 1) + (uint64_t)cl_state_ssm_bytes(c, 0);
    if (rc == CL_OK)
        emit(su, preset, "prefix store (after prefill)", "(store)", store_s, cold, 0, 0);
    if (rc == CL_OK)
        rc = open_prefix(st, m, c, 0, 0, su->threads, &p);
    if (rc == CL_OK)
        rc = prefix_ttft(p, ids, n, &ttft, &load, &cached); /* warm-up */
    if (rc == CL_OK)
        rc = prefix_ttft(p, ids, n, &ttft, &load, &cached);
    if (rc == CL_OK && cached != n - 1)
        rc = cl_err(CL_ERR_INTERNAL, "prefix: %lld of %lld cached", (long long)cached,
                    (long long)n - 1);
    if (rc == CL_OK)
        emit(su, preset, what, "page cache", ttft, cold, (double)bytes / load / 1e9, 8);
    cl_prefix_free(p);
    p = NULL;
    /* the tiers hold states offered when stored: fill them by storing again */
    for (int tier = 0; tier < 2 && rc == CL_OK; tier++) {
        uint64_t g = tier == 1 ? su->gpu_tier : 0, h = tier == 0 ? su->host_tier : 0;
        if (!g && !h)
            continue;
        rc = open_prefix(st, m, c, g, h, su->threads, &p);
        cl_seq *s2 = NULL;
        if (rc == CL_OK)
            rc = cl_seq_create(c, &s2);
        if (rc == CL_OK)
            rc = cl_prefix_restore(p, s2, ids, n - 1, &cached); /* from the store */
        if (rc == CL_OK)
            rc = cl_prefix_store(p, s2, ids, n - 1); /* offered to the tier */
        cl_seq_free(s2);
        if (rc == CL_OK)
            rc = prefix_ttft(p, ids, n, &ttft, &load, &cached);
        if (rc == CL_OK)
            emit(su, preset, what, tier ? "GPU tier" : "host tier", ttft, cold,
                 tier ? 0 : (double)bytes / load / 1e9, tier ? 2 : 8);
        cl_prefix_free(p);
        p = NULL;
    }
    free(ids);
    return rc;
}

typedef struct {
    reuse_setup *su;
    int64_t (*cases)[2];
    int n_cases;
} reuse_loop;

static int reuse_model(void *user, cl_model *m, const char *preset, int64_t num_iter, int it)
{
    (void)num_iter;
    (void)it;
    reuse_loop *lp = user;
    reuse_setup *su = lp->su;
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/store-%s", su->dir, preset);
    rm_tree(dir);
    cl_cache_opts co;
    cl_cache_opts_for_model(m, &co);
    if (!su->growable) { /* a GPU: 70% of what is free; the rest for staging and activations */
        co.growable = 0;
        co.init_pages = 0;
        co.memory_fraction = 0.7;
        co.init_slots = 48;
    }
    co.track_transition = 1;
    cl_cache *c = NULL;
    cl_store *st = NULL;
    int rc = cl_cache_create(m, &co, &c);
    cl_store_opts so;
    memset(&so, 0, sizeof so);
    if (rc == CL_OK)
        rc = cl_store_open(dir, &so, &st);
    if (rc == CL_OK && su->ceil_h2d == 0) {
        rc = ceilings(m, su);
        if (rc == CL_OK && !su->json)
            printf("ceilings: page cache -> page-locked %.1f GB/s (1 thread), %.1f GB/s (%d "
                   "threads); page-locked -> GPU %.1f GB/s; write + fdatasync to the store's "
                   "disk %.2f GB/s\n",
                   su->ceil_page1, su->ceil_pageN, su->threads, su->ceil_h2d, su->ceil_disk);
    }
    for (int k = 0; k < lp->n_cases && rc == CL_OK; k++)
        rc = bench_compose_case(m, c, st, su, preset, (int)lp->cases[k][0], lp->cases[k][1]);
    if (rc == CL_OK)
        rc = bench_prefix_case(m, c, st, su, preset);
    if (st)
        cl_store_close(st);
    cl_cache_free(c);
    rm_tree(dir);
    return rc;
}

int bench_reuse(int argc, char **argv)
{
    const char *presets = "gdn-8b,m2-8b,gka-8b", *dir = NULL, *json_out = NULL,
               *backend = "cuda";
    int64_t prefix = 33024, threads = 0, layers = 0, gpu_tier_gib = 48, host_tier_gib = 24,
            doc_tokens = 16384;
    int quick = 0, json = 0;
    cli_opt opts[] = {
        {"preset", OPT_STR, &presets, "NAMES", "comma-separated presets (default gdn-8b,m2-8b,gka-8b)", 0, 0},
        {"dir", OPT_STR, &dir, "DIR", "where the stores go (default: $TMPDIR or /tmp)", 0, 0},
        {"backend", OPT_STR, &backend, "NAME", "cuda (default) or cpu (small presets: a check)", 0, 0},
        {"prefix-tokens", OPT_INT, &prefix, "N", "prompt of the prefix hit (default 33024)", 2, 1048576},
        {"doc-tokens", OPT_INT, &doc_tokens, "N",
         "tokens of each of the 4 documents (default 16384; 8 and 16 documents get 1/2, 1/4)", 64,
         1048576},
        {"threads", OPT_INT, &threads, "N", "threads copying restores (default: cores, <= 16)", 0, 256},
        {"gpu-tier-gib", OPT_INT, &gpu_tier_gib, "N", "GPU tier budget (default 48; 0: skip)", 0, 1024},
        {"host-tier-gib", OPT_INT, &host_tier_gib, "N", "host tier budget (default 24; 0: skip)", 0, 4096},
        {"layers", OPT_INT, &layers, "N", "layer count override (0: preset)", 0, 1024},
        {"quick", OPT_FLAG, &quick, NULL, "4 x 16K documents only (one device call)", 0, 0},
        {"json", OPT_FLAG, &json, NULL, "one JSON object on stdout", 0, 0},
        {"json-out", OPT_STR, &json_out, "F", "also write the JSON to F", 0, 0},
        {0},
    };
    cli_spec spec = {"bench reuse", "[--preset P] [--quick] [--json]",
                     "Composed queries, prefix hits and ingest at model size, from the page\n"
                     "cache and the hot tiers, next to prefilling the same tokens.",
                     opts, 0, 0};
    int rc = cli_parse(&spec, argc, argv, NULL, NULL);
    if (rc)
        return rc < 0 ? 0 : rc;
    char base[4096];
    const char *tmp = dir ? dir : getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(base, sizeof base, "%s/collage-bench-reuse.%d", tmp, (int)getpid());
    if (mkdir(base, 0700) != 0)
        return cli_fail(cl_err(CL_ERR_IO, "%s: cannot create", base));
    int64_t all_cases[3][2] = {{4, doc_tokens}, {8, doc_tokens / 2}, {16, doc_tokens / 4}};
    reuse_setup su;
    memset(&su, 0, sizeof su);
    su.dir = base;
    su.prefix_tokens = prefix;
    su.threads = cl_state_io_threads((int)threads);
    su.quick = quick;
    su.json = json;
    su.gpu_tier = (uint64_t)gpu_tier_gib << 30;
    su.host_tier = (uint64_t)host_tier_gib << 30;
    su.first = 1;
    FILE *jf = json_out ? fopen(json_out, "w") : NULL;
    if (json_out && !jf)
        return cli_fail(cl_err(CL_ERR_IO, "%s: cannot write", json_out));
    su.js[0] = json ? stdout : NULL;
    su.js[1] = jf;
    for (int k = 0; k < 2; k++)
        if (su.js[k])
            fprintf(su.js[k], "{\n  \"bench\": \"reuse\", \"quick\": %s, \"threads\": %d,\n"
                              "  \"results\": [\n",
                    quick ? "true" : "false", su.threads);
    if (!json)
        printf("%-8s %-26s %-11s %11s %11s %8s %8s %s\n", "preset", "what", "from", "time",
               "baseline", "%", "GB/s", "target");
    reuse_loop lp = {&su, all_cases, quick ? 1 : 3};
    int64_t iters[1] = {30};
    su.growable = !strcmp(backend, "cpu");
    rc = bench_each_model(presets, backend, layers, iters, 1, reuse_model, &lp);
    for (int k = 0; k < 2; k++)
        if (su.js[k])
            fprintf(su.js[k],
                    "\n  ],\n  \"ceilings_GBps\": {\"page_cache_to_pinned_1\": %.2f, "
                    "\"page_cache_to_pinned_N\": %.2f, \"pinned_to_gpu\": %.2f}%s\n}\n",
                    su.ceil_page1, su.ceil_pageN, su.ceil_h2d,
                    rc == CL_OK ? "" : ", \"error\": true");
    if (jf)
        fclose(jf);
    rm_tree(base);
    return rc == CL_OK ? 0 : cli_fail(rc);
}
