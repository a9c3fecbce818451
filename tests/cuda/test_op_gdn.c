/* test_op_gdn - the CUDA Gated DeltaNet op against the CPU op on the same random
 * inputs (tests/backend/op_util.h): one call of T tokens (the chunked
 * prep/state/out kernels), token by token (the decode kernel; decode batches of
 * several sequences, replayed from CUDA graphs after the first step), each
 * sequence alone, and a call continuing another's state; outputs, state, log
 * decay and transition product (tracked and not), negative eigenvalues allowed;
 * head dims 128 (8B shape), 64 and 32; other head dims are refused, not run.
 * Skips (77) without a GPU. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/status.h"
#include "op_pair.h"
#include "testutil.h"

/* Both backends compute in fp32 (states and weights fp32 on both); they differ in
 * the order of sums (warp reductions, the chunk kernels' tiling), fused
 * multiply-adds and expf rounding (<= 2 ulp), i.e. the same kind of difference as
 * the CPU's own chunked vs recurrent forms (tests/backend/test_gdn.c: bounded
 * by eps * |Gamma| ~ 7e-6 within a chunk, measured <= 8e-7 there). */
static const ou_tol tol = {1e-5, 1e-5};

static ou_spec spec(uint64_t seed, int64_t Hq, int64_t Hkv, int64_t D)
{
    ou_spec sp;
    memset(&sp, 0, sizeof sp);
    sp.op = OU_GDN;
    sp.track_trans = 1;
    sp.seed = seed;
    sp.n_seq = 1;
    sp.n_heads = Hq;
    sp.n_kv_heads = Hkv;
    sp.head_dim = D;
    return sp;
}

/* 8B head shape (D 128, 4 query heads per KV head), T = 1, 7, 64, 130, 300, zero state. */
static void test_lengths(void **st)
{
    (void)st;
    static const int64_t lens[] = {1, 7, 64, 130, 300};
    int ok = 1;
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        char name[64];
        ou_spec sp = spec(7100 + i, 8, 2, 128);
        sp.n_tok[0] = lens[i];
        snprintf(name, sizeof name, "gdn D=128 T=%lld", (long long)lens[i]);
        sp.name = name;
        ok &= ou_backends_agree(op_gpu, op_cpu, &sp, &tol);
    }
    assert_true(ok);
}

/* From a random state, continued after 5 and after 64 tokens; head dims 64, 32
 * (with negative eigenvalues allowed). */
static void test_from_state(void **st)
{
    (void)st;
    static const struct {
        int64_t D, split;
    } v[] = {{64, 5}, {64, 64}, {32, 5}};
    int ok = 1;
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        char name[64];
        ou_spec sp = spec(7200 + i, 4, 2, v[i].D);
        sp.n_tok[0] = 130;
        sp.init_state = 1;
        sp.split = v[i].split;
        sp.allow_neg_eigval = i == 2;
        snprintf(name, sizeof name, "gdn D=%lld from state%s", (long long)v[i].D,
                 sp.allow_neg_eigval ? " neg eigval" : "");
        sp.name = name;
        ok &= ou_backends_agree(op_gpu, op_cpu, &sp, &tol);
    }
    assert_true(ok);
}

/* Batches: lengths 130, 1 and 33 (a one-token sequence inside a chunked batch),
 * and three sequences of 9 (decode batches of three, graph replays) without the
 * transition product. */
static void test_batch(void **st)
{
    (void)st;
    static const int64_t lens[][3] = {{130, 1, 33}, {9, 9, 9}};
    int ok = 1;
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        char name[64];
        ou_spec sp = spec(7300 + i, 4, 4, 64);
        sp.n_seq = 3;
        for (int s = 0; s < 3; s++)
            sp.n_tok[s] = lens[i][s];
        sp.init_state = 1;
        sp.split = 3;
        sp.track_trans = i == 0;
        snprintf(name, sizeof name, "gdn batch %lld+%lld+%lld", (long long)lens[i][0],
                 (long long)lens[i][1], (long long)lens[i][2]);
        sp.name = name;
        ok &= ou_backends_agree(op_gpu, op_cpu, &sp, &tol);
    }
    assert_true(ok);
}

/* Head dim 96 (no decode kernel for it): refused with a clear error, not run, at
 * prefill and at decode. */
static void test_unsupported_head_dim(void **st)
{
    (void)st;
    ou_spec sp = spec(7400, 2, 2, 96);
    sp.n_tok[0] = 3;
    op_pair_refused(&sp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lengths),
        cmocka_unit_test(test_from_state),
        cmocka_unit_test(test_batch),
        cmocka_unit_test(test_unsupported_head_dim),
    };
    return op_pair_run(tests, sizeof tests / sizeof tests[0]);
}
