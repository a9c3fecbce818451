/* model_random.h - a model built from a `collage mkmodel` preset with random
 * weights made directly in backend memory: no checkpoint on disk, so 8B / 32B
 * benchmarks need neither 16-65 GB of files nor the time to read them.
 *
 * The config is the preset's (cl_mkmodel_config_json + cl_config_parse) and
 * every tensor holds what `collage mkmodel --preset P --seed S` would write
 * (same counter-based generator, same per-tensor keys): vectors and conv
 * weights are generated on the host exactly as mkmodel does; matrices and the
 * embedding are generated on the GPU (kernels/rng.cuh mirrors
 * src/common/rng.h; the device's logf/cosf may differ in the last ulp, below
 * bf16 rounding in practice) or on the host for the CPU backend. The model has
 * no safetensors behind it (ck.st == NULL); cl_model_free releases it as usual. */
#ifndef CL_MODEL_RANDOM_H
#define CL_MODEL_RANDOM_H

#include <stdint.h>

#include "model/model.h"

typedef struct {
    const char *preset;   /* mkmodel preset name ("gka-8b", "tiny-gdn", ...) */
    uint64_t seed;        /* 0 is a valid seed (mkmodel's default) */
    const char *pattern;  /* NULL: the preset's layer pattern */
    const char *dtype;    /* NULL: the preset's ("float32" | "bfloat16" | "float16") */
    int64_t layers;       /* 0: the preset's */
    const char *backend;  /* "cpu" | "cuda" | NULL (auto) */
    int threads;          /* CPU threads (0: default) */
    int64_t gka_num_iter; /* -1: from the config */
} cl_random_model_opts;

void cl_random_model_opts_default(cl_random_model_opts *o);
int cl_model_create_random(const cl_random_model_opts *o, cl_model **out);

#endif
