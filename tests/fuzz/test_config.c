/* test_config - fuzzes the config.json parser (and generation_config.json) with
 * mutations of mkmodel's configs for every layer type (and the golden ones when
 * ../shared is present): no crash, every failure a FORMAT/UNSUPPORTED status with a
 * one-line message naming the file, every success a self-consistent config whose
 * canonical JSON parses again to the same config. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <unistd.h>

#include "common/fileio.h"
#include "common/status.h"
#include "fuzz.h"
#include "model/config.h"
#include "mkmodel/mkmodel.h"
#include "testutil.h"

#define MAX_SEEDS 16
static fz_buf seeds[MAX_SEEDS];
static int n_seeds;

static void add_seed(const char *text)
{
    assert_true(n_seeds < MAX_SEEDS);
    fz_buf_set(&seeds[n_seeds++], text, strlen(text));
}

static void add_preset(const char *preset, const char *pattern, int64_t layers)
{
    cl_mkmodel_opts o = {preset, "x", 0, pattern, NULL, layers, 1};
    char *json;
    if (cl_mkmodel_config_json(&o, 509, 506, &json) != CL_OK)
        fail_msg("%s: %s", preset, cl_errmsg());
    add_seed(json);
    free(json);
}

static void make_seeds(void)
{
    if (n_seeds)
        return;
    add_preset("tiny-gka", NULL, 0);
    add_preset("tiny-gdn", NULL, 0);
    add_preset("tiny-m2", NULL, 0);
    add_preset("tiny-swa", NULL, 0);
    add_preset("tiny-attn", NULL, 0);
    add_preset("tiny-gka", "*-GKA-GDN-M2-SWA", 5);
    add_preset("gka-8b", NULL, 0);
    /* keys mkmodel does not write: overrides, legacy rope, B'MOJO-F */
    add_seed("{\"model_type\":\"hybrid_qwen3\",\"architectures\":[\"HybridQwen3ForCausalLM\"],"
             "\"vocab_size\":64,\"hidden_size\":16,\"intermediate_size\":32,"
             "\"num_hidden_layers\":2,\"num_attention_heads\":2,\"num_key_value_heads\":1,"
             "\"head_dim\":8,\"rope_theta\":1e6,\"rope_scaling\":null,\"rms_norm_eps\":1e-6,"
             "\"hybrid_override_pattern\":\"*-GKA\",\"bos_token_id\":1,\"eos_token_id\":[2,3],"
             "\"pad_token_id\":0,\"gka_config\":{\"num_iter\":30,\"chunk_size\":64,"
             "\"ridge_strength\":0.02,\"conv_size\":4,\"norm_eps\":1e-6,\"num_q_heads\":2},"
             "\"gka_overrides\":{\"num_iter\":10},\"torch_dtype\":\"bfloat16\","
             "\"layer_types\":[\"*\",\"GKA\"],\"use_cache\":true}");
    add_seed("{\"model_type\":\"hybrid_qwen3\",\"vocab_size\":64,\"hidden_size\":16,"
             "\"intermediate_size\":32,\"num_hidden_layers\":2,\"num_attention_heads\":2,"
             "\"hybrid_override_pattern\":\"BMF-*\",\"bmojo_config\":{\"window_size\":32,"
             "\"ssm_mixer\":\"gka\",\"hidden_size\":16},\"gka_config\":{}}");
    if (tu_have_shared()) {
        const char *golden[] = {"gka", "gdn", "m2", "swa", "gka_iter0"};
        for (size_t i = 0; i < sizeof golden / sizeof *golden; i++) {
            char rel[64], *text;
            snprintf(rel, sizeof rel, "golden/%s/config.json", golden[i]);
            assert_int_equal(cl_read_file(tu_shared(rel), &text, NULL), CL_OK);
            add_seed(text);
            free(text);
        }
    }
}

static int finite_pos(double v) { return v > 0 && isfinite(v); }

/* A config that loaded must make sense everywhere it is used. */
static void check_config(const cl_config *c, int iter)
{
#define REQUIRE(cond)                                                                          \
    do {                                                                                       \
        if (!(cond))                                                                           \
            fail_msg("iteration %d: loaded config violates %s", iter, #cond);                  \
    } while (0)
    REQUIRE(c->vocab_size >= 1 && c->vocab_size <= (1 << 24));
    REQUIRE(c->hidden_size >= 1 && c->intermediate_size >= 1);
    REQUIRE(c->num_layers >= 1 && c->num_layers <= 1024);
    REQUIRE(c->num_heads >= 1 && c->num_kv_heads >= 1 && c->num_heads % c->num_kv_heads == 0);
    REQUIRE(c->head_dim >= 2 && c->head_dim % 2 == 0);
    REQUIRE(finite_pos(c->rms_norm_eps) && c->rms_norm_eps <= 1);
    REQUIRE(finite_pos(c->rope_theta));
    REQUIRE(c->max_position_embeddings >= 1);
    REQUIRE(c->bos_token_id >= -1 && c->bos_token_id < c->vocab_size);
    REQUIRE(c->pad_token_id >= -1 && c->pad_token_id < c->vocab_size);
    REQUIRE(c->n_eos >= 0 && c->n_eos <= CL_MAX_EOS);
    for (int i = 0; i < c->n_eos; i++)
        REQUIRE(c->eos_ids[i] >= 0 && c->eos_ids[i] < c->vocab_size);
    int attn = 0, ssm = 0, has[CL_LAYER_TYPE_COUNT] = {0};
    for (int64_t l = 0; l < c->num_layers; l++) {
        REQUIRE((int)c->layer_types[l] >= 0 && c->layer_types[l] < CL_LAYER_TYPE_COUNT);
        attn += cl_layer_is_attention(c->layer_types[l]);
        ssm += cl_layer_is_ssm(c->layer_types[l]);
        has[c->layer_types[l]] = 1;
    }
    REQUIRE(attn == c->n_attn_layers && ssm == c->n_ssm_layers);
    if (has[CL_LAYER_GKA]) {
        REQUIRE(c->gka.conv_size >= 1 && c->gka.conv_size <= 8);
        REQUIRE(c->gka.chunk_size >= 1 && c->gka.num_iter >= 0 && c->gka.num_iter <= 1000);
        REQUIRE(finite_pos(c->gka.ridge_strength) && finite_pos(c->gka.norm_eps));
    }
    if (has[CL_LAYER_GDN])
        REQUIRE(c->gdn.conv_size >= 1 && c->gdn.conv_size <= 8 && finite_pos(c->gdn.norm_eps));
    if (has[CL_LAYER_SWA])
        REQUIRE(c->swa.window >= 1);
    REQUIRE(cl_config_kv_bytes_per_token(c, CL_F32) >= 0);
    REQUIRE(cl_config_ssm_state_bytes(c) >= 0);
    REQUIRE(c->canonical_json != NULL);
#undef REQUIRE
}

static const int allowed[] = {CL_ERR_FORMAT, CL_ERR_UNSUPPORTED, 0};

static void test_fuzz_config(void **state)
{
    (void)state;
    make_seeds();
    fz_rng r;
    fz_rng_init(&r, fz_seed());
    int iters = fz_iterations(4000), ok = 0;
    fz_buf b = {0};
    const char *file = "fuzz/config.json";
    for (int it = 0; it < iters; it++) {
        const fz_buf *seed = &seeds[fz_below(&r, (uint64_t)n_seeds)];
        fz_buf_set(&b, seed->p, seed->len);
        fz_mutate(&r, &b, &seeds[fz_below(&r, (uint64_t)n_seeds)]);
        cl_config c;
        int rc = cl_config_parse(file, b.p, &c);
        if (rc != CL_OK) {
            fz_check_error(rc, allowed, file, it);
            continue;
        }
        ok++;
        check_config(&c, it);
        /* the canonical form (sorted keys) is a config too, and the same one */
        cl_config c2;
        if (cl_config_parse("canonical", c.canonical_json, &c2) != CL_OK)
            fail_msg("iteration %d: canonical JSON does not parse: %s\n%s", it, cl_errmsg(), c.canonical_json);
        assert_string_equal(c2.canonical_json, c.canonical_json);
        assert_int_equal(c2.num_layers, c.num_layers);
        cl_config_free(&c2);
        cl_config_free(&c);
    }
    fz_buf_free(&b);
    print_message("    %d inputs, %d loaded, %d refused\n", iters, ok, iters - ok);
    assert_true(ok > 0 && ok < iters); /* the fuzzer reaches both outcomes */
}

/* generation_config.json: eos ids added to a loaded config stay in its vocabulary. */
static void test_fuzz_generation(void **state)
{
    (void)state;
    make_seeds();
    const char *dir = tu_tmpdir("fuzz_gen");
    char path[4200];
    snprintf(path, sizeof path, "%s/generation_config.json", dir);
    fz_buf seed = {0}, b = {0};
    const char *g = "{\"bos_token_id\": 1, \"eos_token_id\": [509, 2], \"pad_token_id\": 506, "
                    "\"do_sample\": true, \"temperature\": 0.6}";
    fz_buf_set(&seed, g, strlen(g));
    fz_rng r;
    fz_rng_init(&r, fz_seed() + 1);
    int iters = fz_iterations(400);
    for (int it = 0; it < iters; it++) {
        cl_config c;
        assert_int_equal(cl_config_parse("seed", seeds[0].p, &c), CL_OK);
        fz_buf_set(&b, seed.p, seed.len);
        fz_mutate(&r, &b, NULL);
        unlink(path); /* a new file, not truncated: ext4 would flush it (auto_da_alloc) */
        FILE *f = fopen(path, "wb");
        assert_non_null(f);
        assert_int_equal(fwrite(b.p, 1, b.len, f), b.len);
        fclose(f);
        int rc = cl_config_load_generation(dir, &c);
        if (rc != CL_OK)
            fz_check_error(rc, allowed, path, it);
        else
            check_config(&c, it);
        cl_config_free(&c);
    }
    fz_buf_free(&seed);
    fz_buf_free(&b);
}

static int teardown(void **state)
{
    (void)state;
    for (int i = 0; i < n_seeds; i++)
        fz_buf_free(&seeds[i]);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fuzz_config),
        cmocka_unit_test(test_fuzz_generation),
    };
    return cmocka_run_group_tests(tests, NULL, teardown);
}
