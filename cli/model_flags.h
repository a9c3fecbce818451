/* model_flags.h - the flags every model-running verb shares (--model, --backend,
 * --threads, --gka-num-iter, --max-context, --prefill-chunk, --tp), the store flags
 * and the sampling flags, each with its range, and what turns them into a loaded model,
 * an open store with its prefix cache, and sampling options. */
#ifndef CLI_MODEL_FLAGS_H
#define CLI_MODEL_FLAGS_H

#include <stdint.h>

#include "args.h"
#include "collage.h"

typedef struct {
    const char *model, *backend;
    int64_t threads, gka_num_iter, max_context, prefill_chunk, tp;
} cli_model_flags;

#define CLI_MAX_THREADS 1024
#define CLI_MODEL_OPTS(f)                                                                     \
    {"model", OPT_STR, &(f).model, "DIR", "model directory (config.json + safetensors)", 0, 0}, \
        {"backend", OPT_STR, &(f).backend, "NAME", "cpu | cuda (default: cuda if present)", 0, \
         0},                                                                                  \
        {"threads", OPT_INT, &(f).threads, "N", "CPU threads (default: all cores)", 1,        \
         CLI_MAX_THREADS},                                                                    \
        {"gka-num-iter", OPT_INT, &(f).gka_num_iter, "N",                                     \
         "GKA Chebyshev iterations (overrides the config)", 0, 1000},                         \
        {"max-context", OPT_INT, &(f).max_context, "N",                                       \
         "RoPE positions allowed (default: max_position_embeddings)", 1, 1073741824},         \
        {"prefill-chunk", OPT_INT, &(f).prefill_chunk, "N",                                   \
         "tokens per forward call for long prompts (default: cpu 512, cuda 4096)", 1,         \
         16777216},                                                                           \
        {"tp", OPT_INT, &(f).tp, "N",                                                         \
         "tensor-parallel ranks: GPUs, or CPU thread groups (default 1)", 1, 64}

/* Store flags: --store DIR / --no-store, block size, snapshot policy, size cap. */
typedef struct {
    const char *store;
    int no_store;
    int64_t block_tokens, snapshot_every, max_bytes;
    int64_t gpu_tier, host_tier; /* hot-tier budgets (CLI_TIER_OPTS; 0: none) */
    int gpu_tier_states;         /* most states in the GPU tier (0: no limit) */
    int never_wait;              /* (not a flag) skip saves rather than wait: the server */
} cli_store_flags;

#define CLI_STORE_OPTS(s)                                                                     \
    {"store", OPT_STR, &(s).store, "DIR",                                                     \
     "state store directory (default ~/.cache/collage/store or $COLLAGE_STORE)", 0, 0},      \
        {"no-store", OPT_FLAG, &(s).no_store, NULL, "do not use the state store", 0, 0},      \
        {"block-tokens", OPT_INT, &(s).block_tokens, "N", "tokens per stored KV block (64)",  \
         1, 65536},                                                                           \
        {"snapshot-every", OPT_INT, &(s).snapshot_every, "N",                                 \
         "also store a state snapshot every N blocks of a long prompt (0: off)", 0,           \
         1073741824},                                                                         \
        {"store-max-bytes", OPT_SIZE, &(s).max_bytes, "SIZE",                                 \
         "size cap of the store, e.g. 20G (LRU eviction; 0: none)", 0, 9.2e18}

/* Hot tiers above the store, for long-running verbs (serve): recently used document
 * states and prefix snapshots stay in the backend's memory / pinned host memory. */
#define CLI_TIER_OPTS(s)                                                                      \
    {"gpu-tier", OPT_SIZE, &(s).gpu_tier, "SIZE",                                             \
     "hot tier of recent states in the backend's memory (GPU on CUDA), e.g. 8G (0: none)",   \
     0, 9.2e18},                                                                              \
        {"host-tier", OPT_SIZE, &(s).host_tier, "SIZE",                                       \
         "hot tier in pinned host memory above the store, e.g. 32G (0: none)", 0, 9.2e18}

typedef struct {
    int greedy;
    double temperature, top_p, min_p, repetition_penalty;
    int64_t top_k, seed;
} cli_sampling_flags;

#define CLI_SAMPLING_OPTS(s)                                                                  \
    {"greedy", OPT_FLAG, &(s).greedy, NULL, "argmax decoding", 0, 0},                         \
        {"temperature", OPT_FLOAT, &(s).temperature, "T", "sampling temperature (default 1)", \
         1e-6, 1e6},                                                                          \
        {"top-k", OPT_INT, &(s).top_k, "K", "keep the K most likely tokens (0: off)", 0,      \
         2147483647},                                                                         \
        {"top-p", OPT_FLOAT, &(s).top_p, "P", "nucleus sampling mass (1: off)", 1e-9, 1},     \
        {"min-p", OPT_FLOAT, &(s).min_p, "P", "drop tokens below P x the top probability", 0, \
         0.999999},                                                                           \
        {"repetition-penalty", OPT_FLOAT, &(s).repetition_penalty, "R",                      \
         "penalise tokens already seen (1: off)", 1e-6, 100},                                 \
        {"seed", OPT_INT, &(s).seed, "N", "random seed (default 0)", 0, 9.2e18}

void cli_model_flags_init(cli_model_flags *f);
void cli_sampling_flags_init(cli_sampling_flags *s);
void cli_sampling_to_opts(const cli_sampling_flags *s, cl_sampler_opts *o);
void cli_store_flags_init(cli_store_flags *s);
/* Loads the model named by the flags; on failure prints the error and returns the exit
 * code (0 on success). */
int cli_load_model(const char *verb, const cli_model_flags *f, cl_model **out);
/* Opens the store when the verb uses it (default_on: unless --no-store; else only with
 * --store) and makes the prefix cache for model and cache. *st and *pc are NULL when no
 * store is used. Returns 0 or an exit code (error printed). */
int cli_open_store(const char *verb, const cli_store_flags *f, int default_on, cl_model *m,
                   cl_cache *c, cl_store **st, cl_prefix **pc);

#endif
