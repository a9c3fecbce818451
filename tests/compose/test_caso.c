/* test_caso - CASO (COMPOSITION.md §5.4) is exact for a model with one SSM layer
 * (M2, GKA, GDN): documents read in order, each one's contribution taken from a
 * zero recurrent state (with the conv history it had in the sequence), compose
 * into the state of the sequential prefill of their concatenation (recurrent
 * states, total log decay, GDN transition, conv), and the next tokens' logits
 * from the composed state equal those of the sequential run. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/status.h"
#include "compose/compose.h"
#include "compose/strategy.h"
#include "compose_util.h"
#include "engine/state.h"
#include "testutil.h"

enum { N_DOCS = 4 };
static const int64_t doc_len[N_DOCS] = {37, 70, 23, 64};

/* Keeps the conv state, zeroes recurrent states and log decay, transition = I. */
static void zero_recurrent(cl_seq *s)
{
    int wt = cu_cache_has_trans(s->c);
    float *h = cu_read_ssm(s, wt);
    cl_compose_ssm_view *v;
    size_t floats;
    assert_int_equal(cl_compose_ssm_views(s->c, wt, &v, &floats), CL_OK);
    for (int i = 0; i < s->c->n_ssm; i++) {
        memset(h + v[i].state, 0, 2 * v[i].state_n * sizeof *h);
        memset(h + v[i].log_decay, 0, (size_t)v[i].n_heads * sizeof *h);
        if (v[i].trans != (size_t)-1) {
            int64_t H = v[i].n_heads, D = v[i].head_dim;
            memset(h + v[i].trans, 0, v[i].state_n * sizeof *h);
            for (int64_t k = 0; k < H; k++)
                for (int64_t d = 0; d < D; d++)
                    h[v[i].trans + (size_t)((k * D + d) * D + d)] = 1.0f;
        }
    }
    assert_int_equal(cl_state_write_ssm(s, h, wt), CL_OK);
    free(v);
    free(h);
}

static void run(const char *preset, const char *pattern)
{
    cl_model *m = cu_mkmodel(preset, pattern, 1, 5);
    int64_t V = m->cfg->vocab_size, total = 0, n_q = 6;
    for (int i = 0; i < N_DOCS; i++)
        total += doc_len[i];
    int32_t *ids = malloc((size_t)(total + n_q) * sizeof *ids);
    cu_random_ids(ids, total + n_q, V, 17);
    cl_compose_opts o;
    cl_compose_opts_default(&o);
    o.ssm = CL_COMPOSE_SSM_CASO;
    cl_cache_opts co;
    cl_compose_cache_opts(m, &o, &co);
    cl_cache *c;
    assert_int_equal(cl_cache_create(m, &co, &c), CL_OK);
    cl_seq seq, docs[N_DOCS], out;
    assert_int_equal(cl_seq_init(&seq, c), CL_OK);
    assert_int_equal(cl_seq_init(&out, c), CL_OK);
    int64_t off = 0;
    for (int i = 0; i < N_DOCS; i++) {
        assert_int_equal(cl_seq_init(&docs[i], c), CL_OK);
        assert_int_equal(cl_seq_copy(&docs[i], &seq), CL_OK);
        zero_recurrent(&docs[i]);
        assert_int_equal(cl_seq_feed(m, &docs[i], ids + off, doc_len[i], 0, CL_LOGITS_NONE, NULL),
                         CL_OK);
        assert_int_equal(cl_seq_feed(m, &seq, ids + off, doc_len[i], 0, CL_LOGITS_NONE, NULL),
                         CL_OK);
        off += doc_len[i];
    }
    const cl_seq *dp[N_DOCS] = {&docs[0], &docs[1], &docs[2], &docs[3]};
    assert_int_equal(cl_compose_ssm_into(dp, N_DOCS, CL_COMPOSE_SSM_CASO, &out), CL_OK);
    int wt = cu_cache_has_trans(c);
    float *got = cu_read_ssm(&out, wt), *ref = cu_read_ssm(&seq, wt);
    cl_compose_ssm_view *v;
    size_t floats;
    assert_int_equal(cl_compose_ssm_views(c, wt, &v, &floats), CL_OK);
    print_message("  %s (one %s layer):\n", preset, pattern);
    cu_cmp("conv", got + v[0].conv, ref + v[0].conv, v[0].conv_n, 1e-6);
    cu_cmp("state", got + v[0].state, ref + v[0].state, v[0].state_n, 1e-5);
    if (v[0].type == CL_LAYER_GKA)
        cu_cmp("state2 (h_kk)", got + v[0].state2, ref + v[0].state2, v[0].state_n, 1e-5);
    cu_cmp("log_decay", got + v[0].log_decay, ref + v[0].log_decay, (size_t)v[0].n_heads, 1e-5);
    if (v[0].trans != (size_t)-1)
        cu_cmp("transition", got + v[0].trans, ref + v[0].trans, v[0].state_n, 1e-5);
    /* the next tokens: logits from the composed state = from the sequential one */
    float *l1 = malloc((size_t)(n_q * V) * sizeof *l1), *l2 = malloc((size_t)(n_q * V) * sizeof *l2);
    assert_int_equal(cl_seq_feed(m, &out, ids + total, n_q, 0, CL_LOGITS_ALL, l1), CL_OK);
    assert_int_equal(cl_seq_feed(m, &seq, ids + total, n_q, 0, CL_LOGITS_ALL, l2), CL_OK);
    cu_cmp("next-token logits", l1, l2, (size_t)(n_q * V), 1e-5);
    free(l1);
    free(l2);
    free(v);
    free(got);
    free(ref);
    for (int i = 0; i < N_DOCS; i++)
        cl_seq_release(&docs[i]);
    cl_seq_release(&seq);
    cl_seq_release(&out);
    cl_cache_free(c);
    cl_model_free(m);
    free(ids);
}

static void test_caso_m2(void **st)
{
    (void)st;
    run("tiny-m2", "M2");
}

static void test_caso_gka(void **st)
{
    (void)st;
    run("tiny-gka", "GKA");
}

static void test_caso_gdn(void **st)
{
    (void)st;
    run("tiny-gdn", "GDN");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_caso_m2),
        cmocka_unit_test(test_caso_gka),
        cmocka_unit_test(test_caso_gdn),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
