#include "common/ids.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "common/fileio.h"
#include "common/status.h"

int cl_ids_push(cl_ids *ids, int32_t id)
{
    if (ids->n == ids->cap) {
        size_t cap = ids->cap ? ids->cap * 2 : 64;
        int32_t *nv = realloc(ids->v, cap * sizeof *nv);
        if (!nv)
            return cl_err(CL_ERR_NOMEM, "out of memory (token ids)");
        ids->v = nv;
        ids->cap = cap;
    }
    ids->v[ids->n++] = id;
    return CL_OK;
}

int cl_ids_append(cl_ids *ids, const int32_t *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        CL_TRY(cl_ids_push(ids, src[i]));
    return CL_OK;
}

void cl_ids_free(cl_ids *ids)
{
    free(ids->v);
    ids->v = NULL;
    ids->n = ids->cap = 0;
}

/* Items are whole decimal numbers in [0, 2^31) separated by one comma (with optional
 * whitespace around it) or by whitespace; an empty item ("1,,2", ",1") is an error, one
 * trailing comma is accepted ("1,2," as `tr '\n' ,` writes it). */
static int parse_text(const char *text, const char *what, cl_ids *out)
{
    const char *p = text;
    size_t index = 0;
    int need_item = 0; /* after a comma */
    for (;;) {
        while (*p && isspace((unsigned char)*p))
            p++;
        if (!*p)
            break;
        if (*p == ',')
            return cl_err(CL_ERR_ARG, "%s: item %zu is empty (%s)", what, index + 1,
                          need_item ? "two commas" : "a leading comma");
        const char *start = p;
        while (*p && !isspace((unsigned char)*p) && *p != ',')
            p++;
        size_t len = (size_t)(p - start);
        int digits = len > 0;
        for (size_t i = 0; i < len; i++)
            digits &= start[i] >= '0' && start[i] <= '9';
        if (!digits)
            return cl_err(CL_ERR_ARG, "%s: item %zu ('%.*s') is not a token id (a whole number "
                                      ">= 0)",
                          what, index + 1, (int)(len > 40 ? 40 : len), start);
        long long v = 0;
        for (size_t i = 0; i < len && v <= INT32_MAX; i++)
            v = v * 10 + (start[i] - '0');
        if (v > INT32_MAX)
            return cl_err(CL_ERR_ARG, "%s: item %zu ('%.*s') is out of range [0, %d]", what,
                          index + 1, (int)(len > 40 ? 40 : len), start, INT32_MAX);
        CL_TRY(cl_ids_push(out, (int32_t)v));
        index++;
        while (*p && isspace((unsigned char)*p))
            p++;
        need_item = *p == ',';
        if (need_item)
            p++;
    }
    return CL_OK;
}

int cl_ids_parse(const char *text, const char *what, cl_ids *out)
{
    out->v = NULL;
    out->n = out->cap = 0;
    int rc;
    if (text[0] == '@') {
        if (!text[1])
            return cl_err(CL_ERR_ARG, "%s @: no file name after '@'", what);
        char *buf;
        CL_TRY(cl_read_file(text + 1, &buf, NULL));
        rc = parse_text(buf, text + 1, out);
        free(buf);
    } else {
        rc = parse_text(text, what, out);
    }
    if (rc != CL_OK)
        cl_ids_free(out);
    return rc;
}
