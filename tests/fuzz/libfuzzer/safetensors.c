/* libFuzzer entry point for the safetensors header parser (see CMakeLists.txt here). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "model/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cl_safetensors *st;
    if (cl_st_open_memory("fuzz", data, size, &st) != 0)
        return 0;
    float *f = NULL;
    for (size_t i = 0; i < cl_st_count(st); i++) { /* touch every tensor's bytes */
        const cl_st_tensor *t = cl_st_at(st, i);
        int64_t n = cl_st_numel(t);
        if (!cl_dtype_is_float(t->dtype) || n > (1 << 24))
            continue;
        f = realloc(f, (size_t)(n ? n : 1) * sizeof *f);
        if (f)
            cl_st_read_f32(t, f);
    }
    free(f);
    cl_st_close(st);
    return 0;
}
