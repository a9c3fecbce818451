/* tiny_tokenizer.c - writes the tiny presets' tokenizer: tokenizer.json in the HF
 * format of the Qwen tokenizer (same normalizer, pre-tokenizer regex, ByteLevel
 * decoder) with merges learned from tiny_corpus.c, and a tokenizer_config.json with
 * a short ChatML template. Ids: 0..255 single bytes, then merges, then the 7 added
 * tokens at the top (vocab_size-7 .. vocab_size-1), so every id has a token. */
#include "mkmodel/tiny_tokenizer.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fileio.h"
#include "common/status.h"
#include "tokenizer/bytelevel.h"
#include "tokenizer/pretok.h"
#include "mkmodel/tiny_corpus.h"
#include "mkmodel/tiny_train.h"

static const struct {
    const char *text;
    int special; /* as in Qwen3: <think> and <tool_call> are added but not special */
} added[] = {
    {"<|endoftext|>", 1}, {"<|im_start|>", 1}, {"<|im_end|>", 1},     {"<think>", 0},
    {"</think>", 0},      {"<tool_call>", 0},  {"</tool_call>", 0},
};
#define N_ADDED ((int)(sizeof added / sizeof added[0]))

/* ChatML, one turn per message; with add_generation_prompt the assistant turn is
 * opened, and an empty think block closes thinking when enable_thinking is false
 * (the behaviour of the Qwen3 template, in a few lines of basic Jinja). */
static const char chat_template[] =
    "{%- for message in messages -%}\n"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + "
    "'\\n' -}}\n"
    "{%- endfor -%}\n"
    "{%- if add_generation_prompt -%}\n"
    "{{- '<|im_start|>assistant\\n' -}}\n"
    "{%- if enable_thinking is defined and not enable_thinking -%}\n"
    "{{- '<think>\\n\\n</think>\\n\\n' -}}\n"
    "{%- endif -%}\n"
    "{%- endif -%}\n";

static int nomem(void) { return cl_err(CL_ERR_NOMEM, "out of memory (tiny tokenizer)"); }

/* The token's vocabulary string: its bytes in the GPT-2 byte map, NUL-terminated. */
static char *mapped(const cl_bpe_vocab *v, int32_t id)
{
    char *s = malloc(2 * (size_t)v->len[id] + 1);
    if (s)
        s[cl_bytelevel_encode((const uint8_t *)v->bytes + v->off[id], v->len[id], s)] = 0;
    return s;
}

static cJSON *added_token(const char *text, int id, int special, int with_id)
{
    cJSON *a = cJSON_CreateObject();
    if (with_id)
        cJSON_AddNumberToObject(a, "id", id);
    cJSON_AddStringToObject(a, "content", text);
    cJSON_AddBoolToObject(a, "single_word", 0);
    cJSON_AddBoolToObject(a, "lstrip", 0);
    cJSON_AddBoolToObject(a, "rstrip", 0);
    cJSON_AddBoolToObject(a, "normalized", 0);
    cJSON_AddBoolToObject(a, "special", special);
    return a;
}

static cJSON *byte_level(void)
{
    cJSON *b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "type", "ByteLevel");
    cJSON_AddBoolToObject(b, "add_prefix_space", 0);
    cJSON_AddBoolToObject(b, "trim_offsets", 0);
    cJSON_AddBoolToObject(b, "use_regex", 0);
    return b;
}

static cJSON *tokenizer_json(const cl_bpe_vocab *v, int first_added)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "version", "1.0");
    cJSON_AddNullToObject(root, "truncation");
    cJSON_AddNullToObject(root, "padding");
    cJSON *arr = cJSON_AddArrayToObject(root, "added_tokens");
    for (int i = 0; i < N_ADDED; i++)
        cJSON_AddItemToArray(arr, added_token(added[i].text, first_added + i, added[i].special, 1));
    cJSON *norm = cJSON_AddObjectToObject(root, "normalizer");
    cJSON_AddStringToObject(norm, "type", "NFC");
    cJSON *pre = cJSON_AddObjectToObject(root, "pre_tokenizer");
    cJSON_AddStringToObject(pre, "type", "Sequence");
    cJSON *seq = cJSON_AddArrayToObject(pre, "pretokenizers");
    cJSON *split = cJSON_CreateObject();
    cJSON_AddStringToObject(split, "type", "Split");
    cJSON *pat = cJSON_AddObjectToObject(split, "pattern");
    cJSON_AddStringToObject(pat, "Regex", cl_pretok_qwen2_pattern);
    cJSON_AddStringToObject(split, "behavior", "Isolated");
    cJSON_AddBoolToObject(split, "invert", 0);
    cJSON_AddItemToArray(seq, split);
    cJSON_AddItemToArray(seq, byte_level());
    cJSON_AddItemToObject(root, "post_processor", byte_level());
    cJSON_AddItemToObject(root, "decoder", byte_level());
    cJSON *model = cJSON_AddObjectToObject(root, "model");
    cJSON_AddStringToObject(model, "type", "BPE");
    cJSON_AddNullToObject(model, "dropout");
    cJSON_AddNullToObject(model, "unk_token");
    cJSON_AddStringToObject(model, "continuing_subword_prefix", "");
    cJSON_AddStringToObject(model, "end_of_word_suffix", "");
    cJSON_AddBoolToObject(model, "fuse_unk", 0);
    cJSON_AddBoolToObject(model, "byte_fallback", 0);
    cJSON_AddBoolToObject(model, "ignore_merges", 0);
    cJSON *vocab = cJSON_AddObjectToObject(model, "vocab");
    cJSON *merges = cJSON_AddArrayToObject(model, "merges");
    if (!vocab || !merges) {
        cJSON_Delete(root);
        return NULL;
    }
    for (int32_t id = 0; id < v->n_tokens; id++) {
        char *s = mapped(v, id);
        if (!s) {
            cJSON_Delete(root);
            return NULL;
        }
        cJSON_AddNumberToObject(vocab, s, id);
        free(s);
    }
    for (size_t m = 0; m < v->n_merges; m++) {
        char *a = mapped(v, v->merges[m][0]), *b = mapped(v, v->merges[m][1]);
        const char *pair[2] = {a, b};
        if (a && b)
            cJSON_AddItemToArray(merges, cJSON_CreateStringArray(pair, 2));
        free(a);
        free(b);
        if (!a || !b) {
            cJSON_Delete(root);
            return NULL;
        }
    }
    return root;
}

static cJSON *config_json(int first_added)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddBoolToObject(root, "add_bos_token", 0);
    cJSON_AddBoolToObject(root, "add_prefix_space", 0);
    cJSON *dec = cJSON_AddObjectToObject(root, "added_tokens_decoder");
    for (int i = 0; i < N_ADDED; i++) {
        char key[16];
        snprintf(key, sizeof key, "%d", first_added + i);
        cJSON_AddItemToObject(dec, key, added_token(added[i].text, 0, added[i].special, 0));
    }
    const char *extra[] = {"<|im_start|>", "<|im_end|>"};
    cJSON_AddItemToObject(root, "additional_special_tokens", cJSON_CreateStringArray(extra, 2));
    cJSON_AddNullToObject(root, "bos_token");
    cJSON_AddStringToObject(root, "chat_template", chat_template);
    cJSON_AddBoolToObject(root, "clean_up_tokenization_spaces", 0);
    cJSON_AddStringToObject(root, "eos_token", "<|im_end|>");
    cJSON_AddStringToObject(root, "errors", "replace");
    cJSON_AddStringToObject(root, "pad_token", "<|endoftext|>");
    cJSON_AddBoolToObject(root, "split_special_tokens", 0);
    cJSON_AddStringToObject(root, "tokenizer_class", "Qwen2Tokenizer");
    cJSON_AddNullToObject(root, "unk_token");
    return root;
}

static int write_json(const char *dir, const char *name, cJSON *j)
{
    if (!j)
        return nomem();
    char *text = cJSON_Print(j);
    cJSON_Delete(j);
    if (!text)
        return nomem();
    size_t n = strlen(text);
    char path[4096];
    int rc = cl_path_join(path, sizeof path, dir, name);
    if (rc == CL_OK) {
        text[n] = '\n'; /* end the file with a newline, over the NUL */
        rc = cl_write_file_atomic(path, text, n + 1);
    }
    free(text);
    return rc;
}

int cl_tiny_tokenizer_write(const char *dir, int64_t vocab_size, cl_tiny_tok_ids *ids)
{
    if (vocab_size < 256 + N_ADDED || vocab_size > 65536)
        return cl_err(CL_ERR_ARG, "tiny tokenizer: vocab_size %lld out of range [%d, 65536]",
                      (long long)vocab_size, 256 + N_ADDED);
    size_t len = 0;
    for (size_t i = 0; i < cl_tiny_corpus_count; i++)
        len += strlen(cl_tiny_corpus[i]);
    char *text = malloc(len + 1);
    if (!text)
        return nomem();
    size_t o = 0;
    for (size_t i = 0; i < cl_tiny_corpus_count; i++) {
        size_t n = strlen(cl_tiny_corpus[i]);
        memcpy(text + o, cl_tiny_corpus[i], n);
        o += n;
    }
    int first_added = (int)vocab_size - N_ADDED;
    cl_bpe_vocab v;
    int rc = cl_bpe_train(text, len, first_added, &v);
    free(text);
    if (rc != CL_OK)
        return rc;
    rc = write_json(dir, "tokenizer.json", tokenizer_json(&v, first_added));
    cl_bpe_vocab_free(&v);
    if (rc == CL_OK)
        rc = write_json(dir, "tokenizer_config.json", config_json(first_added));
    if (rc != CL_OK)
        return rc;
    ids->endoftext = first_added;
    ids->im_start = first_added + 1;
    ids->im_end = first_added + 2;
    ids->think = first_added + 3;
    ids->think_end = first_added + 4;
    ids->newline = '\n'; /* the single-byte token of '\n' has the byte as its id */
    return CL_OK;
}
