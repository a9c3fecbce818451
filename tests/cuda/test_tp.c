/* test_tp - tensor parallelism on the CUDA backend: the sharded path (rank threads,
 * NCCL collectives, vocabulary-parallel embedding and lm_head) at TP 1 on one GPU
 * matches the unsharded model (fp32 models, 1e-5 relative) in prefill and decode
 * (decode graphs capture the NCCL calls), and a state saved by one restores in the
 * other with the same continuation. With 2 or 4 visible GPUs it also runs TP 2 / 4.
 * Skips (77) without a GPU or without the CUDA backend. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/rng.h"
#include "common/status.h"
#include "engine/seq.h"
#include "engine/state.h"
#include "mkmodel/mkmodel.h"
#include "model/model.h"
#include "testutil.h"
#ifdef COLLAGE_HAVE_CUDA
#include "backend/cuda.h"
#endif

#define TOL 1e-5
#define N_PROMPT 100
#define N_DECODE 8

static const char *presets[] = {"tiny-attn", "tiny-swa", "tiny-m2", "tiny-gdn", "tiny-gka"};

/* tp 0: the unsharded model; tp >= 1: the sharded path with tp ranks. */
static cl_model *load(const char *dir, int tp)
{
    cl_model_opts mo;
    cl_model_opts_default(&mo);
    mo.backend = "cuda";
    mo.tp = tp;
    cl_model *m;
    int rc = tp >= 1 ? cl_model_load_sharded(dir, &mo, &m) : cl_model_load(dir, &mo, &m);
    if (rc != 0)
        fail_msg("load %s at tp %d: %s", dir, tp, cl_errmsg());
    return m;
}

/* Prefill logits of every row, then N_DECODE one-token steps (graphs); the snapshot
 * after the prompt in *snap. */
static float *run_model(cl_model *m, const int32_t *ids, void **snap, size_t *len)
{
    int64_t V = m->cfg->vocab_size, n = N_PROMPT + N_DECODE;
    float *out = malloc((size_t)(n * V) * sizeof *out);
    cl_cache *c;
    cl_seq *s;
    assert_non_null(out);
    assert_int_equal(cl_cache_create(m, NULL, &c), 0);
    assert_int_equal(cl_seq_create(c, &s), 0);
    if (cl_seq_feed(m, s, ids, N_PROMPT, 48, CL_LOGITS_ALL, out) != 0)
        fail_msg("prefill: %s", cl_errmsg());
    assert_int_equal(cl_state_snapshot(s, 0, snap, len), 0);
    for (int64_t i = N_PROMPT; i < n; i++)
        if (cl_seq_decode_batch(m, &s, ids + i, 1, out + i * V) != 0)
            fail_msg("decode: %s", cl_errmsg());
    cl_seq_free(s);
    cl_cache_free(c);
    return out;
}

/* Restores snap into model m and decodes the N_DECODE tokens: logits [N_DECODE, V]. */
static float *continue_from(cl_model *m, const void *snap, size_t len, const int32_t *ids)
{
    int64_t V = m->cfg->vocab_size;
    float *out = malloc((size_t)(N_DECODE * V) * sizeof *out);
    cl_cache *c;
    cl_seq *s;
    assert_int_equal(cl_cache_create(m, NULL, &c), 0);
    assert_int_equal(cl_seq_create(c, &s), 0);
    if (cl_state_restore(s, snap, len, "snapshot") != 0)
        fail_msg("restore: %s", cl_errmsg());
    for (int64_t i = 0; i < N_DECODE; i++)
        assert_int_equal(cl_seq_decode_batch(m, &s, ids + N_PROMPT + i, 1, out + i * V), 0);
    cl_seq_free(s);
    cl_cache_free(c);
    return out;
}

static void check(const char *dir, const char *name, int tp)
{
    int32_t ids[N_PROMPT + N_DECODE];
    cl_model *ref_m = load(dir, 0);
    int64_t V = ref_m->cfg->vocab_size;
    for (int i = 0; i < N_PROMPT + N_DECODE; i++)
        ids[i] = (int32_t)(cl_rng_uniform(17, (uint64_t)i) * (float)V) % (int32_t)V;
    void *snap_ref, *snap_tp;
    size_t len_ref, len_tp;
    float *ref = run_model(ref_m, ids, &snap_ref, &len_ref);
    cl_model *m = load(dir, tp);
    float *got = run_model(m, ids, &snap_tp, &len_tp);
    double pre = tu_rel_err(got, ref, (size_t)(N_PROMPT * V));
    double dec = tu_rel_err(got + N_PROMPT * V, ref + N_PROMPT * V, (size_t)(N_DECODE * V));
    /* the sharded model's state continues in the unsharded one and back */
    assert_int_equal(len_tp, len_ref);
    float *a = continue_from(ref_m, snap_tp, len_tp, ids), *b = continue_from(m, snap_ref, len_ref, ids);
    double xa = tu_rel_err(a, ref + N_PROMPT * V, (size_t)(N_DECODE * V));
    double xb = tu_rel_err(b, ref + N_PROMPT * V, (size_t)(N_DECODE * V));
    print_message("  %-9s tp %d (nccl): prefill %.2e decode %.2e; state tp->1 %.2e, 1->tp %.2e\n",
                  name, tp, pre, dec, xa, xb);
    assert_true(pre <= TOL && dec <= TOL && xa <= TOL && xb <= TOL);
    free(a);
    free(b);
    free(ref);
    free(got);
    cl_free(snap_ref);
    cl_free(snap_tp);
    cl_model_free(m);
    cl_model_free(ref_m);
}

static void test_tp(void **st)
{
    (void)st;
    int n_dev = 0;
#ifdef COLLAGE_HAVE_CUDA
    n_dev = cl_cuda_device_count();
#endif
    for (size_t p = 0; p < sizeof presets / sizeof presets[0]; p++) {
        const char *dir = tu_tmpdir(presets[p]);
        cl_mkmodel_opts o = {presets[p], dir, 7, NULL, "float32", 0, 1};
        if (cl_mkmodel(&o) != 0)
            fail_msg("mkmodel %s: %s", presets[p], cl_errmsg());
        for (int tp = 1; tp <= 4 && tp <= n_dev; tp *= 2)
            check(dir, presets[p], tp);
    }
    if (tu_have_shared())
        for (int tp = 1; tp <= 4 && tp <= n_dev; tp *= 2)
            check(tu_shared("golden/gdn"), "golden gdn", tp);
}

int main(void)
{
#ifndef COLLAGE_HAVE_CUDA
    (void)test_tp;
    printf("SKIP: this build has no CUDA backend\n");
    return 77;
#else
    if (cl_cuda_device_count() <= 0) {
        printf("SKIP: no CUDA device\n");
        return 77;
    }
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_tp)};
    return cmocka_run_group_tests(tests, NULL, NULL);
#endif
}
