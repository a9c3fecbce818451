/* test_sampler - sampling: a seed makes choices repeatable; top-k keeps exactly the
 * k most likely tokens; top-p keeps the smallest prefix reaching mass p; min-p
 * drops tokens below min_p x the top probability; the repetition penalty follows
 * HF; draws follow the filtered distribution and take the token the sorted walk over it
 * takes. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/rng.h"
#include "engine/sampler.h"
#include "testutil.h"

#define V 200

static void random_logits(float *l, uint64_t seed)
{
    for (int i = 0; i < V; i++)
        l[i] = 3.0f * cl_rng_normal(seed, (uint64_t)i);
}

/* softmax of logits/temperature, in double */
static void softmax(const float *l, double temp, double *p)
{
    double mx = -INFINITY, s = 0;
    for (int i = 0; i < V; i++)
        mx = fmax(mx, l[i] / temp);
    for (int i = 0; i < V; i++)
        s += p[i] = exp(l[i] / temp - mx);
    for (int i = 0; i < V; i++)
        p[i] /= s;
}

static void test_seed_repeatable(void **st)
{
    (void)st;
    cl_sampler_opts o;
    cl_sampler_opts_default(&o);
    o.temperature = 0.9f;
    o.top_p = 0.95f;
    int32_t a[64], b[64], c[64];
    for (int run = 0; run < 3; run++) {
        cl_sampler s;
        o.seed = run == 2 ? 43 : 42;
        assert_int_equal(cl_sampler_init(&s, &o), 0);
        for (int k = 0; k < 64; k++) {
            float l[V];
            random_logits(l, 1000 + (uint64_t)k);
            int32_t id = cl_sampler_pick(&s, l, V, NULL, 0, 0);
            (run == 0 ? a : run == 1 ? b : c)[k] = id;
        }
        cl_sampler_release(&s);
    }
    assert_memory_equal(a, b, sizeof a);
    assert_true(memcmp(a, c, sizeof a) != 0);
}

static void test_top_k(void **st)
{
    (void)st;
    cl_sampler_opts o;
    cl_sampler_opts_default(&o);
    o.top_k = 7;
    cl_sampler s;
    assert_int_equal(cl_sampler_init(&s, &o), 0);
    float l[V], probs[V];
    random_logits(l, 5);
    float copy[V];
    memcpy(copy, l, sizeof l);
    assert_int_equal(cl_sampler_probs(&s, l, V, NULL, 0, 0, probs), 0);
    int kept = 0;
    double mass = 0;
    float kth = INFINITY;
    for (int i = 0; i < V; i++)
        if (probs[i] > 0) {
            kept++;
            mass += probs[i];
            kth = fminf(kth, copy[i]);
        }
    assert_int_equal(kept, 7);
    assert_true(fabs(mass - 1.0) < 1e-5);
    for (int i = 0; i < V; i++)
        if (probs[i] == 0)
            assert_true(copy[i] <= kth); /* nothing dropped is more likely than a kept one */
    cl_sampler_release(&s);
}

static void test_top_p_min_p(void **st)
{
    (void)st;
    for (int mode = 0; mode < 2; mode++) {
        cl_sampler_opts o;
        cl_sampler_opts_default(&o);
        o.temperature = 0.7f;
        if (mode == 0)
            o.top_p = 0.8f;
        else
            o.min_p = 0.05f;
        cl_sampler s;
        assert_int_equal(cl_sampler_init(&s, &o), 0);
        float l[V], probs[V];
        double p[V];
        random_logits(l, 77);
        softmax(l, 0.7, p);
        assert_int_equal(cl_sampler_probs(&s, l, V, NULL, 0, 0, probs), 0);
        double kept_mass = 0, min_kept = 1, pmax = 0;
        for (int i = 0; i < V; i++) {
            pmax = fmax(pmax, p[i]);
            if (probs[i] > 0) {
                kept_mass += p[i];
                min_kept = fmin(min_kept, p[i]);
            }
        }
        for (int i = 0; i < V; i++) /* kept tokens are a top set */
            if (probs[i] == 0)
                assert_true(p[i] <= min_kept + 1e-12);
        if (mode == 0) {
            assert_true(kept_mass >= 0.8 - 1e-6);        /* reaches p */
            assert_true(kept_mass - min_kept < 0.8 + 1e-6); /* and is the smallest such set */
        } else {
            assert_true(min_kept >= 0.05 * pmax - 1e-9);
            for (int i = 0; i < V; i++)
                if (probs[i] == 0)
                    assert_true(p[i] < 0.05 * pmax + 1e-9);
        }
        /* renormalised over the kept set */
        for (int i = 0; i < V; i++)
            if (probs[i] > 0)
                assert_true(fabs(probs[i] - p[i] / kept_mass) < 1e-5);
        cl_sampler_release(&s);
    }
}

static void test_penalty_and_greedy(void **st)
{
    (void)st;
    cl_sampler_opts o;
    cl_sampler_opts_default(&o);
    o.greedy = 1;
    o.repetition_penalty = 2.0f;
    cl_sampler s;
    assert_int_equal(cl_sampler_init(&s, &o), 0);
    float l[V] = {0};
    l[3] = 4.0f;
    l[5] = 3.0f;
    l[9] = -1.0f;
    int32_t hist[] = {3, 9, 3};
    assert_int_equal(cl_sampler_pick(&s, l, V, hist, 3, 3), 5); /* 4/2 = 2 < 3 */
    assert_true(l[3] == 2.0f && l[9] == -2.0f);              /* HF: divide / multiply once */
    cl_sampler_release(&s);
    cl_sampler_opts_default(&o);
    o.temperature = 0.0f;
    assert_int_not_equal(cl_sampler_init(&s, &o), 0); /* temperature 0 without --greedy */
    cl_sampler_opts_default(&o);
    o.top_p = 1.5f;
    assert_int_not_equal(cl_sampler_init(&s, &o), 0);
}

static void test_frequencies(void **st)
{
    (void)st;
    cl_sampler_opts o;
    cl_sampler_opts_default(&o);
    o.seed = 3;
    cl_sampler s;
    assert_int_equal(cl_sampler_init(&s, &o), 0);
    const float base[4] = {1.0f, 0.0f, -1.0f, 2.0f};
    double p[4], sum = 0;
    for (int i = 0; i < 4; i++)
        sum += p[i] = exp(base[i]);
    int count[4] = {0};
    const int N = 20000;
    for (int k = 0; k < N; k++) {
        float l[4];
        memcpy(l, base, sizeof l);
        count[cl_sampler_pick(&s, l, 4, NULL, 0, 0)]++;
    }
    for (int i = 0; i < 4; i++) {
        double expect = p[i] / sum, got = (double)count[i] / N;
        double sd = sqrt(expect * (1 - expect) / N);
        assert_true(fabs(got - expect) < 5 * sd);
    }
    cl_sampler_release(&s);
}

/* The draw (no sort) takes the token the walk takes: over the filtered distribution, in
 * order of probability (descending, ties by id; id order when nothing is filtered), the
 * first at which the running mass exceeds u. Checked for many u, option sets and logits with
 * ties; a disagreement is allowed only where u is within rounding of a boundary. */
static int cmp_walk(const void *a, const void *b, void *p)
{
    const float *pr = p;
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    if (pr[x] != pr[y])
        return pr[x] > pr[y] ? -1 : 1;
    return x - y;
}

/* The sampler's distribution over logits l (probs; work: scratch) and the order of its
 * walk: by probability when filtered, else by id. */
static void walk_order(cl_sampler *sa, const float *l, float *work, float *probs,
                       int32_t *order, int n, int by_probability)
{
    memcpy(work, l, (size_t)n * sizeof *work);
    assert_int_equal(cl_sampler_probs(sa, work, n, NULL, 0, 0, probs), 0);
    for (int i = 0; i < n; i++)
        order[i] = i;
    if (by_probability)
        qsort_r(order, (size_t)n, sizeof *order, cmp_walk, probs);
}

/* The token at which the running mass in `order` first exceeds u (-1: none); *near: how
 * close any running mass came to u (a draw may differ by rounding when it is tiny). */
static int32_t walk(const float *probs, const int32_t *order, int n, double u, double *near)
{
    double acc = 0;
    int32_t want = -1;
    *near = 1;
    for (int i = 0; i < n && probs[order[i]] > 0; i++) {
        acc += probs[order[i]];
        *near = fmin(*near, fabs(acc - u));
        if (want < 0 && u < acc)
            want = order[i];
    }
    return want;
}

static void test_draw_is_the_sorted_walk(void **st)
{
    (void)st;
    struct {
        float temp, top_p, min_p;
        int64_t top_k;
    } cases[] = {{1, 1, 0, 0}, {0.7f, 0.9f, 0, 0}, {1.3f, 1, 0.05f, 0}, {1, 0.8f, 0.02f, 50},
                 {1, 1, 0, 7}, {0.5f, 0.3f, 0, 0}, {1, 1, 0, 120}};
    static float l[V], work[V], probs[V];
    static int32_t order[V];
    int checked = 0;
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++)
        for (uint64_t seed = 1; seed <= 6; seed++) {
            random_logits(l, 500 + seed);
            for (int i = 0; i < V; i += 9) /* ties */
                l[i] = l[0];
            cl_sampler_opts o;
            cl_sampler_opts_default(&o);
            o.temperature = cases[c].temp;
            o.top_p = cases[c].top_p;
            o.min_p = cases[c].min_p;
            o.top_k = cases[c].top_k;
            cl_sampler sa;
            assert_int_equal(cl_sampler_init(&sa, &o), 0);
            int unfiltered = o.top_k == 0 && o.top_p >= 1 && o.min_p <= 0;
            walk_order(&sa, l, work, probs, order, V, !unfiltered);
            for (int k = 0; k < 200; k++) {
                double u = (k + 0.37) / 200.0;
                double near;
                int32_t want = walk(probs, order, V, u, &near);
                memcpy(work, l, sizeof l);
                int32_t got = cl_sampler_draw(&sa, work, V, u);
                if (want >= 0 && got != want && near > 1e-5)
                    fail_msg("case %zu seed %llu u %.4f: drew %d, the sorted walk takes %d", c,
                             (unsigned long long)seed, u, got, want);
                checked++;
            }
            cl_sampler_release(&sa);
        }
    assert_int_equal(checked, 7 * 6 * 200);
}

/* Over several of the draw's blocks of ids (the unfiltered walk skips whole blocks by their
 * mass; top-p gathers its candidates from the whole vocabulary): the draw is still the
 * walk of the distribution; a masked token (-inf) is never drawn, not even for u next
 * to 1 when the masked tokens are the last ids. */
static void test_draw_large_vocab(void **st)
{
    (void)st;
    enum { VL = 3 * 1024 + 77 };
    static float l[VL], work[VL], probs[VL];
    static int32_t order[VL];
    const float top_ps[] = {1.0f, 0.9f};
    for (int c = 0; c < 2; c++)
        for (uint64_t seed = 1; seed <= 3; seed++) {
            for (int i = 0; i < VL; i++)
                l[i] = 2.0f * cl_rng_normal(900 + seed, (uint64_t)i);
            for (int i = VL - 40; i < VL; i++)
                l[i] = -INFINITY;
            cl_sampler_opts o;
            cl_sampler_opts_default(&o);
            o.top_p = top_ps[c];
            cl_sampler sa;
            assert_int_equal(cl_sampler_init(&sa, &o), 0);
            walk_order(&sa, l, work, probs, order, VL, c); /* c: filtered */
            for (int k = 0; k < 300; k++) {
                double u = k < 299 ? (k + 0.61) / 300.0 : 0.999999999;
                double near;
                int32_t want = walk(probs, order, VL, u, &near);
                memcpy(work, l, sizeof l);
                int32_t got = cl_sampler_draw(&sa, work, VL, u);
                assert_true(got >= 0 && got < VL - 40);
                if (want >= 0 && got != want && near > 1e-5)
                    fail_msg("top-p %.2f seed %llu u %.4f: drew %d, the walk takes %d",
                             (double)top_ps[c], (unsigned long long)seed, u, got, want);
            }
            cl_sampler_release(&sa);
        }
}

/* Logits that are all NaN (a broken model) draw some id in range under every filter,
 * without reading outside the working set (ASan). */
static void test_draw_nan_logits(void **st)
{
    (void)st;
    struct {
        float top_p, min_p;
        int64_t top_k;
    } cases[] = {{1, 0, 0}, {0.9f, 0, 0}, {1, 0, 5}, {0.9f, 0.1f, 5}, {1, 0.1f, 0}, {0.8f, 0, 100}};
    static float work[V];
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        cl_sampler_opts o;
        cl_sampler_opts_default(&o);
        o.top_p = cases[c].top_p;
        o.min_p = cases[c].min_p;
        o.top_k = cases[c].top_k;
        cl_sampler sa;
        assert_int_equal(cl_sampler_init(&sa, &o), 0);
        for (int i = 0; i < V; i++)
            work[i] = NAN;
        int32_t got = cl_sampler_draw(&sa, work, V, 0.5);
        assert_true(got >= 0 && got < V);
        cl_sampler_release(&sa);
    }
}

/* bench sampler: a tiny run prints one JSON object with the sorted baseline and three
 * cases of positive figures. */
static void test_bench_smoke(void **st)
{
    (void)st;
    char *out = NULL;
    assert_int_equal(tu_runf(&out, "'%s' bench sampler --vocab 4000 --rows 6 --threads 2 "
                                   "--reps 3 --json", tu_bin()),
                     0);
    double sorted = -1, ms = -1;
    const char *p = strstr(out, "\"sorted_ms_per_row\": ");
    assert_non_null(p);
    assert_int_equal(sscanf(p, "\"sorted_ms_per_row\": %lf", &sorted), 1);
    assert_true(sorted > 0);
    int cases = 0;
    for (p = strstr(out, "\"ms_per_row\": "); p; p = strstr(p + 1, "\"ms_per_row\": ")) {
        assert_int_equal(sscanf(p, "\"ms_per_row\": %lf", &ms), 1);
        assert_true(ms > 0);
        cases++;
    }
    assert_int_equal(cases, 3);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seed_repeatable), cmocka_unit_test(test_top_k),
        cmocka_unit_test(test_top_p_min_p),     cmocka_unit_test(test_penalty_and_greedy),
        cmocka_unit_test(test_frequencies),     cmocka_unit_test(test_draw_is_the_sorted_walk),
        cmocka_unit_test(test_draw_large_vocab), cmocka_unit_test(test_draw_nan_logits),
        cmocka_unit_test(test_bench_smoke),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
