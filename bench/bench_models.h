/* bench_models.h - what the model benchmarks share: comma-separated integer lists, and
 * the loop over presets (a random-weight bf16 model made on the GPU for each) and,
 * for GKA presets, over solver iteration counts. */
#ifndef BENCH_MODELS_H
#define BENCH_MODELS_H

#include <stdint.h>

#include "model/model.h"

/* "8192,32768" -> out[]; the count, or -1 if malformed (or more than max items). */
int bench_parse_list(const char *s, int64_t *out, int max);

/* Called per (model, num_iter): num_iter is 0 for presets without GKA layers, and
 * iter_index its index in the iteration list. Non-zero: stop with that status. */
typedef int (*bench_model_fn)(void *user, cl_model *m, const char *preset, int64_t num_iter,
                              int iter_index);
/* For each preset of `presets`: a random bf16 model on `backend` with `layers` layers
 * (0: the preset's), then fn for each of iters[0..n_iters) when it has GKA layers
 * (once otherwise). */
int bench_each_model(const char *presets, const char *backend, int64_t layers,
                     const int64_t *iters, int n_iters, bench_model_fn fn, void *user);
/* The same with the models split over tp ranks (tp 0: unsharded, as bench_each_model;
 * tp >= 1: loaded by the sharded loader from a host-memory checkpoint, bench_tp.h), and
 * `threads` CPU threads (0: all cores). */
int bench_each_model_tp(const char *presets, const char *backend, int64_t layers, int tp,
                        int threads, const int64_t *iters, int n_iters, bench_model_fn fn,
                        void *user);

#endif
