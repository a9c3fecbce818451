/* test_op_swa - CUDA sliding-window attention (the attention op with window > 0)
 * against the CPU op on the same random inputs (tests/backend/op_util.h): one
 * call of T new tokens (prefill kernels), token by token (decode kernels, graph
 * replays), each sequence alone, a call continuing another; outputs and KV pages;
 * windows of 1, 8, 24 (crossing pages) and 500 (longer than the sequence), after
 * a cached prefix longer than the window; fp32 KV and bf16 KV at head dim 128
 * (tensor-core kernels). Skips (77) without a GPU. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/status.h"
#include "op_pair.h"
#include "testutil.h"

/* As in test_op_attention.c: fp32 kernels 1e-5 of max|out|; tensor-core kernels
 * (bf16 q and softmax weights) 2e-2; K/V pages bit for bit. */
static const ou_tol tol_fp32 = {1e-5, 0};
static const ou_tol tol_mma = {2e-2, 0};

static ou_spec spec(uint64_t seed, int64_t window, int bf16)
{
    ou_spec sp;
    memset(&sp, 0, sizeof sp);
    sp.op = OU_ATTN;
    sp.seed = seed;
    sp.n_seq = 1;
    sp.n_heads = 8;
    sp.n_kv_heads = 2;
    sp.head_dim = bf16 ? 128 : 64;
    sp.page_tokens = 16;
    sp.window = window;
    sp.bf16_model = bf16;
    return sp;
}

/* Windows 1, 8, 24, 500 over 150 new tokens after a cached prefix of 40,
 * continued after 3; fp32 (D 64) and bf16 (D 128). */
static void test_windows(void **st)
{
    (void)st;
    static const int64_t windows[] = {1, 8, 24, 500};
    int ok = 1;
    for (int bf16 = 0; bf16 < 2; bf16++)
        for (size_t i = 0; i < sizeof windows / sizeof windows[0]; i++) {
            char name[64];
            ou_spec sp = spec(11100 + 10 * bf16 + i, windows[i], bf16);
            sp.n_tok[0] = 150;
            sp.kv_start[0] = 40;
            sp.split = 3;
            snprintf(name, sizeof name, "swa %s w=%lld prefix 40", bf16 ? "bf16" : "fp32",
                     (long long)windows[i]);
            sp.name = name;
            ok &= ou_backends_agree(op_gpu, op_cpu, &sp, bf16 ? &tol_mma : &tol_fp32);
        }
    assert_true(ok);
}

/* Batches of three with different lengths and KV starts, window 12: 130, 1, 33
 * new tokens and 9, 9, 9 (decode batches). */
static void test_batch(void **st)
{
    (void)st;
    static const int64_t lens[][3] = {{130, 1, 33}, {9, 9, 9}};
    static const int64_t starts[][3] = {{0, 50, 17}, {3, 20, 100}};
    int ok = 1;
    for (int bf16 = 0; bf16 < 2; bf16++)
        for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
            char name[64];
            ou_spec sp = spec(11200 + 10 * bf16 + i, 12, bf16);
            sp.n_seq = 3;
            for (int s = 0; s < 3; s++) {
                sp.n_tok[s] = lens[i][s];
                sp.kv_start[s] = starts[i][s];
            }
            sp.split = 3;
            snprintf(name, sizeof name, "swa %s batch %lld+%lld+%lld", bf16 ? "bf16" : "fp32",
                     (long long)lens[i][0], (long long)lens[i][1], (long long)lens[i][2]);
            sp.name = name;
            ok &= ou_backends_agree(op_gpu, op_cpu, &sp, bf16 ? &tol_mma : &tol_fp32);
        }
    assert_true(ok);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_windows),
        cmocka_unit_test(test_batch),
    };
    return op_pair_run(tests, sizeof tests / sizeof tests[0]);
}
