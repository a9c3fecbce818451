/* test_comm_abort - a failing rank cannot hang the others: while the other ranks wait
 * in an all-reduce, the failing rank's abort (cl_ranks_run's on_fail) makes their
 * collectives return an error; the group stays failed until recovered, then sums
 * correctly again (CPU group; tests/cuda/test_tp_abort.c runs the same through NCCL). */
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
#include "testutil.h"

#define N_FLOATS 1000

typedef struct {
    int n;
    cl_backend *b[4];
    cl_comm *comms[4];
    cl_ranks *ranks;
    int bad;        /* the rank that fails at once (-1: none; n: every rank) */
    int rc[4];      /* each rank's all-reduce status */
    float x[4][N_FLOATS];
} group;

static void group_open(group *g, int n)
{
    memset(g, 0, sizeof *g);
    g->n = n;
    for (int r = 0; r < n; r++)
        assert_int_equal(cl_backend_create("cpu", 1, &g->b[r]), CL_OK);
    assert_int_equal(cl_comm_group_create(g->b, n, g->comms), CL_OK);
    assert_int_equal(cl_ranks_create(n, &g->ranks), CL_OK);
}

static void group_close(group *g)
{
    cl_ranks_free(g->ranks);
    cl_comm_group_free(g->comms, g->n);
    for (int r = 0; r < g->n; r++)
        cl_backend_destroy(g->b[r]);
}

/* Rank r: fails if it is the bad one, else all-reduces x[r] = r + 1 (+ index). */
static int rank_work(void *user, int r)
{
    group *g = user;
    if (g->bad == r || g->bad == g->n)
        return cl_err(CL_ERR_BACKEND, "rank %d failed on purpose", r);
    if (r == 0)
        usleep(20000); /* the others are waiting in the collective when it fails */
    for (int i = 0; i < N_FLOATS; i++)
        g->x[r][i] = (float)(r + 1) + (float)i;
    g->rc[r] = cl_comm_all_reduce(g->comms[r], g->x[r], N_FLOATS);
    return g->rc[r];
}

static void on_fail(void *user, int r) { cl_comm_abort(((group *)user)->comms[r]); }

static void recover(group *g)
{
    for (int r = 0; r < g->n; r++)
        cl_comm_recover(g->comms[r]);
}

/* Every rank sums; each gets sum over r of (r + 1 + i). */
static void check_sums(group *g)
{
    g->bad = -1;
    assert_int_equal(cl_ranks_run(g->ranks, rank_work, g, on_fail), CL_OK);
    float base = (float)(g->n * (g->n + 1) / 2);
    for (int r = 0; r < g->n; r++)
        for (int i = 0; i < N_FLOATS; i++)
            assert_true(g->x[r][i] == base + (float)(g->n * i));
}

static void test_one_rank_fails(void **st)
{
    (void)st;
    for (int n = 2; n <= 4; n++)
        for (int bad = 0; bad < n; bad++) {
            group g;
            group_open(&g, n);
            check_sums(&g);
            g.bad = bad;
            for (int r = 0; r < n; r++)
                g.rc[r] = CL_OK;
            int rc = cl_ranks_run(g.ranks, rank_work, &g, on_fail);
            assert_int_equal(rc, CL_ERR_BACKEND);
            /* the root cause, not the "another rank failed" of a rank the abort woke:
             * ranks.c records a failure before it calls on_fail */
            assert_non_null(strstr(cl_errmsg(), "failed on purpose"));
            /* the others came back, their collective failed (not a partial sum) */
            for (int r = 0; r < n; r++)
                if (r != bad)
                    assert_int_equal(g.rc[r], CL_ERR_BACKEND);
            /* failed until recovered: every rank's collective errors, none waits */
            g.bad = -1;
            assert_int_equal(cl_ranks_run(g.ranks, rank_work, &g, on_fail), CL_ERR_BACKEND);
            assert_non_null(strstr(cl_errmsg(), "another rank failed"));
            recover(&g);
            check_sums(&g);
            group_close(&g);
        }
}

static void test_every_rank_fails(void **st)
{
    (void)st;
    group g;
    group_open(&g, 3);
    g.bad = 3; /* all of them, before any collective: each aborts */
    assert_int_equal(cl_ranks_run(g.ranks, rank_work, &g, on_fail), CL_ERR_BACKEND);
    recover(&g);
    recover(&g); /* twice is harmless */
    check_sums(&g);
    group_close(&g);
}

int main(void)
{
    alarm(120); /* a hang is a failure, not a stuck test run */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_rank_fails),
        cmocka_unit_test(test_every_rank_fails),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
