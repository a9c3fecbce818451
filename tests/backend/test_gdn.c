/* test_gdn - the Gated DeltaNet op on the CPU: the chunked (WY) form (one call of T
 * tokens, T across several 64-token chunks) equals the delta-rule recurrence (T
 * one-token calls) in outputs, state, log decay and transition product, from the
 * zero and from a random state, continued from another call's state, with
 * negative eigenvalues allowed; a batch of sequences of different lengths equals
 * each sequence alone. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "op_util.h"
#include "testutil.h"

static cl_backend *cpu;

/* Chunked vs recurrent, both fp32, as max|diff| / max|value|: the chunk form
 * takes decays as exp(Gamma_t - Gamma_s) of prefix sums of g (rounding ~eps *
 * |Gamma|, |Gamma| up to ~110 within a chunk for these inputs: ~7e-6) and solves
 * the unit-triangular (I + A) U = rhs instead of stepping; the rest is summation
 * order. Measured: <= 8e-7. Leaving the chunk's last row out of the transition's
 * W gives 6e-5 to 0.14. */
static const ou_tol tol = {1e-5, 1e-5};
/* A sequence's rows do not depend on the others in its batch: bit for bit. */
static const ou_tol exact = {0, 0};

static ou_spec spec(uint64_t seed, int64_t Hq, int64_t Hkv, int64_t D)
{
    ou_spec sp;
    memset(&sp, 0, sizeof sp);
    sp.op = OU_GDN;
    sp.seed = seed;
    sp.n_seq = 1;
    sp.n_heads = Hq;
    sp.n_kv_heads = Hkv;
    sp.head_dim = D;
    sp.track_trans = 1;
    return sp;
}

/* One sequence of T tokens from the zero state (transition product: identity),
 * T = 1, 7 (within a chunk), 64 (a full chunk), 65 (then a chunk of one), 130. */
static void test_chunked_equals_recurrent(void **st)
{
    (void)st;
    static const int64_t lens[] = {1, 7, 64, 65, 130};
    int ok = 1;
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        char name[64];
        ou_spec sp = spec(1100 + i, 4, 2, 32);
        sp.n_tok[0] = lens[i];
        snprintf(name, sizeof name, "gdn T=%lld", (long long)lens[i]);
        sp.name = name;
        ok &= ou_forms_agree(cpu, &sp, &tol, &exact);
    }
    assert_true(ok);
}

/* From a random state and transition product, and continuing another call's
 * state after 5 (inside a chunk) or 64 (at a chunk boundary) tokens. */
static void test_from_state(void **st)
{
    (void)st;
    static const int64_t split[] = {5, 64};
    int ok = 1;
    for (size_t i = 0; i < sizeof split / sizeof split[0]; i++) {
        ou_spec sp = spec(1200 + i, 4, 2, 32);
        sp.n_tok[0] = 130;
        sp.init_state = 1;
        sp.split = split[i];
        sp.name = "gdn T=130 from state";
        ok &= ou_forms_agree(cpu, &sp, &tol, &exact);
    }
    assert_true(ok);
}

/* beta in (0, 2): the transition I - beta k k^T may reflect (allow_neg_eigval). */
static void test_negative_eigenvalues(void **st)
{
    (void)st;
    ou_spec sp = spec(1300, 4, 2, 32);
    sp.n_tok[0] = 130;
    sp.init_state = 1;
    sp.split = 20;
    sp.allow_neg_eigval = 1;
    sp.name = "gdn T=130 neg eigval";
    assert_true(ou_forms_agree(cpu, &sp, &tol, &exact));
}

/* Two and three sequences of different lengths in one batch, random states, no
 * GQA, head dim 16; with and without the transition product. */
static void test_batch(void **st)
{
    (void)st;
    static const int64_t lens[][3] = {{130, 7, 0}, {1, 70, 0}, {64, 1, 33}};
    int ok = 1;
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        char name[64];
        ou_spec sp = spec(1400 + i, 3, 3, 16);
        sp.n_seq = lens[i][2] ? 3 : 2;
        for (int s = 0; s < sp.n_seq; s++)
            sp.n_tok[s] = lens[i][s];
        sp.init_state = 1;
        sp.split = 3;
        sp.track_trans = i != 1;
        snprintf(name, sizeof name, "gdn batch %lld+%lld+%lld%s", (long long)lens[i][0],
                 (long long)lens[i][1], (long long)lens[i][2], sp.track_trans ? "" : " no P");
        sp.name = name;
        ok &= ou_forms_agree(cpu, &sp, &tol, &exact);
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
        cmocka_unit_test(test_chunked_equals_recurrent),
        cmocka_unit_test(test_from_state),
        cmocka_unit_test(test_negative_eigenvalues),
        cmocka_unit_test(test_batch),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
