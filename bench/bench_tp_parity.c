/* collage bench tp-parity - tensor-parallel models against the unsharded one, on
 * random-weight presets (no checkpoint on disk: 32B presets would need 65 GB files).
 *
 * The reference is the model made in backend memory (mkmodel/model_random.h), run
 * unsharded. Each TP size loads the same weights (the host-memory checkpoint of
 * bench_tp.h, same generator and keys) through the engine's sharded loader, over N
 * ranks (CUDA: N GPUs; CPU: N thread groups). Both run the same work: two sequences'
 * prompts (the first fed in two calls), then batched decode steps of both with forced
 * tokens (the same inputs whatever the logits say). Every logits row is compared: its
 * largest |difference| over the reference row's largest |logit|; the worst row of the
 * prefill and of the decode steps is printed, with how many rows have the same argmax.
 *
 * Tolerances (--tol overrides): fp32 models on the CPU 1e-5 and on a GPU 1e-4 (the
 * sums differ only in order); 16-bit models 3e-2. There the GEMM inputs are rounded
 * to bf16 (8 significant bits, one ulp = 2^-8 relative): tensor parallelism changes
 * the order of the sums of the row-parallel products (o_proj / out_proj, down_proj:
 * each rank sums its part of the inner dimension, the all-reduce adds the parts in
 * fp32), and a sum that moves by one fp32 ulp may round one bf16 ulp apart when it
 * feeds the next projection. Such one-ulp differences (4e-3 of a value) enter every
 * layer; 3e-2 of the largest logit is what the single-GPU parity allows bf16 8B shapes
 * between the CUDA and CPU backends (scripts/gpu/parity.sh), whose sums differ in order
 * the same way. A split that is wrong (a head, a slice or a collective misplaced) moves
 * the logits by their own size. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "bench.h"
#include "bench_models.h"
#include "bench_tp.h"
#include "common/log.h"
#include "common/status.h"
#include "engine/seq.h"
#include "mkmodel/model_random.h"
#ifdef COLLAGE_HAVE_CUDA
#include "backend/cuda.h"
#endif

typedef struct {
    int64_t prompt, decode, page_tokens;
} work;

/* Rows of logits the work gives: the two prompts' last tokens, then both sequences at
 * every decode step. */
static int64_t work_rows(const work *w) { return 2 + 2 * w->decode; }

/* Runs the work on m; out: [work_rows, V] logits. */
static int run_work(cl_model *m, const work *w, float *out)
{
    int64_t V = m->cfg->vocab_size, P = w->prompt, PB = w->prompt / 2 + 3;
    cl_cache_opts co;
    cl_cache_opts_for_model(m, &co);
    co.page_tokens = w->page_tokens;
    co.growable = 0;
    co.init_pages = 2 * ((P + w->decode) / w->page_tokens + 2);
    co.init_slots = 2;
    cl_cache *c = NULL;
    CL_TRY(cl_cache_create(m, &co, &c));
    cl_seq a, b;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    int32_t *ids = malloc((size_t)P * sizeof *ids);
    int rc = ids ? CL_OK : cl_err(CL_ERR_NOMEM, "out of memory");
    if (rc == CL_OK)
        rc = cl_seq_init(&a, c);
    if (rc == CL_OK)
        rc = cl_seq_init(&b, c);
    for (int64_t i = 0; ids && i < P; i++)
        ids[i] = (int32_t)((i * 7919 + 11) % V);
    /* the first prompt in two forward calls, the second in one */
    if (rc == CL_OK)
        rc = cl_seq_feed(m, &a, ids, P, P > 1 ? (P + 1) / 2 : 1, CL_LOGITS_LAST, out);
    for (int64_t i = 0; ids && i < PB && i < P; i++)
        ids[i] = (int32_t)((i * 104729 + 7) % V);
    if (rc == CL_OK)
        rc = cl_seq_feed(m, &b, ids, PB < P ? PB : P, 0, CL_LOGITS_LAST, out + V);
    cl_seq *both[2] = {&a, &b};
    for (int64_t k = 0; k < w->decode && rc == CL_OK; k++) {
        int32_t tok[2] = {(int32_t)((k * 31 + 5) % V), (int32_t)((k * 37 + 9) % V)};
        rc = cl_seq_decode_batch(m, both, tok, 2, out + (2 + 2 * k) * V);
    }
    if (a.c)
        cl_seq_release(&a);
    if (b.c)
        cl_seq_release(&b);
    cl_cache_free(c);
    free(ids);
    return rc;
}

typedef struct {
    double prefill_rel, decode_rel;
    int64_t argmax_same, rows;
} cmp_result;

static int64_t argmax(const float *x, int64_t n)
{
    int64_t best = 0;
    for (int64_t i = 1; i < n; i++)
        if (x[i] > x[best])
            best = i;
    return best;
}

/* Each row's largest |a - ref| over its largest |ref|; the worst prefill and decode
 * rows. A non-finite value counts as infinitely far. */
static void compare(const float *a, const float *ref, int64_t rows, int64_t V, cmp_result *r)
{
    memset(r, 0, sizeof *r);
    r->rows = rows;
    for (int64_t i = 0; i < rows; i++) {
        const float *x = a + i * V, *y = ref + i * V;
        double dmax = 0, ymax = 0;
        for (int64_t j = 0; j < V; j++) {
            double d = fabs((double)x[j] - (double)y[j]);
            if (!isfinite(d))
                d = INFINITY;
            if (d > dmax)
                dmax = d;
            if (fabs((double)y[j]) > ymax)
                ymax = fabs((double)y[j]);
        }
        double rel = ymax > 0 ? dmax / ymax : dmax;
        double *worst = i < 2 ? &r->prefill_rel : &r->decode_rel;
        if (rel > *worst || isnan(rel))
            *worst = rel;
        r->argmax_same += argmax(x, V) == argmax(y, V);
    }
}

typedef struct {
    const char *backend;
    int threads;
    const int64_t *tps;
    int n_tp;
    work w;
    double tol; /* <= 0: by dtype and backend */
    int64_t num_iter, layers;
    const char *dtype;
    int json;
    FILE *js[2];
    int first, failed;
} par_loop;

static double default_tol(const cl_config *cf, const char *backend)
{
    if (cf->dtype != CL_F32)
        return 3e-2;
    return !strcmp(backend, "cpu") ? 1e-5 : 1e-4;
}

static const char *dtype_short(cl_dtype d)
{
    return d == CL_BF16 ? "bf16" : d == CL_F16 ? "f16" : "fp32";
}

static int parity_preset(par_loop *lp, const char *preset)
{
    cl_random_model_opts mo;
    cl_random_model_opts_default(&mo);
    mo.preset = preset;
    mo.backend = lp->backend;
    mo.threads = lp->threads;
    mo.dtype = lp->dtype;
    mo.layers = lp->layers;
    mo.seed = 1;
    mo.gka_num_iter = lp->num_iter;
    /* the reference first, alone on its device */
    double t0 = cl_now();
    cl_model *ref_m = NULL;
    CL_TRY(cl_model_create_random(&mo, &ref_m));
    int64_t V = ref_m->cfg->vocab_size, rows = work_rows(&lp->w);
    double tol = lp->tol > 0 ? lp->tol : default_tol(ref_m->cfg, lp->backend);
    cl_dtype dt = ref_m->cfg->dtype;
    int64_t n_layers = ref_m->cfg->num_layers, iters = ref_m->gka_num_iter;
    int gka = 0;
    for (int64_t l = 0; l < n_layers; l++)
        gka |= ref_m->cfg->layer_types[l] == CL_LAYER_GKA;
    float *ref = malloc((size_t)(rows * V) * sizeof *ref);
    float *got = malloc((size_t)(rows * V) * sizeof *got);
    int rc = ref && got ? run_work(ref_m, &lp->w, ref) : cl_err(CL_ERR_NOMEM, "out of memory");
    cl_model_free(ref_m);
    double ref_s = cl_now() - t0;
    if (rc == CL_OK)
        cl_log_info("tp-parity %s: reference (unsharded) in %.1f s", preset, ref_s);
    bench_image *im = NULL;
    if (rc == CL_OK)
        rc = bench_image_create(&mo, &im);
    if (rc == CL_OK)
        cl_log_info("tp-parity %s: host checkpoint %.2f GB in %.1f s", preset,
                    (double)bench_image_bytes(im) / 1e9, bench_image_seconds(im));
    for (int i = 0; i < lp->n_tp && rc == CL_OK; i++) {
        int tp = (int)lp->tps[i];
        t0 = cl_now();
        cl_model *m = NULL;
        rc = bench_image_model(im, lp->backend, lp->threads, tp, lp->num_iter, &m);
        double load_s = cl_now() - t0;
        t0 = cl_now();
        if (rc == CL_OK)
            rc = run_work(m, &lp->w, got);
        double run_s = cl_now() - t0;
        cl_model_free(m);
        if (rc != CL_OK) {
            rc = cl_err_prefix(rc, "%s at tp %d", preset, tp);
            break;
        }
        cmp_result cr;
        compare(got, ref, rows, V, &cr);
        int ok = cr.prefill_rel <= tol && cr.decode_rel <= tol;
        lp->failed |= !ok;
        if (!lp->json)
            printf("%-10s %-5s %6lld %3d %12.2e %12.2e %7lld/%-4lld %9.1e  %s\n", preset,
                   dtype_short(dt), (long long)n_layers, tp, cr.prefill_rel, cr.decode_rel,
                   (long long)cr.argmax_same, (long long)cr.rows, tol, ok ? "ok" : "FAIL");
        for (int k = 0; k < 2; k++)
            if (lp->js[k])
                fprintf(lp->js[k],
                        "%s    {\"preset\": \"%s\", \"dtype\": \"%s\", \"layers\": %lld, "
                        "\"num_iter\": %lld, \"tp\": %d, \"prefill_rel\": %.3e, "
                        "\"decode_rel\": %.3e, \"argmax_same\": %lld, \"rows\": %lld, "
                        "\"tol\": %.1e, \"ok\": %s, \"load_s\": %.1f, \"run_s\": %.2f}",
                        lp->first ? "" : ",\n", preset, dtype_short(dt), (long long)n_layers,
                        (long long)(gka ? iters : 0), tp, cr.prefill_rel,
                        cr.decode_rel, (long long)cr.argmax_same, (long long)cr.rows, tol,
                        ok ? "true" : "false", load_s, run_s);
        lp->first = 0;
        fflush(stdout);
    }
    bench_image_free(im);
    free(ref);
    free(got);
    return rc;
}

int bench_tp_parity(int argc, char **argv)
{
    const char *presets = "gdn-32b,gka-32b", *tp_arg = "2,4,8", *backend = "cuda";
    const char *dtype = NULL, *json_out = NULL;
    int64_t prompt = 64, decode = 8, threads = 0, num_iter = -1, layers = 0, page_tokens = 16;
    double tol = 0;
    int json = 0;
    cli_opt opts[] = {
        {"preset", OPT_STR, &presets, "NAMES", "comma-separated presets (default gdn-32b,gka-32b)", 0, 0},
        {"tp", OPT_STR, &tp_arg, "LIST", "tensor-parallel sizes to check (default 2,4,8)", 0, 0},
        {"backend", OPT_STR, &backend, "NAME", "cuda (rank r on GPU r) or cpu (default cuda)", 0, 0},
        {"dtype", OPT_STR, &dtype, "T", "weights: float32, bfloat16 or float16 (default: the preset's)", 0, 0},
        {"layers", OPT_INT, &layers, "N", "layer count override (0: the preset's)", 0, 4096},
        {"num-iter", OPT_INT, &num_iter, "N", "GKA num_iter (default: the config's, 30)", 0, 1000},
        {"prompt", OPT_INT, &prompt, "N", "tokens of the first prompt (default 64)", 2, 1 << 20},
        {"decode", OPT_INT, &decode, "N", "batched decode steps (default 8)", 0, 1 << 16},
        {"page-tokens", OPT_INT, &page_tokens, "N", "KV page size (default 16)", 1, 1 << 16},
        {"tol", OPT_FLOAT, &tol, "X",
         "largest |difference| over the largest |logit| allowed (default: 1e-5 fp32 on the "
         "CPU, 1e-4 fp32 on a GPU, 3e-2 bf16/f16)", 0, 1},
        {"threads", OPT_INT, &threads, "N", "CPU threads (0: all cores)", 0, 1024},
        {"json", OPT_FLAG, &json, NULL, "one JSON object on stdout", 0, 0},
        {"json-out", OPT_STR, &json_out, "FILE", "also write the JSON object to FILE", 0, 0},
        {0},
    };
    cli_spec spec = {"bench tp-parity", "[--preset P] [--tp 2,4,8] [--backend cuda|cpu]",
                     "Tensor-parallel logits vs the unsharded model on random-weight presets: "
                     "prefill and batched decode, each TP size against TP 1.",
                     opts, 0, 0};
    int rc = cli_parse(&spec, argc, argv, NULL, NULL);
    if (rc)
        return rc < 0 ? 0 : rc;
    int64_t tps[8];
    int n_tp = bench_parse_list(tp_arg, tps, 8);
    if (n_tp <= 0)
        return cli_usage_error("bench tp-parity", "--tp: comma-separated integers");
    for (int i = 0; i < n_tp; i++)
        if (tps[i] < 1 || tps[i] > 64)
            return cli_usage_error("bench tp-parity", "--tp: sizes must be in [1, 64] (got %lld)",
                                   (long long)tps[i]);
    if (strcmp(backend, "cpu") && strcmp(backend, "cuda"))
        return cli_usage_error("bench tp-parity", "--backend: cpu or cuda (got '%s')", backend);
    if (!strcmp(backend, "cuda")) { /* every rank on a GPU of its own */
        int64_t most = 1;
        for (int i = 0; i < n_tp; i++)
            most = tps[i] > most ? tps[i] : most;
#ifdef COLLAGE_HAVE_CUDA
        int visible = cl_cuda_device_count();
        if (visible < most)
            return cli_fail(cl_err(CL_ERR_UNSUPPORTED,
                                   "bench tp-parity: --tp %lld needs %lld CUDA devices (%d "
                                   "visible)",
                                   (long long)most, (long long)most, visible));
#else
        return cli_fail(cl_err(CL_ERR_UNSUPPORTED, "bench tp-parity: --backend cuda needs the "
                                                   "CUDA backend (this build has none)"));
#endif
    }
    FILE *jf = NULL;
    if (json_out && !(jf = fopen(json_out, "w")))
        return cli_fail(cl_err(CL_ERR_IO, "%s: cannot write", json_out));
    par_loop lp = {backend, (int)threads, tps, n_tp, {prompt, decode, page_tokens}, tol,
                   num_iter, layers, dtype, json, {json ? stdout : NULL, jf}, 1, 0};
    for (int k = 0; k < 2; k++)
        if (lp.js[k])
            fprintf(lp.js[k],
                    "{\n  \"bench\": \"tp-parity\", \"backend\": \"%s\", \"prompt\": %lld, "
                    "\"decode\": %lld,\n  \"metric\": \"largest |logit - reference| over the "
                    "reference's largest |logit|, worst row\",\n  \"results\": [\n",
                    backend, (long long)prompt, (long long)decode);
    if (!json) {
        printf("tp-parity on %s: TP N vs TP 1 (unsharded); logits of 2 prompts (%lld and %lld "
               "tokens) and %lld batched decode steps; rel = largest |difference| / largest "
               "|logit|, worst row\n",
               backend, (long long)prompt, (long long)(prompt / 2 + 3 < prompt ? prompt / 2 + 3 : prompt),
               (long long)decode);
        printf("%-10s %-5s %6s %3s %12s %12s %12s %9s\n", "preset", "dtype", "layers", "tp",
               "prefill rel", "decode rel", "argmax same", "tol");
    }
    char *plist = strdup(presets);
    rc = plist ? CL_OK : cl_err(CL_ERR_NOMEM, "out of memory");
    for (char *save = NULL, *p = plist ? strtok_r(plist, ",", &save) : NULL; p && rc == CL_OK;
         p = strtok_r(NULL, ",", &save))
        rc = parity_preset(&lp, p);
    free(plist);
    for (int k = 0; k < 2; k++)
        if (lp.js[k])
            fprintf(lp.js[k], "\n  ]%s, \"ok\": %s\n}\n", rc == CL_OK ? "" : ", \"error\": true",
                    rc == CL_OK && !lp.failed ? "true" : "false");
    if (jf)
        fclose(jf);
    if (rc != CL_OK)
        return cli_fail(rc);
    if (lp.failed) {
        fprintf(stderr, "collage: bench tp-parity: logits beyond the tolerance (rows marked "
                        "FAIL)\n");
        return 1;
    }
    return 0;
}
