#include "common/ids.h"

#include <ctype.h>
#include <errno.h>
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

static int parse_text(const char *text, const char *what, cl_ids *out)
{
    const char *p = text;
    size_t index = 0;
    for (;;) {
        while (*p && (isspace((unsigned char)*p) || *p == ','))
            p++;
        if (!*p)
            break;
        char *end;
        errno = 0;
        long long v = strtoll(p, &end, 10);
        if (end == p || (*end && !isspace((unsigned char)*end) && *end != ','))
            return cl_err(CL_ERR_ARG, "%s: item %zu is not an integer token id", what, index);
        if (errno == ERANGE || v < 0 || v > INT32_MAX)
            return cl_err(CL_ERR_RANGE, "%s: token id %lld out of range", what, v);
        CL_TRY(cl_ids_push(out, (int32_t)v));
        index++;
        p = end;
    }
    return CL_OK;
}

int cl_ids_parse(const char *text, const char *what, cl_ids *out)
{
    out->v = NULL;
    out->n = out->cap = 0;
    int rc;
    if (text[0] == '@') {
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
