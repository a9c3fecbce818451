/* test_checkpoint - config.json / safetensors loading: every mkmodel preset loads
 * (the golden ones: test_golden_load); bad input of each kind gets a clear error
 * naming the file and the problem (and the right status). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/fileio.h"
#include "common/status.h"
#include "model/checkpoint.h"
#include "mkmodel/mkmodel.h"
#include "mkmodel/presets.h"
#include "testutil.h"

static void write_text(const char *dir, const char *name, const char *text)
{
    char p[4200];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    assert_int_equal(cl_write_file_atomic(p, text, strlen(text)), 0);
}

/* Writes a safetensors file from a raw header and `data_len` zero bytes of data. */
static void write_st(const char *dir, const char *header, size_t data_len, uint64_t claimed)
{
    char p[4200];
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    uint64_t n = claimed ? claimed : strlen(header);
    for (int i = 0; i < 8; i++)
        fputc((int)((n >> (8 * i)) & 0xff), f);
    fputs(header, f);
    for (size_t i = 0; i < data_len; i++)
        fputc(0, f);
    fclose(f);
}

static void expect_error(const char *dir, int status, const char *needle)
{
    cl_checkpoint ck;
    int rc = cl_checkpoint_open(dir, &ck);
    if (rc == 0) {
        cl_checkpoint_close(&ck);
        fail_msg("expected an error containing '%s' for %s", needle, dir);
    }
    print_message("  %-32s -> %s\n", needle, cl_errmsg());
    if (status)
        assert_int_equal(rc, status);
    if (!strstr(cl_errmsg(), needle))
        fail_msg("error '%s' does not mention '%s'", cl_errmsg(), needle);
    if (strchr(cl_errmsg(), '\n'))
        fail_msg("error is not one line: %s", cl_errmsg());
}

static const char *base_config =
    "{\"model_type\":\"hybrid_qwen3\",\"vocab_size\":16,\"hidden_size\":8,"
    "\"intermediate_size\":16,\"num_hidden_layers\":1,\"num_attention_heads\":2,"
    "\"num_key_value_heads\":1,\"head_dim\":4%s}";

static const char *model_dir(const char *name, const char *extra_config)
{
    const char *dir = tu_tmpdir(name);
    char cfg[2048], extra[1024];
    snprintf(extra, sizeof extra, "%s%s", extra_config,
             strstr(extra_config, "hybrid_override_pattern") ? ""
                                                            : ",\"hybrid_override_pattern\":\"*\"");
    snprintf(cfg, sizeof cfg, base_config, extra);
    write_text(dir, "config.json", cfg);
    return dir;
}

static void test_presets_load(void **st)
{
    (void)st;
    for (int i = 0; cl_preset_at(i); i++) {
        const cl_preset *p = cl_preset_at(i);
        if (p->hidden > 1024)
            continue; /* 8B/32B presets: config only (below) */
        const char *dir = tu_tmpdir(p->name);
        cl_mkmodel_opts o = {p->name, dir, 1, NULL, NULL, 0, 1};
        assert_int_equal(cl_mkmodel(&o), 0);
        cl_checkpoint ck;
        if (cl_checkpoint_open(dir, &ck) != 0)
            fail_msg("%s: %s", p->name, cl_errmsg());
        assert_int_equal(ck.w.n_unused, 0);
        cl_checkpoint_close(&ck);
    }
    /* big presets: the config they would write parses, with the Qwen3 dimensions */
    const char *big[] = {"gka-8b", "gdn-8b", "m2-8b", "gka-32b", "gdn-32b"};
    for (size_t i = 0; i < sizeof big / sizeof big[0]; i++) {
        cl_mkmodel_opts o = {big[i], "x", 0, NULL, NULL, 0, 1};
        char *json;
        assert_int_equal(cl_mkmodel_config_json(&o, 151645, 151643, &json), 0);
        cl_config cfg;
        assert_int_equal(cl_config_parse(big[i], json, &cfg), 0);
        assert_int_equal(cfg.n_attn_layers, cfg.n_ssm_layers);
        assert_int_equal(cfg.head_dim, 128);
        assert_int_equal(cfg.num_kv_heads, 8);
        cl_config_free(&cfg);
        free(json);
    }
}

static void test_bad_config(void **st)
{
    (void)st;
    const char *dir = tu_tmpdir("nocfg");
    expect_error(dir, CL_ERR_IO, "config.json: missing");
    write_text(dir, "config.json", "{\"vocab_size\": 16,,}");
    expect_error(dir, CL_ERR_FORMAT, "malformed JSON at line 1");
    write_text(dir, "config.json", "");
    expect_error(dir, CL_ERR_FORMAT, "malformed JSON");
    expect_error(model_dir("sym", ",\"hybrid_override_pattern\":\"XYZ\""), CL_ERR_FORMAT,
                 "unknown layer symbol 'XYZ'");
    expect_error(model_dir("fused", ",\"hybrid_override_pattern\":\"GKA*\""), CL_ERR_FORMAT,
                 "training-only");
    expect_error(model_dir("len", ",\"hybrid_override_pattern\":\"*-*\""), CL_ERR_FORMAT,
                 "has 2 entries but num_hidden_layers is 1");
    expect_error(model_dir("rope", ",\"rope_parameters\":{\"rope_type\":\"yarn\","
                                   "\"rope_theta\":1e6}"),
                 CL_ERR_UNSUPPORTED, "rope_parameters.rope_type");
    expect_error(model_dir("ropes", ",\"rope_scaling\":{\"type\":\"linear\",\"factor\":2}"),
                 CL_ERR_UNSUPPORTED, "rope_scaling");
    expect_error(model_dir("bias", ",\"attention_bias\":true"), CL_ERR_UNSUPPORTED,
                 "attention_bias");
    expect_error(model_dir("slide", ",\"use_sliding_window\":true"), CL_ERR_UNSUPPORTED,
                 "use_sliding_window");
    expect_error(model_dir("act", ",\"hidden_act\":\"gelu\""), CL_ERR_UNSUPPORTED, "hidden_act");
    expect_error(model_dir("type", ",\"max_position_embeddings\":\"big\""), CL_ERR_FORMAT,
                 "key 'max_position_embeddings': expected an integer");
    expect_error(model_dir("rank", ",\"hybrid_override_pattern\":\"GKA\",\"gka_config\":"
                                   "{\"kv_proj_rank\":64}"),
                 CL_ERR_UNSUPPORTED, "gka_config.kv_proj_rank");
    expect_error(model_dir("derive", ",\"hybrid_override_pattern\":\"GDN\",\"gdn_config\":"
                                     "{\"num_q_heads\":3}"),
                 CL_ERR_FORMAT, "gdn_config.num_q_heads");
    expect_error(model_dir("swa", ",\"hybrid_override_pattern\":\"SWA\""), CL_ERR_FORMAT,
                 "swa_config.window_size");
    expect_error(model_dir("bmf", ",\"hybrid_override_pattern\":\"BMF\""), CL_ERR_UNSUPPORTED,
                 "B'MOJO-F");
    expect_error(model_dir("mt", ",\"architectures\":[\"LlamaForCausalLM\"]"), CL_ERR_UNSUPPORTED,
                 "architectures");
    /* every number is range-checked, with the key and the range in the message */
    const struct {
        const char *extra, *needle;
    } ranges[] = {
        {",\"rms_norm_eps\":-1", "key 'rms_norm_eps' = -1 out of range: expected a number in (0, 1]"},
        {",\"rms_norm_eps\":0", "key 'rms_norm_eps' = 0 out of range"},
        {",\"rms_norm_eps\":1e999", "key 'rms_norm_eps' = inf out of range"},
        {",\"rms_norm_eps\":\"small\"", "key 'rms_norm_eps': expected a number in (0, 1], found a string"},
        {",\"max_position_embeddings\":4611686018427387904",
         "key 'max_position_embeddings' = 4611686018427387904 out of range [1, 1073741824]"},
        {",\"max_position_embeddings\":0", "key 'max_position_embeddings' = 0 out of range [1, "},
        {",\"max_position_embeddings\":12.5",
         "key 'max_position_embeddings' = 12.5: expected an integer in [1, 1073741824]"},
        {",\"vocab_size\":12", "key 'vocab_size' appears twice"},
        {",\"rope_parameters\":{\"rope_theta\":1,\"rope_theta\":2}",
         "key 'rope_parameters.rope_theta' appears twice"},
        {",\"eos_token_id\":16", "key 'eos_token_id' = 16: expected a token id in [0, 15] (vocab_size 16)"},
        {",\"eos_token_id\":[3,-1]", "key 'eos_token_id[1]' = -1: expected a token id in [0, 15]"},
        {",\"eos_token_id\":2.5", "key 'eos_token_id' = 2.5: expected a token id"},
        {",\"eos_token_id\":[\"x\"]", "key 'eos_token_id[0]': expected a token id, found a string"},
        {",\"bos_token_id\":1e300", "key 'bos_token_id' = 1e+300 out of range [0, 15]"},
        {",\"pad_token_id\":16", "key 'pad_token_id' = 16 out of range [0, 15]"},
        {",\"rope_theta\":0", "key 'rope_theta' = 0 out of range: expected a positive finite number"},
        {",\"rope_parameters\":{\"rope_type\":\"default\",\"rope_theta\":-5}",
         "key 'rope_parameters.rope_theta' = -5 out of range"},
        {",\"hybrid_override_pattern\":\"GKA\"", "the pattern has GKA layers but key 'gka_config' is missing"},
        {",\"hybrid_override_pattern\":\"GDN\"", "the pattern has GDN layers but key 'gdn_config' is missing"},
        {",\"hybrid_override_pattern\":\"M2\"", "the pattern has M2 layers but key 'mamba2_config' is missing"},
        {",\"hybrid_override_pattern\":\"GDN\",\"gdn_config\":[]", "key 'gdn_config': expected an object"},
        {",\"hybrid_override_pattern\":\"GKA\",\"gka_config\":{\"chunk_size\":0}",
         "key 'gka_config.chunk_size' = 0 out of range [1, 65536]"},
        {",\"hybrid_override_pattern\":\"GKA\",\"gka_config\":{\"num_iter\":1001}",
         "key 'gka_config.num_iter' = 1001 out of range [0, 1000]"},
        {",\"hybrid_override_pattern\":\"GKA\",\"gka_config\":{},\"gka_overrides\":{\"ridge_strength\":0}",
         "key 'gka_config.ridge_strength' = 0 out of range: expected a positive finite number"},
        {",\"hybrid_override_pattern\":\"GKA\",\"gka_config\":{\"norm_eps\":-1e-6}",
         "key 'gka_config.norm_eps' = -1e-06 out of range"},
        {",\"hybrid_override_pattern\":\"GKA\",\"gka_config\":{\"num_q_heads\":2.5}",
         "key 'gka_config.num_q_heads' is 2.5 but the top-level config implies 2"},
        {",\"hybrid_override_pattern\":\"GDN\",\"gdn_config\":{\"conv_size\":9}",
         "key 'gdn_config.conv_size' = 9 out of range [1, 8]"},
        {",\"hybrid_override_pattern\":\"GDN\",\"gdn_config\":{\"norm_eps\":null,\"conv_size\":\"4\"}",
         "key 'gdn_config.conv_size': expected an integer in [1, 8], found a string"},
        {",\"hybrid_override_pattern\":\"M2\",\"mamba2_config\":{\"n_layer\":2}",
         "key 'mamba2_config.n_layer' is 2 but the top-level config implies 1"},
        {",\"hybrid_override_pattern\":\"M2\",\"mamba2_config\":{\"ssm_cfg\":{\"d_state\":1e20}}",
         "key 'mamba2_config.ssm_cfg.d_state' is 100000000000000000000 but the top-level config implies 4"},
        {",\"hybrid_override_pattern\":\"M2\",\"mamba2_config\":{\"ssm_cfg\":7}",
         "key 'mamba2_config.ssm_cfg': expected an object"},
        {",\"hybrid_override_pattern\":\"SWA\",\"swa_config\":{\"window_size\":0}",
         "key 'swa_config.window_size' = 0 out of range [1, 1073741824]"},
    };
    for (size_t i = 0; i < sizeof ranges / sizeof ranges[0]; i++) {
        char name[32];
        snprintf(name, sizeof name, "range%zu", i);
        expect_error(model_dir(name, ranges[i].extra), CL_ERR_FORMAT, ranges[i].needle);
    }
    expect_error(model_dir("eos9", ",\"eos_token_id\":[0,1,2,3,4,5,6,7,8]"), CL_ERR_UNSUPPORTED,
                 "key 'eos_token_id': more than 8 distinct ids");
    /* generation_config.json: its eos ids are checked against the vocabulary too */
    const char *gen = model_dir("geneos", "");
    write_text(gen, "generation_config.json", "{\"eos_token_id\": [1, 16]}");
    expect_error(gen, CL_ERR_FORMAT,
                 "generation_config.json: key 'eos_token_id[1]' = 16: expected a token id in "
                 "[0, 15]");

    /* sizes beyond the range (the base config has them in range) */
    char big[2048];
    snprintf(big, sizeof big, base_config, ",\"hybrid_override_pattern\":\"*\"");
    const struct {
        const char *from, *to, *needle;
    } subst[] = {
        {"\"vocab_size\":16", "\"vocab_size\":16.5",
         "key 'vocab_size' = 16.5: expected an integer in [1, 16777216]"},
        {"\"num_key_value_heads\":1", "\"num_key_value_heads\":-2",
         "key 'num_key_value_heads' = -2 out of range [1, 1024]"},
        {"\"head_dim\":4", "\"head_dim\":1099511627776",
         "key 'head_dim' = 1099511627776 out of range [1, 1024]"},
        {"\"hidden_size\":8", "\"hidden_size\":true",
         "key 'hidden_size': expected an integer in [1, 65536], found a boolean"},
    };
    for (size_t i = 0; i < sizeof subst / sizeof subst[0]; i++) {
        char text2[2048];
        const char *at = strstr(big, subst[i].from);
        assert_non_null(at);
        snprintf(text2, sizeof text2, "%.*s%s%s", (int)(at - big), big, subst[i].to,
                 at + strlen(subst[i].from));
        char name[32];
        snprintf(name, sizeof name, "subst%zu", i);
        const char *d = tu_tmpdir(name);
        write_text(d, "config.json", text2);
        expect_error(d, CL_ERR_FORMAT, subst[i].needle);
    }

    cl_config cfg;
    char text[2048];
    /* a control character from the file does not break the one-line message */
    expect_error(model_dir("nl", ",\"hybrid_override_pattern\":\"X\\nY\""), CL_ERR_FORMAT,
                 "unknown layer symbol 'X?Y'");
    /* an infinite number (1e999) in an ignored key: the canonical JSON (hashed into
     * the model id) stays JSON */
    snprintf(text, sizeof text, base_config,
             ",\"hybrid_override_pattern\":\"*\",\"initializer_range\":1e999");
    assert_int_equal(cl_config_parse("cfg", text, &cfg), 0);
    assert_non_null(strstr(cfg.canonical_json, "\"initializer_range\":1e999"));
    cl_config again;
    assert_int_equal(cl_config_parse("canonical", cfg.canonical_json, &again), 0);
    assert_string_equal(again.canonical_json, cfg.canonical_json);
    cl_config_free(&again);
    cl_config_free(&cfg);

    /* unknown keys are ignored and listed */
    snprintf(text, sizeof text, base_config,
             ",\"hybrid_override_pattern\":\"*\",\"my_new_key\":1,\"auto_map\":{}");
    assert_int_equal(cl_config_parse("cfg", text, &cfg), 0);
    assert_int_equal(cfg.n_unknown, 2);
    cl_config_free(&cfg);
}

static void test_bad_safetensors(void **st)
{
    (void)st;
    const char *dir = model_dir("st", "");
    expect_error(dir, CL_ERR_IO, "no model.safetensors");
    write_st(dir, "", 0, 0);
    char p[4200];
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    FILE *f = fopen(p, "wb");
    fputs("abc", f);
    fclose(f);
    expect_error(dir, CL_ERR_FORMAT, "header is truncated");
    write_st(dir, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, 4096);
    expect_error(dir, CL_ERR_FORMAT, "header is truncated");
    write_st(dir, "{\"a\":", 0, 0);
    expect_error(dir, CL_ERR_FORMAT, "not valid JSON");
    write_st(dir, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4, 0);
    expect_error(dir, CL_ERR_FORMAT, "out of bounds");
    write_st(dir,
             "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
             "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
             12, 0);
    expect_error(dir, CL_ERR_FORMAT, "overlap");
    write_st(dir, "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, 0);
    expect_error(dir, CL_ERR_FORMAT, "needs 12 bytes but its byte range holds 8");
    write_st(dir, "{\"a\":{\"dtype\":\"Q4\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, 0);
    expect_error(dir, CL_ERR_FORMAT, "unknown dtype 'Q4'");
    /* header numbers: integers in [0, 2^53], no overflow, nothing after the object */
    const struct {
        const char *header, *needle;
        size_t data;
    } nums[] = {
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12.5]}}",
         "tensor 'a': data_offsets[1] = 12.5: expected an integer", 16},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"b\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[8.5,12.5]}}",
         "tensor 'b': data_offsets[0] = 8.5: expected an integer", 16},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,10]}}",
         "tensor 'a': shape[0] = 2.5: expected an integer", 16},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}",
         "tensor 'a': shape[0] = -1 out of range [0, 2^53]", 16},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]}}",
         "tensor 'a': shape[0]: expected an integer", 16},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,1e300]}}",
         "tensor 'a': data_offsets[1] = 1.0000000000000001e+300 out of range [0, 2^53]", 16},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}",
         "data_offsets [8, 4] end before they begin", 16},
        {"{\"a\":{\"dtype\":\"F64\",\"shape\":[4294967296,4294967296,4294967296],"
         "\"data_offsets\":[0,8]}}",
         "tensor 'a': shape too large", 16},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}} x",
         "header has text after its JSON object (at byte 63)", 16},
        {"{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F16\",\"shape\":[1],\"data_offsets\":[0,4]}}",
         "tensor 'a': key 'dtype' appears twice", 16},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
         "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
         "tensor 'a' appears twice", 16},
        /* an empty tensor between two that overlap does not hide the overlap */
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]},"
         "\"c\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
         "tensors 'a' and 'c' overlap", 16},
    };
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
        write_st(dir, nums[i].header, nums[i].data, 0);
        expect_error(dir, CL_ERR_FORMAT, nums[i].needle);
    }
    write_st(dir, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, 0);
    expect_error(dir, CL_ERR_FORMAT, "missing required tensor 'model.embed_tokens.weight'");
    /* a complete checkpoint with one tensor of the wrong shape */
    const char *good = tu_tmpdir("good");
    cl_mkmodel_opts o = {"tiny-attn", good, 1, NULL, NULL, 0, 1};
    assert_int_equal(cl_mkmodel(&o), 0);
    cl_checkpoint ck;
    assert_int_equal(cl_checkpoint_open(good, &ck), 0);
    cl_st_writer *w;
    assert_int_equal(cl_st_writer_create(&w), 0);
    for (size_t i = 0; i < cl_st_count(ck.st); i++) {
        const cl_st_tensor *t = cl_st_at(ck.st, i);
        int64_t shape[8];
        memcpy(shape, t->shape, sizeof shape);
        if (!strcmp(t->name, "model.layers.0.mlp.up_proj.weight")) {
            shape[0] = 1; /* misshapen */
            assert_int_equal(cl_st_writer_add(w, t->name, t->dtype, t->ndim, shape, t->data), 0);
        } else {
            assert_int_equal(cl_st_writer_add(w, t->name, t->dtype, t->ndim, shape, t->data), 0);
        }
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    cl_checkpoint_close(&ck);
    snprintf(p, sizeof p, "cp %s/config.json %s/", good, dir);
    assert_int_equal(system(p), 0);
    assert_int_equal(cl_st_writer_write(w, path), 0);
    cl_st_writer_free(w);
    expect_error(dir, CL_ERR_FORMAT,
                 "tensor 'model.layers.0.mlp.up_proj.weight' has shape [1, 128], expected "
                 "[384, 128]");
}

static void test_sharded_index(void **st)
{
    (void)st;
    /* split a mkmodel checkpoint into two shards + index: loads identically */
    const char *src = tu_tmpdir("shard-src"), *dir = tu_tmpdir("shard");
    cl_mkmodel_opts o = {"tiny-gdn", src, 3, NULL, NULL, 0, 1};
    assert_int_equal(cl_mkmodel(&o), 0);
    cl_checkpoint ck;
    assert_int_equal(cl_checkpoint_open(src, &ck), 0);
    cl_st_writer *w[2];
    assert_int_equal(cl_st_writer_create(&w[0]), 0);
    assert_int_equal(cl_st_writer_create(&w[1]), 0);
    char *index = malloc(1 << 20);
    size_t off = (size_t)sprintf(index, "{\"metadata\":{},\"weight_map\":{");
    for (size_t i = 0; i < cl_st_count(ck.st); i++) {
        const cl_st_tensor *t = cl_st_at(ck.st, i);
        int s = (int)(i % 2);
        assert_int_equal(cl_st_writer_add(w[s], t->name, t->dtype, t->ndim, t->shape, t->data), 0);
        off += (size_t)sprintf(index + off, "%s\"%s\":\"model-0000%d-of-00002.safetensors\"",
                               i ? "," : "", t->name, s + 1);
    }
    sprintf(index + off, "}}");
    for (int s = 0; s < 2; s++) {
        char p[4200];
        snprintf(p, sizeof p, "%s/model-0000%d-of-00002.safetensors", dir, s + 1);
        assert_int_equal(cl_st_writer_write(w[s], p), 0);
        cl_st_writer_free(w[s]);
    }
    write_text(dir, "model.safetensors.index.json", index);
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "cp %s/config.json %s/", src, dir);
    assert_int_equal(system(cmd), 0);
    cl_checkpoint ck2;
    if (cl_checkpoint_open(dir, &ck2) != 0)
        fail_msg("sharded: %s", cl_errmsg());
    assert_int_equal(ck2.w.n_params, ck.w.n_params);
    assert_memory_equal(ck2.w.layers[1].t[CL_W_Q]->data, ck.w.layers[1].t[CL_W_Q]->data,
                        ck.w.layers[1].t[CL_W_Q]->nbytes);
    cl_checkpoint_close(&ck2);
    /* an index naming a tensor its shard lacks */
    sprintf(index, "{\"weight_map\":{\"nope\":\"model-00001-of-00002.safetensors\"}}");
    write_text(dir, "model.safetensors.index.json", index);
    expect_error(dir, CL_ERR_FORMAT, "tensor 'nope' is not in shard");
    free(index);
    cl_checkpoint_close(&ck);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_presets_load),
        cmocka_unit_test(test_bad_config),     cmocka_unit_test(test_bad_safetensors),
        cmocka_unit_test(test_sharded_index),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
