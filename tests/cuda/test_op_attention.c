/* test_op_attention - the CUDA attention op (full attention; SWA in
 * test_op_swa.c) against the CPU op on the same random inputs
 * (tests/backend/op_util.h): one call of T new tokens (the prefill kernels),
 * token by token (the split-KV decode kernels; decode batches of several
 * sequences, replayed from CUDA graphs), each sequence alone, a call continuing
 * another; outputs and KV pages. fp32 KV (fp32 checkpoints: plain fp32 kernels)
 * and bf16 KV (bf16 checkpoints: at head dim 128 the tensor-core kernels, else
 * the plain kernels reading bf16); cached prefixes, pages of 12, 16 and 64,
 * GQA groups 1, 4, 8, a hidden range. Skips (77) without a GPU. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/status.h"
#include "op_pair.h"
#include "testutil.h"

/* fp32 kernels (and bf16 KV read into fp32 math): the CPU's sums in another order
 * (split-KV partials, online softmax) and exp rounding: 1e-5 of max|out|. The
 * tensor-core kernels (bf16 KV at head dim 128) round q and the softmax weights
 * to bf16 (2^-8 relative each), as tests/cuda/test_attention.c holds them against
 * the plain kernel: 2e-2 of max|out|. K/V reach the pages unchanged (bf16 inputs
 * are bf16 values already): bit for bit. */
static const ou_tol tol_fp32 = {1e-5, 0};
static const ou_tol tol_mma = {2e-2, 0};

static ou_spec spec(uint64_t seed, int64_t Hq, int64_t Hkv, int64_t D, int64_t P, int bf16)
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
    sp.bf16_model = bf16;
    return sp;
}

static const ou_tol *tol_of(const ou_spec *sp)
{
    return sp->bf16_model && sp->head_dim == 128 ? &tol_mma : &tol_fp32;
}

/* One sequence: fp32 D 64 and bf16 D 128 (8B shape, pages of 64) and bf16 D 64;
 * T = 1, 7, 130, 300 from an empty cache. */
static void test_lengths(void **st)
{
    (void)st;
    static const struct {
        int64_t D, P;
        int bf16;
    } g[] = {{64, 16, 0}, {128, 64, 1}, {64, 16, 1}};
    static const int64_t lens[] = {1, 7, 130, 300};
    int ok = 1;
    for (size_t j = 0; j < sizeof g / sizeof g[0]; j++)
        for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
            char name[64];
            ou_spec sp = spec(10100 + 10 * j + i, 8, 2, g[j].D, g[j].P, g[j].bf16);
            sp.n_tok[0] = lens[i];
            snprintf(name, sizeof name, "attn %s D=%lld T=%lld", g[j].bf16 ? "bf16" : "fp32",
                     (long long)g[j].D, (long long)lens[i]);
            sp.name = name;
            ok &= ou_backends_agree(op_gpu, op_cpu, &sp, tol_of(&sp));
        }
    assert_true(ok);
}

/* A cached prefix of 37 (pages of 12: ends inside a page), continued after 5;
 * GQA groups 1, 4 and 8, fp32 and bf16 at head dim 128. */
static void test_cached_prefix(void **st)
{
    (void)st;
    static const struct {
        int64_t Hq, Hkv;
        int bf16;
    } g[] = {{4, 4, 0}, {8, 2, 0}, {4, 4, 1}, {8, 2, 1}, {16, 2, 1}};
    int ok = 1;
    for (size_t i = 0; i < sizeof g / sizeof g[0]; i++) {
        char name[64];
        ou_spec sp = spec(10200 + i, g[i].Hq, g[i].Hkv, 128, 12, g[i].bf16);
        sp.n_tok[0] = 70;
        sp.kv_start[0] = 37;
        sp.split = 5;
        snprintf(name, sizeof name, "attn %s prefix 37 Hq=%lld Hkv=%lld",
                 g[i].bf16 ? "bf16" : "fp32", (long long)g[i].Hq, (long long)g[i].Hkv);
        sp.name = name;
        ok &= ou_backends_agree(op_gpu, op_cpu, &sp, tol_of(&sp));
    }
    assert_true(ok);
}

/* Batches of three with different lengths and KV starts, the second hiding slots
 * [4, 20) (sw composition's gap): 130, 1, 33 new tokens (prefill with a
 * one-token sequence) and 9, 9, 9 (decode batches); fp32 D 64 and bf16 D 128. */
static void test_batch(void **st)
{
    (void)st;
    static const int64_t lens[][3] = {{130, 1, 33}, {9, 9, 9}};
    static const int64_t starts[][3] = {{0, 50, 17}, {3, 20, 100}};
    int ok = 1;
    for (int bf16 = 0; bf16 < 2; bf16++)
        for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
            char name[64];
            ou_spec sp = spec(10300 + 10 * bf16 + i, 8, 2, bf16 ? 128 : 64, 16, bf16);
            sp.n_seq = 3;
            for (int s = 0; s < 3; s++) {
                sp.n_tok[s] = lens[i][s];
                sp.kv_start[s] = starts[i][s];
            }
            sp.hide_lo[1] = 4;
            sp.hide_hi[1] = 20;
            sp.split = 3;
            snprintf(name, sizeof name, "attn %s batch %lld+%lld+%lld", bf16 ? "bf16" : "fp32",
                     (long long)lens[i][0], (long long)lens[i][1], (long long)lens[i][2]);
            sp.name = name;
            ok &= ou_backends_agree(op_gpu, op_cpu, &sp, tol_of(&sp));
        }
    assert_true(ok);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lengths),
        cmocka_unit_test(test_cached_prefix),
        cmocka_unit_test(test_batch),
    };
    return op_pair_run(tests, sizeof tests / sizeof tests[0]);
}
