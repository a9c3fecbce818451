#include "engine/seq.h"

#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/status.h"
#include "engine/state.h"

int cl_seq_init(cl_seq *s, cl_cache *c)
{
    memset(s, 0, sizeof *s);
    s->c = c;
    s->slot = -1;
    return cl_cache_alloc_slot(c, &s->slot);
}

void cl_seq_release(cl_seq *s)
{
    if (!s->c)
        return;
    cl_cache_release_pages(s->c, s->pages, s->n_pages);
    cl_cache_release_slot(s->c, s->slot);
    free(s->pages);
    memset(s, 0, sizeof *s);
    s->slot = -1;
}

int cl_seq_reset(cl_seq *s)
{
    s->kv_len = s->pos = s->n_tokens = 0;
    s->hide_lo = s->hide_hi = 0;
    return cl_cache_reset_slot(s->c, s->slot);
}

int cl_seq_reserve(cl_seq *s, int64_t kv_slots)
{
    int64_t P = s->c->o.page_tokens;
    int64_t need = (kv_slots + P - 1) / P;
    if (need <= s->n_pages)
        return CL_OK;
    if (need > s->cap_pages) {
        int64_t cap = s->cap_pages ? s->cap_pages : 8;
        while (cap < need)
            cap *= 2;
        int32_t *np = realloc(s->pages, (size_t)cap * sizeof *np);
        if (!np)
            return cl_err(CL_ERR_NOMEM, "out of memory");
        s->pages = np;
        s->cap_pages = cap;
    }
    CL_TRY(cl_cache_alloc_pages(s->c, need - s->n_pages, s->pages + s->n_pages));
    s->n_pages = need;
    return CL_OK;
}

int cl_seq_copy(cl_seq *dst, const cl_seq *src)
{
    if (dst->c != src->c)
        return cl_err(CL_ERR_ARG, "cl_seq_copy: the sequences are of different caches");
    if (dst == src)
        return CL_OK;
    /* every attention layer's KV in one backend call, then the SSM slot */
    CL_TRY(cl_state_copy_kv(src, 0, src->kv_len, dst, 0));
    CL_TRY(cl_cache_copy_slot(src->c, dst->slot, src->slot));
    dst->kv_len = src->kv_len;
    dst->pos = src->pos;
    dst->hide_lo = src->hide_lo;
    dst->hide_hi = src->hide_hi;
    dst->n_tokens = src->n_tokens;
    return CL_OK;
}

int cl_seq_forward(cl_model *m, cl_seq **seqs, const int32_t *const *toks, const int64_t *n,
                   int n_seq, const int64_t *rows, int64_t n_rows, float *logits,
                   int32_t *argmax)
{
    int64_t total = 0;
    if (n_seq <= 0)
        return CL_OK;
    for (int i = 0; i < n_seq; i++)
        total += n[i];
    cl_batch_seq *bs = calloc((unsigned)n_seq, sizeof *bs);
    int32_t *tokens = malloc((size_t)total * sizeof *tokens);
    int64_t *pos = malloc((size_t)total * sizeof *pos);
    int rc = CL_OK;
    if (!bs || !tokens || !pos) {
        rc = cl_err(CL_ERR_NOMEM, "out of memory");
        goto out;
    }
    int64_t off = 0;
    for (int i = 0; i < n_seq && rc == CL_OK; i++) {
        cl_seq *s = seqs[i];
        rc = cl_seq_reserve(s, s->kv_len + n[i]);
        bs[i] = (cl_batch_seq){off, n[i], s->kv_len, s->pages, s->slot, s->hide_lo, s->hide_hi};
        for (int64_t t = 0; t < n[i]; t++) {
            tokens[off + t] = toks[i][t];
            pos[off + t] = s->pos + t;
        }
        off += n[i];
    }
    if (rc == CL_OK) {
        cl_batch batch = {n_seq, total, bs, tokens, pos, NULL};
        cl_forward_out fo = {rows, n_rows, logits, argmax, NULL};
        rc = cl_forward(m, seqs[0]->c, &batch, &fo);
    }
    if (rc == CL_OK)
        for (int i = 0; i < n_seq; i++) {
            seqs[i]->kv_len += n[i];
            seqs[i]->pos += n[i];
            seqs[i]->n_tokens += n[i];
        }
out:
    free(bs);
    free(tokens);
    free(pos);
    return rc;
}

int cl_seq_feed(cl_model *m, cl_seq *s, const int32_t *tokens, int64_t n, int64_t chunk,
                cl_logits_mode mode, float *logits)
{
    if (n < 0 || (n > 0 && !tokens) || (mode != CL_LOGITS_NONE && n > 0 && !logits))
        return cl_err(CL_ERR_ARG, "cl_seq_feed: bad arguments");
    for (int64_t i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= m->cfg->vocab_size)
            return cl_err(CL_ERR_RANGE, "token id %d (at %lld) out of range [0, %lld)",
                          tokens[i], (long long)i, (long long)m->cfg->vocab_size);
    if (chunk <= 0)
        chunk = m->feed_chunk > 0 ? m->feed_chunk : m->b->ops->feed_tokens;
    if (chunk <= 0)
        chunk = CL_FEED_CHUNK;
    int64_t V = m->cfg->vocab_size;
    int64_t *rows = malloc((size_t)(chunk > 0 ? chunk : 1) * sizeof *rows);
    if (!rows)
        return cl_err(CL_ERR_NOMEM, "out of memory");
    int rc = CL_OK;
    int show = n > chunk; /* a long prompt: progress per forward call */
    for (int64_t off = 0; off < n && rc == CL_OK; off += chunk) {
        if (show)
            cl_progress("prefill (tokens)", (uint64_t)off, (uint64_t)n);
        int64_t len = n - off < chunk ? n - off : chunk;
        int64_t nr = 0;
        float *dst = NULL;
        if (mode == CL_LOGITS_ALL) {
            for (int64_t i = 0; i < len; i++)
                rows[i] = i;
            nr = len;
            dst = logits + off * V;
        } else if (mode == CL_LOGITS_LAST && off + len == n) {
            rows[0] = len - 1;
            nr = 1;
            dst = logits;
        }
        const int32_t *tp = tokens + off;
        cl_seq *sp = s;
        rc = cl_seq_forward(m, &sp, &tp, &len, 1, rows, nr, dst, NULL);
    }
    if (show) {
        cl_progress("prefill (tokens)", (uint64_t)n, (uint64_t)n);
        cl_progress_end("prefill (tokens)");
    }
    free(rows);
    return rc;
}

int cl_seq_decode_batch(cl_model *m, cl_seq **seqs, const int32_t *tokens, int n_seq,
                        float *logits)
{
    if (n_seq <= 0)
        return CL_OK;
    const int32_t **tp = malloc((unsigned)n_seq * sizeof *tp);
    int64_t *n = malloc((unsigned)n_seq * sizeof *n), *rows = malloc((unsigned)n_seq * sizeof *rows);
    int rc;
    if (!tp || !n || !rows) {
        rc = cl_err(CL_ERR_NOMEM, "out of memory");
    } else {
        for (int i = 0; i < n_seq; i++) {
            tp[i] = tokens + i;
            n[i] = 1;
            rows[i] = i;
        }
        rc = cl_seq_forward(m, seqs, tp, n, n_seq, rows, n_seq, logits, NULL);
    }
    free(tp);
    free(n);
    free(rows);
    return rc;
}

/* ---- public handles (collage.h) ---- */

int cl_seq_create(cl_cache *c, cl_seq **out)
{
    cl_seq *s = calloc(1, sizeof *s);
    if (!s)
        return cl_err(CL_ERR_NOMEM, "out of memory");
    int rc = cl_seq_init(s, c);
    if (rc != CL_OK) {
        free(s);
        return rc;
    }
    *out = s;
    return CL_OK;
}

void cl_seq_free(cl_seq *s)
{
    if (!s)
        return;
    cl_seq_release(s);
    free(s);
}

int64_t cl_seq_pos(const cl_seq *s) { return s->pos; }
int64_t cl_seq_kv_len(const cl_seq *s) { return s->kv_len; }
