/* mkmodel.h - writes a random-weight checkpoint (config.json, generation_config.json,
 * model.safetensors, and for tiny presets a small BPE tokenizer) in exactly the
 * on-disk layout of the released models. Weights come from a counter-based RNG,
 * so the same (preset, seed) always gives the same bytes. */
#ifndef CL_MKMODEL_H
#define CL_MKMODEL_H

#include <stdint.h>

#include "collage.h"
#include "model/config.h"

/* Public (collage.h): cl_mkmodel_opts, cl_mkmodel, cl_mkmodel_preset. */


/* How mkmodel draws element i of a weight role (cl_wrole; -1 embed, -2 lm_head, -3
 * final norm): a counter-based stream kind (CL_RNG_*, common/rng.h) and its a, b. */
void cl_mkmodel_init_rule(int role, int *kind, float *a, float *b);
/* The initial value of element i of a weight role (what mkmodel writes). */
float cl_mkmodel_init_value(int role, uint64_t key, uint64_t i);

/* Builds the config.json text of a preset (malloc'd). */
int cl_mkmodel_config_json(const cl_mkmodel_opts *o, int64_t eos_id, int64_t pad_id,
                           char **json_out);

#endif
