/* model_flags.h - the flags every model-running verb shares (--model, --backend,
 * --threads, --gka-num-iter, --max-context, --prefill-chunk) and the sampling flags. */
#ifndef CLI_MODEL_FLAGS_H
#define CLI_MODEL_FLAGS_H

#include <stdint.h>

#include "args.h"
#include "engine/sampler.h"
#include "engine/prefix.h"
#include "model/cache.h"
#include "model/model.h"
#include "store/store.h"

typedef struct {
    const char *model, *backend;
    int64_t threads, gka_num_iter, max_context, prefill_chunk;
} cli_model_flags;

/* Store flags: --store DIR / --no-store, block size, snapshot policy. */
typedef struct {
    const char *store;
    int no_store;
    int64_t block_tokens, snapshot_every, max_bytes;
} cli_store_flags;

#define CLI_STORE_OPTS(s)                                                                     \
    {"store", OPT_STR, &(s).store, "DIR", "state store directory (default ~/.cache/collage/store "  \
                                          "or $COLLAGE_STORE)"},                              \
        {"no-store", OPT_FLAG, &(s).no_store, NULL, "do not use the state store"},             \
        {"block-tokens", OPT_INT, &(s).block_tokens, "N", "tokens per stored KV block (64)"},  \
        {"snapshot-every", OPT_INT, &(s).snapshot_every, "N",                                 \
         "also store a state snapshot every N blocks of a long prompt (0: off)"},             \
        {"store-max-bytes", OPT_INT, &(s).max_bytes, "N", "size cap of the store (LRU eviction)"}

typedef struct {
    int greedy;
    double temperature, top_p, min_p, repetition_penalty;
    int64_t top_k, seed;
} cli_sampling_flags;

#define CLI_MODEL_OPTS(f)                                                                     \
    {"model", OPT_STR, &(f).model, "DIR", "model directory (config.json + safetensors)"},     \
        {"backend", OPT_STR, &(f).backend, "NAME", "cpu | cuda (default: cuda if present)"},  \
        {"threads", OPT_INT, &(f).threads, "N", "CPU threads (default: all cores)"},          \
        {"gka-num-iter", OPT_INT, &(f).gka_num_iter, "N",                                     \
         "GKA Chebyshev iterations (overrides the config)"},                                  \
        {"max-context", OPT_INT, &(f).max_context, "N",                                       \
         "RoPE positions allowed (default: max_position_embeddings)"},                         \
        {"prefill-chunk", OPT_INT, &(f).prefill_chunk, "N",                                   \
         "tokens per forward call for long prompts (default: cpu 512, cuda 4096)"}

#define CLI_SAMPLING_OPTS(s)                                                                  \
    {"greedy", OPT_FLAG, &(s).greedy, NULL, "argmax decoding"},                                \
        {"temperature", OPT_FLOAT, &(s).temperature, "T", "sampling temperature (default 1)"}, \
        {"top-k", OPT_INT, &(s).top_k, "K", "keep the K most likely tokens (0: off)"},        \
        {"top-p", OPT_FLOAT, &(s).top_p, "P", "nucleus sampling mass (1: off)"},              \
        {"min-p", OPT_FLOAT, &(s).min_p, "P", "drop tokens below P x the top probability"},  \
        {"repetition-penalty", OPT_FLOAT, &(s).repetition_penalty, "R",                      \
         "penalise tokens already seen (1: off)"},                                             \
        {"seed", OPT_INT, &(s).seed, "N", "random seed (default 0)"}

void cli_model_flags_init(cli_model_flags *f);
void cli_sampling_flags_init(cli_sampling_flags *s);
void cli_sampling_to_opts(const cli_sampling_flags *s, cl_sampler_opts *o);
void cli_store_flags_init(cli_store_flags *s);
/* Opens the store when the verb uses it (default_on: unless --no-store; else only
 * with --store) and sets up prefix reuse for the model and cache. *st is NULL when
 * no store is used. Returns 0 or an exit code (error printed). */
int cli_open_store(const char *verb, const cli_store_flags *f, int default_on, cl_model *m,
                   const cl_cache *c, cl_store **st, cl_prefix *pc);

/* Writes fp32 'logits' [rows, V] to a safetensors file. */
int cli_write_logits(const char *path, const float *logits, int64_t rows, int64_t V);
/* Loads the model named by the flags; on failure prints the error, returns the exit code. */
int cli_load_model(const char *verb, const cli_model_flags *f, cl_model **out);

#endif
