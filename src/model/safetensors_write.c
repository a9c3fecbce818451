/* safetensors_write.c - the safetensors writer: header built with cJSON (padded
 * to 8 bytes), tensors back to back, written through a temp file + fsync + rename
 * so that readers never see a partial file; large tensors streamed in pieces. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
    size_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        t->shape[i] = shape[i];
        numel *= (size_t)shape[i];
    }
    t->nbytes = numel * cl_dtype_size(dtype);
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

static int write_all(int fd, const void *buf, size_t len, const char *path)
{
    const char *p = buf;
    while (len) {
        ssize_t k = write(fd, p, len);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            return cl_err(e == ENOSPC || e == EFBIG ? CL_ERR_FULL : CL_ERR_IO, "%s: %s", path,
                          strerror(e));
        }
        p += k;
        len -= (size_t)k;
    }
    return CL_OK;
}

int cl_st_writer_stream(cl_st_writer *w, const char *path, cl_st_fill_fn fill, void *ctx)
{
    size_t hlen;
    char *hdr = build_header(w, &hlen);
    if (!hdr)
        return cl_err(CL_ERR_NOMEM, "%s: out of memory building header", path);
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        free(hdr);
        return cl_err(CL_ERR_IO, "%s: %s", path, strerror(errno));
    }
    unsigned char lenb[8];
    for (int i = 0; i < 8; i++)
        lenb[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
    int rc = write_all(fd, lenb, 8, path);
    if (rc == CL_OK)
        rc = write_all(fd, hdr, hlen, path);
    free(hdr);
    size_t bufcap = 16u << 20;
    void *buf = NULL;
    for (size_t i = 0; i < w->n && rc == CL_OK; i++) {
        w_tensor *t = &w->t[i];
        if (t->data) {
            rc = write_all(fd, t->data, t->nbytes, path);
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
                rc = write_all(fd, buf, len, path);
        }
    }
    free(buf);
    if (rc == CL_OK && fsync(fd) != 0)
        rc = cl_err(CL_ERR_IO, "%s: %s", path, strerror(errno));
    if (close(fd) != 0 && rc == CL_OK)
        rc = cl_err(CL_ERR_IO, "%s: %s", path, strerror(errno));
    if (rc == CL_OK && rename(tmp, path) != 0)
        rc = cl_err(CL_ERR_IO, "%s: %s", path, strerror(errno));
    if (rc != CL_OK)
        unlink(tmp);
    return rc;
}

int cl_st_writer_write(cl_st_writer *w, const char *path)
{
    return cl_st_writer_stream(w, path, NULL, NULL);
}
