/* tiers.h - hot tiers above the store, in one process: recently used states (documents
 * and prefix snapshots) kept on the device as sequences of the cache (a hit costs a
 * device copy, or nothing when the sequence is used in place) and, below that, in
 * host memory as snapshot bytes (a hit costs one restore through the cache's page-locked
 * staging ring, copied on several threads: ~26-29 GB/s on the H200 host).
 * Each tier keeps its entries in LRU order under a byte budget; an entry evicted from the
 * device moves to the host tier, one evicted from the host tier is dropped (every state
 * a tier holds came from the store or was queued to it: nothing stored is lost).
 *
 * Keys are the store's (kind + key): a tier entry stands for exactly the stored value. A
 * prefix snapshot entry holds the whole state at its position (KV from slot 0). */
#ifndef CL_TIERS_H
#define CL_TIERS_H

#include <stdint.h>

#include "engine/seq.h"
#include "store/store.h"

typedef struct cl_tiers cl_tiers;

typedef enum { CL_TIER_NONE = 0, CL_TIER_GPU, CL_TIER_HOST } cl_tier;

/* gpu_bytes / host_bytes: budgets (0: that tier is off); gpu_max_states: most entries in
 * the device tier (each holds a state slot of c; 0: no limit). */
int cl_tiers_create(cl_cache *c, uint64_t gpu_bytes, uint64_t host_bytes, int gpu_max_states,
                    cl_tiers **out);
void cl_tiers_free(cl_tiers *t);

/* Which tier holds (kind, key), without touching its LRU position. */
cl_tier cl_tiers_has(const cl_tiers *t, cl_store_kind kind, const cl_key *key);
/* The device tier's sequence for (kind, key), held (not evicted) until released; NULL if
 * absent. For composing documents in place. */
const cl_seq *cl_tiers_hold(cl_tiers *t, cl_store_kind kind, const cl_key *key);
void cl_tiers_release(cl_tiers *t, const cl_seq *s);
/* Restores (kind, key) into s (empty) from the tier that holds it (*tier says which;
 * CL_TIER_NONE and CL_OK when no tier has it). */
int cl_tiers_restore(cl_tiers *t, cl_store_kind kind, const cl_key *key, cl_seq *s,
                     cl_tier *tier);
/* Offers the state of s (the whole state, KV from slot 0) under (kind, key): copied into
 * the device tier when it is on (evicting LRU entries to the host tier), else into the
 * host tier. adopt: take s itself (its slot and pages) instead of a copy; *taken says
 * whether it was (the caller must then not use or free it). */
int cl_tiers_offer(cl_tiers *t, cl_store_kind kind, const cl_key *key, cl_seq *s, int adopt,
                   int *taken);
/* The entries of a kind, most recently used first: key and token count (a snapshot's
 * position) of entry i; 0 past the last. For matching prefix snapshots. */
int cl_tiers_entry(const cl_tiers *t, cl_store_kind kind, int i, cl_key *key, int64_t *tokens);
/* Occupancy. */
void cl_tiers_usage(const cl_tiers *t, uint64_t *gpu_bytes, uint64_t *host_bytes,
                    uint64_t *gpu_entries, uint64_t *host_entries);

#endif
