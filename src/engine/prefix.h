/* prefix.h - prefix reuse through the store: a prompt prefix processed once is
 * never processed again, in this process or a later one.
 *
 * Attention KV is stored per full block of `block_tokens` tokens under chained
 * keys (k_i = H(k_{i-1}, ids of block i), k_0 = H(model id, settings)); the
 * recurrent (SSM + conv) state is stored as snapshots at exact token positions,
 * each carrying the KV of its trailing partial block, so that resuming there
 * needs nothing else. A snapshot at position p lives under H(k_{p/B}, ids of the
 * trailing partial block), or under k_{p/B} itself when p is a block boundary.
 * Lookup finds the deepest run of stored KV blocks, then the latest snapshot
 * position it can resume from (at most n_max), and restores it. Missing or
 * corrupted entries are never used: they are reported, the store drops them and
 * the tokens are recomputed.
 */
#ifndef CL_PREFIX_H
#define CL_PREFIX_H

#include <stdint.h>

#include "collage.h"
#include "engine/seq.h"
#include "store/store.h"

#define CL_PREFIX_BLOCK_TOKENS 64

/* Public (collage.h): cl_prefix_opts, create/free/flush/restore/store/stats. */
struct cl_prefix {
    cl_store *st;
    cl_model *m;
    cl_cache *c;
    cl_prefix_opts o;
    cl_key model_id, k0;
    int64_t block_tokens;
    int64_t snapshot_every; /* also snapshot every N full blocks (0: only where asked) */
    int readonly;           /* the store cannot be written: lookups only */
    cl_store_writer *writer; /* write-behind (NULL: synchronous puts) */
    struct cl_tiers *tiers;  /* hot tiers (NULL: none) */
    _Atomic uint64_t store_errors; /* puts that failed (the writer thread counts) */
    cl_prefix_stats stats;
};

/* A state snapshot captured in memory at position pos, saved later. */
typedef struct {
    int64_t pos;
    void *bytes;
    size_t len;
} cl_prefix_capture;

/* Captures s's current state (position s->pos) for a later save. */
int cl_prefix_capture_now(const cl_prefix *p, const cl_seq *s, cl_prefix_capture *cap);
void cl_prefix_capture_free(cl_prefix_capture *cap);
/* Saves, in one store transaction: the KV blocks of ids[0..n) not yet stored
 * (n <= s->kv_len; s holds the state of those ids), snapshots every
 * snapshot_every blocks that s can provide (none: s is past them), and the given
 * captures. A store that is full or failing is reported as a warning only. */
int cl_prefix_save(cl_prefix *p, const cl_seq *s, const int32_t *ids, int64_t n,
                   cl_prefix_capture *caps, int n_caps);

#endif
