/* state.h - one sequence's state as host bytes: read/write the KV of a slot
 * range, read/write all SSM layers' conv + recurrent states (+ log decay, GDN
 * transition), and whole snapshots (versioned, self-describing) that restore a
 * sequence exactly: continuing after a restore gives the logits of never having
 * stopped (spec MODEL.md §11).
 *
 * Host layouts (all little-endian):
 *   KV of n slots: for each attention layer: K [n, Hkv, D] then V [n, Hkv, D],
 *     in the cache's KV dtype.
 *   SSM: for each SSM layer: conv [W-1, C], state [H, D, D], state2 (GKA h_kk)
 *     [H, D, D], log_decay [H], trans (GDN, if tracked) [H, D, D]; fp32.
 */
#ifndef CL_STATE_H
#define CL_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "engine/seq.h"

#define CL_STATE_MAGIC 0x54534c43u /* "CLST" */
#define CL_STATE_VERSION 1u

/* What a snapshot holds besides its payload. */
typedef struct {
    uint32_t magic, version;
    uint32_t kv_dtype;      /* cl_dtype of the KV payload */
    uint32_t flags;         /* CL_STATE_HAS_TRANS */
    int64_t kv_len, pos, n_tokens, hide_lo, hide_hi;
    int64_t kv_from;        /* KV payload covers slots [kv_from, kv_len) */
    int64_t n_attn, n_ssm, n_kv_heads, head_dim, n_heads;
    uint64_t kv_bytes, ssm_bytes;
} cl_state_header;

#define CL_STATE_HAS_TRANS 1u

size_t cl_state_kv_bytes(const cl_cache *c, int64_t n_slots);
int cl_state_read_kv(const cl_seq *s, int64_t t0, int64_t n, void *host);
/* Writes KV slots [t0, t0+n) (reserving pages); does not move kv_len. */
int cl_state_write_kv(cl_seq *s, int64_t t0, int64_t n, const void *host);
/* Copies KV slots [t0, t0+n) of src to slots [d0, d0+n) of dst (same cache; pages
 * reserved) in backend memory, without a host round trip; does not move kv_len. */
int cl_state_copy_kv(const cl_seq *src, int64_t t0, int64_t n, cl_seq *dst, int64_t d0);

/* with_trans: include the GDN transition (only if the cache tracks it). */
size_t cl_state_ssm_bytes(const cl_cache *c, int with_trans);
int cl_state_read_ssm(const cl_seq *s, void *host, int with_trans);
int cl_state_write_ssm(cl_seq *s, const void *host, int with_trans);

/* Snapshot of the whole state with KV from slot kv_from on (0: all of it);
 * the slots before kv_from must be restored from elsewhere (stored KV blocks). */
int cl_state_snapshot(const cl_seq *s, int64_t kv_from, void **bytes, size_t *len);
/* Validates a snapshot against the cache's geometry (`what` names it in errors)
 * and restores it into s (whose KV slots [0, kv_from) must already be written). */
int cl_state_restore(cl_seq *s, const void *bytes, size_t len, const char *what);
/* Checks a snapshot header against s's cache (geometry, dtype, sizes); `what` names it. */
int cl_state_check_header(const cl_seq *s, const cl_state_header *h, const char *what);
/* The end of a restore whose KV slots [h->kv_from, h->kv_len) are written: the SSM part
 * (h->ssm_bytes of host memory) and the counters. */
int cl_state_finish_restore(cl_seq *s, const cl_state_header *h, const void *ssm);
/* Reads the header of a snapshot (validated for size and magic). */
int cl_state_peek(const void *bytes, size_t len, const char *what, cl_state_header *h);

#endif
