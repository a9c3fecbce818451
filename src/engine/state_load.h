/* state_load.h - restoring stored states at bus speed: a stored value's verified
 * segments stream from the store's map (several threads checking and copying) through
 * the cache's staging pump (engine/kv_io.h) straight into the sequence's pages, the SSM
 * part into its slot; no copy of the whole value is ever made in host memory. */
#ifndef CL_STATE_LOAD_H
#define CL_STATE_LOAD_H

#include <stddef.h>
#include <stdint.h>

#include "engine/seq.h"
#include "store/store.h"

/* Threads that check and copy a restore (0: one per core, at most 16). */
int cl_state_io_threads(int want);

/* Restores into s (empty) the snapshot stored under (kind, key), whose entry's token
 * count is its KV length and whose KV starts at slot kv_from (the slots before it must
 * already be in s: stored blocks) - both are checked against the snapshot's own header.
 * `what` names the state in errors. Errors: CL_ERR_NOTFOUND, CL_ERR_CORRUPT (s then
 * holds partial data: reset it), CL_ERR_FORMAT / UNSUPPORTED (another geometry or dtype). */
int cl_state_load_stored(cl_store *st, cl_store_kind kind, const cl_key *key, cl_seq *s,
                         int64_t kv_from, int threads, const char *what);

/* Restores KV blocks keys[0..n) (each block_tokens slots, stored in order from slot 0)
 * into s, several blocks at a time. */
int cl_state_load_blocks(cl_store *st, const cl_key *keys, int64_t n, int64_t block_tokens,
                         cl_seq *s, int threads);

#endif
