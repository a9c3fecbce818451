/* test_mamba2 - the Mamba2 op on the CPU: the chunked form (one call of T tokens,
 * T across several 64-token chunks) equals the recurrence (T one-token calls) in
 * outputs, state and log decay, from the zero and from a random state, and when a
 * call continues the state another call left; a batch of sequences of different
 * lengths equals each sequence alone. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "op_util.h"
#include "testutil.h"

static cl_backend *cpu;

/* Chunked vs recurrent, both fp32, as max|diff| / max|value|: the chunked form
 * takes a decay over tokens (s, t] as exp(lam_t - lam_s) of prefix sums of
 * dt*A, whose difference carries the rounding of |lam| (up to ~110 within a
 * chunk for these inputs, so ~eps * 110 = 7e-6 relative in the worst term);
 * the rest is summation order (a few ulp). Measured: <= 1.0e-6. A mistake in the
 * math fails it by far: dropping the diagonal of the chunk's mixing matrix
 * gives 0.3 to 0.6. */
static const ou_tol tol = {1e-5, 1e-5};
/* A sequence's rows do not depend on the others in its batch: bit for bit. */
static const ou_tol exact = {0, 0};

static ou_spec spec(uint64_t seed, int64_t Hq, int64_t Hkv, int64_t D)
{
    ou_spec sp;
    memset(&sp, 0, sizeof sp);
    sp.op = OU_M2;
    sp.seed = seed;
    sp.n_seq = 1;
    sp.n_heads = Hq;
    sp.n_kv_heads = Hkv;
    sp.head_dim = D;
    return sp;
}

/* One sequence of T tokens from the zero state, T = 1 (one token), 7 (within a
 * chunk), 64 (one full chunk), 65 (a chunk of one token after it), 130 (three). */
static void test_chunked_equals_recurrent(void **st)
{
    (void)st;
    static const int64_t lens[] = {1, 7, 64, 65, 130};
    int ok = 1;
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        char name[64];
        ou_spec sp = spec(100 + i, 4, 2, 32);
        sp.n_tok[0] = lens[i];
        snprintf(name, sizeof name, "m2 T=%lld", (long long)lens[i]);
        sp.name = name;
        ok &= ou_forms_agree(cpu, &sp, &tol, &exact);
    }
    assert_true(ok);
}

/* From a random state, and a call continuing the state of a first call of 5
 * (inside a chunk) or 64 (a chunk boundary) tokens. */
static void test_from_state(void **st)
{
    (void)st;
    static const int64_t split[] = {5, 64};
    int ok = 1;
    for (size_t i = 0; i < sizeof split / sizeof split[0]; i++) {
        char name[64];
        ou_spec sp = spec(200 + i, 4, 2, 32);
        sp.n_tok[0] = 130;
        sp.init_state = 1;
        sp.split = split[i];
        snprintf(name, sizeof name, "m2 T=130 from state");
        sp.name = name;
        ok &= ou_forms_agree(cpu, &sp, &tol, &exact);
    }
    assert_true(ok);
}

/* Two and three sequences of different lengths in one batch (one of them a single
 * token, which the CPU runs as a recurrent step inside a chunked batch), random
 * states, no GQA and head dim 16. */
static void test_batch(void **st)
{
    (void)st;
    static const int64_t lens[][3] = {{130, 7, 0}, {1, 70, 0}, {64, 1, 33}};
    int ok = 1;
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        char name[64];
        ou_spec sp = spec(300 + i, 3, 3, 16);
        sp.n_seq = lens[i][2] ? 3 : 2;
        for (int s = 0; s < sp.n_seq; s++)
            sp.n_tok[s] = lens[i][s];
        sp.init_state = 1;
        sp.split = 3;
        snprintf(name, sizeof name, "m2 batch %lld+%lld+%lld", (long long)lens[i][0],
                 (long long)lens[i][1], (long long)lens[i][2]);
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
        cmocka_unit_test(test_batch),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
