#include "common/json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fileio.h"
#include "common/status.h"
#include "common/utf8.h"

int cl_json_parse(const char *what, const char *text, size_t len, cJSON **out)
{
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!j) {
        int line = 1, col = 1;
        if (end && end >= text && end <= text + len) {
            for (const char *p = text; p < end; p++) {
                if (*p == '\n') {
                    line++;
                    col = 1;
                } else {
                    col++;
                }
            }
        }
        if (len == 0)
            return cl_err(CL_ERR_FORMAT, "%s: malformed JSON: empty file", what);
        return cl_err(CL_ERR_FORMAT, "%s: malformed JSON at line %d, column %d", what, line, col);
    }
    *out = j;
    return CL_OK;
}

int cl_json_load(const char *path, cJSON **out)
{
    char *text;
    size_t len;
    CL_TRY(cl_read_file(path, &text, &len));
    int rc = cl_json_parse(path, text, len, out);
    free(text);
    return rc;
}

int cl_json_has(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return v && !cJSON_IsNull(v);
}

int cl_json_num(const cJSON *obj, const char *key, const char *file, double def, double *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    *out = def;
    if (!v || cJSON_IsNull(v))
        return CL_OK;
    if (!cJSON_IsNumber(v))
        return cl_err(CL_ERR_FORMAT, "%s: key '%s': expected a number", file, key);
    *out = v->valuedouble;
    return CL_OK;
}

int cl_json_int(const cJSON *obj, const char *key, const char *file, int64_t def, int64_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    *out = def;
    if (!v || cJSON_IsNull(v))
        return CL_OK;
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) ||
        fabs(v->valuedouble) > 9.0e15)
        return cl_err(CL_ERR_FORMAT, "%s: key '%s': expected an integer", file, key);
    *out = (int64_t)v->valuedouble;
    return CL_OK;
}

int cl_json_bool(const cJSON *obj, const char *key, const char *file, int def, int *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    *out = def;
    if (!v || cJSON_IsNull(v))
        return CL_OK;
    if (!cJSON_IsBool(v))
        return cl_err(CL_ERR_FORMAT, "%s: key '%s': expected true or false", file, key);
    *out = cJSON_IsTrue(v);
    return CL_OK;
}

int cl_json_str(const cJSON *obj, const char *key, const char *file, const char *def,
                const char **out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    *out = def;
    if (!v || cJSON_IsNull(v))
        return CL_OK;
    if (!cJSON_IsString(v))
        return cl_err(CL_ERR_FORMAT, "%s: key '%s': expected a string", file, key);
    *out = v->valuestring;
    return CL_OK;
}

/* Length of the valid UTF-8 sequence at p (0 if invalid). */
void cl_json_fputs(void *file, const char *s)
{
    FILE *f = file;
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p >= 0x80) { /* JSON text must be valid UTF-8: invalid bytes become U+FFFD */
            int n = cl_utf8_seq_len(p, 4); /* NUL-terminated: a short tail fails its check */
            if (n == 0) {
                fputs("\\ufffd", f);
            } else {
                fwrite(p, 1, (size_t)n, f);
                p += n - 1;
            }
            continue;
        }
        switch (*p) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        case '\b': fputs("\\b", f); break;
        case '\f': fputs("\\f", f); break;
        default:
            if (*p < 0x20)
                fprintf(f, "\\u%04x", *p);
            else
                fputc(*p, f);
        }
    }
    fputc('"', f);
}
