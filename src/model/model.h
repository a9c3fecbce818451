/* model.h - a checkpoint made ready on a backend: every weight uploaded (CPU:
 * fp32, aliasing the mmap when the checkpoint is fp32; CUDA: bf16/fp32), the
 * conv weights of each SSM layer fused to one [C, W] matrix, and run-time
 * settings (GKA num_iter override). Forward passes run through forward.h. */
#ifndef CL_MODEL_H
#define CL_MODEL_H

#include "backend/backend.h"
#include "collage.h"
#include "model/checkpoint.h"

typedef struct {
    cl_bweight w[CL_W_ROLE_COUNT]; /* uploaded roles (data NULL where absent) */
    cl_bweight conv;               /* fused depthwise conv [C, W] (SSM layers) */
    int attn_index;                /* index among attention layers, or -1 */
    int ssm_index;                 /* index among SSM layers, or -1 */
} cl_layer_bw;

/* cl_model_opts, cl_model_load and cl_model_free are public (collage.h). */

struct cl_model {
    cl_checkpoint ck;
    const cl_config *cfg; /* = &ck.cfg */
    cl_backend *b;
    cl_bweight embed, norm, lm_head;
    cl_layer_bw *layers;
    int64_t gka_num_iter; /* effective */
    int64_t feed_chunk;   /* --prefill-chunk (cl_seq_feed's default; 0: the backend's) */
    /* forward scratch (backend memory), grown on demand */
    float *scratch;
    size_t scratch_floats;
    int tp;               /* tensor-parallel ranks (1: none) */
    int loaded;           /* 0: described only (cl_model_opts.load_weights 0): no backend */
};

#endif
