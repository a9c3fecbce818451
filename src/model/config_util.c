/* config_util.c - shared pieces of config.json parsing: typed checks with messages
 * naming the key, unknown-key collection, canonical JSON for the model id. */
#include <cjson/cJSON.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "common/status.h"
#include "model/config_parse.h"

/* ---------------------------------------------------------------- helpers */

static const char *type_name(const cJSON *v)
{
    return cJSON_IsString(v) ? "a string" : cJSON_IsBool(v) ? "a boolean"
           : cJSON_IsArray(v) ? "an array" : cJSON_IsObject(v) ? "an object" : "something else";
}

/* "<sub>.<key>" or "<key>". */
static const char *full_key(char *buf, size_t n, const char *sub, const char *key)
{
    snprintf(buf, n, "%s%s%s", sub ? sub : "", sub ? "." : "", key);
    return buf;
}

/* A JSON number as the user wrote it, near enough: integers in full, others in the
 * shortest form that reads back the same. */
static const char *num_text(char *buf, size_t n, double v)
{
    if (v == floor(v) && fabs(v) < 1e21) {
        snprintf(buf, n, "%.0f", v);
        return buf;
    }
    for (int prec = 6; prec <= 17; prec++) { /* the shortest text that reads back as v */
        snprintf(buf, n, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    return buf;
}

int cfg_int(const cJSON *obj, const char *sub, const char *key, const char *file, int64_t def,
            int64_t lo, int64_t hi, int64_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    char name[160], num[48];
    *out = def;
    if (!v || cJSON_IsNull(v))
        return CL_OK;
    full_key(name, sizeof name, sub, key);
    if (!cJSON_IsNumber(v))
        return cl_err(CL_ERR_FORMAT, "%s: key '%s': expected an integer in [%lld, %lld], found %s",
                      file, name, (long long)lo, (long long)hi, type_name(v));
    double d = v->valuedouble;
    if (d != floor(d)) /* also NaN and +-inf (1e999 parses as inf) */
        return cl_err(CL_ERR_FORMAT, "%s: key '%s' = %s: expected an integer in [%lld, %lld]",
                      file, name, num_text(num, sizeof num, d), (long long)lo, (long long)hi);
    if (d < (double)lo || d > (double)hi)
        return cl_err(CL_ERR_FORMAT, "%s: key '%s' = %s out of range [%lld, %lld]", file, name,
                      num_text(num, sizeof num, d), (long long)lo, (long long)hi);
    *out = (int64_t)d;
    return CL_OK;
}

int cfg_pos_float(const cJSON *obj, const char *sub, const char *key, const char *file,
                  double def, double max, double *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    char name[160], num[48];
    *out = def;
    if (!v || cJSON_IsNull(v))
        return CL_OK;
    full_key(name, sizeof name, sub, key);
    char range[64];
    if (max >= DBL_MAX)
        snprintf(range, sizeof range, "a positive finite number");
    else
        snprintf(range, sizeof range, "a number in (0, %g]", max);
    if (!cJSON_IsNumber(v))
        return cl_err(CL_ERR_FORMAT, "%s: key '%s': expected %s, found %s", file, name, range,
                      type_name(v));
    double d = v->valuedouble;
    if (!(d > 0 && d <= max)) /* NaN fails too; 1e999 parses as inf */
        return cl_err(CL_ERR_FORMAT, "%s: key '%s' = %s out of range: expected %s", file, name,
                      num_text(num, sizeof num, d), range);
    *out = d;
    return CL_OK;
}

static int cmp_key(const void *a, const void *b)
{
    return strcmp((*(const cJSON *const *)a)->string, (*(const cJSON *const *)b)->string);
}

int cfg_check_duplicates(const cJSON *v, const char *prefix, const char *file)
{
    if (!cJSON_IsObject(v) && !cJSON_IsArray(v))
        return CL_OK;
    int n = cJSON_GetArraySize(v), i = 0, rc = CL_OK;
    char name[256];
    if (cJSON_IsObject(v) && n > 1) {
        const cJSON **keys = malloc((size_t)n * sizeof *keys);
        if (!keys)
            return cl_err(CL_ERR_NOMEM, "out of memory");
        for (const cJSON *e = v->child; e; e = e->next)
            keys[i++] = e;
        qsort(keys, (size_t)n, sizeof *keys, cmp_key);
        for (i = 1; i < n && rc == CL_OK; i++)
            if (!strcmp(keys[i]->string, keys[i - 1]->string))
                rc = cl_err(CL_ERR_FORMAT, "%s: key '%s%s%.128s' appears twice", file, prefix,
                            prefix[0] ? "." : "", keys[i]->string);
        free(keys);
    }
    i = 0;
    for (const cJSON *e = v->child; e && rc == CL_OK; e = e->next, i++) {
        if (cJSON_IsObject(v))
            snprintf(name, sizeof name, "%s%s%.128s", prefix, prefix[0] ? "." : "", e->string);
        else
            snprintf(name, sizeof name, "%.200s[%d]", prefix, i);
        rc = cfg_check_duplicates(e, name, file);
    }
    return rc;
}

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
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(sub, key);
    char full[160], num[48];
    if (!v || cJSON_IsNull(v))
        return CL_OK;
    full_key(full, sizeof full, subname, key);
    if (!cJSON_IsNumber(v))
        return cl_err(CL_ERR_FORMAT, "%s: key '%s': expected the integer %lld, found %s", file,
                      full, (long long)want, type_name(v));
    if (v->valuedouble != (double)want)
        return cl_err(CL_ERR_FORMAT, "%s: key '%s' is %s but the top-level config implies %lld",
                      file, full, num_text(num, sizeof num, v->valuedouble), (long long)want);
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

int cfg_parse_token_ids(const cJSON *root, const char *key, const char *file, int64_t vocab_size,
                        int64_t *ids, int *n, int max)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v || cJSON_IsNull(v))
        return CL_OK;
    if (!cJSON_IsNumber(v) && !cJSON_IsArray(v))
        return cl_err(CL_ERR_FORMAT, "%s: key '%s': expected an integer or a list, found %s",
                      file, key, type_name(v));
    const cJSON *first = cJSON_IsArray(v) ? v->child : v;
    int i = 0;
    for (const cJSON *e = first; e; e = cJSON_IsArray(v) ? e->next : NULL, i++) {
        char what[160], num[48];
        snprintf(what, sizeof what, cJSON_IsArray(v) ? "%s[%d]" : "%s", key, i);
        if (!cJSON_IsNumber(e))
            return cl_err(CL_ERR_FORMAT, "%s: key '%s': expected a token id, found %s", file,
                          what, type_name(e));
        double d = e->valuedouble;
        if (d != floor(d) || d < 0 || d >= (double)vocab_size)
            return cl_err(CL_ERR_FORMAT,
                          "%s: key '%s' = %s: expected a token id in [0, %lld] (vocab_size %lld)",
                          file, what, num_text(num, sizeof num, d), (long long)vocab_size - 1,
                          (long long)vocab_size);
        int dup = 0;
        for (int k = 0; k < *n; k++)
            dup |= ids[k] == (int64_t)d;
        if (!dup && *n == max)
            return cl_err(CL_ERR_UNSUPPORTED, "%s: key '%s': more than %d distinct ids", file,
                          key, max);
        if (!dup)
            ids[(*n)++] = (int64_t)d;
    }
    return CL_OK;
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
        double d = v->valuedouble;
        if (isinf(d)) /* 1e999 in the file: %g would print "inf", which is not JSON */
            snprintf(num, sizeof num, "%s", d > 0 ? "1e999" : "-1e999");
        else
            snprintf(num, sizeof num, "%.17g", d);
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
