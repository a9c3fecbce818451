/* golden_util.h - helpers shared by the golden-data tests: running our engine on
 * a golden checkpoint and reading its state in the reference's layouts. */
#ifndef GOLDEN_UTIL_H
#define GOLDEN_UTIL_H

#include <stdint.h>

#include "engine/seq.h"
#include "model/model.h"

typedef struct {
    const char *name;   /* golden case directory */
    double tol;         /* relative tolerance vs the reference */
} golden_case;

/* Tolerance of a case from its layer types (1e-4 M2/SWA/attention, 2e-3 GDN, 2e-2 GKA). */
double golden_tol(const cl_model *m);
/* Loads ../shared/golden/<name> on the CPU (skips the test when ../shared is absent). */
cl_model *golden_load(const char *name, int64_t gka_num_iter);
/* Path of ../shared/golden/<name>/<file>. */
const char *golden_path(const char *name, const char *file);
/* Input ids of inputs_and_outputs (or of a compose file's tensor) as int32. */
int32_t *golden_ids(const char *file, const char *tensor, int64_t *n);

/* Our attention K or V of attention layer `attn_idx` for slots [0, n) in the
 * reference layout [Hkv, n, D] (malloc'd). */
float *state_kv(const cl_seq *s, int attn_idx, int want_v, int64_t n);
/* Conv state of SSM layer `ssm_idx` channels [c0, c0+C) in the reference layout
 * [C, W] with the oldest slot (column 0, unused for the next output) taken from
 * `ref` so that only the W-1 live columns are compared. */
float *state_conv(const cl_seq *s, int ssm_idx, int64_t c0, int64_t C, const float *ref);
/* Pointer to our recurrent state [H, D, D] (which = 0: state, 1: state2) */
const float *state_ssm(const cl_seq *s, int ssm_idx, int which);
const float *state_log_decay(const cl_seq *s, int ssm_idx);

/* Compares our state after feeding with the golden tensors of prefix `prefix`
 * ("prefill" or "after_decode"); asserts each within tol. */
void check_states(const cl_model *m, const cl_seq *s, const char *case_name, const char *file,
                  const char *prefix, double tol);

#endif
