/* layout.h - chunk rows of an in-memory composition (spec COMPOSITION.md §3, §4
 * step 2, §6): which tokens each row holds, at which RoPE positions, and which
 * of its KV slots the composed state keeps.
 *
 * concat / sw (§3.1): cs = ceil(Lc/N); chunk i = context[i*cs, min((i+1)*cs, Lc));
 * every row is left-padded with the pad id to max_len = max chunk + base (base =
 * prefix length, or min_prepend without a prefix): row_i = pads ‖ prefix ‖ chunk_i.
 * Row 0 keeps all its slots, the others only their chunk tokens.
 * full (§3.2): the plain split (Lc/N, the first Lc%N one longer), no pads, no
 * prefix, nothing kept (the KV comes from the full-context prefill).
 *
 * Positions: non-sequential: 0..max_len-1 in every row; next = max_len.
 * Sequential: the first n_pre_0 columns at 0..n_pre_0-1, the chunk content of
 * row i at n_pre_0 + (tokens of chunks before i), contiguous (the reference puts
 * a short row's content e pads too far, §11.5; equal rows are unchanged), the
 * columns between right before it; next = Lc + n_pre_0. full: 0..len-1.
 */
#ifndef CL_COMPOSE_LAYOUT_H
#define CL_COMPOSE_LAYOUT_H

#include <stdint.h>

#include "compose/compose.h"

typedef struct {
    int n_rows;
    int64_t *off;        /* [n_rows+1]: row i is tokens[off[i] .. off[i+1]) */
    int32_t *tokens;     /* [off[n_rows]] */
    int64_t *positions;  /* [off[n_rows]] RoPE position of each token */
    int64_t *lead;       /* [n_rows] pads + prefix before the chunk (n_pre_i) */
    int64_t *content;    /* [n_rows] chunk tokens of row i */
    int64_t row_tokens;  /* longest row (max_len) */
    int64_t n_context;
    int64_t kept;        /* KV slots the composition keeps (Lc + n_pre_0; full: Lc) */
    int64_t next_pos;    /* RoPE position of the first query token */
    int64_t max_pos;     /* largest position of any row token (-1 if none) */
} cl_compose_layout;

int cl_compose_layout_build(const int32_t *context, int64_t n_context, const cl_compose_opts *o,
                            cl_compose_layout *out);
void cl_compose_layout_free(cl_compose_layout *l);

/* 1 if column j of row i is kept in the composed KV (the reference's prefix mask). */
int cl_compose_layout_kept(const cl_compose_layout *l, int i, int64_t j);

#endif
