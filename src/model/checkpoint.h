/* checkpoint.h - a model directory opened for reading: config.json (+
 * generation_config.json), the memory-mapped safetensors and every tensor bound
 * and shape-checked. Knows nothing of backends: they upload from here. */
#ifndef CL_CHECKPOINT_H
#define CL_CHECKPOINT_H

#include "model/config.h"
#include "model/safetensors.h"
#include "model/weights.h"

typedef struct {
    char *dir;
    cl_config cfg;
    cl_safetensors *st;
    cl_weights w;
} cl_checkpoint;

int cl_checkpoint_open(const char *dir, cl_checkpoint *ck);
void cl_checkpoint_close(cl_checkpoint *ck);

#endif
