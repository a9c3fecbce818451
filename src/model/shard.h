/* shard.h - how a model's dimensions split across n tensor-parallel ranks.
 *
 * Heads of a kind split into contiguous ranges: rank r of n holds heads
 * [r * heads / n, (r + 1) * heads / n) when n divides heads. KV heads fewer than the
 * ranks are replicated instead: each KV head on n / heads consecutive ranks (n a
 * multiple of heads), so that every rank's query heads keep their KV head (GQA
 * groups stay whole). Other split dimensions (the MLP's intermediate size, the
 * vocabulary) must divide evenly.
 *
 * A dimension is a row of segments, each `heads` heads of `unit` elements (e.g. the
 * GDN conv channels: q [Hq x D] | k [Hkv x D] | v [Hkv x D]); rank r's row is its
 * piece of every segment, in the same order. The full-model layout of any state or
 * weight is recovered from the ranks' pieces, taking a replicated head from its
 * first rank (the owner). */
#ifndef CL_SHARD_H
#define CL_SHARD_H

#include <stddef.h>
#include <stdint.h>

#include "model/config.h"

#define CL_SHARD_MAX_SEGS 6

typedef struct {
    int n;
    int64_t heads[CL_SHARD_MAX_SEGS], unit[CL_SHARD_MAX_SEGS];
} cl_shard_segs;

/* Heads of a group of `heads` on each of n ranks, rank r's first, and whether rank r
 * is the owner of its heads (writes them to the full layout). */
int64_t cl_shard_heads(int64_t heads, int n);
int64_t cl_shard_first(int64_t heads, int n, int r);
int cl_shard_owner(int64_t heads, int n, int r);

/* Elements of a row of segments in the full model and on one rank. */
int64_t cl_shard_width(const cl_shard_segs *s);
int64_t cl_shard_local_width(const cl_shard_segs *s, int n);

/* Copies `rows` rows of elem-byte elements between the full layout (full) and rank r's
 * (local): to_full 0: full -> local (every element of the rank's row); to_full 1:
 * local -> full (the heads rank r owns; the rest of full is left alone). */
void cl_shard_copy(const cl_shard_segs *s, int n, int r, size_t elem, int64_t rows,
                   void *full, void *local, int to_full);

/* Checks that cfg splits across n ranks (errors name the config field: CL_ERR_UNSUPPORTED
 * "not yet supported"). */
int cl_shard_check(const cl_config *cfg, int n);
/* Rank-local copy of cfg for n ranks: heads, KV heads, intermediate size and the
 * Mamba2 dimensions of one rank (vocab_size stays the full one). Shares cfg's
 * arrays and strings: never cl_config_free it. */
void cl_shard_config(const cl_config *cfg, int n, cl_config *local);

/* Segments of the conv channels of an SSM layer type (M2: x | B | C; GDN/GKA:
 * q | k | v), of one KV row (Hkv x D) and of per-head state blocks (H x unit). */
void cl_shard_conv_segs(const cl_config *cfg, cl_layer_type t, cl_shard_segs *s);
void cl_shard_kv_segs(const cl_config *cfg, cl_shard_segs *s);
void cl_shard_head_segs(const cl_config *cfg, int64_t unit, cl_shard_segs *s);

#endif
