/* collage bench cpu - CPU prefill and decode tokens/s on mkmodel models, each next
 * to a limit measured in the same run: prefill against 2 x parameters x tokens FLOPs
 * at the OpenBLAS sgemm rate, decode (batch 1) against reading every weight once
 * per token at the measured read bandwidth. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "args.h"
#include "bench.h"
#include "common/log.h"
#include "common/rng.h"
#include "common/status.h"
#include "engine/seq.h"
#include "mkmodel/mkmodel.h"
#include "model/safetensors.h"

static double sgemm_gflops(void)
{
    const int n = 1024;
    float *a = malloc((size_t)n * n * 4), *b = malloc((size_t)n * n * 4), *c = malloc((size_t)n * n * 4);
    for (int i = 0; i < n * n; i++) {
        a[i] = cl_rng_normal(1, (uint64_t)i);
        b[i] = cl_rng_normal(2, (uint64_t)i);
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, n, 1, a, n, b, n, 0, c, n);
    double best = 0;
    for (int r = 0; r < 5; r++) {
        double t = cl_now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, n, 1, a, n, b, n, 0, c, n);
        t = cl_now() - t;
        double g = 2.0 * n * n * (double)n / t / 1e9;
        best = g > best ? g : best;
    }
    free(a);
    free(b);
    free(c);
    return best;
}

/* Read bandwidth: all threads summing a 512 MiB array (what decode does to weights). */
static double read_gbs(void)
{
    size_t n = ((size_t)512 << 20) / sizeof(float);
    float *a = malloc(n * sizeof *a);
    for (size_t i = 0; i < n; i++)
        a[i] = (float)(i & 7);
    double best = 0;
    volatile float sink = 0;
    for (int r = 0; r < 5; r++) {
        double t = cl_now();
        float s = 0;
#pragma omp parallel for reduction(+ : s) schedule(static)
        for (size_t i = 0; i < n; i += 16) { /* 16 independent lanes: vectorisable */
            float l[16];
            for (int k = 0; k < 16; k++)
                l[k] = a[i + (size_t)k];
            float t2 = 0;
            for (int k = 0; k < 16; k++)
                t2 += l[k];
            s += t2;
        }
        t = cl_now() - t;
        sink += s;
        double g = (double)(n * sizeof *a) / t / 1e9;
        best = g > best ? g : best;
    }
    (void)sink;
    free(a);
    return best;
}

typedef struct {
    char preset[32];
    double prefill_tps, decode_tps, prefill_pct, decode_pct;
    int64_t params;
    double weight_mb;
} result;

static int run_one(const char *preset, const char *tmp, int64_t n_prompt, int64_t n_gen,
                   double gflops, double gbs, result *r)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/%s", tmp, preset);
    cl_mkmodel_opts mo = {preset, dir, 1, NULL, NULL, 0, 1};
    CL_TRY(cl_mkmodel(&mo));
    cl_model_opts o;
    cl_model_opts_default(&o);
    o.backend = "cpu";
    cl_model *m;
    CL_TRY(cl_model_load(dir, &o, &m));
    cl_cache *c = NULL;
    cl_seq s = {0};
    int64_t V = m->cfg->vocab_size;
    int32_t *ids = malloc((size_t)n_prompt * sizeof *ids);
    float *logits = malloc((size_t)V * sizeof *logits);
    for (int64_t i = 0; i < n_prompt; i++)
        ids[i] = (int32_t)(cl_mix64((uint64_t)i) % (uint64_t)V);
    int rc = cl_cache_create(m, NULL, &c);
    if (rc == CL_OK)
        rc = cl_seq_init(&s, c);
    /* warm-up, then prefill */
    if (rc == CL_OK)
        rc = cl_seq_feed(m, &s, ids, 16, 0, CL_LOGITS_LAST, logits);
    if (rc == CL_OK)
        rc = cl_seq_reset(&s);
    double t = cl_now();
    if (rc == CL_OK)
        rc = cl_seq_feed(m, &s, ids, n_prompt, 0, CL_LOGITS_LAST, logits);
    double tp = cl_now() - t;
    t = cl_now();
    int32_t tok = ids[0];
    for (int64_t k = 0; k < n_gen && rc == CL_OK; k++) {
        rc = cl_seq_feed(m, &s, &tok, 1, 1, CL_LOGITS_LAST, logits);
        tok = (int32_t)(cl_mix64((uint64_t)k + 99) % (uint64_t)V);
    }
    double td = cl_now() - t;
    snprintf(r->preset, sizeof r->preset, "%s", preset);
    r->params = m->ck.w.n_params;
    r->weight_mb = (double)cl_st_total_bytes(m->ck.st) / 1e6;
    r->prefill_tps = (double)n_prompt / tp;
    r->decode_tps = (double)n_gen / td;
    r->prefill_pct = 100.0 * (2.0 * (double)r->params * r->prefill_tps / 1e9) / gflops;
    r->decode_pct = 100.0 * (r->weight_mb * 1e6 * r->decode_tps / 1e9) / gbs;
    if (c) {
        cl_seq_release(&s);
        cl_cache_free(c);
    }
    free(ids);
    free(logits);
    cl_model_free(m);
    return rc;
}

int bench_cpu(int argc, char **argv)
{
    const char *presets = "tiny-gka,small-gka,small-gdn,small-m2";
    int64_t n_prompt = 512, n_gen = 32;
    int json = 0;
    cli_opt opts[] = {
        {"presets", OPT_STR, &presets, "LIST", "comma-separated mkmodel presets", 0, 0},
        {"prompt", OPT_INT, &n_prompt, "N", "prefill tokens (default 512)", 0, 0},
        {"gen", OPT_INT, &n_gen, "N", "decode steps (default 32)", 0, 0},
        {"json", OPT_FLAG, &json, NULL, "one JSON object on stdout", 0, 0},
        {0},
    };
    cli_spec spec = {"bench cpu", "[--presets LIST] [--prompt N] [--gen N] [--json]",
                     "CPU prefill and decode tokens/s next to the sgemm / memory-bandwidth "
                     "limits.",
                     opts, 0, 0};
    int rc = cli_parse(&spec, argc, argv, NULL, NULL);
    if (rc)
        return rc < 0 ? 0 : rc;
    if (n_prompt < 16 || n_gen < 1)
        return cli_usage_error("bench cpu", "--prompt >= 16 and --gen >= 1");
    char tmp[] = "/tmp/collage-bench-XXXXXX";
    if (!mkdtemp(tmp)) {
        cl_err(CL_ERR_IO, "cannot create a temporary directory");
        return cli_fail(CL_ERR_IO);
    }
    cl_log_info("bench cpu: measuring sgemm rate and memory bandwidth");
    double gflops = sgemm_gflops(), gbs = read_gbs();
    result res[16];
    int n = 0;
    char *list = strdup(presets);
    for (char *save = NULL, *p = strtok_r(list, ",", &save); p && n < 16 && rc == CL_OK;
         p = strtok_r(NULL, ",", &save)) {
        cl_log_info("bench cpu: %s (prompt %lld, decode %lld)", p, (long long)n_prompt,
                    (long long)n_gen);
        rc = run_one(p, tmp, n_prompt, n_gen, gflops, gbs, &res[n]);
        if (rc == CL_OK)
            n++;
    }
    free(list);
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd) != 0)
        cl_log_warn("could not remove %s", tmp);
    if (rc != CL_OK)
        return cli_fail(rc);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (json) {
        printf("{\"threads\":%ld,\"sgemm_gflops\":%.2f,\"read_gbs\":%.2f,\"prompt\":%lld,"
               "\"gen\":%lld,\"models\":[",
               cores, gflops, gbs, (long long)n_prompt, (long long)n_gen);
        for (int i = 0; i < n; i++)
            printf("%s{\"preset\":\"%s\",\"params\":%lld,\"prefill_tok_s\":%.2f,"
                   "\"prefill_pct_of_sgemm\":%.1f,\"decode_tok_s\":%.2f,\"decode_pct_of_bw\":%.1f}",
                   i ? "," : "", res[i].preset, (long long)res[i].params, res[i].prefill_tps,
                   res[i].prefill_pct, res[i].decode_tps, res[i].decode_pct);
        printf("]}\n");
    } else {
        printf("CPU: %ld cores, sgemm %.1f GFLOP/s, read bandwidth %.1f GB/s\n", cores,
               gflops, gbs);
        printf("%-10s %12s %14s %10s %13s %10s\n", "model", "params", "prefill tok/s",
               "% sgemm", "decode tok/s", "% bw");
        for (int i = 0; i < n; i++)
            printf("%-10s %12lld %14.1f %9.1f%% %13.1f %9.1f%%\n", res[i].preset,
                   (long long)res[i].params, res[i].prefill_tps, res[i].prefill_pct,
                   res[i].decode_tps, res[i].decode_pct);
    }
    return 0;
}
