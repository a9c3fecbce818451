#include "compose/layout.h"

#include <stdlib.h>
#include <string.h>

#include "common/status.h"

void cl_compose_layout_free(cl_compose_layout *l)
{
    free(l->off);
    free(l->tokens);
    free(l->positions);
    free(l->lead);
    free(l->content);
    memset(l, 0, sizeof *l);
}

int cl_compose_layout_kept(const cl_compose_layout *l, int i, int64_t j)
{
    return i == 0 || j >= l->lead[i];
}

static int alloc_rows(cl_compose_layout *l, int n_rows, int64_t total)
{
    l->n_rows = n_rows;
    l->off = calloc((size_t)n_rows + 1, sizeof *l->off);
    l->lead = calloc((size_t)n_rows, sizeof *l->lead);
    l->content = calloc((size_t)n_rows, sizeof *l->content);
    l->tokens = malloc((size_t)(total > 0 ? total : 1) * sizeof *l->tokens);
    l->positions = malloc((size_t)(total > 0 ? total : 1) * sizeof *l->positions);
    if (!l->off || !l->lead || !l->content || !l->tokens || !l->positions) {
        cl_compose_layout_free(l);
        return cl_err(CL_ERR_NOMEM, "out of memory for %d chunk rows", n_rows);
    }
    return CL_OK;
}

/* §3.2: the plain split for full-KV composition. */
static int build_full(const int32_t *ctx, int64_t Lc, int64_t N, cl_compose_layout *l)
{
    CL_TRY(alloc_rows(l, (int)N, Lc));
    int64_t base = Lc / N, rem = Lc % N, start = 0;
    for (int64_t i = 0; i < N; i++) {
        int64_t len = base + (i < rem ? 1 : 0);
        l->off[i] = start;
        l->content[i] = len;
        for (int64_t t = 0; t < len; t++) {
            l->tokens[start + t] = ctx[start + t];
            l->positions[start + t] = t;
        }
        if (len > l->row_tokens)
            l->row_tokens = len;
        start += len;
    }
    l->off[N] = start;
    l->kept = Lc;
    l->next_pos = Lc;
    l->max_pos = l->row_tokens - 1;
    return CL_OK;
}

/* §3.1: left-padded rows with the prefix (or min_prepend pads) before each chunk. */
static int build_padded(const int32_t *ctx, int64_t Lc, const cl_compose_opts *o,
                        cl_compose_layout *l)
{
    int64_t N = o->num_chunks, P = o->prefix_ids ? o->n_prefix : 0;
    int64_t base = o->prefix_ids ? P : o->min_prepend;
    int64_t cs = (Lc + N - 1) / N, max_len = cs + base;
    CL_TRY(alloc_rows(l, (int)N, N * max_len));
    l->row_tokens = max_len;
    int64_t lead0 = 0;
    for (int64_t i = 0; i < N; i++) {
        int64_t c0 = i * cs < Lc ? i * cs : Lc, c1 = (i + 1) * cs < Lc ? (i + 1) * cs : Lc;
        int64_t len = c1 - c0, n_pre = max_len - len;
        int32_t *row = l->tokens + i * max_len;
        l->off[i] = i * max_len;
        l->lead[i] = n_pre;
        l->content[i] = len;
        if (i == 0)
            lead0 = n_pre;
        int64_t n_pad = n_pre - P; /* >= 0: n_pre >= base >= P */
        for (int64_t j = 0; j < n_pad; j++)
            row[j] = o->pad_id;
        if (P)
            memcpy(row + n_pad, o->prefix_ids, (size_t)P * sizeof *row);
        memcpy(row + n_pre, ctx + c0, (size_t)len * sizeof *row);
    }
    l->off[N] = N * max_len;
    for (int64_t i = 0; i < N; i++) {
        int64_t *pos = l->positions + i * max_len;
        if (!o->sequential_positions) {
            for (int64_t j = 0; j < max_len; j++)
                pos[j] = j;
            continue;
        }
        /* content of row i starts at lead0 + (context tokens before chunk i); the
         * columns between the first lead0 and the content sit right before it */
        int64_t c0 = i * cs < Lc ? i * cs : Lc, start = lead0 + c0 - (l->lead[i] - lead0);
        for (int64_t j = 0; j < max_len; j++)
            pos[j] = j < lead0 ? j : start + (j - lead0);
    }
    l->kept = Lc + lead0;
    l->next_pos = o->sequential_positions ? Lc + lead0 : max_len;
    l->max_pos = -1;
    for (int64_t t = 0; t < N * max_len; t++)
        if (l->positions[t] > l->max_pos)
            l->max_pos = l->positions[t];
    return CL_OK;
}

int cl_compose_layout_build(const int32_t *context, int64_t n_context, const cl_compose_opts *o,
                            cl_compose_layout *out)
{
    memset(out, 0, sizeof *out);
    if (o->num_chunks < 1)
        return cl_err(CL_ERR_ARG, "compose: --num-chunks must be >= 1 (got %lld)",
                      (long long)o->num_chunks);
    if (o->num_chunks > 65536)
        return cl_err(CL_ERR_ARG, "compose: --num-chunks %lld is too large (at most 65536)",
                      (long long)o->num_chunks);
    if (n_context < 0 || o->min_prepend < 0 || o->n_prefix < 0)
        return cl_err(CL_ERR_ARG, "compose: negative length (context %lld, min_prepend %lld, "
                      "prefix %lld)", (long long)n_context, (long long)o->min_prepend,
                      (long long)o->n_prefix);
    out->n_context = n_context;
    if (o->kv == CL_COMPOSE_KV_FULL)
        return build_full(context, n_context, o->num_chunks, out);
    return build_padded(context, n_context, o, out);
}
