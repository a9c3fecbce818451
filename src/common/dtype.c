#include "common/dtype.h"

#include <string.h>

#include "common/half.h"

static const struct {
    const char *name;
    size_t size;
} dtypes[CL_DTYPE_COUNT] = {
    [CL_F32] = {"F32", 4}, [CL_F16] = {"F16", 2}, [CL_BF16] = {"BF16", 2},
    [CL_F64] = {"F64", 8}, [CL_I64] = {"I64", 8}, [CL_I32] = {"I32", 4},
    [CL_I16] = {"I16", 2}, [CL_I8] = {"I8", 1},   [CL_U8] = {"U8", 1},
    [CL_BOOL] = {"BOOL", 1},
};

size_t cl_dtype_size(cl_dtype t) { return (unsigned)t < CL_DTYPE_COUNT ? dtypes[t].size : 0; }

const char *cl_dtype_name(cl_dtype t)
{
    return (unsigned)t < CL_DTYPE_COUNT ? dtypes[t].name : "?";
}

int cl_dtype_from_name(const char *s)
{
    for (int i = 0; i < CL_DTYPE_COUNT; i++)
        if (!strcmp(s, dtypes[i].name))
            return i;
    return -1;
}

int cl_dtype_is_float(cl_dtype t)
{
    return t == CL_F32 || t == CL_F16 || t == CL_BF16 || t == CL_F64;
}

void cl_convert_to_f32(float *dst, const void *src, cl_dtype t, size_t n)
{
    switch (t) {
    case CL_F32: memmove(dst, src, n * 4); break;
    case CL_BF16: {
        const uint16_t *s = src;
        for (size_t i = 0; i < n; i++)
            dst[i] = cl_bf16_to_f32(s[i]);
        break;
    }
    case CL_F16: {
        const uint16_t *s = src;
        for (size_t i = 0; i < n; i++)
            dst[i] = cl_f16_to_f32(s[i]);
        break;
    }
    case CL_F64: {
        const double *s = src;
        for (size_t i = 0; i < n; i++)
            dst[i] = (float)s[i];
        break;
    }
    default: memset(dst, 0, n * 4); break;
    }
}

void cl_convert_from_f32(void *dst, cl_dtype t, const float *src, size_t n)
{
    switch (t) {
    case CL_F32: memmove(dst, src, n * 4); break;
    case CL_BF16: {
        uint16_t *d = dst;
        for (size_t i = 0; i < n; i++)
            d[i] = cl_f32_to_bf16(src[i]);
        break;
    }
    case CL_F16: {
        uint16_t *d = dst;
        for (size_t i = 0; i < n; i++)
            d[i] = cl_f32_to_f16(src[i]);
        break;
    }
    default: break;
    }
}
