/* test_nonfinite - logits with NaN/Inf are an error naming the first stage where
 * the values turn non-finite (layer, mixer or MLP, embeddings, final norm, lm_head)
 * and the token, for checkpoints with one weight poisoned (NaN/Inf written with the
 * project's safetensors writer); from the command line too (exit 1, one line). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/status.h"
#include "engine/seq.h"
#include "model/cache.h"
#include "model/checkpoint.h"
#include "mkmodel/mkmodel.h"
#include "model/model.h"
#include "testutil.h"

/* tiny-gdn alternates attention and GDN: layers 0 and 2 attention, 1 and 3 GDN */
static const char *clean_model(void)
{
    static char dir[4200];
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "%s", tu_tmpdir("nonfinite_clean"));
        cl_mkmodel_opts o = {"tiny-gdn", dir, 5, NULL, NULL, 0, 1};
        if (cl_mkmodel(&o) != CL_OK)
            fail_msg("mkmodel: %s", cl_errmsg());
    }
    return dir;
}

/* A copy of the clean model whose tensor `name` has `value` at elements [from, to)
 * (to < 0: to the end); returns its directory. */
static const char *poisoned(const char *tag, const char *name, float value, int64_t from,
                            int64_t to)
{
    const char *src = clean_model(), *dir = tu_tmpdir(tag);
    cl_checkpoint ck;
    assert_int_equal(cl_checkpoint_open(src, &ck), CL_OK);
    cl_st_writer *w;
    assert_int_equal(cl_st_writer_create(&w), CL_OK);
    int hit = 0;
    for (size_t i = 0; i < cl_st_count(ck.st); i++) {
        const cl_st_tensor *t = cl_st_at(ck.st, i);
        assert_int_equal(t->dtype, CL_F32); /* tiny presets are fp32 */
        float *data = malloc(t->nbytes ? t->nbytes : 1);
        memcpy(data, t->data, t->nbytes);
        if (!strcmp(t->name, name)) {
            int64_t n = cl_st_numel(t), end = to < 0 || to > n ? n : to;
            for (int64_t k = from; k < end; k++)
                data[k] = value;
            hit = 1;
        }
        assert_int_equal(cl_st_writer_add(w, t->name, t->dtype, t->ndim, t->shape, data), CL_OK);
        free(data);
    }
    if (!hit)
        fail_msg("no tensor '%s' in %s", name, src);
    char path[4200];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    assert_int_equal(cl_st_writer_write(w, path), CL_OK);
    cl_st_writer_free(w);
    cl_checkpoint_close(&ck);
    assert_int_equal(tu_runf(NULL, "cp '%s/config.json' '%s/generation_config.json' '%s/'", src,
                             src, dir),
                     0);
    return dir;
}

/* Feeds ids in forward calls of `chunk` tokens (0: the default) wanting the logits of
 * `mode`; returns the status (message in cl_errmsg()). */
static int feed(const char *dir, const int32_t *ids, int64_t n, int64_t chunk,
                cl_logits_mode mode)
{
    cl_model_opts mo;
    cl_model_opts_default(&mo);
    mo.backend = "cpu";
    cl_model *m;
    if (cl_model_load(dir, &mo, &m) != CL_OK)
        fail_msg("load %s: %s", dir, cl_errmsg());
    cl_cache *c;
    assert_int_equal(cl_cache_create(m, NULL, &c), CL_OK);
    cl_seq s;
    assert_int_equal(cl_seq_init(&s, c), CL_OK);
    float *logits = malloc((size_t)(n * m->cfg->vocab_size) * sizeof *logits);
    int rc = cl_seq_feed(m, &s, ids, n, chunk, mode, logits);
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", cl_errmsg());
    free(logits);
    cl_seq_release(&s);
    cl_cache_free(c);
    cl_model_free(m);
    cl_err(rc, "%s", msg);
    return rc;
}

static void expect(const char *dir, const int32_t *ids, int64_t n, int64_t chunk,
                   cl_logits_mode mode, const char *needle)
{
    int rc = feed(dir, ids, n, chunk, mode);
    print_message("    %s\n", cl_errmsg());
    if (rc != CL_ERR_RANGE || !strstr(cl_errmsg(), needle) || strchr(cl_errmsg(), '\n'))
        fail_msg("got %d '%s', expected CL_ERR_RANGE with '%s'", rc, cl_errmsg(), needle);
}

static const int32_t ids[] = {10, 11, 12, 13, 14, 15, 16, 17, 18, 19};
#define N_IDS ((int64_t)(sizeof ids / sizeof ids[0]))

static void test_clean_model_is_finite(void **state)
{
    (void)state;
    assert_int_equal(feed(clean_model(), ids, N_IDS, 0, CL_LOGITS_ALL), CL_OK);
}

static void test_poisoned_stages(void **state)
{
    (void)state;
    const cl_logits_mode LAST = CL_LOGITS_LAST, ALL = CL_LOGITS_ALL;
    expect(poisoned("nf_gdn", "model.layers.3.gdn.q_proj.weight", NAN, 0, 1), ids, N_IDS, 0,
           LAST, "non-finite values after layer 3 (GDN mixer) at token 0");
    expect(poisoned("nf_attn", "model.layers.0.self_attn.o_proj.weight", INFINITY, 100, 101),
           ids, N_IDS, 0, LAST, "non-finite values after layer 0 (attention) at token 0");
    expect(poisoned("nf_mlp", "model.layers.2.mlp.down_proj.weight", NAN, 0, -1), ids, N_IDS, 0,
           LAST, "non-finite values after layer 2 (MLP) at token 0");
    expect(poisoned("nf_norm", "model.norm.weight", NAN, 3, 4), ids, N_IDS, 0, LAST,
           "non-finite values after the final norm at token 0");
    expect(poisoned("nf_head", "lm_head.weight", NAN, 0, 1), ids, N_IDS, 0, LAST,
           "non-finite values after the lm_head at token 9");
    /* the embedding row of token id 16 (ids[6]; Dm = 128) */
    const char *emb = poisoned("nf_emb", "model.embed_tokens.weight", INFINITY, 16 * 128,
                               16 * 128 + 1);
    expect(emb, ids, N_IDS, 0, LAST,
           "non-finite values in the embeddings (model.embed_tokens.weight) at token 6");
    /* in calls of 4 tokens the second fails: tokens count from the sequence's start */
    expect(emb, ids, N_IDS, 4, ALL, "in the embeddings (model.embed_tokens.weight) at token 6");
    /* the bad token in an earlier call (no logits wanted there): this call's tokens
     * alone stay finite */
    expect(emb, ids, N_IDS, 8, LAST,
           "non-finite logits at token 9; the same tokens from an empty state stay finite");
}

/* The CLI: `collage logits` on a poisoned model exits 1 with one line. */
static void test_cli(void **state)
{
    (void)state;
    const char *dir = poisoned("nf_cli", "model.layers.1.gdn.k_proj.weight", NAN, 0, 1);
    char *err = NULL;
    int rc = tu_runf(&err, "'%s' logits --model '%s' --input-ids 1,2,3 --out '%s/l.safetensors' "
                           "2>&1 >/dev/null",
                     tu_bin(), dir, dir);
    print_message("    %s", err ? err : "");
    assert_int_equal(rc, 1);
    assert_non_null(strstr(err, "collage: non-finite values after layer 1 (GDN mixer) at token 0"));
    assert_ptr_equal(strchr(err, '\n'), err + strlen(err) - 1);
    free(err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clean_model_is_finite),
        cmocka_unit_test(test_poisoned_stages),
        cmocka_unit_test(test_cli),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
