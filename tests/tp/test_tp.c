/* test_tp - tensor parallelism on the CPU backend (ranks are threads, in-process
 * all-reduce): every layer type at TP 2 and 4 matches the unsharded model (<= 1e-5
 * relative, fp32) in prefill and decode; a state saved at TP 2 restores at TP 1 and
 * TP 4 with the same bytes and continues with the same logits; bad tp values fail.
 *
 * The bound is 1e-5, or twice the unsharded model's own rounding noise where that is
 * larger: the random tiny GKA model amplifies fp32 rounding at its first positions
 * (prefill calls of 16 and 512 tokens differ by ~1.2e-5 on one prompt), so a
 * different summation order (TP's partial products) moves it as much. */
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
#include "testutil.h"

#define TOL 1e-5
#define N_PROMPT 100 /* crosses the 64-token chunks of the SSM kernels */
#define N_DECODE 6

static const char *presets[] = {"tiny-attn", "tiny-swa", "tiny-m2", "tiny-gdn", "tiny-gka"};
static const char *golden[] = {"swa", "m2", "gdn", "gka"};

static const char *tiny_dir(const char *preset)
{
    const char *dir = tu_tmpdir(preset);
    cl_mkmodel_opts o = {preset, dir, 7, NULL, NULL, 0, 1};
    if (cl_mkmodel(&o) != 0)
        fail_msg("mkmodel %s: %s", preset, cl_errmsg());
    return dir;
}

static cl_model *load(const char *dir, int tp)
{
    cl_model_opts mo;
    cl_model_opts_default(&mo);
    mo.backend = "cpu";
    mo.threads = 2;
    mo.tp = tp;
    cl_model *m;
    if (cl_model_load(dir, &mo, &m) != 0)
        fail_msg("load %s at tp %d: %s", dir, tp, cl_errmsg());
    return m;
}

static void random_ids(int32_t *ids, int64_t n, int64_t V, uint64_t seed)
{
    for (int64_t i = 0; i < n; i++)
        ids[i] = (int32_t)(cl_rng_uniform(seed, (uint64_t)i) * (float)V) % (int32_t)V;
}

/* Logits of a prefill of N_PROMPT tokens (all rows) then N_DECODE decode steps, each
 * one token (rows appended): [(N_PROMPT + N_DECODE), V]. */
static float *run_model(cl_model *m, const int32_t *ids, int track)
{
    int64_t V = m->cfg->vocab_size, n = N_PROMPT + N_DECODE;
    float *out = malloc((size_t)(n * V) * sizeof *out);
    assert_non_null(out);
    cl_cache_opts co;
    cl_cache_opts_for_model(m, &co);
    co.track_transition = track;
    cl_cache *c;
    assert_int_equal(cl_cache_create(m, &co, &c), 0);
    cl_seq *s;
    assert_int_equal(cl_seq_create(c, &s), 0);
    if (cl_seq_feed(m, s, ids, N_PROMPT, 32, CL_LOGITS_ALL, out) != 0)
        fail_msg("prefill: %s", cl_errmsg());
    for (int64_t i = N_PROMPT; i < n; i++)
        if (cl_seq_decode_batch(m, &s, ids + i, 1, out + i * V) != 0)
            fail_msg("decode: %s", cl_errmsg());
    cl_seq_free(s);
    cl_cache_free(c);
    return out;
}

/* The unsharded model's own rounding noise: its prefill rows (32-token calls)
 * against the same tokens fed in calls of 1 (recurrent forms), 7 and 16 tokens: the
 * largest relative difference. */
static double noise_floor(cl_model *m, const int32_t *ids, const float *prefill)
{
    int64_t V = m->cfg->vocab_size, chunks[] = {1, 7, 16};
    float *other = malloc((size_t)(N_PROMPT * V) * sizeof *other);
    assert_non_null(other);
    double worst = 0;
    for (int k = 0; k < 3; k++) {
        cl_cache *c;
        cl_seq *s;
        assert_int_equal(cl_cache_create(m, NULL, &c), 0);
        assert_int_equal(cl_seq_create(c, &s), 0);
        assert_int_equal(cl_seq_feed(m, s, ids, N_PROMPT, chunks[k], CL_LOGITS_ALL, other), 0);
        double e = tu_rel_err(other, prefill, (size_t)(N_PROMPT * V));
        worst = e > worst ? e : worst;
        cl_seq_free(s);
        cl_cache_free(c);
    }
    free(other);
    return worst;
}

static void check_parity(const char *dir, const char *name)
{
    int32_t ids[N_PROMPT + N_DECODE];
    cl_model *m1 = load(dir, 1);
    int64_t V = m1->cfg->vocab_size;
    random_ids(ids, N_PROMPT + N_DECODE, V, 5);
    float *ref = run_model(m1, ids, 0);
    double floor = noise_floor(m1, ids, ref), tol = 2 * floor > TOL ? 2 * floor : TOL;
    cl_model_free(m1);
    int tps[] = {2, 4};
    for (int k = 0; k < 2; k++) {
        cl_model *m = load(dir, tps[k]);
        float *got = run_model(m, ids, 0);
        double pre = tu_rel_err(got, ref, (size_t)(N_PROMPT * V));
        double dec = tu_rel_err(got + N_PROMPT * V, ref + N_PROMPT * V, (size_t)(N_DECODE * V));
        printf("  %-9s tp %d: prefill %.2e  decode %.2e  (bound %.2e; tp 1 noise "
               "%.2e)\n", name, tps[k], pre, dec, tol, floor);
        assert_true(pre <= tol);
        assert_true(dec <= tol);
        free(got);
        cl_model_free(m);
    }
    free(ref);
}

static void test_parity_presets(void **st)
{
    (void)st;
    for (size_t p = 0; p < sizeof presets / sizeof presets[0]; p++)
        check_parity(tiny_dir(presets[p]), presets[p]);
}

static void test_parity_golden(void **st)
{
    (void)st;
    for (size_t g = 0; g < sizeof golden / sizeof golden[0]; g++) {
        char rel[64];
        snprintf(rel, sizeof rel, "golden/%s", golden[g]);
        check_parity(tu_shared(rel), golden[g]);
    }
}

/* A state saved at tp 2 (prompt A) restores at tp 1 and 4: saved again it has the
 * same bytes, and feeding B after it gives the logits of tp 2 never having stopped. */
static void check_state(const char *dir, const char *name, int track)
{
    const int64_t nA = 90, nB = 20;
    int32_t ids[128];
    cl_model *m2 = load(dir, 2);
    int64_t V = m2->cfg->vocab_size;
    random_ids(ids, nA + nB, V, 9);
    cl_cache_opts co;
    cl_cache_opts_for_model(m2, &co);
    co.track_transition = track;
    cl_cache *c2;
    assert_int_equal(cl_cache_create(m2, &co, &c2), 0);
    cl_seq *s2;
    assert_int_equal(cl_seq_create(c2, &s2), 0);
    assert_int_equal(cl_seq_feed(m2, s2, ids, nA, 0, CL_LOGITS_NONE, NULL), 0);
    void *snap;
    size_t len;
    assert_int_equal(cl_state_snapshot(s2, 0, &snap, &len), 0);
    float *ref = malloc((size_t)(nB * V) * sizeof *ref), *got = malloc((size_t)(nB * V) * 4);
    assert_int_equal(cl_seq_feed(m2, s2, ids + nA, nB, 0, CL_LOGITS_ALL, ref), 0);
    int tps[] = {1, 4};
    for (int k = 0; k < 2; k++) {
        cl_model *m = load(dir, tps[k]);
        cl_cache *c;
        assert_int_equal(cl_cache_create(m, &co, &c), 0);
        cl_seq *s;
        assert_int_equal(cl_seq_create(c, &s), 0);
        if (cl_state_restore(s, snap, len, "tp-2 state") != 0)
            fail_msg("restore at tp %d: %s", tps[k], cl_errmsg());
        void *again;
        size_t len2;
        assert_int_equal(cl_state_snapshot(s, 0, &again, &len2), 0);
        assert_int_equal(len2, len);
        assert_memory_equal(again, snap, len); /* the layout does not depend on the split */
        cl_free(again);
        assert_int_equal(cl_seq_feed(m, s, ids + nA, nB, 0, CL_LOGITS_ALL, got), 0);
        double e = tu_rel_err(got, ref, (size_t)(nB * V));
        printf("  %-9s tp 2 -> %d: continue %.2e\n", name, tps[k], e);
        assert_true(e <= TOL);
        cl_seq_free(s);
        cl_cache_free(c);
        cl_model_free(m);
    }
    cl_free(snap);
    free(ref);
    free(got);
    cl_seq_free(s2);
    cl_cache_free(c2);
    cl_model_free(m2);
}

static void test_state_across_tp(void **st)
{
    (void)st;
    for (size_t p = 0; p < sizeof presets / sizeof presets[0]; p++)
        check_state(tiny_dir(presets[p]), presets[p], 0);
    check_state(tiny_dir("tiny-gdn"), "gdn+trans", 1); /* the GDN transition product too */
}

/* Copies within a sharded cache (cl_seq_copy: KV runs and SSM slots on every rank). */
static void test_seq_copy(void **st)
{
    (void)st;
    cl_model *m = load(tiny_dir("tiny-gka"), 2);
    int64_t V = m->cfg->vocab_size;
    int32_t ids[80];
    random_ids(ids, 80, V, 3);
    cl_cache *c;
    assert_int_equal(cl_cache_create(m, NULL, &c), 0);
    cl_seq *a, *b;
    assert_int_equal(cl_seq_create(c, &a), 0);
    assert_int_equal(cl_seq_create(c, &b), 0);
    assert_int_equal(cl_seq_feed(m, a, ids, 70, 0, CL_LOGITS_NONE, NULL), 0);
    assert_int_equal(cl_seq_copy(b, a), 0);
    float *la = malloc((size_t)(10 * V) * 4), *lb = malloc((size_t)(10 * V) * 4);
    assert_int_equal(cl_seq_feed(m, a, ids + 70, 10, 0, CL_LOGITS_ALL, la), 0);
    assert_int_equal(cl_seq_feed(m, b, ids + 70, 10, 0, CL_LOGITS_ALL, lb), 0);
    assert_memory_equal(la, lb, (size_t)(10 * V) * 4);
    free(la);
    free(lb);
    cl_seq_free(a);
    cl_seq_free(b);
    cl_cache_free(c);
    cl_model_free(m);
}

static void test_bad_tp(void **st)
{
    (void)st;
    const char *dir = tiny_dir("tiny-gdn");
    cl_model_opts mo;
    cl_model_opts_default(&mo);
    mo.backend = "cpu";
    cl_model *m = NULL;
    mo.tp = 3; /* 4 query heads */
    assert_int_equal(cl_model_load(dir, &mo, &m), CL_ERR_UNSUPPORTED);
    assert_non_null(strstr(cl_errmsg(), "num_attention_heads"));
    assert_non_null(strstr(cl_errmsg(), "not yet supported"));
    mo.tp = 8; /* 2 KV heads replicate, but 4 query heads do not split in 8 */
    assert_int_equal(cl_model_load(dir, &mo, &m), CL_ERR_UNSUPPORTED);
    mo.tp = 65;
    assert_int_equal(cl_model_load(dir, &mo, &m), CL_ERR_ARG);
    mo.tp = -1;
    assert_int_equal(cl_model_load(dir, &mo, &m), CL_ERR_ARG);
    assert_null(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parity_presets), cmocka_unit_test(test_parity_golden),
        cmocka_unit_test(test_state_across_tp), cmocka_unit_test(test_seq_copy),
        cmocka_unit_test(test_bad_tp),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
