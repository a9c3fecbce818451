/* test_tiers - the hot tiers above the store (engine/tiers.h) change nothing but speed:
 * a composed query answers with the same logits whether its documents come from the
 * store, the host tier or the device tier; a prompt resumed from a tier gives the logits
 * of an uncached run (to prefill-chunk rounding), and what write-behind queued is in
 * the store for the next process; an entry evicted from the device tier moves to the host tier and
 * still restores; with write-behind, every state reported stored is in the store. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "collage.h"
#include "common/rng.h"
#include "testutil.h"

#define V_MAX 1024

static const char *model_dir(void)
{
    static char dir[4096];
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "%s", tu_tmpdir("tiers-model"));
        cl_mkmodel_opts o = {"tiny-gdn", dir, 11, NULL, NULL, 0, 1};
        if (cl_mkmodel(&o) != 0)
            fail_msg("mkmodel: %s", cl_errmsg());
    }
    return dir;
}

typedef struct {
    cl_model *m;
    cl_cache *c;
    cl_store *st;
    cl_prefix *p;
    int64_t V;
} env;

static int max_gpu_states; /* cl_prefix_opts.gpu_tier_max_states of the next open_env */

static void open_env(env *e, const char *store, uint64_t gpu, uint64_t host)
{
    memset(e, 0, sizeof *e);
    cl_model_opts mo;
    cl_model_opts_default(&mo);
    mo.backend = "cpu";
    if (cl_model_load(model_dir(), &mo, &e->m) != 0)
        fail_msg("%s", cl_errmsg());
    cl_model_info mi;
    cl_model_info_get(e->m, &mi);
    e->V = mi.vocab_size;
    cl_cache_opts co;
    cl_cache_opts_for_model(e->m, &co);
    co.track_transition = 1;
    assert_int_equal(cl_cache_create(e->m, &co, &e->c), 0);
    assert_int_equal(cl_store_open(store, NULL, &e->st), 0);
    cl_prefix_opts po;
    cl_prefix_opts_default(&po);
    po.block_tokens = 16;
    po.gpu_tier_bytes = gpu;
    po.host_tier_bytes = host;
    po.gpu_tier_max_states = max_gpu_states;
    if (cl_prefix_create(e->st, e->m, e->c, &po, &e->p) != 0)
        fail_msg("%s", cl_errmsg());
}

static void close_env(env *e)
{
    cl_prefix_free(e->p);
    cl_cache_free(e->c);
    cl_store_close(e->st);
    cl_model_free(e->m);
}

static void ids_of(int32_t *p, int64_t n, int64_t V, uint64_t seed)
{
    for (int64_t i = 0; i < n; i++)
        p[i] = (int32_t)(cl_rng_uniform(seed, (uint64_t)i) * (float)V) % (int32_t)V;
}

/* Composed query over docs: the first generated token's logits. */
static void query_logits(env *e, const cl_key *ids, int n, cl_compose_ssm ssm, float *lg)
{
    cl_compose_opts co;
    cl_compose_opts_default(&co);
    co.ssm = ssm;
    int32_t q[12];
    ids_of(q, 12, e->V, 99);
    cl_seq *s;
    assert_int_equal(cl_seq_create(e->c, &s), 0);
    if (cl_doc_query(e->p, ids, n, &co, q, 12, s, NULL) != 0)
        fail_msg("query: %s", cl_errmsg());
    assert_int_equal(cl_seq_feed(e->m, s, q + 11, 1, 0, CL_LOGITS_LAST, lg), 0);
    cl_seq_free(s);
}

static void same(const float *a, const float *b, int64_t n, const char *what)
{
    for (int64_t i = 0; i < n; i++)
        if (a[i] != b[i])
            fail_msg("%s: logit %lld differs (%g vs %g)", what, (long long)i, a[i], b[i]);
}

static void test_documents_from_every_tier(void **st)
{
    (void)st;
    const char *store = tu_tmpdir("tiers-docs");
    env e;
    open_env(&e, store, 0, 0);
    int32_t d0[70], d1[90];
    ids_of(d0, 70, e.V, 1);
    ids_of(d1, 90, e.V, 2);
    cl_doc_input in[2] = {{d0, 70, "a"}, {d1, 90, "b"}};
    cl_doc_result res[2];
    assert_int_equal(cl_doc_ingest(e.p, NULL, 0, in, 2, NULL, res), 0);
    cl_key ids[2] = {res[0].id, res[1].id};
    cl_compose_ssm kinds[2] = {CL_COMPOSE_SSM_SOUP, CL_COMPOSE_SSM_FUSE};
    float ref[2][V_MAX], got[V_MAX];
    for (int k = 0; k < 2; k++)
        query_logits(&e, ids, 2, kinds[k], ref[k]); /* from the store */
    close_env(&e);
    /* the device tier: the first query fills it, the second is served from it */
    open_env(&e, store, (uint64_t)1 << 30, 0);
    for (int k = 0; k < 2; k++)
        for (int round = 0; round < 2; round++) {
            query_logits(&e, ids, 2, kinds[k], got);
            same(ref[k], got, e.V, round ? "device tier" : "store, filling the device tier");
        }
    cl_prefix_stats ps;
    cl_prefix_stats_get(e.p, &ps);
    assert_int_equal(ps.hits_store, 2);
    assert_true(ps.hits_gpu >= 6);
    assert_true(ps.gpu_bytes > 0);
    close_env(&e);
    /* the host tier only */
    open_env(&e, store, 0, (uint64_t)1 << 30);
    for (int round = 0; round < 2; round++) {
        query_logits(&e, ids, 2, CL_COMPOSE_SSM_FUSE, got);
        same(ref[1], got, e.V, "host tier");
    }
    cl_prefix_stats_get(e.p, &ps);
    assert_int_equal(ps.hits_store, 2);
    assert_int_equal(ps.hits_host, 2);
    close_env(&e);
    /* a device tier with room for one document: the other is demoted to the host tier */
    open_env(&e, store, 1, (uint64_t)1 << 30);
    query_logits(&e, ids, 2, CL_COMPOSE_SSM_SOUP, got);
    same(ref[0], got, e.V, "device tier too small");
    close_env(&e);
    /* a device tier of one state at most (a server keeps that many slots for it): the
     * other document goes to the host tier, and both still answer */
    max_gpu_states = 1;
    open_env(&e, store, (uint64_t)1 << 30, (uint64_t)1 << 30);
    for (int round = 0; round < 2; round++) {
        query_logits(&e, ids, 2, CL_COMPOSE_SSM_SOUP, got);
        same(ref[0], got, e.V, "device tier of one state");
        cl_prefix_stats_get(e.p, &ps);
        assert_int_equal(ps.gpu_states, 1);
        assert_int_equal(ps.host_states, 1);
    }
    max_gpu_states = 0;
    close_env(&e);
}

/* One generation with reuse (4 greedy tokens); cached tokens out, generated ids to gen. */
static int64_t session(env *e, const int32_t *prompt, int64_t n, float *lg, int32_t *gen)
{
    cl_seq *s;
    assert_int_equal(cl_seq_create(e->c, &s), 0);
    cl_gen_opts go;
    cl_gen_opts_default(&go);
    go.max_new_tokens = 4;
    go.sampling.greedy = 1;
    go.ignore_eos = 1;
    go.logits_out = lg;
    cl_ids out = {0};
    cl_session_stats ss;
    if (cl_session_generate(e->p, e->m, s, NULL, prompt, n, &go, &out, &ss) != 0)
        fail_msg("generate: %s", cl_errmsg());
    assert_int_equal(out.n, 4);
    if (gen)
        memcpy(gen, out.v, 4 * sizeof *gen);
    cl_ids_free(&out);
    cl_seq_free(s);
    return ss.cached_tokens;
}

static void test_prefix_from_tiers(void **st)
{
    (void)st;
    static float a[4 * V_MAX], b[4 * V_MAX];
    env e;
    const char *store = tu_tmpdir("tiers-prefix");
    open_env(&e, store, (uint64_t)1 << 30, (uint64_t)1 << 30);
    /* turn 1: 120 tokens and its answer; turn 2 = turn 1 + answer + 76 more tokens
     * resumes after the answer from the device tier (the store may still be writing) */
    int32_t p[200];
    ids_of(p, 200, e.V, 5);
    assert_int_equal(session(&e, p, 120, a, p + 120), 0);
    int64_t cached = session(&e, p, 200, b, NULL);
    assert_int_equal(cached, 124);
    cl_prefix_stats ps;
    cl_prefix_stats_get(e.p, &ps);
    assert_int_equal(ps.hits_gpu, 1);
    assert_int_equal(cl_prefix_flush(e.p), 0);
    close_env(&e);
    /* the reference: an uncached run of turn 2 */
    open_env(&e, tu_tmpdir("tiers-prefix-ref"), 0, 0);
    assert_int_equal(session(&e, p, 200, a, NULL), 0);
    close_env(&e);
    /* not bit for bit: the resumed prefill runs in other chunks (as in test_prefix) */
    assert_true(tu_rel_err(b, a, (size_t)(4 * e.V)) <= 1e-5);

    /* a new process without tiers finds the same state in the store (write-behind) */
    open_env(&e, store, 0, 0);
    assert_int_equal(session(&e, p, 200, b, NULL), 199); /* turn 2's own snapshot */
    assert_true(tu_rel_err(b, a, (size_t)(4 * e.V)) <= 1e-5);
    close_env(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_documents_from_every_tier),
        cmocka_unit_test(test_prefix_from_tiers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
