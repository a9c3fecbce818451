/* bench_tp.h - random-weight models split over tensor-parallel ranks, for the
 * benchmarks (`bench decode --tp N`, `bench prefill --tp N`) and the TP parity check
 * (`bench tp-parity`).
 *
 * A random model made in device memory (mkmodel/model_random.h) has no checkpoint
 * behind it, and the engine's sharded loader (cl_model_load_shards) slices a
 * checkpoint. So a sharded random model goes through a checkpoint held in host
 * memory: the safetensors image mkmodel would write for the preset (same tensors,
 * same generator and per-tensor keys, so the same values as the device-made model),
 * parsed with cl_st_open_memory, bound with cl_weights_bind and loaded by
 * cl_model_load_shards: the rank models are exactly what `--tp N` runs from disk.
 * The image is the model's full size (65 GB for a 32B bf16 preset), generated on all
 * cores (15-20 ns per value and core).
 *
 * Helpers that treat sharded and unsharded models alike (rank r of an unsharded model
 * is the model itself) follow. */
#ifndef BENCH_TP_H
#define BENCH_TP_H

#include <stdint.h>

#include "mkmodel/model_random.h"
#include "model/cache.h"
#include "model/model.h"

typedef struct bench_image bench_image;

/* The checkpoint of o->preset (o->seed, o->pattern, o->dtype, o->layers; o->backend,
 * o->threads and o->gka_num_iter are not used here) in host memory. */
int bench_image_create(const cl_random_model_opts *o, bench_image **out);
void bench_image_free(bench_image *im);
/* Bytes of the image and seconds it took to generate. */
size_t bench_image_bytes(const bench_image *im);
double bench_image_seconds(const bench_image *im);
/* A model loaded from the image by the sharded loader, over `tp` ranks (tp >= 1; 1 is
 * the sharded path with one rank) on `backend` ("cpu" | "cuda"; CUDA: rank r on device
 * r). gka_num_iter -1: the config's. The image must outlive the model (the CPU backend
 * may alias its tensors). */
int bench_image_model(const bench_image *im, const char *backend, int threads, int tp,
                      int64_t gka_num_iter, cl_model **out);

/* Ranks of m (1 when not sharded), rank r's model and cache. */
int bench_tp_ranks(const cl_model *m);
cl_model *bench_tp_rank_model(cl_model *m, int r);
cl_cache *bench_tp_rank_cache(cl_cache *c, int r);
/* fn(user, r) for every rank, on the rank's own thread when sharded (its device
 * current), on the caller's otherwise; the first failure's status. A failing rank
 * aborts the group's collectives (the others' return), recovered after. */
int bench_tp_on_ranks(cl_model *m, int (*fn)(void *user, int r), void *user);
/* Waits for every rank's backend. */
int bench_tp_sync(cl_model *m);
/* Sets the GKA iteration count of m and of its rank models. */
void bench_tp_set_num_iter(cl_model *m, int64_t num_iter);

#endif
