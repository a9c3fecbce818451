/* safetensors_write.c - the safetensors writer: header built with cJSON (padded
 * to 8 bytes), tensors back to back, written through a temp file + fsync + rename
 * so that readers never see a partial file; large tensors streamed in pieces. */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fileio.h"
#include "common/status.h"
#include "model/safetensors.h"

typedef struct {
    char *name;
    cl_dtype dtype;
    int ndim;
    int64_t shape[CL_ST_MAX_DIMS];
    size_t nbytes;
    void *data; /* NULL for declared (streamed) tensors */
} w_tensor;

struct cl_st_writer {
    w_tensor *t;
    size_t n, cap;
    cJSON *meta;
};

int cl_st_writer_create(cl_st_writer **out)
{
    cl_st_writer *w = calloc(1, sizeof *w);
    if (!w)
        return cl_err(CL_ERR_NOMEM, "out of memory");
    *out = w;
    return CL_OK;
}

void cl_st_writer_free(cl_st_writer *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->n; i++) {
        free(w->t[i].name);
        free(w->t[i].data);
    }
    free(w->t);
    cJSON_Delete(w->meta);
    free(w);
}

int cl_st_writer_declare(cl_st_writer *w, const char *name, cl_dtype dtype, int ndim,
                         const int64_t *shape)
{
    if (ndim < 0 || ndim > CL_ST_MAX_DIMS)
        return cl_err(CL_ERR_ARG, "tensor '%s': bad rank %d", name, ndim);
    if (w->n == w->cap) {
        size_t nc = w->cap ? 2 * w->cap : 64;
        w_tensor *nt = realloc(w->t, nc * sizeof *nt);
        if (!nt)
            return cl_err(CL_ERR_NOMEM, "out of memory");
        w->t = nt;
        w->cap = nc;
    }
    w_tensor *t = &w->t[w->n];
    memset(t, 0, sizeof *t);
    t->name = strdup(name);
    if (!t->name)
        return cl_err(CL_ERR_NOMEM, "out of memory");
    t->dtype = dtype;
    t->ndim = ndim;
    size_t numel = 1, esize = cl_dtype_size(dtype);
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 || (shape[i] && numel > SIZE_MAX / esize / (size_t)shape[i])) {
            free(t->name);
            return cl_err(CL_ERR_ARG, "tensor '%s': bad or too large shape", name);
        }
        t->shape[i] = shape[i];
        numel *= (size_t)shape[i];
    }
    t->nbytes = numel * esize;
    w->n++;
    return CL_OK;
}

int cl_st_writer_add(cl_st_writer *w, const char *name, cl_dtype dtype, int ndim,
                     const int64_t *shape, const void *data)
{
    CL_TRY(cl_st_writer_declare(w, name, dtype, ndim, shape));
    w_tensor *t = &w->t[w->n - 1];
    t->data = malloc(t->nbytes ? t->nbytes : 1);
    if (!t->data)
        return cl_err(CL_ERR_NOMEM, "out of memory (tensor '%s')", name);
    if (t->nbytes)
        memcpy(t->data, data, t->nbytes);
    return CL_OK;
}

int cl_st_writer_meta(cl_st_writer *w, const char *key, const char *value)
{
    if (!w->meta && !(w->meta = cJSON_CreateObject()))
        return cl_err(CL_ERR_NOMEM, "out of memory");
    cJSON_DeleteItemFromObjectCaseSensitive(w->meta, key);
    if (!cJSON_AddStringToObject(w->meta, key, value))
        return cl_err(CL_ERR_NOMEM, "out of memory");
    return CL_OK;
}

static char *build_header(cl_st_writer *w, size_t *hlen_out)
{
    cJSON *h = cJSON_CreateObject();
    if (!h)
        return NULL;
    if (w->meta)
        cJSON_AddItemReferenceToObject(h, "__metadata__", w->meta);
    size_t off = 0;
    for (size_t i = 0; i < w->n; i++) {
        w_tensor *t = &w->t[i];
        cJSON *e = cJSON_AddObjectToObject(h, t->name);
        if (!e)
            goto fail;
        cJSON_AddStringToObject(e, "dtype", cl_dtype_name(t->dtype));
        cJSON *s = cJSON_AddArrayToObject(e, "shape");
        for (int d = 0; d < t->ndim; d++)
            cJSON_AddItemToArray(s, cJSON_CreateNumber((double)t->shape[d]));
        cJSON *o = cJSON_AddArrayToObject(e, "data_offsets");
        cJSON_AddItemToArray(o, cJSON_CreateNumber((double)off));
        cJSON_AddItemToArray(o, cJSON_CreateNumber((double)(off + t->nbytes)));
        off += t->nbytes;
    }
    char *txt = cJSON_PrintUnformatted(h);
    cJSON_Delete(h);
    if (!txt)
        return NULL;
    size_t n = strlen(txt);
    size_t padded = (n + 7) & ~(size_t)7;
    char *out = malloc(padded + 1);
    if (!out) {
        free(txt);
        return NULL;
    }
    memcpy(out, txt, n);
    memset(out + n, ' ', padded - n);
    out[padded] = 0;
    free(txt);
    *hlen_out = padded;
    return out;
fail:
    cJSON_Delete(h);
    return NULL;
}

int cl_st_writer_stream(cl_st_writer *w, const char *path, cl_st_fill_fn fill, void *ctx)
{
    size_t hlen;
    char *hdr = build_header(w, &hlen);
    if (!hdr)
        return cl_err(CL_ERR_NOMEM, "%s: out of memory building header", path);
    cl_afile *f;
    int rc = cl_afile_open(path, &f);
    if (rc != CL_OK) {
        free(hdr);
        return rc;
    }
    unsigned char lenb[8];
    for (int i = 0; i < 8; i++)
        lenb[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
    rc = cl_afile_write(f, lenb, 8);
    if (rc == CL_OK)
        rc = cl_afile_write(f, hdr, hlen);
    free(hdr);
    size_t bufcap = 16u << 20;
    void *buf = NULL;
    for (size_t i = 0; i < w->n && rc == CL_OK; i++) {
        w_tensor *t = &w->t[i];
        if (t->data) {
            rc = cl_afile_write(f, t->data, t->nbytes);
            continue;
        }
        if (!buf && !(buf = malloc(bufcap))) {
            rc = cl_err(CL_ERR_NOMEM, "out of memory");
            break;
        }
        for (size_t off = 0; off < t->nbytes && rc == CL_OK; off += bufcap) {
            size_t len = t->nbytes - off < bufcap ? t->nbytes - off : bufcap;
            rc = fill ? fill(ctx, i, buf, off, len)
                      : cl_err(CL_ERR_ARG, "tensor '%s' has no data", t->name);
            if (rc == CL_OK)
                rc = cl_afile_write(f, buf, len);
        }
    }
    free(buf);
    if (rc != CL_OK) {
        cl_afile_abort(f);
        return rc;
    }
    return cl_afile_commit(f);
}

int cl_st_writer_write(cl_st_writer *w, const char *path)
{
    return cl_st_writer_stream(w, path, NULL, NULL);
}
