/* test_op_conv1d - the CUDA causal depthwise conv + SiLU op against the CPU op on
 * the same random inputs (tests/backend/op_util.h): one call of T rows (the
 * 4-channel vector kernels for widths 2 and 4, the scalar kernel otherwise, then
 * the state update), row by row (the decode kernel; decode batches of several
 * sequences, replayed from CUDA graphs), each sequence alone, continued after
 * calls shorter than the state; outputs and conv state. Skips (77) without a GPU. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/status.h"
#include "op_pair.h"
#include "testutil.h"

/* Outputs: the same W products summed in the same order, but the device fuses
 * multiply-adds (the CPU build does not) and its expf may differ by 2 ulp: a few
 * ulp of terms of magnitude <= ~2, against outputs up to ~3. The state holds
 * copies of inputs: bit for bit. */
static const ou_tol tol = {2e-6, 0};

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

/* Widths 4 and 2 with 48 channels (vector kernel), width 3 and 30 channels (scalar
 * kernel), without bias; T = 1, 2, 130; from a random state, continued after 2. */
static void test_shapes(void **st)
{
    (void)st;
    static const struct {
        int64_t C, W, T;
        int bias;
    } v[] = {{48, 4, 1, 1},   {48, 4, 2, 1},  {48, 4, 130, 1}, {48, 2, 130, 1},
             {48, 3, 130, 1}, {30, 4, 130, 1}, {48, 4, 130, 0}};
    int ok = 1;
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        char name[64];
        ou_spec sp = spec(9100 + i, v[i].C, v[i].W, v[i].bias);
        sp.n_tok[0] = v[i].T;
        sp.init_state = 1;
        sp.split = 2;
        snprintf(name, sizeof name, "conv C=%lld W=%lld T=%lld%s", (long long)v[i].C,
                 (long long)v[i].W, (long long)v[i].T, v[i].bias ? "" : " no bias");
        sp.name = name;
        ok &= ou_backends_agree(op_gpu, op_cpu, &sp, &tol);
    }
    assert_true(ok);
}

/* Batches of three: lengths 130, 1, 33 and 5, 5, 5 (decode batches). */
static void test_batch(void **st)
{
    (void)st;
    static const int64_t lens[][3] = {{130, 1, 33}, {5, 5, 5}};
    int ok = 1;
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        char name[64];
        ou_spec sp = spec(9200 + i, 64, 4, 1);
        sp.n_seq = 3;
        for (int s = 0; s < 3; s++)
            sp.n_tok[s] = lens[i][s];
        sp.init_state = 1;
        sp.split = 2;
        snprintf(name, sizeof name, "conv batch %lld+%lld+%lld", (long long)lens[i][0],
                 (long long)lens[i][1], (long long)lens[i][2]);
        sp.name = name;
        ok &= ou_backends_agree(op_gpu, op_cpu, &sp, &tol);
    }
    assert_true(ok);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shapes),
        cmocka_unit_test(test_batch),
    };
    return op_pair_run(tests, sizeof tests / sizeof tests[0]);
}
