/* mkmodel.h - writes a random-weight checkpoint (config.json, generation_config.json,
 * model.safetensors, and for tiny presets a small BPE tokenizer) in exactly the
 * on-disk layout of the released models. Weights come from a counter-based RNG,
 * so the same (preset, seed) always gives the same bytes. */
#ifndef CL_MKMODEL_H
#define CL_MKMODEL_H

#include <stdint.h>

#include "model/config.h"

typedef struct {
    const char *preset;
    const char *out_dir;
    uint64_t seed;
    const char *pattern; /* NULL: preset default (attention and SSM alternating); a shorter
                            pattern is repeated to the layer count */
    const char *dtype;   /* NULL: preset default; "float32" | "bfloat16" | "float16" */
    int64_t layers;      /* 0: preset default */
    int no_tokenizer;    /* tiny presets: skip writing the tokenizer (tests of the engine) */
} cl_mkmodel_opts;

int cl_mkmodel(const cl_mkmodel_opts *o);

/* The initial value of element i of a weight role (what mkmodel writes). */
float cl_mkmodel_init_value(cl_layer_type t, int role, uint64_t key, uint64_t i);

/* Builds the config.json text of a preset (malloc'd). */
int cl_mkmodel_config_json(const cl_mkmodel_opts *o, int64_t eos_id, int64_t pad_id,
                           char **json_out);

#endif
