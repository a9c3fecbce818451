/* test_tp_abort - NCCL abort and recovery: on n visible GPUs (1 to 4), one rank fails
 * while the others wait in an all-reduce and in a stream synchronise behind it; the
 * abort (ncclCommAbort of every communicator) brings them back (no hang), collectives
 * fail until the group is recovered (new communicators), then sum correctly. A sharded
 * tiny model gives the same decode logits after an abort and recovery as before (its
 * decode graphs are captured again with the new communicators). Skips (77) without a
 * GPU or without the CUDA backend. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "backend/backend.h"
#include "backend/comm.h"
#include "backend/ranks.h"
#include "common/status.h"
#include "engine/seq.h"
#include "mkmodel/mkmodel.h"
#include "model/model.h"
#include "testutil.h"
#ifdef COLLAGE_HAVE_CUDA
#include "backend/cuda.h"
#endif

#define N_FLOATS (1 << 20)

typedef struct {
    int n, bad; /* bad: the rank that fails at once (-1: none) */
    cl_backend *b[4];
    cl_comm *comms[4];
    cl_ranks *ranks;
    int rc[4];
    float sum0[4]; /* each rank's first element after the all-reduce */
} group;

/* Visible CUDA devices (0 in a build without the CUDA backend). */
static int devices(void)
{
#ifdef COLLAGE_HAVE_CUDA
    return cl_cuda_device_count();
#else
    return 0;
#endif
}

/* Rank r: x = r + 1 everywhere, all-reduced, waited for, first element read back. */
static int rank_work(void *user, int r)
{
    group *g = user;
    if (g->bad == r) { /* late: the others are waiting on the GPU for it by then */
        usleep(200000);
        return cl_err(CL_ERR_BACKEND, "rank %d failed on purpose", r);
    }
    cl_backend *b = g->b[r];
    const cl_backend_ops *o = b->ops;
    float *x = o->alloc(b, N_FLOATS * sizeof *x);
    if (!x)
        return cl_err(CL_ERR_NOMEM, "no device memory");
    int rc = o->fill_random(b, x, CL_F32, N_FLOATS, 1, 0, CL_RNG_CONST, 0, (float)(r + 1), CL_F32);
    if (rc == CL_OK)
        rc = cl_comm_all_reduce(g->comms[r], x, N_FLOATS);
    int rs = o->sync(b); /* waits for the collective: where a missing peer would hang */
    if (rc == CL_OK)
        rc = rs;
    if (rc == CL_OK)
        rc = o->to_host(b, &g->sum0[r], x, sizeof(float));
    o->free(b, x);
    g->rc[r] = rc;
    return rc;
}

static void on_fail(void *user, int r) { cl_comm_abort(((group *)user)->comms[r]); }

static void check_sums(group *g)
{
    g->bad = -1;
    if (cl_ranks_run(g->ranks, rank_work, g, on_fail) != CL_OK)
        fail_msg("all-reduce over %d ranks: %s", g->n, cl_errmsg());
    for (int r = 0; r < g->n; r++)
        assert_true(g->sum0[r] == (float)(g->n * (g->n + 1) / 2));
}

static void test_comm(void **st)
{
    (void)st;
    int visible = devices();
    for (int n = 1; n <= 4 && n <= visible; n++) {
        group g;
        memset(&g, 0, sizeof g);
        g.n = n;
        for (int r = 0; r < n; r++)
            assert_int_equal(cl_backend_create_device("cuda", 1, r, &g.b[r]), CL_OK);
        assert_int_equal(cl_ranks_create(n, &g.ranks), CL_OK);
        if (cl_comm_group_create(g.b, n, g.comms) != CL_OK)
            fail_msg("NCCL group of %d: %s", n, cl_errmsg());
        for (int r = 0; r < n; r++)
            assert_int_equal(cl_ranks_bind(g.ranks, r, g.b[r]), CL_OK);
        check_sums(&g);
        g.bad = n - 1;
        int rc = cl_ranks_run(g.ranks, rank_work, &g, on_fail);
        assert_int_equal(rc, CL_ERR_BACKEND);
        print_message("  %d GPU(s): rank %d failed, the others returned (%s)\n", n, n - 1,
                      cl_errmsg());
        g.bad = -1; /* failed until recovered */
        assert_int_equal(cl_ranks_run(g.ranks, rank_work, &g, on_fail), CL_ERR_BACKEND);
        assert_non_null(strstr(cl_errmsg(), "aborted"));
        for (int r = 0; r < n; r++)
            cl_comm_recover(g.comms[r]);
        check_sums(&g);
        cl_ranks_free(g.ranks);
        cl_comm_group_free(g.comms, n);
        for (int r = 0; r < n; r++)
            cl_backend_destroy(g.b[r]);
    }
}

/* Logits of a prompt and 6 decode steps (decode graphs) of a fresh sequence. */
static void run_model(cl_model *m, float *out)
{
    int64_t V = m->cfg->vocab_size;
    int32_t ids[40];
    for (int i = 0; i < 40; i++)
        ids[i] = (int32_t)((i * 7919 + 3) % V);
    cl_cache *c;
    cl_seq *s;
    assert_int_equal(cl_cache_create(m, NULL, &c), 0);
    assert_int_equal(cl_seq_create(c, &s), 0);
    if (cl_seq_feed(m, s, ids, 34, 0, CL_LOGITS_LAST, out) != 0)
        fail_msg("prefill: %s", cl_errmsg());
    for (int i = 34; i < 40; i++)
        if (cl_seq_decode_batch(m, &s, ids + i, 1, out + (i - 33) * V) != 0)
            fail_msg("decode: %s", cl_errmsg());
    cl_seq_free(s);
    cl_cache_free(c);
}

static void test_model(void **st)
{
    (void)st;
    int visible = devices();
    const char *dir = tu_tmpdir("tp-abort-gdn");
    cl_mkmodel_opts o = {"tiny-gdn", dir, 7, NULL, "float32", 0, 1};
    if (cl_mkmodel(&o) != 0)
        fail_msg("mkmodel: %s", cl_errmsg());
    for (int tp = 1; tp <= 4 && tp <= visible; tp *= 2) {
        cl_model_opts mo;
        cl_model_opts_default(&mo);
        mo.backend = "cuda";
        mo.tp = tp;
        cl_model *m;
        if (cl_model_load_sharded(dir, &mo, &m) != 0)
            fail_msg("load at tp %d: %s", tp, cl_errmsg());
        int64_t V = m->cfg->vocab_size;
        float *a = malloc((size_t)(7 * V) * sizeof *a), *b = malloc((size_t)(7 * V) * sizeof *b);
        assert_non_null(a);
        assert_non_null(b);
        run_model(m, a);
        run_model(m, a); /* the second run replays the graphs the first captured */
        cl_comm_abort(m->comms[tp - 1]);
        for (int r = 0; r < tp; r++)
            cl_comm_recover(m->comms[r]);
        run_model(m, b);
        double err = tu_rel_err(b, a, (size_t)(7 * V));
        print_message("  tiny-gdn tp %d: after abort + recover, logits differ by %.2e\n", tp, err);
        assert_true(err <= 1e-6);
        free(a);
        free(b);
        cl_model_free(m);
    }
}

int main(void)
{
#ifndef COLLAGE_HAVE_CUDA
    (void)test_comm;
    (void)test_model;
    printf("SKIP: this build has no CUDA backend\n");
    return 77;
#else
    if (devices() <= 0) {
        printf("SKIP: no CUDA device\n");
        return 77;
    }
    alarm(300); /* a hang is a failure */
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_comm), cmocka_unit_test(test_model)};
    return cmocka_run_group_tests(tests, NULL, NULL);
#endif
}
