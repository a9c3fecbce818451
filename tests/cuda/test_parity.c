/* test_parity - the CUDA backend computes what the CPU backend computes: for
 * each model, logits through prefill (one call, and many small calls that start
 * from non-zero states), token-by-token decode (CUDA graphs), batched decode of
 * sequences at different lengths, the SSM/KV state after the prompt, and decode
 * after a snapshot/restore round trip; fp32 models within 1e-4 (and the golden
 * cases within their tolerance of the reference), bf16 tiny models within 2e-2
 * (2-layer 8B shapes within 3e-2, see test_8b_shapes).
 * Skips (77) without a GPU. Prints a table last.
 *
 * Models: the golden checkpoints (COLLAGE_SHARED/golden/<case>), mkmodel tiny
 * presets in fp32 and bf16 (written to COLLAGE_TMP), and 2-layer random models
 * of the 8B shapes (head dim 128: the tensor-core attention, D = 128 kernels).
 * COLLAGE_PARITY_ONLY=substring restricts the cases.
 * `test_parity compare A.safetensors B.safetensors TOL` compares two 'logits'
 * files (the parity script's CLI check). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/status.h"
#include "engine/seq.h"
#include "engine/state.h"
#include "mkmodel/mkmodel.h"
#include "model/model.h"
#include "mkmodel/model_random.h"
#include "testutil.h"
#ifdef COLLAGE_HAVE_CUDA
#include "backend/cuda.h"
#endif

/* ------------------------------------------------------------ result table */

typedef struct {
    char model[48], check[40];
    double err, tol;
} row;

static row table[512];
static int n_rows, n_fail;

static void report(const char *model, const char *check, double err, double tol)
{
    int ok = err <= tol;
    if (n_rows < (int)(sizeof table / sizeof table[0])) {
        row *r = &table[n_rows++];
        snprintf(r->model, sizeof r->model, "%s", model);
        snprintf(r->check, sizeof r->check, "%s", check);
        r->err = err;
        r->tol = tol;
    }
    if (!ok)
        n_fail++;
    print_message("    %-28s %-30s %.3g (tol %.0e) %s\n", model, check, err, tol,
                  ok ? "ok" : "FAIL");
}

/* ------------------------------------------------------------ model runs */

typedef struct {
    cl_model *m;
    cl_cache *c;
} engine;

static void engine_open(engine *e, cl_model *m)
{
    e->m = m;
    cl_cache_opts o;
    cl_cache_opts_for_model(m, &o);
    o.track_transition = 1; /* exercise the GDN transition product too */
    assert_int_equal(cl_cache_create(m, &o, &e->c), 0);
}

static void engine_close(engine *e)
{
    cl_cache_free(e->c);
    cl_model_free(e->m);
}

static float *prefill(engine *e, const int32_t *ids, int64_t n, int64_t chunk, cl_seq *s)
{
    int64_t V = e->m->cfg->vocab_size;
    float *lg = malloc((size_t)(n * V) * sizeof *lg);
    assert_non_null(lg);
    assert_int_equal(cl_seq_init(s, e->c), 0);
    int rc = cl_seq_feed(e->m, s, ids, n, chunk, CL_LOGITS_ALL, lg);
    if (rc)
        fail_msg("prefill: %s", cl_errmsg());
    return lg;
}

static float *decode_each(engine *e, const int32_t *ids, int64_t n)
{
    int64_t V = e->m->cfg->vocab_size;
    float *lg = malloc((size_t)(n * V) * sizeof *lg);
    cl_seq s;
    assert_int_equal(cl_seq_init(&s, e->c), 0);
    for (int64_t t = 0; t < n; t++) {
        int rc = cl_seq_feed(e->m, &s, ids + t, 1, 1, CL_LOGITS_LAST, lg + t * V);
        if (rc)
            fail_msg("decode: %s", cl_errmsg());
    }
    cl_seq_release(&s);
    return lg;
}

/* SSM state + KV of a sequence as fp32 host arrays. */
static float *read_state(engine *e, const cl_seq *s, size_t *n_ssm, size_t *n_kv)
{
    size_t sb = cl_state_ssm_bytes(e->c, 1), kb = cl_state_kv_bytes(e->c, s->kv_len);
    cl_dtype kd = e->c->kv_dtype;
    size_t kv_elems = kb / cl_dtype_size(kd);
    float *out = malloc(sb + kv_elems * sizeof(float) + 16);
    void *kraw = malloc(kb + 16);
    assert_int_equal(cl_state_read_ssm(s, out, 1), 0);
    assert_int_equal(cl_state_read_kv(s, 0, s->kv_len, kraw), 0);
    cl_convert_to_f32(out + sb / 4, kraw, kd, kv_elems);
    free(kraw);
    *n_ssm = sb / 4;
    *n_kv = kv_elems;
    return out;
}

/* Batched decode: three sequences at different lengths, `steps` forced tokens. */
static float *batch_decode(engine *e, const int32_t *ids, int64_t n, int steps)
{
    int64_t V = e->m->cfg->vocab_size, len[3] = {n, n - 17, n / 2};
    cl_seq s[3];
    cl_seq *sp[3] = {&s[0], &s[1], &s[2]};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(cl_seq_init(&s[i], e->c), 0);
        assert_int_equal(cl_seq_feed(e->m, &s[i], ids, len[i], 0, CL_LOGITS_NONE, NULL), 0);
    }
    float *lg = malloc((size_t)(steps * 3 * V) * sizeof *lg);
    for (int k = 0; k < steps; k++) {
        int32_t tok[3] = {ids[(k * 7) % n], ids[(k * 11 + 3) % n], ids[(k * 13 + 5) % n]};
        int rc = cl_seq_decode_batch(e->m, sp, tok, 3, lg + (size_t)k * 3 * V);
        if (rc)
            fail_msg("batched decode: %s", cl_errmsg());
    }
    for (int i = 0; i < 3; i++)
        cl_seq_release(&s[i]);
    return lg;
}

/* Prefill, snapshot, restore into a fresh sequence, then `steps` forced decode tokens. */
static float *snapshot_decode(engine *e, const int32_t *ids, int64_t n, const int32_t *force,
                              int steps, int round_trip)
{
    int64_t V = e->m->cfg->vocab_size;
    cl_seq a, b;
    assert_int_equal(cl_seq_init(&a, e->c), 0);
    assert_int_equal(cl_seq_feed(e->m, &a, ids, n, 0, CL_LOGITS_NONE, NULL), 0);
    cl_seq *run = &a;
    if (round_trip) {
        void *bytes;
        size_t len;
        assert_int_equal(cl_state_snapshot(&a, 0, &bytes, &len), 0);
        cl_seq_release(&a);
        assert_int_equal(cl_seq_init(&b, e->c), 0);
        if (cl_state_restore(&b, bytes, len, "parity snapshot"))
            fail_msg("restore: %s", cl_errmsg());
        free(bytes);
        run = &b;
    }
    float *lg = malloc((size_t)(steps * V) * sizeof *lg);
    for (int k = 0; k < steps; k++)
        assert_int_equal(cl_seq_feed(e->m, run, force + k, 1, 1, CL_LOGITS_LAST, lg + k * V), 0);
    cl_seq_release(run);
    return lg;
}

/* ------------------------------------------------------------ one model */

typedef struct {
    const char *name;
    cl_model *(*load)(const char *backend, const void *arg);
    const void *arg;
    double tol;
    const char *golden_io; /* inputs_and_outputs path, or NULL */
    double golden_tol;
    int64_t prompt;        /* prompt length when not golden */
    int skip_each;         /* skip token-by-token decode of the whole prompt (large models) */
} model_case;

static int32_t *make_ids(int64_t n, int64_t vocab, uint64_t seed)
{
    int32_t *ids = malloc((size_t)n * sizeof *ids);
    uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
    for (int64_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        ids[i] = (int32_t)(x % (uint64_t)vocab);
    }
    return ids;
}

static void run_case(const model_case *mc)
{
    const char *only = getenv("COLLAGE_PARITY_ONLY");
    if (only && *only && !strstr(mc->name, only))
        return;
    print_message("  %s\n", mc->name);
    engine cpu, gpu;
    engine_open(&cpu, mc->load("cpu", mc->arg));
    engine_open(&gpu, mc->load("cuda", mc->arg));
    int64_t V = cpu.m->cfg->vocab_size, n;
    int32_t *ids;
    if (mc->golden_io) {
        int64_t *v;
        n = tu_load_i64(mc->golden_io, "input_ids", &v);
        ids = malloc((size_t)n * sizeof *ids);
        for (int64_t i = 0; i < n; i++)
            ids[i] = (int32_t)v[i];
        free(v);
    } else {
        n = mc->prompt;
        ids = make_ids(n, V, 7);
    }
    double tol = mc->tol;

    /* prefill, one call; states after it */
    cl_seq sc, sg;
    float *lc = prefill(&cpu, ids, n, 0, &sc);
    float *lg = prefill(&gpu, ids, n, 0, &sg);
    report(mc->name, "prefill logits", tu_rel_err(lg, lc, (size_t)(n * V)), tol);
    if (mc->golden_io) {
        float *ref;
        tu_load_f32(mc->golden_io, "logits", &ref, NULL, NULL);
        report(mc->name, "prefill logits vs golden", tu_rel_err(lg, ref, (size_t)(n * V)),
               mc->golden_tol);
        free(ref);
    }
    size_t ns_c, nk_c, ns_g, nk_g;
    float *stc = read_state(&cpu, &sc, &ns_c, &nk_c), *stg = read_state(&gpu, &sg, &ns_g, &nk_g);
    assert_int_equal(ns_c, ns_g);
    assert_int_equal(nk_c, nk_g);
    if (ns_c)
        report(mc->name, "SSM state after prefill", tu_rel_err(stg, stc, ns_c), tol);
    if (nk_c)
        report(mc->name, "KV after prefill", tu_rel_err(stg + ns_c, stc + ns_c, nk_c), tol);
    free(stc);
    free(stg);
    cl_seq_release(&sc);
    cl_seq_release(&sg);
    free(lg);

    /* prefill in small calls (each from the state the last one left) */
    lg = prefill(&gpu, ids, n, 37, &sg);
    report(mc->name, "prefill in 37-token calls", tu_rel_err(lg, lc, (size_t)(n * V)), tol);
    cl_seq_release(&sg);
    free(lg);

    /* token-by-token decode through the whole prompt */
    if (!mc->skip_each) {
        float *dc = decode_each(&cpu, ids, n), *dg = decode_each(&gpu, ids, n);
        report(mc->name, "decode logits (graphs)", tu_rel_err(dg, dc, (size_t)(n * V)), tol);
        report(mc->name, "decode vs prefill (cuda)", tu_rel_err(dg, lc, (size_t)(n * V)),
               tol * 2);
        free(dc);
        free(dg);
    }
    free(lc);

    /* batched decode of three sequences */
    int steps = 8;
    float *bc = batch_decode(&cpu, ids, n, steps), *bg = batch_decode(&gpu, ids, n, steps);
    report(mc->name, "batched decode (3 seqs)", tu_rel_err(bg, bc, (size_t)(steps * 3 * V)), tol);
    free(bc);
    free(bg);

    /* snapshot / restore round trip, then decode */
    int32_t *force = make_ids(16, V, 99);
    float *rc = snapshot_decode(&cpu, ids, n, force, 16, 0);
    float *rg = snapshot_decode(&gpu, ids, n, force, 16, 1);
    report(mc->name, "decode after snapshot/restore", tu_rel_err(rg, rc, (size_t)(16 * V)), tol);
    free(rc);
    free(rg);
    free(force);

#ifdef COLLAGE_HAVE_CUDA
    uint64_t cap, rep;
    cl_cuda_graph_stats(gpu.m->b, &cap, &rep);
    print_message("    (decode graphs: %llu captured, %llu replayed)\n", (unsigned long long)cap,
                  (unsigned long long)rep);
#endif
    free(ids);
    engine_close(&cpu);
    engine_close(&gpu);
}

/* ------------------------------------------------------------ loaders */

static cl_model *load_dir(const char *backend, const void *arg)
{
    cl_model_opts o;
    cl_model_opts_default(&o);
    o.backend = backend;
    cl_model *m = NULL;
    if (cl_model_load((const char *)arg, &o, &m))
        fail_msg("loading %s on %s: %s", (const char *)arg, backend, cl_errmsg());
    return m;
}

typedef struct {
    const char *preset;
    int64_t layers;
    const char *dtype;
} random_arg;

static cl_model *load_random(const char *backend, const void *arg)
{
    const random_arg *r = arg;
    cl_random_model_opts o;
    cl_random_model_opts_default(&o);
    o.preset = r->preset;
    o.layers = r->layers;
    o.dtype = r->dtype;
    o.backend = backend;
    o.seed = 3;
    cl_model *m = NULL;
    if (cl_model_create_random(&o, &m))
        fail_msg("random model %s on %s: %s", r->preset, backend, cl_errmsg());
    return m;
}

/* ------------------------------------------------------------ tests */

static const char *golden_cases[] = {"m2", "gdn", "swa", "gka", "gka_iter10", "gka_iter0"};

static void test_golden(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof golden_cases / sizeof golden_cases[0]; i++) {
        char rel[256];
        snprintf(rel, sizeof rel, "golden/%s", golden_cases[i]);
        const char *dir = tu_shared(rel);
        char io[4200], name[64];
        snprintf(io, sizeof io, "%s/inputs_and_outputs.safetensors", dir);
        snprintf(name, sizeof name, "golden %s f32", golden_cases[i]);
        double gt = strstr(golden_cases[i], "gka") ? 2e-2 : !strcmp(golden_cases[i], "gdn") ? 2e-3
                                                                                         : 1e-4;
        model_case mc = {name, load_dir, dir, 1e-4, io, gt, 0, 0};
        run_case(&mc);
    }
}

static void test_tiny(void **state)
{
    (void)state;
    static const char *presets[] = {"tiny-gka", "tiny-gdn", "tiny-m2", "tiny-swa", "tiny-attn"};
    static const char *dtypes[] = {"float32", "bfloat16"};
    for (size_t d = 0; d < 2; d++)
        for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++) {
            char name[64];
            snprintf(name, sizeof name, "%s %s", presets[i], d ? "bf16" : "f32");
            const char *only = getenv("COLLAGE_PARITY_ONLY");
            if (only && *only && !strstr(name, only))
                continue;
            const char *dir = tu_tmpdir(name[5] == 'g' ? "parity-model" : "parity-model");
            cl_mkmodel_opts mo;
            memset(&mo, 0, sizeof mo);
            mo.preset = presets[i];
            mo.out_dir = dir;
            mo.dtype = dtypes[d];
            mo.no_tokenizer = 1;
            mo.seed = 11;
            if (cl_mkmodel(&mo))
                fail_msg("mkmodel %s: %s", presets[i], cl_errmsg());
            model_case mc = {name, load_dir, dir, d ? 2e-2 : 1e-4, NULL, 0, 150, 0};
            run_case(&mc);
        }
}

static void test_8b_shapes(void **state)
{
    (void)state;
    static random_arg args[] = {
        {"gka-8b", 2, NULL}, {"gdn-8b", 2, NULL}, {"m2-8b", 2, NULL}};
    for (size_t i = 0; i < sizeof args / sizeof args[0]; i++) {
        char name[64];
        snprintf(name, sizeof name, "%s x2 layers bf16", args[i].preset);
        /* 3e-2, not the tiny presets' 2e-2: two 8B-shaped layers of random weights put the
         * bf16 rounding of every GEMM input (the CPU keeps fp32 activations) in the
         * far tail of 300 x 151936 logits; measured 1.1e-2 (GKA, GDN) to 2.5e-2 (M2,
         * 37-token calls) on an H200, 2026-11-23 */
        model_case mc = {name, load_random, &args[i], 3e-2, NULL, 0, 300, 1};
        run_case(&mc);
    }
}

static int compare_files(const char *a, const char *b, double tol)
{
    float *x, *y;
    int64_t n = tu_load_f32(a, "logits", &x, NULL, NULL), m = tu_load_f32(b, "logits", &y, NULL, NULL);
    if (n != m) {
        fprintf(stderr, "compare: %s has %lld values, %s %lld\n", a, (long long)n, b, (long long)m);
        return 1;
    }
    double e = tu_rel_err(x, y, (size_t)n);
    printf("compare %s vs %s: rel err %.3g (tol %.0e) %s\n", a, b, e, tol, e <= tol ? "ok" : "FAIL");
    free(x);
    free(y);
    return e <= tol ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc == 5 && !strcmp(argv[1], "compare"))
        return compare_files(argv[2], argv[3], atof(argv[4]));
#ifndef COLLAGE_HAVE_CUDA
    (void)test_golden; /* built everywhere, run only with CUDA */
    (void)test_tiny;
    (void)test_8b_shapes;
    printf("SKIP: this build has no CUDA backend\n");
    return 77;
#else
    if (cl_cuda_device_count() <= 0) {
        printf("SKIP: no CUDA device\n");
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden),
        cmocka_unit_test(test_tiny),
        cmocka_unit_test(test_8b_shapes),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    printf("\n%-28s %-30s %10s %8s\n", "model", "check", "rel err", "tol");
    for (int i = 0; i < n_rows; i++)
        printf("%-28s %-30s %10.3g %8.0e %s\n", table[i].model, table[i].check, table[i].err,
               table[i].tol, table[i].err <= table[i].tol ? "ok" : "FAIL");
    printf("parity: %d checks, %d failed\n", n_rows, n_fail);
    return failed || n_fail ? 1 : 0;
#endif
}
