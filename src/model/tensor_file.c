/* tensor_file.c - the public safetensors reader/writer (collage.h, "tensor files"):
 * a thin layer over safetensors.c for tests, tools and `collage tensors`. */
#include <string.h>

#include "collage.h"
#include "common/dtype.h"
#include "common/status.h"
#include "model/safetensors.h"

/* A cl_tensor_file is a cl_safetensors: the handle is cast, never dereferenced as
 * anything else. */

int cl_tensor_file_open(const char *path, cl_tensor_file **out)
{
    cl_safetensors *st;
    CL_TRY(cl_st_open_file(path, &st));
    *out = (cl_tensor_file *)st;
    return CL_OK;
}

void cl_tensor_file_close(cl_tensor_file *f) { cl_st_close((cl_safetensors *)f); }

size_t cl_tensor_file_count(const cl_tensor_file *f)
{
    return cl_st_count((const cl_safetensors *)f);
}

static int is_int(cl_dtype t)
{
    return t == CL_I64 || t == CL_I32 || t == CL_I16 || t == CL_I8 || t == CL_U8 || t == CL_BOOL;
}

int cl_tensor_file_at(const cl_tensor_file *f, size_t i, cl_tensor_desc *out)
{
    const cl_safetensors *st = (const cl_safetensors *)f;
    if (i >= cl_st_count(st))
        return cl_err(CL_ERR_RANGE, "%s: no tensor %zu", cl_st_path(st), i);
    const cl_st_tensor *t = cl_st_at(st, i);
    memset(out, 0, sizeof *out);
    out->name = t->name;
    out->dtype = cl_dtype_name(t->dtype);
    out->ndim = t->ndim;
    for (int d = 0; d < t->ndim && d < 8; d++)
        out->shape[d] = t->shape[d];
    out->numel = cl_st_numel(t);
    out->is_float = cl_dtype_is_float(t->dtype);
    out->is_int = is_int(t->dtype);
    return CL_OK;
}

long cl_tensor_file_find(const cl_tensor_file *f, const char *name)
{
    const cl_safetensors *st = (const cl_safetensors *)f;
    for (size_t i = 0; i < cl_st_count(st); i++)
        if (!strcmp(cl_st_at(st, i)->name, name))
            return (long)i;
    return -1;
}

int cl_tensor_file_read_f32(const cl_tensor_file *f, size_t i, float *out)
{
    cl_tensor_desc d;
    CL_TRY(cl_tensor_file_at(f, i, &d));
    const cl_st_tensor *t = cl_st_at((const cl_safetensors *)f, i);
    if (!d.is_float)
        return cl_err(CL_ERR_FORMAT, "%s: tensor '%s' is %s, not a float tensor", t->file,
                      t->name, d.dtype);
    return cl_st_read_f32(t, out);
}

int cl_tensor_file_read_i64(const cl_tensor_file *f, size_t i, int64_t *out)
{
    cl_tensor_desc d;
    CL_TRY(cl_tensor_file_at(f, i, &d));
    const cl_st_tensor *t = cl_st_at((const cl_safetensors *)f, i);
    if (!d.is_int)
        return cl_err(CL_ERR_FORMAT, "%s: tensor '%s' is %s, not an integer tensor", t->file,
                      t->name, d.dtype);
    const unsigned char *p = t->data;
    for (int64_t k = 0; k < d.numel; k++) {
        switch (t->dtype) {
        case CL_I64: memcpy(&out[k], p + 8 * k, 8); break;
        case CL_I32: {
            int32_t v;
            memcpy(&v, p + 4 * k, 4);
            out[k] = v;
            break;
        }
        case CL_I16: {
            int16_t v;
            memcpy(&v, p + 2 * k, 2);
            out[k] = v;
            break;
        }
        case CL_I8: out[k] = (int8_t)p[k]; break;
        default: out[k] = p[k]; break; /* U8, BOOL */
        }
    }
    return CL_OK;
}

int cl_tensor_file_write_f32(const char *path, const char *name, const float *data, int ndim,
                             const int64_t *shape)
{
    cl_st_writer *w;
    CL_TRY(cl_st_writer_create(&w));
    int rc = cl_st_writer_add(w, name, CL_F32, ndim, shape, data);
    if (rc == CL_OK)
        rc = cl_st_writer_write(w, path);
    cl_st_writer_free(w);
    return rc;
}
