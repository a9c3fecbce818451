/* test_attention - the attention op on the CPU (full attention; SWA in
 * test_swa.c): one call of T new tokens equals T one-token calls in outputs and
 * KV pages, with and without a cached prefix, continued by a second call; GQA
 * groups 1, 2 and 4; block tables out of order, pages that are not a multiple of
 * anything; a batch of sequences with different lengths, KV starts and a hidden
 * range equals each sequence alone. KV writes outside the new slots fail. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "op_util.h"
#include "testutil.h"

static cl_backend *cpu;

/* K/V are stored as given: bit for bit. A call of many new tokens computes
 * scores and outputs as matrix products over tiles of rows (another summation
 * order than one token's dot products), so its outputs agree to fp32 rounding;
 * a sequence in a batch and alone take the same path: bit for bit. */
static const ou_tol exact = {0, 0};
static const ou_tol forms = {2e-6, 0};

static ou_spec spec(uint64_t seed, int64_t Hq, int64_t Hkv, int64_t D, int64_t P)
{
    ou_spec sp;
    memset(&sp, 0, sizeof sp);
    sp.op = OU_ATTN;
    sp.seed = seed;
    sp.n_seq = 1;
    sp.n_heads = Hq;
    sp.n_kv_heads = Hkv;
    sp.head_dim = D;
    sp.page_tokens = P;
    return sp;
}

/* A fresh sequence of T = 1, 7, 64, 130 tokens, pages of 16. */
static void test_call_equals_steps(void **st)
{
    (void)st;
    static const int64_t lens[] = {1, 7, 64, 130};
    int ok = 1;
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        char name[64];
        ou_spec sp = spec(4100 + i, 4, 2, 32, 16);
        sp.n_tok[0] = lens[i];
        snprintf(name, sizeof name, "attn T=%lld", (long long)lens[i]);
        sp.name = name;
        ok &= ou_forms_agree(cpu, &sp, &forms, &exact);
    }
    assert_true(ok);
}

/* After a cached prefix of 37 slots (pages of 12: the prefix ends inside a page),
 * GQA 4 and 1, continued after 5 tokens. */
static void test_cached_prefix(void **st)
{
    (void)st;
    static const int64_t heads[][2] = {{8, 2}, {2, 2}};
    int ok = 1;
    for (size_t i = 0; i < sizeof heads / sizeof heads[0]; i++) {
        char name[64];
        ou_spec sp = spec(4200 + i, heads[i][0], heads[i][1], 32, 12);
        sp.n_tok[0] = 70;
        sp.kv_start[0] = 37;
        sp.split = 5;
        snprintf(name, sizeof name, "attn prefix 37 Hq=%lld Hkv=%lld", (long long)heads[i][0],
                 (long long)heads[i][1]);
        sp.name = name;
        ok &= ou_forms_agree(cpu, &sp, &forms, &exact);
    }
    assert_true(ok);
}

/* Sequences of different lengths and KV starts in one batch; one hides slots
 * [4, 20) of its prefix (sw composition's gap). */
static void test_batch(void **st)
{
    (void)st;
    static const int64_t lens[][3] = {{130, 7, 0}, {1, 70, 0}, {64, 1, 33}};
    static const int64_t starts[][3] = {{0, 50, 0}, {25, 3, 0}, {17, 0, 64}};
    int ok = 1;
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        char name[64];
        ou_spec sp = spec(4300 + i, 4, 1, 16, 16);
        sp.n_seq = lens[i][2] ? 3 : 2;
        for (int s = 0; s < sp.n_seq; s++) {
            sp.n_tok[s] = lens[i][s];
            sp.kv_start[s] = starts[i][s];
        }
        sp.hide_lo[1] = 4;
        sp.hide_hi[1] = sp.kv_start[1] > 20 ? 20 : sp.kv_start[1];
        sp.split = 3;
        snprintf(name, sizeof name, "attn batch %lld+%lld+%lld", (long long)lens[i][0],
                 (long long)lens[i][1], (long long)lens[i][2]);
        sp.name = name;
        ok &= ou_forms_agree(cpu, &sp, &forms, &exact);
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
        cmocka_unit_test(test_cached_prefix),
        cmocka_unit_test(test_batch),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
