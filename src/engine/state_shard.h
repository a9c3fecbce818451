/* state_shard.h - the state of a sequence in a sharded cache (model/cache.h), moved
 * in the full-model layout of state.h: each rank's heads go to (or come from) their
 * place in the full layout (model/shard.h), so snapshots, stored blocks and documents
 * have the same bytes and keys at any tensor-parallel size. */
#ifndef CL_STATE_SHARD_H
#define CL_STATE_SHARD_H

#include "engine/seq.h"

/* SSM part of state.h's host layout <-> the ranks' slots (to_host 1: read). */
int cl_state_shard_ssm_move(const cl_seq *s, void *host, int with_trans, int to_host);
/* kv_copy_runs on every rank's pools. */
int cl_state_shard_kv_copy(cl_cache *c, const cl_kv_run *runs, int64_t n);
/* Segments of SSM layer i's conv channels, from the full geometry of cache c. */
void cl_state_shard_conv_segs(const cl_cache *c, int i, void *segs /* cl_shard_segs */);

#endif
