/* strategy.h - the SSM strategies of state composition (spec COMPOSITION.md §5)
 * applied to host copies of whole SSM states (the layout of engine/state.h:
 * per SSM layer conv [W-1, C], state [H, D, D], state2 [H, D, D], log_decay [H],
 * trans [H, D, D] when present).
 *
 * Per layer and strategy:
 *   kv_only  everything zero, transition identity
 *   soup     conv, state, state2 averaged
 *   fuse     conv averaged; M2: sum_i c_i[h] S_i[h] (scalar PICASO of log_decay);
 *            GDN: sum_i C_i[h] S_i[h] (matrix PICASO of trans, needs it);
 *            GKA: h_kv and h_kk summed
 *   caso     conv of the last document; M2/GKA: sum_i prod_{j>i} a_j S_i;
 *            GDN: sum_i P_n..P_{i+1} S_i (needs trans)
 * log_decay of the result is 0 and trans the identity (the composed state begins
 * here, as the reference's log_aprod does, §5.3), except caso, which gives the
 * totals sum_i log_decay_i and P_n..P_1 of reading the documents in order.
 */
#ifndef CL_COMPOSE_STRATEGY_H
#define CL_COMPOSE_STRATEGY_H

#include <stddef.h>

#include "compose/compose.h"
#include "model/cache.h"

/* Where one SSM layer's parts sit in a host SSM buffer (offsets in floats). */
typedef struct {
    cl_layer_type type;
    int64_t n_heads, head_dim;
    size_t conv, state, state2, log_decay, trans; /* trans: (size_t)-1 when absent */
    size_t conv_n, state_n;                       /* floats of conv / of one state */
} cl_compose_ssm_view;

/* Views of every SSM layer of c ([c->n_ssm], malloc'd) for a buffer read with
 * with_trans; *floats = floats of the whole buffer. */
int cl_compose_ssm_views(const cl_cache *c, int with_trans, cl_compose_ssm_view **views,
                         size_t *floats);

/* out = the combination of the n >= 1 documents' SSM buffers (same layout).
 * gdn_fuse_on_device: GDN layers' fused states are left zero (after the checks)
 * for the backend's gdn_fuse to write in place. */
int cl_compose_ssm_combine(const cl_cache *c, int with_trans, cl_compose_ssm ssm,
                           const float *const *docs, int n, int gdn_fuse_on_device, float *out);

/* GDN fuse and caso need the transition products: the error when the cache has none. */
int cl_compose_err_no_trans(cl_compose_ssm ssm);
/* A document that processed tokens (head-0 log decay ld0 != 0) but whose head-0
 * transition p (D x D) is still the identity was restored from a snapshot without it:
 * CL_ERR_ARG naming document i (rather than composing with a wrong P), else CL_OK. */
int cl_compose_check_trans(const float *p, int64_t D, float ld0, int i);

/* The same strategies where the states live (compose/ssm_device.c): 1 if c's backend
 * can apply ssm to every layer of c that way (ssm_lincomb, and gdn_fuse / gdn_caso where
 * GDN layers need them; not for tensor-parallel caches). */
int cl_compose_ssm_device_ok(const cl_cache *c, cl_compose_ssm ssm);
/* out's SSM state (every part, every layer) = the combination of the documents'. */
int cl_compose_ssm_device(const cl_seq *const *docs, int n, cl_compose_ssm ssm, cl_seq *out);

#endif
