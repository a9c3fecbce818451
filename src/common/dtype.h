/* dtype.h - element types of tensors on disk and in memory. */
#ifndef CL_DTYPE_H
#define CL_DTYPE_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    CL_F32 = 0,
    CL_F16,
    CL_BF16,
    CL_F64,
    CL_I64,
    CL_I32,
    CL_I16,
    CL_I8,
    CL_U8,
    CL_BOOL,
    CL_DTYPE_COUNT
} cl_dtype;

/* Bytes per element. */
size_t cl_dtype_size(cl_dtype t);
/* safetensors spelling: "F32", "BF16", ... */
const char *cl_dtype_name(cl_dtype t);
/* Parses a safetensors dtype string; returns -1 if unknown. */
int cl_dtype_from_name(const char *s);
/* 1 for F32/F16/BF16/F64. */
int cl_dtype_is_float(cl_dtype t);
/* Converts n elements of a float type (F32/F16/BF16/F64) to float32. */
void cl_convert_to_f32(float *dst, const void *src, cl_dtype t, size_t n);
/* Converts n float32 values to F32/F16/BF16. */
void cl_convert_from_f32(void *dst, cl_dtype t, const float *src, size_t n);

#endif
