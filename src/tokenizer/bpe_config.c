/* bpe_config.c - checks the small sections of tokenizer.json (normalizer,
 * pre_tokenizer, decoder, the model's settings) against what this tokenizer
 * implements and sets the tokenizer up from them; anything else is refused with
 * CL_ERR_UNSUPPORTED "... is not yet supported", never silently approximated. */
#include <stdio.h>
#include <string.h>

#include "common/json.h"
#include "common/status.h"
#include "tokenizer/bpe_impl.h"

static const char *type_of(const cJSON *o)
{
    const cJSON *ty = cJSON_GetObjectItemCaseSensitive(o, "type");
    return cJSON_IsString(ty) ? ty->valuestring : NULL;
}

static int unsupported(const char *path, const char *key, const char *type)
{
    return cl_err(CL_ERR_UNSUPPORTED, "%s: %s type '%s' is not yet supported", path, key,
                  type ? type : "(none)");
}

static int setup_normalizer(cl_tokenizer *t, const cJSON *top, const char *path)
{
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(top, "normalizer");
    if (!n || cJSON_IsNull(n))
        return CL_OK;
    const char *ty = type_of(n);
    if (ty && !strcmp(ty, "NFC")) {
        t->nfc = 1;
        return CL_OK;
    }
    if (ty && !strcmp(ty, "Sequence")) { /* a sequence of NFCs is still NFC */
        const cJSON *seq = cJSON_GetObjectItemCaseSensitive(n, "normalizers");
        for (const cJSON *e = cJSON_IsArray(seq) ? seq->child : NULL; e; e = e->next) {
            const char *et = type_of(e);
            if (!et || strcmp(et, "NFC"))
                return unsupported(path, "normalizer", et);
            t->nfc = 1;
        }
        return CL_OK;
    }
    return unsupported(path, "normalizer", ty);
}

static int add_pretok(cl_tokenizer *t, const char *path, const char *pattern)
{
    if (t->n_pretok == CL_MAX_PRETOK)
        return cl_err(CL_ERR_UNSUPPORTED, "%s: pre_tokenizer: more than %d Split steps",
                      path, CL_MAX_PRETOK);
    char what[4200];
    snprintf(what, sizeof what, "%s: pre_tokenizer", path);
    return cl_pretok_create(pattern, what, &t->pretok[t->n_pretok++]);
}

/* One step: Split (regex, Isolated) or ByteLevel (which must come last). */
static int setup_pretok_step(cl_tokenizer *t, const char *path, const cJSON *p, int last,
                             int *have_bytelevel)
{
    const char *ty = type_of(p);
    if (ty && !strcmp(ty, "ByteLevel")) {
        int prefix, use_regex;
        CL_TRY(cl_json_bool(p, "add_prefix_space", path, 0, &prefix));
        CL_TRY(cl_json_bool(p, "use_regex", path, 1, &use_regex));
        if (prefix)
            return cl_err(CL_ERR_UNSUPPORTED,
                          "%s: pre_tokenizer: ByteLevel add_prefix_space is not yet supported",
                          path);
        if (!last)
            return cl_err(CL_ERR_UNSUPPORTED,
                          "%s: pre_tokenizer: steps after ByteLevel are not yet supported",
                          path);
        *have_bytelevel = 1;
        return use_regex ? add_pretok(t, path, cl_pretok_gpt2_pattern) : CL_OK;
    }
    if (ty && !strcmp(ty, "Split")) {
        const cJSON *pat = cJSON_GetObjectItemCaseSensitive(p, "pattern");
        const cJSON *re = cJSON_GetObjectItemCaseSensitive(pat, "Regex");
        const char *behavior;
        int invert;
        CL_TRY(cl_json_str(p, "behavior", path, "", &behavior));
        CL_TRY(cl_json_bool(p, "invert", path, 0, &invert));
        if (!cJSON_IsString(re))
            return cl_err(CL_ERR_UNSUPPORTED,
                          "%s: pre_tokenizer: Split without a 'Regex' pattern is not yet "
                          "supported",
                          path);
        if (strcmp(behavior, "Isolated") || invert)
            return cl_err(CL_ERR_UNSUPPORTED,
                          "%s: pre_tokenizer: Split behavior '%s'%s is not yet supported",
                          path, behavior, invert ? " (inverted)" : "");
        return add_pretok(t, path, re->valuestring);
    }
    return unsupported(path, "pre_tokenizer", ty);
}

static int setup_pretok(cl_tokenizer *t, const cJSON *top, const char *path)
{
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(top, "pre_tokenizer");
    int have_bytelevel = 0;
    const char *ty = p ? type_of(p) : NULL;
    if (ty && !strcmp(ty, "Sequence")) {
        const cJSON *seq = cJSON_GetObjectItemCaseSensitive(p, "pretokenizers");
        for (const cJSON *e = cJSON_IsArray(seq) ? seq->child : NULL; e; e = e->next)
            CL_TRY(setup_pretok_step(t, path, e, e->next == NULL, &have_bytelevel));
    } else if (p && !cJSON_IsNull(p)) {
        CL_TRY(setup_pretok_step(t, path, p, 1, &have_bytelevel));
    }
    if (!have_bytelevel)
        return cl_err(CL_ERR_UNSUPPORTED,
                      "%s: pre_tokenizer has no ByteLevel step: only byte-level BPE is "
                      "supported yet",
                      path);
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(top, "decoder");
    const char *dt = d ? type_of(d) : NULL;
    if (!dt || strcmp(dt, "ByteLevel"))
        return unsupported(path, "decoder", dt);
    return CL_OK;
}

int cl_bpe_config_model(cl_tokenizer *t, const cJSON *m, const char *path)
{
    const char *ty, *prefix, *suffix;
    double dropout;
    CL_TRY(cl_json_str(m, "type", path, "BPE", &ty));
    if (strcmp(ty, "BPE"))
        return unsupported(path, "model", ty);
    CL_TRY(cl_json_num(m, "dropout", path, 0, &dropout));
    CL_TRY(cl_json_str(m, "continuing_subword_prefix", path, "", &prefix));
    CL_TRY(cl_json_str(m, "end_of_word_suffix", path, "", &suffix));
    CL_TRY(cl_json_bool(m, "ignore_merges", path, 0, &t->ignore_merges));
    if (dropout != 0)
        return cl_err(CL_ERR_UNSUPPORTED, "%s: model.dropout is not yet supported", path);
    if (prefix[0] || suffix[0])
        return cl_err(CL_ERR_UNSUPPORTED,
                      "%s: model.continuing_subword_prefix/end_of_word_suffix are not yet "
                      "supported",
                      path);
    /* unk_token, fuse_unk and byte_fallback never act: every byte has a token. */
    return CL_OK;
}

int cl_bpe_config_pipeline(cl_tokenizer *t, const cJSON *top, const char *path)
{
    CL_TRY(setup_normalizer(t, top, path));
    return setup_pretok(t, top, path);
}
