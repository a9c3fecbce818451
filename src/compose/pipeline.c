/* The in-memory composition pipeline (spec COMPOSITION.md §4, §4b, §7): rows ->
 * batched prefill -> cl_compose_states; the query body; the whole flow. */
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/status.h"
#include "compose/compose.h"
#include "compose/layout.h"
#include "model/forward.h"

/* Tokens per forward call when prefilling the rows together (all rows). */
#define ROWS_BATCH_TOKENS (4 * CL_FEED_CHUNK)

static int check_ids(const cl_model *m, const int32_t *ids, int64_t n, const char *what)
{
    int64_t V = m->cfg->vocab_size;
    for (int64_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= V)
            return cl_err(CL_ERR_RANGE, "%s item %lld: id %d out of range [0, %lld)", what,
                          (long long)i, ids[i], (long long)V);
    return CL_OK;
}

/* Prefills every row into its own (zero) seq as one batch per column block,
 * each token at its layout position (§4 step 3). */
static int prefill_rows(cl_model *m, cl_seq *rows, const cl_compose_layout *l, int64_t budget)
{
    int N = l->n_rows;
    int64_t per = budget / N > 0 ? budget / N : 1;
    cl_batch_seq *bs = calloc((size_t)N, sizeof *bs);
    int64_t *take = calloc((size_t)N, sizeof *take);
    int32_t *tok = malloc((size_t)(N * per) * sizeof *tok);
    int64_t *pos = malloc((size_t)(N * per) * sizeof *pos);
    int rc = CL_OK;
    if (!bs || !take || !tok || !pos)
        rc = cl_err(CL_ERR_NOMEM, "out of memory for %d chunk rows", N);
    for (int64_t col = 0; rc == CL_OK && col < l->row_tokens; col += per) {
        int ns = 0;
        int64_t total = 0;
        for (int i = 0; i < N && rc == CL_OK; i++) {
            int64_t len = l->off[i + 1] - l->off[i], t = len - col < per ? len - col : per;
            take[i] = t > 0 ? t : 0;
            if (take[i] == 0)
                continue;
            if ((rc = cl_seq_reserve(&rows[i], rows[i].kv_len + take[i])) != CL_OK)
                break;
            bs[ns] = (cl_batch_seq){.tok_start = total, .n_tok = take[i],
                                    .kv_start = rows[i].kv_len, .blocks = rows[i].pages,
                                    .slot = rows[i].slot};
            memcpy(tok + total, l->tokens + l->off[i] + col, (size_t)take[i] * sizeof *tok);
            memcpy(pos + total, l->positions + l->off[i] + col, (size_t)take[i] * sizeof *pos);
            ns++;
            total += take[i];
        }
        if (rc != CL_OK || ns == 0)
            break;
        cl_batch batch = {.n_seq = ns, .n_tok = total, .seq = bs, .tokens = tok,
                          .positions = pos};
        cl_forward_out fo = {0};
        rc = cl_forward(m, rows[0].c, &batch, &fo);
        for (int i = 0; i < N && rc == CL_OK; i++) {
            if (!take[i])
                continue;
            rows[i].kv_len += take[i];
            rows[i].n_tokens += take[i];
            rows[i].pos = l->positions[l->off[i] + col + take[i] - 1] + 1;
        }
    }
    free(bs);
    free(take);
    free(tok);
    free(pos);
    return rc;
}

int cl_compose_context(cl_model *m, const int32_t *context, int64_t n_context,
                       const cl_compose_opts *o, cl_seq *out, cl_compose_info *info)
{
    cl_compose_info local;
    if (!info)
        info = &local;
    memset(info, 0, sizeof *info);
    CL_TRY(check_ids(m, context, n_context, "context"));
    if (o->kv != CL_COMPOSE_KV_FULL) {
        if (o->prefix_ids)
            CL_TRY(check_ids(m, o->prefix_ids, o->n_prefix, "--prefix-ids"));
        if (o->pad_id < 0 || o->pad_id >= m->cfg->vocab_size)
            return cl_err(CL_ERR_RANGE, "compose: pad (newline) id %d out of range [0, %lld)",
                          o->pad_id, (long long)m->cfg->vocab_size);
    }
    cl_compose_layout l;
    CL_TRY(cl_compose_layout_build(context, n_context, o, &l));
    int64_t max_ctx = o->max_context > 0 ? o->max_context : m->cfg->max_position_embeddings;
    if (l.max_pos >= max_ctx || l.next_pos > max_ctx) {
        int64_t need = l.next_pos > l.max_pos + 1 ? l.next_pos : l.max_pos + 1;
        cl_compose_layout_free(&l);
        return cl_err(CL_ERR_RANGE, "compose: the chunks need %lld positions, more than the "
                      "context of %lld (--max-context or more chunks)", (long long)need,
                      (long long)max_ctx);
    }
    info->row_tokens = l.row_tokens;
    int64_t budget = o->prefill_chunk > 0 ? o->prefill_chunk : ROWS_BATCH_TOKENS;
    int need_rows = !(o->kv == CL_COMPOSE_KV_FULL && o->ssm == CL_COMPOSE_SSM_KV_ONLY);
    cl_seq *rows = need_rows ? calloc((size_t)l.n_rows, sizeof *rows) : NULL;
    int rc = need_rows && !rows ? cl_err(CL_ERR_NOMEM, "out of memory") : CL_OK;
    int n_init = 0;
    for (; rc == CL_OK && need_rows && n_init < l.n_rows; n_init++)
        if ((rc = cl_seq_init(&rows[n_init], out->c)) != CL_OK)
            break;
    double t0 = cl_now();
    if (rc == CL_OK && o->kv == CL_COMPOSE_KV_FULL) {
        /* §4b: the whole context prefilled normally, its SSM state replaced */
        rc = cl_seq_reset(out);
        if (rc == CL_OK)
            rc = cl_seq_feed(m, out, context, n_context, o->prefill_chunk, CL_LOGITS_NONE, NULL);
        if (rc == CL_OK && need_rows)
            rc = prefill_rows(m, rows, &l, budget);
        info->prefill_s = cl_now() - t0;
        double t1 = cl_now();
        if (rc == CL_OK && need_rows) {
            const cl_seq **docs = malloc((size_t)l.n_rows * sizeof *docs);
            if (!docs)
                rc = cl_err(CL_ERR_NOMEM, "out of memory");
            for (int i = 0; docs && i < l.n_rows; i++)
                docs[i] = &rows[i];
            if (rc == CL_OK)
                rc = cl_compose_ssm_into(docs, l.n_rows, o->ssm, out);
            free(docs);
        } else if (rc == CL_OK) {
            rc = cl_cache_reset_slot(out->c, out->slot); /* kv_only: zero SSM memory */
        }
        info->n_docs = l.n_rows;
        info->kept_tokens = out->kv_len;
        info->pos = out->pos;
        info->compose_s = cl_now() - t1;
    } else if (rc == CL_OK) {
        rc = prefill_rows(m, rows, &l, budget);
        info->prefill_s = cl_now() - t0;
        const cl_seq **docs = rc == CL_OK ? malloc((size_t)l.n_rows * sizeof *docs) : NULL;
        if (rc == CL_OK && !docs)
            rc = cl_err(CL_ERR_NOMEM, "out of memory");
        if (rc == CL_OK) {
            for (int i = 0; i < l.n_rows; i++)
                docs[i] = &rows[i];
            cl_compose_opts so = *o;
            so.doc_lead = l.lead;
            double keep_prefill = info->prefill_s;
            rc = cl_compose_states(docs, l.n_rows, &so, out, info);
            info->prefill_s = keep_prefill;
        }
        free(docs);
    }
    info->row_tokens = l.row_tokens;
    for (int i = 0; i < n_init; i++)
        cl_seq_release(&rows[i]);
    free(rows);
    cl_compose_layout_free(&l);
    return rc;
}

int cl_compose_feed_query(cl_model *m, cl_seq *s, const int32_t *body, int64_t n,
                          const cl_compose_opts *o)
{
    if (n <= 0)
        return CL_OK;
    int64_t lo = s->hide_lo, hi = s->hide_hi;
    if (!o->sw_mask_query)
        s->hide_lo = s->hide_hi = 0;
    int rc = cl_seq_feed(m, s, body, n, o->prefill_chunk, CL_LOGITS_NONE, NULL);
    s->hide_lo = lo;
    s->hide_hi = hi;
    return rc;
}

int cl_compose_run(cl_model *m, const int32_t *input, int64_t n_input, int64_t n_suffix,
                   const cl_compose_opts *o, const cl_gen_opts *g, cl_ids *out,
                   cl_compose_info *info, cl_gen_stats *st)
{
    cl_compose_info local;
    if (!info)
        info = &local;
    memset(info, 0, sizeof *info);
    if (n_suffix < 1)
        return cl_err(CL_ERR_ARG, "compose: the suffix (query) needs at least one token");
    if (n_suffix > n_input)
        return cl_err(CL_ERR_ARG, "compose: the suffix (%lld tokens) is longer than the input "
                      "(%lld tokens)", (long long)n_suffix, (long long)n_input);
    CL_TRY(check_ids(m, input, n_input, "--input-ids"));
    cl_cache_opts co;
    cl_compose_cache_opts(m, o, &co);
    cl_cache *c;
    CL_TRY(cl_cache_create(m, &co, &c));
    cl_seq s;
    int rc = cl_seq_init(&s, c);
    if (rc != CL_OK) {
        cl_cache_free(c);
        return rc;
    }
    int64_t n_ctx = n_input - n_suffix;
    rc = cl_compose_context(m, input, n_ctx, o, &s, info);
    double t0 = cl_now();
    if (rc == CL_OK)
        rc = cl_compose_feed_query(m, &s, input + n_ctx, n_suffix - 1, o);
    info->query_s = cl_now() - t0;
    if (rc == CL_OK)
        rc = cl_generate(m, &s, input + n_input - 1, 1, g, out, st);
    cl_seq_release(&s);
    cl_cache_free(c);
    return rc;
}
