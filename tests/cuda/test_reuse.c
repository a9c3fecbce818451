/* test_reuse - reuse on the CUDA backend changes nothing but speed: documents ingested
 * on the GPU and queried back from the store (streamed through the staging pump), from
 * the host tier and from the GPU tier give the same logits as each other (bit for bit)
 * and as the CPU backend on the same stored documents (fp32 model, 1e-4; a bf16 model's
 * documents hold bf16 KV, which the CPU's fp32 cache refuses by name);
 * a prompt resumed from the store or a tier on the GPU gives the logits of an uncached
 * GPU run (to rounding); a state gathered from the GPU and restored is the same bytes.
 * Skips (77) without a GPU. */
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

typedef struct {
    cl_model *m;
    cl_cache *c;
    cl_store *st;
    cl_prefix *p;
    int64_t V;
} env;

static void open_env(env *e, const char *model, const char *backend, const char *store,
                     uint64_t gpu, uint64_t host)
{
    memset(e, 0, sizeof *e);
    cl_model_opts mo;
    cl_model_opts_default(&mo);
    mo.backend = backend;
    if (cl_model_load(model, &mo, &e->m) != 0)
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
    po.block_tokens = 32;
    po.gpu_tier_bytes = gpu;
    po.host_tier_bytes = host;
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
        p[i] = 1 + (int32_t)(cl_rng_uniform(seed, (uint64_t)i) * (float)(V - 2));
}

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

static void check(const char *what, const float *a, const float *b, int64_t n, double tol)
{
    double err = tu_rel_err(a, b, (size_t)n);
    print_message("    %-52s %.3g (tol %.0e) %s\n", what, err, tol, err <= tol ? "ok" : "FAIL");
    if (!(err <= tol))
        fail_msg("%s: %g > %g", what, err, tol);
}

static void documents(const char *preset, const char *dtype, double tol)
{
    char name[64];
    snprintf(name, sizeof name, "reuse-%s-%s", preset, dtype);
    const char *dir = tu_tmpdir(name);
    cl_mkmodel_opts mk;
    memset(&mk, 0, sizeof mk);
    mk.preset = preset;
    mk.out_dir = dir;
    mk.seed = 3;
    mk.dtype = dtype;
    mk.no_tokenizer = 1;
    if (cl_mkmodel(&mk) != 0)
        fail_msg("mkmodel: %s", cl_errmsg());
    char store[4200];
    snprintf(store, sizeof store, "%s/store", dir);
    env e;
    open_env(&e, dir, "cuda", store, 0, 0);
    int32_t d[3][300];
    cl_doc_input in[3];
    for (int i = 0; i < 3; i++) {
        ids_of(d[i], 300, e.V, (uint64_t)i + 1);
        in[i] = (cl_doc_input){d[i], 200 + 50 * i, NULL};
    }
    cl_doc_result res[3];
    assert_int_equal(cl_doc_ingest(e.p, NULL, 0, in, 3, NULL, res), 0);
    cl_key ids[3] = {res[0].id, res[1].id, res[2].id};
    cl_compose_ssm kinds[3] = {CL_COMPOSE_SSM_SOUP, CL_COMPOSE_SSM_FUSE, CL_COMPOSE_SSM_CASO};
    static float store_lg[3][V_MAX], lg[V_MAX];
    for (int k = 0; k < 3; k++)
        query_logits(&e, ids, 3, kinds[k], store_lg[k]);
    close_env(&e);
    /* tiers on the GPU: filled by the first round, served by the second */
    uint64_t budgets[2][2] = {{(uint64_t)1 << 30, 0}, {0, (uint64_t)1 << 30}};
    const char *names[2] = {"GPU tier", "host tier"};
    for (int t = 0; t < 2; t++) {
        open_env(&e, dir, "cuda", store, budgets[t][0], budgets[t][1]);
        for (int round = 0; round < 2; round++)
            for (int k = 0; k < 3; k++) {
                query_logits(&e, ids, 3, kinds[k], lg);
                char what[96];
                snprintf(what, sizeof what, "%s %s %s compose %d vs store", preset, dtype,
                         names[t], k);
                check(what, store_lg[k], lg, e.V, 0); /* the same state: bit for bit */
            }
        close_env(&e);
    }
    /* the CPU backend restores the documents the GPU stored where the KV dtype is the
     * same (fp32); a bf16 model's documents (bf16 KV on the GPU, fp32 on the CPU) are
     * refused by name before their payload is read */
    open_env(&e, dir, "cpu", store, 0, 0);
    if (strcmp(dtype, "float32") == 0) {
        for (int k = 0; k < 3; k++) {
            query_logits(&e, ids, 3, kinds[k], lg);
            char what[96];
            snprintf(what, sizeof what, "%s %s GPU-stored docs, CPU vs GPU %d", preset, dtype,
                     k);
            check(what, lg, store_lg[k], e.V, tol);
        }
    } else {
        cl_compose_opts co;
        cl_compose_opts_default(&co);
        cl_seq *s;
        int32_t q[2] = {1, 2};
        assert_int_equal(cl_seq_create(e.c, &s), 0);
        assert_int_not_equal(cl_doc_query(e.p, ids, 3, &co, q, 2, s, NULL), 0);
        if (!strstr(cl_errmsg(), "another model") || !strstr(cl_errmsg(), "document "))
            fail_msg("bf16 documents on the CPU: %s", cl_errmsg());
        cl_seq_free(s);
    }
    close_env(&e);
    /* a prompt resumed on the GPU from the store and from the GPU tier */
    int32_t p[400];
    ids_of(p, 400, e.V, 9);
    static float ref[V_MAX], got[V_MAX];
    char store2[4300];
    snprintf(store2, sizeof store2, "%s/store-prefix", dir);
    open_env(&e, dir, "cuda", store2, (uint64_t)1 << 30, 0);
    cl_seq *s;
    assert_int_equal(cl_seq_create(e.c, &s), 0);
    assert_int_equal(cl_seq_feed(e.m, s, p, 399, 0, CL_LOGITS_NONE, NULL), 0);
    assert_int_equal(cl_seq_feed(e.m, s, p + 399, 1, 1, CL_LOGITS_LAST, ref), 0);
    cl_seq_free(s);
    assert_int_equal(cl_seq_create(e.c, &s), 0);
    assert_int_equal(cl_seq_feed(e.m, s, p, 399, 0, CL_LOGITS_NONE, NULL), 0);
    assert_int_equal(cl_prefix_store(e.p, s, p, 399), 0); /* store + GPU tier */
    cl_seq_free(s);
    assert_int_equal(cl_prefix_flush(e.p), 0);
    for (int from = 0; from < 2; from++) { /* 0: GPU tier, 1: store */
        if (from == 1) {
            close_env(&e);
            open_env(&e, dir, "cuda", store2, 0, 0);
        }
        int64_t cached = 0;
        assert_int_equal(cl_seq_create(e.c, &s), 0);
        assert_int_equal(cl_prefix_restore(e.p, s, p, 399, &cached), 0);
        assert_int_equal(cached, 399);
        assert_int_equal(cl_seq_feed(e.m, s, p + 399, 1, 1, CL_LOGITS_LAST, got), 0);
        cl_seq_free(s);
        char what[96];
        snprintf(what, sizeof what, "%s %s prefix from the %s", preset, dtype,
                 from ? "store" : "GPU tier");
        check(what, ref, got, e.V, 0); /* the same state as the one that was stored */
    }
    close_env(&e);
}

static void test_reuse(void **st)
{
    (void)st;
    documents("tiny-gdn", "float32", 1e-4);
    documents("tiny-gka", "float32", 1e-4);
    documents("tiny-m2", "bfloat16", 0);
}

int main(void)
{
    if (!cl_cuda_available()) {
        printf("SKIP: no CUDA device\n");
        return 77;
    }
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_reuse)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
