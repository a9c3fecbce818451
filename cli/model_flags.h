/* model_flags.h - the flags every model-running verb shares (--model, --backend,
 * --threads, --gka-num-iter, --max-context) and the sampling flags. */
#ifndef CLI_MODEL_FLAGS_H
#define CLI_MODEL_FLAGS_H

#include <stdint.h>

#include "args.h"
#include "engine/sampler.h"
#include "model/model.h"

typedef struct {
    const char *model, *backend;
    int64_t threads, gka_num_iter, max_context;
} cli_model_flags;

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
         "RoPE positions allowed (default: max_position_embeddings)"}

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
/* Writes fp32 'logits' [rows, V] to a safetensors file. */
int cli_write_logits(const char *path, const float *logits, int64_t rows, int64_t V);
/* Loads the model named by the flags; on failure prints the error, returns the exit code. */
int cli_load_model(const char *verb, const cli_model_flags *f, cl_model **out);

#endif
