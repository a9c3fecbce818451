/* test_scheduler - continuous batching gives every request the ids it gets alone
 * (greedy and seeded sampling), with chunked prefill mixed with decode; a fixed-size
 * cache admits only what fits, queues the rest and still finishes everything; forced
 * ids replace the chosen ones. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/rng.h"
#include "common/status.h"
#include "engine/scheduler.h"
#include "mkmodel/mkmodel.h"
#include "testutil.h"

enum { NREQ = 9 };

static cl_model *load(const char *preset)
{
    const char *dir = tu_tmpdir(preset);
    cl_mkmodel_opts o = {preset, dir, 21, NULL, NULL, 0, 1};
    if (cl_mkmodel(&o) != 0)
        fail_msg("mkmodel: %s", cl_errmsg());
    cl_model_opts mo;
    cl_model_opts_default(&mo);
    mo.backend = "cpu";
    cl_model *m;
    if (cl_model_load(dir, &mo, &m) != 0)
        fail_msg("%s", cl_errmsg());
    return m;
}

static void make_requests(const cl_model *m, int32_t **prompts, cl_sched_req *req)
{
    int64_t V = m->cfg->vocab_size;
    for (int i = 0; i < NREQ; i++) {
        int64_t n = 3 + (i * 37) % 150;
        prompts[i] = malloc((size_t)n * sizeof(int32_t));
        for (int64_t t = 0; t < n; t++)
            prompts[i][t] = (int32_t)(cl_mix64((uint64_t)(i * 1000 + t)) % (uint64_t)V);
        memset(&req[i], 0, sizeof req[i]);
        cl_gen_opts_default(&req[i].gen);
        req[i].prompt = prompts[i];
        req[i].n_prompt = n;
        req[i].gen.max_new_tokens = 1 + (i * 7) % 12;
        req[i].gen.ignore_eos = 1;
        req[i].gen.sampling.greedy = i % 2 == 0;
        req[i].gen.sampling.temperature = 0.8f;
        req[i].gen.sampling.seed = (uint64_t)i;
    }
}

static void check_against_solo(cl_model *m, cl_cache *c, cl_sched *s, const cl_sched_req *req,
                               const int *ids)
{
    for (int i = 0; i < NREQ; i++) {
        const cl_ids *got;
        assert_int_equal(cl_sched_result_get(s, ids[i], &got, NULL), 0);
        cl_seq solo;
        assert_int_equal(cl_seq_init(&solo, c), 0);
        cl_ids want = {0};
        assert_int_equal(cl_generate(m, &solo, req[i].prompt, req[i].n_prompt, &req[i].gen, &want,
                                     NULL),
                         0);
        assert_int_equal(got->n, want.n);
        if (memcmp(got->v, want.v, want.n * sizeof *want.v))
            fail_msg("request %d: batched ids differ from a solo run", i);
        cl_ids_free(&want);
        cl_seq_release(&solo);
    }
}

static void test_mixed_batches(void **st)
{
    (void)st;
    const char *presets[] = {"tiny-gka", "tiny-gdn", "tiny-m2", "tiny-swa"};
    for (int p = 0; p < 4; p++) {
        cl_model *m = load(presets[p]);
        cl_cache *c;
        assert_int_equal(cl_cache_create(m, NULL, &c), 0);
        int32_t *prompts[NREQ];
        cl_sched_req req[NREQ];
        make_requests(m, prompts, req);
        cl_sched_opts so;
        cl_sched_opts_default(&so);
        so.max_batch_tokens = 48;
        so.max_seqs = 5;
        cl_sched *s;
        assert_int_equal(cl_sched_create(m, c, &so, &s), 0);
        int ids[NREQ];
        for (int i = 0; i < NREQ; i++)
            assert_int_equal(cl_sched_submit(s, &req[i], &ids[i]), 0);
        assert_int_equal(cl_sched_run(s), 0);
        cl_sched_counts k;
        cl_sched_counts_get(s, &k);
        int maxr = k.max_running;
        print_message("  %-9s %d requests: %lld forward calls, %lld rows, up to %d in flight\n",
                      presets[p], NREQ, (long long)k.steps, (long long)k.rows, maxr);
        assert_true(maxr > 1 && maxr <= 5);
        check_against_solo(m, c, s, req, ids);
        cl_sched_free(s);
        for (int i = 0; i < NREQ; i++)
            free(prompts[i]);
        cl_cache_free(c);
        cl_model_free(m);
    }
}

static void test_fixed_cache_admission(void **st)
{
    (void)st;
    cl_model *m = load("tiny-gka");
    cl_cache_opts co;
    cl_cache_opts_for_model(m, &co);
    co.growable = 0;
    co.page_tokens = 16;
    co.init_pages = 24; /* 384 tokens of KV */
    co.init_slots = 8;
    cl_cache *c;
    assert_int_equal(cl_cache_create(m, &co, &c), 0);
    int32_t *prompts[NREQ];
    cl_sched_req req[NREQ];
    make_requests(m, prompts, req);
    cl_sched *s;
    cl_sched_opts so;
    cl_sched_opts_default(&so);
    so.max_batch_tokens = 64;
    so.max_seqs = 64;
    assert_int_equal(cl_sched_create(m, c, &so, &s), 0);
    int ids[NREQ];
    for (int i = 0; i < NREQ; i++)
        assert_int_equal(cl_sched_submit(s, &req[i], &ids[i]), 0);
    assert_int_equal(cl_sched_run(s), 0);
    cl_sched_counts k;
    cl_sched_counts_get(s, &k);
    int maxr = k.max_running;
    print_message("  fixed cache of 24 pages: up to %d in flight\n", maxr);
    assert_true(maxr < NREQ); /* not everything fit at once */
    assert_int_equal(c->n_free_pages, 24); /* all pages back */
    /* a solo check needs room: use a growable cache */
    cl_cache *c2;
    assert_int_equal(cl_cache_create(m, NULL, &c2), 0);
    check_against_solo(m, c2, s, req, ids);
    /* a request larger than the whole cache is refused clearly */
    int32_t big[500] = {0};
    cl_sched_req r = req[0];
    r.prompt = big;
    r.n_prompt = 500;
    int id;
    assert_int_equal(cl_sched_submit(s, &r, &id), 0);
    int active;
    assert_int_equal(cl_sched_step(s, &active), CL_ERR_FULL);
    cl_sched_free(s);
    for (int i = 0; i < NREQ; i++)
        free(prompts[i]);
    cl_cache_free(c2);
    cl_cache_free(c);
    cl_model_free(m);
}

/* forced ids come out instead of the chosen ones (as in cl_generate); a forced EOS does
 * not stop the request */
static void test_forced_ids(void **st)
{
    (void)st;
    cl_model *m = load("tiny-gka");
    cl_cache *c;
    assert_int_equal(cl_cache_create(m, NULL, &c), 0);
    cl_sched *s;
    assert_int_equal(cl_sched_create(m, c, NULL, &s), 0);
    int32_t prompt[4] = {5, 6, 7, 8};
    int32_t force[3] = {9, 10, 11};
    int64_t eos[1] = {10};
    cl_sched_req q;
    memset(&q, 0, sizeof q);
    q.prompt = prompt;
    q.n_prompt = 4;
    cl_gen_opts_default(&q.gen);
    q.gen.max_new_tokens = 6;
    q.gen.sampling.greedy = 1;
    q.gen.force_ids = force;
    q.gen.n_force = 3;
    q.gen.eos_ids = eos;
    q.gen.n_eos = 1;
    int id;
    if (cl_sched_submit(s, &q, &id) != 0 || cl_sched_run(s) != 0)
        fail_msg("%s", cl_errmsg());
    const cl_ids *out;
    cl_sched_result res;
    assert_int_equal(cl_sched_result_get(s, id, &out, &res), 0);
    assert_true(out->n >= 4);
    for (int i = 0; i < 3; i++)
        assert_int_equal(out->v[i], force[i]);
    cl_sched_free(s);
    cl_cache_free(c);
    cl_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mixed_batches),
        cmocka_unit_test(test_fixed_cache_admission),
        cmocka_unit_test(test_forced_ids),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
