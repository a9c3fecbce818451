/* test_prefix - prefix reuse through the store (tiny mkmodel models, no ../shared):
 * a resumed prompt gives the ids and logits of an uncached run; a corrupted stored
 * snapshot is reported, dropped and recomputed, never used; different models and
 * GKA num_iter never share keys; a conversation's next turn resumes after the whole
 * previous prompt and answer; a snapshot every N blocks serves shorter prompts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/rng.h"
#include "common/status.h"
#include "engine/session.h"
#include "mkmodel/mkmodel.h"
#include "testutil.h"

typedef struct {
    cl_model *m;
    cl_cache *c;
    cl_store *st;
    cl_prefix *pc;
} env;

static const char *make(const char *preset, uint64_t seed)
{
    char name[64];
    snprintf(name, sizeof name, "%s-%llu", preset, (unsigned long long)seed);
    const char *dir = tu_tmpdir(name);
    cl_mkmodel_opts o = {preset, dir, seed, NULL, NULL, 0, 1};
    if (cl_mkmodel(&o) != 0)
        fail_msg("mkmodel: %s", cl_errmsg());
    return dir;
}

static void open_env(env *e, const char *model, const char *store, int64_t num_iter)
{
    memset(e, 0, sizeof *e);
    cl_model_opts mo;
    cl_model_opts_default(&mo);
    mo.backend = "cpu";
    mo.gka_num_iter = num_iter;
    if (cl_model_load(model, &mo, &e->m) != 0)
        fail_msg("%s", cl_errmsg());
    assert_int_equal(cl_cache_create(e->m, NULL, &e->c), 0);
    if (store) {
        assert_int_equal(cl_store_open(store, NULL, &e->st), 0);
        cl_prefix_opts po;
        cl_prefix_opts_default(&po);
        po.block_tokens = 16;
        assert_int_equal(cl_prefix_create(e->st, e->m, e->c, &po, &e->pc), 0);
    }
}

static void close_env(env *e)
{
    cl_prefix_free(e->pc);
    if (e->st)
        cl_store_close(e->st);
    cl_cache_free(e->c);
    cl_model_free(e->m);
}

/* one generation; returns cached tokens; ids and logits (8 x V) out */
static int64_t gen(env *e, int use_store, const int32_t *prompt, int64_t n, int32_t *ids,
                   float *logits)
{
    cl_seq s;
    assert_int_equal(cl_seq_init(&s, e->c), 0);
    cl_gen_opts go;
    cl_gen_opts_default(&go);
    go.max_new_tokens = 8;
    go.sampling.greedy = 1;
    go.ignore_eos = 1;
    go.logits_out = logits;
    cl_ids out = {0};
    cl_session_stats ss;
    int rc = cl_session_generate(use_store ? e->pc : NULL, e->m, &s, NULL, prompt, n, &go, &out,
                                 &ss);
    if (rc != 0)
        fail_msg("generate: %s", cl_errmsg());
    memcpy(ids, out.v, 8 * sizeof *ids);
    cl_ids_free(&out);
    cl_seq_release(&s);
    return ss.cached_tokens;
}

static void prompt_of(int32_t *p, int64_t n, int64_t V, uint64_t seed)
{
    for (int64_t i = 0; i < n; i++)
        p[i] = (int32_t)(cl_rng_uniform(seed, (uint64_t)i) * (float)V) % (int32_t)V;
}

static void test_resume_equals_uncached(void **st)
{
    (void)st;
    const char *presets[] = {"tiny-gka", "tiny-gdn", "tiny-m2", "tiny-swa"};
    for (int k = 0; k < 4; k++) {
        env e;
        const char *store = tu_tmpdir("pstore");
        open_env(&e, make(presets[k], 1), store, -1);
        int64_t V = e.m->cfg->vocab_size, n = 53;
        int32_t p[64], ids0[8], ids1[8], ids2[8];
        float *l0 = malloc((size_t)(8 * V) * 4), *l2 = malloc((size_t)(8 * V) * 4);
        prompt_of(p, n, V, 3);
        assert_int_equal(gen(&e, 0, p, n, ids0, l0), 0);
        assert_int_equal(gen(&e, 1, p, n, ids1, NULL), 0); /* stores */
        int64_t cached = gen(&e, 1, p, n, ids2, l2);
        print_message("  %-9s second run: %lld of %lld tokens from the store, logits rel err %.2g\n",
                      presets[k], (long long)cached, (long long)n,
                      tu_rel_err(l2, l0, (size_t)(8 * V)));
        assert_int_equal(cached, n - 1);
        assert_memory_equal(ids0, ids1, sizeof ids0);
        assert_memory_equal(ids0, ids2, sizeof ids0);
        assert_true(tu_rel_err(l2, l0, (size_t)(8 * V)) <= 1e-5);
        free(l0);
        free(l2);
        close_env(&e);
    }
}

/* flips a byte inside every stored snapshot payload (found by its "CLST" magic) */
static int flip_snapshots(const char *store)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/data.mdb", store);
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    unsigned char *buf = malloc((size_t)size);
    fseek(f, 0, SEEK_SET);
    assert_int_equal(fread(buf, 1, (size_t)size, f), (size_t)size);
    int n = 0;
    for (long i = 0; i + 512 < size; i++) {
        if (!memcmp(buf + i, "CLST", 4) && buf[i + 4] == 1 && buf[i + 5] == 0) {
            buf[i + 300] ^= 0x40; /* inside the snapshot's payload */
            n++;
        }
    }
    fseek(f, 0, SEEK_SET);
    fwrite(buf, 1, (size_t)size, f);
    fclose(f);
    free(buf);
    return n;
}

static void test_corrupted_snapshot(void **st)
{
    (void)st;
    const char *model = make("tiny-gka", 2), *store = tu_tmpdir("pcorrupt");
    int32_t p[64], ids0[8], ids1[8];
    env e;
    open_env(&e, model, store, -1);
    int64_t V = e.m->cfg->vocab_size;
    prompt_of(p, 40, V, 9);
    assert_int_equal(gen(&e, 1, p, 40, ids0, NULL), 0);
    close_env(&e);
    assert_true(flip_snapshots(store) >= 1);
    open_env(&e, model, store, -1);
    int64_t cached = gen(&e, 1, p, 40, ids1, NULL); /* corrupted: must not be used */
    assert_int_equal(cached, 0);
    assert_memory_equal(ids0, ids1, sizeof ids0);
    cached = gen(&e, 1, p, 40, ids1, NULL); /* recomputed and stored again */
    assert_int_equal(cached, 39);
    assert_memory_equal(ids0, ids1, sizeof ids0);
    cl_store_verify_result vr;
    assert_int_equal(cl_store_verify(e.st, NULL, NULL, NULL, &vr), 0);
    assert_int_equal(vr.bad, 0);
    close_env(&e);
}

static void test_keys_separate(void **st)
{
    (void)st;
    const char *store = tu_tmpdir("pkeys");
    const char *m1 = make("tiny-gka", 4), *m2 = make("tiny-gka", 5);
    int32_t p[64], ids[8];
    env e;
    open_env(&e, m1, store, -1);
    prompt_of(p, 40, e.m->cfg->vocab_size, 1);
    assert_int_equal(gen(&e, 1, p, 40, ids, NULL), 0);
    assert_int_equal(gen(&e, 1, p, 40, ids, NULL), 39);
    close_env(&e);
    open_env(&e, m1, store, 10); /* GKA num_iter 10: other states */
    assert_int_equal(gen(&e, 1, p, 40, ids, NULL), 0);
    close_env(&e);
    open_env(&e, m2, store, -1); /* same shapes, other weights */
    assert_int_equal(gen(&e, 1, p, 40, ids, NULL), 0);
    close_env(&e);
}

static void test_conversation_and_every(void **st)
{
    (void)st;
    const char *store = tu_tmpdir("pconv");
    env e;
    open_env(&e, make("tiny-gdn", 6), store, -1);
    int64_t V = e.m->cfg->vocab_size;
    int32_t p[256], ids[8];
    prompt_of(p, 200, V, 2);
    /* turn 1: prompt p[0..50); turn 2 = turn 1 + its answer + more */
    assert_int_equal(gen(&e, 1, p, 50, ids, NULL), 0);
    memcpy(p + 50, ids, sizeof ids);
    assert_int_equal(gen(&e, 1, p, 70, ids, NULL), 58);
    /* a long prompt with a snapshot every 2 blocks (32 tokens): a shorter prompt that
     * shares its first 100 tokens resumes at 96 */
    e.pc->snapshot_every = 2;
    cl_seq s;
    assert_int_equal(cl_seq_init(&s, e.c), 0);
    cl_gen_opts go;
    cl_gen_opts_default(&go);
    go.max_new_tokens = 2;
    go.sampling.greedy = 1;
    cl_ids out = {0};
    cl_session_stats ss;
    int32_t q[256];
    prompt_of(q, 200, V, 77);
    assert_int_equal(cl_session_generate(e.pc, e.m, &s, NULL, q, 200, &go, &out, &ss), 0);
    e.pc->snapshot_every = 0;
    cl_ids_free(&out);
    cl_seq_release(&s);
    q[100] = (q[100] + 1) % (int32_t)V;
    assert_int_equal(gen(&e, 1, q, 120, ids, NULL), 96);
    close_env(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resume_equals_uncached),
        cmocka_unit_test(test_corrupted_snapshot),
        cmocka_unit_test(test_keys_separate),
        cmocka_unit_test(test_conversation_and_every),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
