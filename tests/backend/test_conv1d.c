/* test_conv1d - the causal depthwise conv + SiLU op on the CPU: one call of T rows
 * equals T one-row calls in outputs and conv state (the last W-1 inputs), from the
 * zero and from a random state, continued after calls shorter than W-1 rows; with
 * and without bias, widths 2 and 4, a row stride wider than the channels; a batch
 * of sequences of different lengths equals each sequence alone. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "op_util.h"
#include "testutil.h"

static cl_backend *cpu;

/* Every output is the same W-term sum in the same order whichever call computes
 * it, and the state holds copies of inputs: bit for bit. */
static const ou_tol exact = {0, 0};

static ou_spec spec(uint64_t seed, int64_t C, int64_t W, int bias)
{
    ou_spec sp;
    memset(&sp, 0, sizeof sp);
    sp.op = OU_CONV;
    sp.seed = seed;
    sp.n_seq = 1;
    sp.channels = C;
    sp.width = W;
    sp.conv_bias = bias;
    return sp;
}

/* T = 1, 2 (fewer rows than the state holds), 7, 64, 130 from the zero state. */
static void test_call_equals_rows(void **st)
{
    (void)st;
    static const int64_t lens[] = {1, 2, 7, 64, 130};
    int ok = 1;
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        char name[64];
        ou_spec sp = spec(3100 + i, 48, 4, 1);
        sp.n_tok[0] = lens[i];
        snprintf(name, sizeof name, "conv T=%lld", (long long)lens[i]);
        sp.name = name;
        ok &= ou_forms_agree(cpu, &sp, &exact, &exact);
    }
    assert_true(ok);
}

/* From a random state; a first call of 1 or 2 rows (the new state mixes old state
 * and new rows) or 5 rows, then the rest. */
static void test_from_state(void **st)
{
    (void)st;
    static const int64_t split[] = {1, 2, 5};
    int ok = 1;
    for (size_t i = 0; i < sizeof split / sizeof split[0]; i++) {
        ou_spec sp = spec(3200 + i, 48, 4, 1);
        sp.n_tok[0] = 70;
        sp.init_state = 1;
        sp.split = split[i];
        sp.name = "conv T=70 from state";
        ok &= ou_forms_agree(cpu, &sp, &exact, &exact);
    }
    assert_true(ok);
}

/* No bias (the GDN/GKA convs), width 2, 30 channels (not a multiple of 4). */
static void test_shapes(void **st)
{
    (void)st;
    static const struct {
        int64_t C, W;
        int bias;
        const char *name;
    } v[] = {{48, 4, 0, "conv no bias"}, {48, 2, 1, "conv W=2"}, {30, 4, 1, "conv C=30"}};
    int ok = 1;
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        ou_spec sp = spec(3300 + i, v[i].C, v[i].W, v[i].bias);
        sp.n_tok[0] = 40;
        sp.init_state = 1;
        sp.split = 3;
        sp.name = v[i].name;
        ok &= ou_forms_agree(cpu, &sp, &exact, &exact);
    }
    assert_true(ok);
}

/* Two and three sequences of different lengths in one batch, random states. */
static void test_batch(void **st)
{
    (void)st;
    static const int64_t lens[][3] = {{130, 2, 0}, {1, 70, 0}, {64, 1, 33}};
    int ok = 1;
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        char name[64];
        ou_spec sp = spec(3400 + i, 48, 4, 1);
        sp.n_seq = lens[i][2] ? 3 : 2;
        for (int s = 0; s < sp.n_seq; s++)
            sp.n_tok[s] = lens[i][s];
        sp.init_state = 1;
        sp.split = 2;
        snprintf(name, sizeof name, "conv batch %lld+%lld+%lld", (long long)lens[i][0],
                 (long long)lens[i][1], (long long)lens[i][2]);
        sp.name = name;
        ok &= ou_forms_agree(cpu, &sp, &exact, &exact);
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
        cmocka_unit_test(test_call_equals_rows),
        cmocka_unit_test(test_from_state),
        cmocka_unit_test(test_shapes),
        cmocka_unit_test(test_batch),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
