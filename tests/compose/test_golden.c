/* test_golden - every composition the reference produced (m2, gdn, gka x
 * concat_kv_soup_ssm / concat_kv_fuse_ssm (not gdn) / concat_kv_only x 2 and 4
 * chunks) through the C API: the chunk rows and masks equal the reference's,
 * the composed cache (after the query body) equals `composed.*`, teacher-forced
 * logits equal first_token_logits and every step_logits row within tol x
 * max|ref|, and free-running greedy ids equal the reference's up to the first
 * step where its own top-1/top-2 gap is below that tolerance. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/status.h"
#include "compose/compose.h"
#include "compose/layout.h"
#include "compose_util.h"
#include "engine/generate.h"
#include "testutil.h"

static const char *types[] = {"concat_kv_soup_ssm", "concat_kv_fuse_ssm", "concat_kv_only"};

static void check_layout(const char *file, const int32_t *ctx, int64_t n_ctx,
                         const cl_compose_opts *o)
{
    cl_compose_layout l;
    assert_int_equal(cl_compose_layout_build(ctx, n_ctx, o, &l), CL_OK);
    int64_t n, nm;
    int32_t *rows = cu_ids(file, "chunk_input_ids", &n);
    int32_t *masks = cu_ids(file, "chunk_prefix_masks", &nm);
    assert_int_equal(n, l.n_rows * l.row_tokens);
    assert_int_equal(l.off[l.n_rows], n);
    for (int64_t t = 0; t < n; t++)
        assert_int_equal(l.tokens[t], rows[t]);
    for (int i = 0; i < l.n_rows; i++)
        for (int64_t j = 0; j < l.row_tokens; j++)
            assert_int_equal(cl_compose_layout_kept(&l, i, j), masks[i * l.row_tokens + j]);
    free(rows);
    free(masks);
    cl_compose_layout_free(&l);
}

/* max over rows of max|got-ref|/max|ref| (per row) */
static double rows_err(const float *got, const float *ref, int64_t rows, int64_t V)
{
    double e = 0;
    for (int64_t k = 0; k < rows; k++) {
        double ek = tu_rel_err(got + k * V, ref + k * V, (size_t)V);
        if (ek > e)
            e = ek;
    }
    return e;
}

/* Steps of the reference whose top-1/top-2 gap is at least tol x max|logits|. */
static int64_t confident_steps(const float *ref, int64_t rows, int64_t V, double tol)
{
    for (int64_t k = 0; k < rows; k++) {
        const float *r = ref + k * V;
        float a = -INFINITY, b = -INFINITY, mx = 0;
        for (int64_t v = 0; v < V; v++) {
            if (r[v] > a) {
                b = a;
                a = r[v];
            } else if (r[v] > b) {
                b = r[v];
            }
            if (fabsf(r[v]) > mx)
                mx = fabsf(r[v]);
        }
        if ((double)(a - b) < tol * mx)
            return k;
    }
    return rows;
}

static void run_case(cl_model *m, const char *name, const char *type, int n_chunks)
{
    char fname[128];
    snprintf(fname, sizeof fname, "compose_%s_%d.safetensors", type, n_chunks);
    const char *path = cu_golden_file(name, fname);
    char file[1024];
    snprintf(file, sizeof file, "%s", path);
    double tol = cu_tol(m);
    int64_t V = m->cfg->vocab_size, n_in, n_pre, n_suf, n_gen, n_nl;
    int32_t *in = cu_ids(file, "input_ids", &n_in), *pre = cu_ids(file, "prefix_input_ids", &n_pre),
            *suf = cu_ids(file, "suffix_input_ids", &n_suf), *gen = cu_ids(file, "generated_ids", &n_gen),
            *nl = cu_ids(file, "newline_token_id", &n_nl);
    print_message("  %s %s n=%d\n", name, type, n_chunks);
    cl_compose_opts o;
    cl_compose_opts_default(&o);
    assert_int_equal(cl_compose_type_parse(type, &o.kv, &o.ssm), CL_OK);
    o.num_chunks = n_chunks;
    o.prefix_ids = pre;
    o.n_prefix = n_pre;
    o.pad_id = nl[0];
    int64_t n_ctx = n_in - n_suf;
    assert_memory_equal(in + n_ctx, suf, (size_t)n_suf * sizeof *suf);
    check_layout(file, in, n_ctx, &o);

    cl_cache_opts co;
    cl_compose_cache_opts(m, &o, &co);
    cl_cache *c;
    assert_int_equal(cl_cache_create(m, &co, &c), CL_OK);
    cl_seq s, fr;
    assert_int_equal(cl_seq_init(&s, c), CL_OK);
    assert_int_equal(cl_seq_init(&fr, c), CL_OK);
    cl_compose_info info;
    if (cl_compose_context(m, in, n_ctx, &o, &s, &info) != CL_OK)
        fail_msg("compose: %s", cl_errmsg());
    assert_int_equal(cl_compose_feed_query(m, &s, in + n_ctx, n_suf - 1, &o), CL_OK);
    double e_state = cu_check_composed(m, &s, file, tol);
    assert_int_equal(cl_seq_copy(&fr, &s), CL_OK);

    /* teacher forcing with the reference's ids */
    float *ref_first, *ref_steps;
    int64_t shape[8];
    int nd;
    tu_load_f32(file, "first_token_logits", &ref_first, shape, &nd);
    int64_t n_steps = tu_load_f32(file, "step_logits", &ref_steps, shape, &nd) / V;
    assert_int_equal(n_steps, n_gen);
    float *lg = malloc((size_t)(n_steps * V) * sizeof *lg);
    cl_gen_opts g;
    cl_gen_opts_default(&g);
    g.max_new_tokens = n_steps;
    g.sampling.greedy = 1;
    g.force_ids = gen;
    g.n_force = n_gen;
    g.ignore_eos = 1;
    g.logits_out = lg;
    cl_ids out = {0};
    assert_int_equal(cl_generate(m, &s, in + n_in - 1, 1, &g, &out, NULL), CL_OK);
    double e_first = cu_cmp("first_token_logits", lg, ref_first, (size_t)V, tol);
    double e_steps = rows_err(lg, ref_steps, n_steps, V);
    print_message("    %-36s rel err %.3g (tol %.1g)\n", "step_logits (worst row)", e_steps, tol);
    assert_true(e_steps <= tol);

    /* free-running greedy */
    cl_ids free_ids = {0};
    g.force_ids = NULL;
    g.n_force = 0;
    g.logits_out = NULL;
    assert_int_equal(cl_generate(m, &fr, in + n_in - 1, 1, &g, &free_ids, NULL), CL_OK);
    int64_t sure = confident_steps(ref_steps, n_steps, V, tol);
    for (int64_t k = 0; k < sure; k++)
        assert_int_equal(free_ids.v[k], gen[k]);
    int64_t same = 0;
    while (same < n_steps && free_ids.v[same] == gen[same])
        same++;
    print_message("    RESULT %s %s n=%d: states %.3g, first %.3g, steps %.3g; greedy ids equal "
                  "for %lld/%lld steps (%lld confident)\n", name, type, n_chunks, e_state, e_first,
                  e_steps, (long long)same, (long long)n_steps, (long long)sure);
    cl_ids_free(&out);
    cl_ids_free(&free_ids);
    free(lg);
    free(ref_first);
    free(ref_steps);
    cl_seq_release(&s);
    cl_seq_release(&fr);
    cl_cache_free(c);
    free(in);
    free(pre);
    free(suf);
    free(gen);
    free(nl);
}

static void run_model(const char *name)
{
    cl_model *m = cu_golden_model(name);
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        if (!strcmp(name, "gdn") && !strcmp(types[t], "concat_kv_fuse_ssm"))
            continue; /* the reference could not run it (COMPOSITION.md §11.2) */
        run_case(m, name, types[t], 2);
        run_case(m, name, types[t], 4);
    }
    cl_model_free(m);
}

static void test_m2(void **st)
{
    (void)st;
    run_model("m2");
}

static void test_gdn(void **st)
{
    (void)st;
    run_model("gdn");
}

static void test_gka(void **st)
{
    (void)st;
    run_model("gka");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_m2),
        cmocka_unit_test(test_gdn),
        cmocka_unit_test(test_gka),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
