/* model.h - a checkpoint made ready on a backend: every weight uploaded (CPU:
 * fp32, aliasing the mmap when the checkpoint is fp32; CUDA: bf16/fp32), the
 * conv weights of each SSM layer fused to one [C, W] matrix, and run-time
 * settings (GKA num_iter override). Forward passes run through forward.h. */
#ifndef CL_MODEL_H
#define CL_MODEL_H

#include "backend/backend.h"
#include "backend/comm.h"
#include "backend/ranks.h"
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

    /* Tensor parallelism (model_shard.c). The model a caller holds has, when sharded,
     * one rank model per rank (its backend, its slice of the weights, rank-local
     * dimensions in cfg) and the rank threads; its own b is rank 0's (borrowed) and
     * it holds no weights itself. forward.c runs on rank models. */
    cl_model **shard;     /* [tp] rank models (NULL: not sharded) */
    cl_ranks *ranks;      /* one thread per rank */
    cl_comm **comms;      /* [tp] */
    /* in a rank model */
    int rank;
    cl_comm *comm;        /* all-reduce / all-gather group (NULL: none) */
    cl_config cfg_local;  /* rank-local dimensions (cfg points here) */
    int64_t vocab_lo;     /* first token id of this rank's embedding / lm_head rows */
    void **host_bufs;     /* sliced host copies that the backend may alias */
    int n_host_bufs;
};

/* Roles in the order forward.c uses them (uploads follow it). */
extern const int cl_model_upload_order[CL_W_ROLE_COUNT];

/* Loads the weights of an opened checkpoint (m->ck) as `ranks` rank models (ranks
 * >= 1; 1 runs the tensor-parallel path with one rank: NCCL at TP=1 on a GPU). */
int cl_model_load_shards(cl_model *m, const cl_model_opts *opts, int ranks);
void cl_model_free_shards(cl_model *m);
/* cl_model_load with the tensor-parallel path taken even at tp 1 (tests). */
int cl_model_load_sharded(const char *dir, const cl_model_opts *opts, cl_model **out);

#endif
