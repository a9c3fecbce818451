/* test_swa - sliding-window attention (the attention op with window > 0) on the
 * CPU: one call of T new tokens equals T one-token calls in outputs and KV pages,
 * for windows shorter than a page, than the call and than a cached prefix, of one
 * slot, and longer than everything; a batch of sequences with different lengths
 * and KV starts equals each sequence alone; and, independently of the op's
 * window code path, a query with window w sees exactly what full attention sees
 * when the slots before its window are hidden. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/status.h"
#include "op_util.h"
#include "testutil.h"

static cl_backend *cpu;

/* K/V are stored as given: bit for bit. A call of many new tokens computes
 * scores and outputs as matrix products over tiles of rows (another summation
 * order than one token's dot products), so its outputs agree to fp32 rounding;
 * a sequence in a batch and alone take the same path: bit for bit. */
static const ou_tol exact = {0, 0};
static const ou_tol forms = {2e-6, 0};

static ou_spec spec(uint64_t seed, int64_t window)
{
    ou_spec sp;
    memset(&sp, 0, sizeof sp);
    sp.op = OU_ATTN;
    sp.seed = seed;
    sp.n_seq = 1;
    sp.n_heads = 4;
    sp.n_kv_heads = 2;
    sp.head_dim = 32;
    sp.page_tokens = 16;
    sp.window = window;
    return sp;
}

/* Window 8 (inside a page) over fresh sequences of T = 1, 7, 64, 130. */
static void test_call_equals_steps(void **st)
{
    (void)st;
    static const int64_t lens[] = {1, 7, 64, 130};
    int ok = 1;
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        char name[64];
        ou_spec sp = spec(5100 + i, 8);
        sp.n_tok[0] = lens[i];
        snprintf(name, sizeof name, "swa w=8 T=%lld", (long long)lens[i]);
        sp.name = name;
        ok &= ou_forms_agree(cpu, &sp, &forms, &exact);
    }
    assert_true(ok);
}

/* After a cached prefix of 40 slots, windows of 1, 5, 24 (crosses pages) and 500
 * (longer than the sequence: full attention), continued after 3 tokens. */
static void test_windows(void **st)
{
    (void)st;
    static const int64_t windows[] = {1, 5, 24, 500};
    int ok = 1;
    for (size_t i = 0; i < sizeof windows / sizeof windows[0]; i++) {
        char name[64];
        ou_spec sp = spec(5200 + i, windows[i]);
        sp.n_tok[0] = 70;
        sp.kv_start[0] = 40;
        sp.split = 3;
        snprintf(name, sizeof name, "swa w=%lld prefix 40", (long long)windows[i]);
        sp.name = name;
        ok &= ou_forms_agree(cpu, &sp, &forms, &exact);
    }
    assert_true(ok);
}

/* Sequences of different lengths and KV starts in one batch, window 12. */
static void test_batch(void **st)
{
    (void)st;
    static const int64_t lens[][2] = {{130, 7}, {1, 70}};
    static const int64_t starts[][2] = {{0, 50}, {25, 3}};
    int ok = 1;
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        char name[64];
        ou_spec sp = spec(5300 + i, 12);
        sp.n_seq = 2;
        for (int s = 0; s < 2; s++) {
            sp.n_tok[s] = lens[i][s];
            sp.kv_start[s] = starts[i][s];
        }
        sp.split = 3;
        snprintf(name, sizeof name, "swa batch %lld+%lld", (long long)lens[i][0],
                 (long long)lens[i][1]);
        sp.name = name;
        ok &= ou_forms_agree(cpu, &sp, &forms, &exact);
    }
    assert_true(ok);
}

/* One query at slot 40 with window w sees slots [41 - w, 40]: the same as full
 * attention with slots [0, 41 - w) hidden. Same seed and shapes: same inputs. */
static void test_window_is_hidden_prefix(void **st)
{
    (void)st;
    static const int64_t windows[] = {1, 8, 40, 41};
    int ok = 1;
    for (size_t i = 0; i < sizeof windows / sizeof windows[0]; i++) {
        char name[64];
        ou_spec sw = spec(5400 + i, windows[i]);
        sw.n_tok[0] = 1;
        sw.kv_start[0] = 40;
        ou_spec full = sw;
        full.window = 0;
        full.hide_hi[0] = 41 - windows[i];
        snprintf(name, sizeof name, "swa w=%lld query at 40", (long long)windows[i]);
        sw.name = name;
        ou_problem ps, pf;
        assert_int_equal(ou_problem_make(&sw, &ps), CL_OK);
        assert_int_equal(ou_problem_make(&full, &pf), CL_OK);
        ou_result rs, rf;
        assert_int_equal(ou_run(cpu, &ps, OU_WHOLE, &rs), CL_OK);
        assert_int_equal(ou_run(cpu, &pf, OU_WHOLE, &rf), CL_OK);
        ok &= ou_compare(&ps, "window vs hidden prefix", &rs, &rf, &exact);
        ou_result_free(&rs);
        ou_result_free(&rf);
        ou_problem_free(&ps);
        ou_problem_free(&pf);
    }
    assert_true(ok);
}

static int setup(void **st)
{
    (void)st;
    return cl_backend_create("cpu", 2, &cpu);
}

static int teardown(void **st)
{
    (void)st;
    cl_backend_destroy(cpu);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_call_equals_steps),
        cmocka_unit_test(test_windows),
        cmocka_unit_test(test_batch),
        cmocka_unit_test(test_window_is_hidden_prefix),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
