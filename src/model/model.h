/* model.h - a checkpoint made ready on a backend: every weight uploaded (CPU:
 * fp32, aliasing the mmap when the checkpoint is fp32; CUDA: bf16/fp32), the
 * conv weights of each SSM layer fused to one [C, W] matrix, and run-time
 * settings (GKA num_iter override). Forward passes run through forward.h. */
#ifndef CL_MODEL_H
#define CL_MODEL_H

#include "backend/backend.h"
#include "model/checkpoint.h"

typedef struct {
    cl_bweight w[CL_W_ROLE_COUNT]; /* uploaded roles (data NULL where absent) */
    cl_bweight conv;               /* fused depthwise conv [C, W] (SSM layers) */
    int attn_index;                /* index among attention layers, or -1 */
    int ssm_index;                 /* index among SSM layers, or -1 */
} cl_layer_bw;

typedef struct {
    const char *backend;  /* "cpu" | "cuda" | NULL (auto) */
    int threads;          /* CPU threads (0: OpenMP default) */
    int64_t gka_num_iter; /* -1: from config (gka_config + gka_overrides) */
    int64_t prefill_chunk; /* tokens per forward call for long prompts (0: the backend's) */
} cl_model_opts;

typedef struct cl_model {
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
} cl_model;

void cl_model_opts_default(cl_model_opts *o);
int cl_model_load(const char *dir, const cl_model_opts *opts, cl_model **out);
void cl_model_free(cl_model *m);

#endif
