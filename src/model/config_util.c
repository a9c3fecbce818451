/* config_util.c - shared pieces of config.json parsing: typed checks with messages
 * naming the key, unknown-key collection, canonical JSON for the model id. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "common/status.h"
#include "model/config_parse.h"

/* ---------------------------------------------------------------- helpers */

int cfg_add_unknown(cl_config *cfg, const char *prefix, const char *key)
{
    char **nu = realloc(cfg->unknown_keys, (size_t)(cfg->n_unknown + 1) * sizeof *nu);
    if (!nu)
        return cl_err(CL_ERR_NOMEM, "out of memory");
    cfg->unknown_keys = nu;
    size_t n = strlen(prefix) + strlen(key) + 2;
    char *s = malloc(n);
    if (!s)
        return cl_err(CL_ERR_NOMEM, "out of memory");
    snprintf(s, n, "%s%s%s", prefix, prefix[0] ? "." : "", key);
    cfg->unknown_keys[cfg->n_unknown++] = s;
    return CL_OK;
}

static int in_list(const char *key, const char *const *list)
{
    for (; *list; list++)
        if (!strcmp(key, *list))
            return 1;
    return 0;
}

int cfg_collect_unknown(cl_config *cfg, const cJSON *obj, const char *prefix,
                           const char *const *known)
{
    if (!cJSON_IsObject(obj))
        return CL_OK;
    for (const cJSON *e = obj->child; e; e = e->next)
        if (!in_list(e->string, known))
            CL_TRY(cfg_add_unknown(cfg, prefix, e->string));
    return CL_OK;
}

/* Checks a per-type dict's derived value against the top-level one. */
int cfg_check_derived(const cJSON *sub, const char *subname, const char *key, int64_t want,
                         const char *file)
{
    int64_t v;
    char full[128];
    snprintf(full, sizeof full, "%s.%s", subname, key);
    CL_TRY(cl_json_int(sub, key, file, want, &v));
    if (v != want)
        return cl_err(CL_ERR_FORMAT, "%s: key '%s' is %lld but the top-level config implies %lld",
                      file, full, (long long)v, (long long)want);
    return CL_OK;
}

int cfg_unsupported_bool(const cJSON *sub, const char *subname, const char *key, int def,
                            int supported_value, const char *file, int *out)
{
    CL_TRY(cl_json_bool(sub, key, file, def, out));
    if (*out != supported_value)
        return cl_err(CL_ERR_UNSUPPORTED, "%s: key '%s.%s' = %s is not yet supported", file,
                      subname, key, *out ? "true" : "false");
    return CL_OK;
}

int cfg_reject_kv_rank(const cJSON *sub, const char *subname, const char *file)
{
    if (cl_json_has(sub, "kv_proj_rank"))
        return cl_err(CL_ERR_UNSUPPORTED,
                      "%s: key '%s.kv_proj_rank' is set: low-rank K/V expansion is not yet "
                      "supported",
                      file, subname);
    int b;
    CL_TRY(cfg_unsupported_bool(sub, subname, "kv_learnable_residual", 0, 0, file, &b));
    return CL_OK;
}

int cfg_parse_dtype(const char *s, const char *file, const char *key, cl_dtype *out)
{
    if (!strcmp(s, "float32") || !strcmp(s, "float"))
        *out = CL_F32;
    else if (!strcmp(s, "bfloat16"))
        *out = CL_BF16;
    else if (!strcmp(s, "float16") || !strcmp(s, "half"))
        *out = CL_F16;
    else
        return cl_err(CL_ERR_UNSUPPORTED, "%s: key '%s': dtype '%s' is not supported", file, key,
                      s);
    return CL_OK;
}

int cfg_parse_token_ids(const cJSON *root, const char *key, const char *file, int64_t *ids,
                           int *n, int max)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v || cJSON_IsNull(v))
        return CL_OK;
    if (cJSON_IsNumber(v)) {
        if (*n < max)
            ids[(*n)++] = (int64_t)v->valuedouble;
        return CL_OK;
    }
    if (cJSON_IsArray(v)) {
        for (const cJSON *e = v->child; e; e = e->next) {
            if (!cJSON_IsNumber(e))
                return cl_err(CL_ERR_FORMAT, "%s: key '%s': expected integers", file, key);
            int dup = 0;
            for (int i = 0; i < *n; i++)
                dup |= ids[i] == (int64_t)e->valuedouble;
            if (!dup && *n < max)
                ids[(*n)++] = (int64_t)e->valuedouble;
        }
        return CL_OK;
    }
    return cl_err(CL_ERR_FORMAT, "%s: key '%s': expected an integer or a list", file, key);
}

/* Canonical JSON (object keys sorted, numbers as %.17g) for hashing the config. */
static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

typedef struct {
    char *s;
    size_t n, cap;
    int oom;
} strbuf;

static void sb_put(strbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->n + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 1024;
        while (nc < b->n + n + 1)
            nc *= 2;
        char *ns = realloc(b->s, nc);
        if (!ns) {
            b->oom = 1;
            return;
        }
        b->s = ns;
        b->cap = nc;
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = 0;
}

static void sb_str(strbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

static void sb_json_str(strbuf *b, const char *s)
{
    char esc[8];
    sb_str(b, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*p;
            sb_put(b, esc, 2);
        } else if (*p < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", *p);
            sb_str(b, esc);
        } else {
            sb_put(b, (const char *)p, 1);
        }
    }
    sb_str(b, "\"");
}

static void canon(strbuf *b, const cJSON *v)
{
    char num[64];
    if (cJSON_IsObject(v)) {
        int n = cJSON_GetArraySize(v), i = 0;
        const char **keys = malloc((size_t)(n ? n : 1) * sizeof *keys);
        if (!keys) {
            b->oom = 1;
            return;
        }
        for (const cJSON *e = v->child; e; e = e->next)
            keys[i++] = e->string;
        qsort(keys, (size_t)n, sizeof *keys, cmp_str);
        sb_str(b, "{");
        for (i = 0; i < n; i++) {
            if (i)
                sb_str(b, ",");
            sb_json_str(b, keys[i]);
            sb_str(b, ":");
            canon(b, cJSON_GetObjectItemCaseSensitive(v, keys[i]));
        }
        sb_str(b, "}");
        free(keys);
    } else if (cJSON_IsArray(v)) {
        sb_str(b, "[");
        for (const cJSON *e = v->child; e; e = e->next) {
            if (e != v->child)
                sb_str(b, ",");
            canon(b, e);
        }
        sb_str(b, "]");
    } else if (cJSON_IsNumber(v)) {
        snprintf(num, sizeof num, "%.17g", v->valuedouble);
        sb_str(b, num);
    } else if (cJSON_IsString(v)) {
        sb_json_str(b, v->valuestring);
    } else if (cJSON_IsBool(v)) {
        sb_str(b, cJSON_IsTrue(v) ? "true" : "false");
    } else {
        sb_str(b, "null");
    }
}

int cfg_canonical_json(const cJSON *root, char **out)
{
    strbuf sb = {0};
    canon(&sb, root);
    if (sb.oom || !sb.s) {
        free(sb.s);
        return cl_err(CL_ERR_NOMEM, "out of memory");
    }
    *out = sb.s;
    return CL_OK;
}
