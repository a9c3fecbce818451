/* compose_util.h - helpers of the composition tests: golden and mkmodel models,
 * id lists, host copies of states, and comparisons with the reference's
 * composed caches. Include after the cmocka headers. */
#ifndef COMPOSE_UTIL_H
#define COMPOSE_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "compose/compose.h"
#include "engine/seq.h"
#include "model/model.h"

/* ../shared/golden/<name>/<file> (skips the test without ../shared). */
const char *cu_golden_file(const char *name, const char *file);
/* The golden model <name> on the CPU. */
cl_model *cu_golden_model(const char *name);
/* Tolerance from the layer types: 1e-4 (M2/attention), 2e-3 (GDN), 2e-2 (GKA). */
double cu_tol(const cl_model *m);

/* A random-weight mkmodel checkpoint (no tokenizer) loaded on the CPU; pattern
 * NULL and layers 0 give the preset's defaults. */
cl_model *cu_mkmodel(const char *preset, const char *pattern, int64_t layers, uint64_t seed);
/* Deterministic ids in [1, V). */
void cu_random_ids(int32_t *ids, int64_t n, int64_t V, uint64_t seed);

/* An integer tensor of a safetensors file as int32 (malloc'd). */
int32_t *cu_ids(const char *file, const char *tensor, int64_t *n);

/* Host copy of a seq's SSM states (layout of engine/state.h; malloc'd). */
float *cu_read_ssm(const cl_seq *s, int with_trans);
/* 1 if the cache keeps GDN transitions. */
int cu_cache_has_trans(const cl_cache *c);

/* Prints and asserts max|got-ref|/max|ref| <= tol; returns the error. */
double cu_cmp(const char *what, const float *got, const float *ref, size_t n, double tol);

/* Compares a composed state with the reference's `composed.*` tensors of file
 * (attention K/V, conv, recurrent states, M2 log_aprods, kv length and position);
 * returns the largest relative error. */
double cu_check_composed(const cl_model *m, const cl_seq *s, const char *file, double tol);

#endif
