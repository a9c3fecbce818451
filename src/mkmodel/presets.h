/* presets.h - model shapes for `collage mkmodel` (tiny test models, a ~100M
 * CPU-benchmark size, and the Qwen3-8B/32B shapes of the released hybrids). */
#ifndef CL_PRESETS_H
#define CL_PRESETS_H

#include <stdint.h>

#include "common/dtype.h"

typedef struct {
    const char *name;
    const char *ssm;     /* symbol of the SSM layers ("GKA", "SWA", "*" for none) */
    int64_t hidden, intermediate, layers, heads, kv_heads, head_dim, vocab;
    cl_dtype dtype;
    int64_t swa_window;  /* for SWA presets */
    int tiny_tokenizer;  /* writes its own small BPE tokenizer */
    double rope_theta;
    int64_t max_positions;
} cl_preset;

const cl_preset *cl_preset_find(const char *name);
/* NULL-terminated iteration. */
const cl_preset *cl_preset_at(int i);

#endif
