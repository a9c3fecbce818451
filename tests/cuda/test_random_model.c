/* test_random_model - a random model built in backend memory (model_random.h)
 * holds exactly the weights `collage mkmodel` writes for the same preset and
 * seed: on the CPU, its logits equal those of the loaded checkpoint bit for bit
 * (fp32 and bf16 presets, every layer type). Runs without a GPU. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/status.h"
#include "engine/seq.h"
#include "mkmodel/mkmodel.h"
#include "mkmodel/model_random.h"
#include "testutil.h"

static float *logits_of(cl_model *m, const int32_t *ids, int64_t n)
{
    cl_cache *c;
    cl_seq s;
    float *lg = malloc((size_t)(n * m->cfg->vocab_size) * sizeof *lg);
    assert_int_equal(cl_cache_create(m, NULL, &c), 0);
    assert_int_equal(cl_seq_init(&s, c), 0);
    if (cl_seq_feed(m, &s, ids, n, 0, CL_LOGITS_ALL, lg))
        fail_msg("%s", cl_errmsg());
    cl_seq_release(&s);
    cl_cache_free(c);
    return lg;
}

static void check(const char *preset, const char *dtype)
{
    const char *dir = tu_tmpdir("random-model");
    cl_mkmodel_opts mo;
    memset(&mo, 0, sizeof mo);
    mo.preset = preset;
    mo.out_dir = dir;
    mo.seed = 5;
    mo.dtype = dtype;
    mo.no_tokenizer = 1;
    assert_int_equal(cl_mkmodel(&mo), 0);
    cl_model_opts lo;
    cl_model_opts_default(&lo);
    lo.backend = "cpu";
    cl_model *a, *b;
    assert_int_equal(cl_model_load(dir, &lo, &a), 0);
    cl_random_model_opts ro;
    cl_random_model_opts_default(&ro);
    ro.preset = preset;
    ro.seed = 5;
    ro.dtype = dtype;
    ro.backend = "cpu";
    if (cl_model_create_random(&ro, &b))
        fail_msg("%s", cl_errmsg());
    int32_t ids[40];
    for (int i = 0; i < 40; i++)
        ids[i] = (i * 37 + 5) % (int)a->cfg->vocab_size;
    float *la = logits_of(a, ids, 40), *lb = logits_of(b, ids, 40);
    size_t n = (size_t)(40 * a->cfg->vocab_size);
    double e = tu_rel_err(lb, la, n);
    print_message("  %s %s: rel err %.3g\n", preset, dtype, e);
    assert_true(e == 0.0);
    free(la);
    free(lb);
    cl_model_free(a);
    cl_model_free(b);
}

static void test_matches_mkmodel(void **state)
{
    (void)state;
    static const char *presets[] = {"tiny-gka", "tiny-gdn", "tiny-m2", "tiny-swa"};
    for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++) {
        check(presets[i], "float32");
        check(presets[i], "bfloat16");
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_matches_mkmodel)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
