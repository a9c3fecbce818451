#include "engine/state.h"

#include <stdlib.h>
#include <string.h>

#include "common/status.h"
#include "engine/kv_io.h"
#include "engine/state_shard.h"

static size_t kv_row_bytes(const cl_cache *c)
{
    if (!c->n_attn)
        return 0;
    return (size_t)(c->kv[0].n_kv_heads * c->kv[0].head_dim) * cl_dtype_size(c->kv_dtype);
}

size_t cl_state_kv_bytes(const cl_cache *c, int64_t n) { return 2 * (size_t)c->n_attn * (size_t)n * kv_row_bytes(c); }

int cl_state_read_kv(const cl_seq *s, int64_t t0, int64_t n, void *host)
{
    if (t0 < 0 || t0 + n > s->kv_len)
        return cl_err(CL_ERR_ARG, "KV slots [%lld, %lld) outside the state (%lld slots)",
                      (long long)t0, (long long)(t0 + n), (long long)s->kv_len);
    return cl_kv_read_host(s, t0, n, host);
}

int cl_state_write_kv(cl_seq *s, int64_t t0, int64_t n, const void *host)
{
    return cl_kv_write_host(s, t0, n, host);
}

int cl_state_copy_kv(const cl_seq *src, int64_t t0, int64_t n, cl_seq *dst, int64_t d0)
{
    if (src->c != dst->c)
        return cl_err(CL_ERR_ARG, "KV copy between states of different caches");
    if (t0 < 0 || t0 + n > src->kv_len)
        return cl_err(CL_ERR_ARG, "KV slots [%lld, %lld) outside the state (%lld slots)",
                      (long long)t0, (long long)(t0 + n), (long long)src->kv_len);
    CL_TRY(cl_seq_reserve(dst, d0 + n));
    cl_cache *c = src->c;
    if (!c->n_attn || n <= 0)
        return CL_OK;
    int64_t P = c->o.page_tokens;
    /* runs contiguous in both: within one page of src and one of dst */
    cl_kv_run *runs = malloc((size_t)(2 * (n / P + 2)) * sizeof *runs);
    if (!runs)
        return cl_err(CL_ERR_NOMEM, "out of memory");
    int64_t nr = 0;
    for (int64_t done = 0; done < n;) {
        int64_t t = t0 + done, u = d0 + done, run = n - done;
        if (run > P - t % P)
            run = P - t % P;
        if (run > P - u % P)
            run = P - u % P;
        runs[nr++] = (cl_kv_run){src->pages[t / P] * P + t % P, dst->pages[u / P] * P + u % P,
                                 run};
        done += run;
    }
    int rc = c->shard ? cl_state_shard_kv_copy(c, runs, nr)
                      : c->b->ops->kv_copy_runs(c->b, c->kv, c->n_attn, runs, nr);
    free(runs);
    return rc;
}

/* The host layout has a transition block for the GDN layers iff with_trans. */
static int layer_has_trans(const cl_cache *c, int i, int with_trans)
{
    return with_trans && c->ssm_type[i] == CL_LAYER_GDN;
}

static size_t ssm_layer_floats(const cl_cache *c, int i, int with_trans)
{
    size_t st = cl_cache_state_floats(c, i);
    size_t n = cl_cache_conv_floats(c, i) + 2 * st + (size_t)c->ssm[i].n_heads;
    if (layer_has_trans(c, i, with_trans))
        n += st;
    return n;
}

size_t cl_state_ssm_bytes(const cl_cache *c, int with_trans)
{
    size_t n = 0;
    for (int i = 0; i < c->n_ssm; i++)
        n += ssm_layer_floats(c, i, with_trans);
    return n * sizeof(float);
}

static int ssm_move(const cl_seq *s, void *host, int with_trans, int to_host)
{
    cl_cache *c = s->c;
    if (c->shard)
        return cl_state_shard_ssm_move(s, host, with_trans, to_host);
    const cl_backend_ops *o = c->b->ops;
    float *h = host;
    for (int i = 0; i < c->n_ssm; i++) {
        cl_ssm_layer *l = &c->ssm[i];
        size_t cf = cl_cache_conv_floats(c, i), sf = cl_cache_state_floats(c, i),
               H = (size_t)l->n_heads, slot = (size_t)s->slot;
        struct {
            float *base;
            size_t n;
        } parts[5] = {{l->conv, cf}, {l->state, sf}, {l->state2, sf}, {l->log_decay, H},
                      {l->trans, sf}};
        for (int p = 0; p < 5; p++) {
            if (p == 4 && !layer_has_trans(c, i, with_trans))
                continue;
            size_t bytes = parts[p].n * sizeof(float);
            int rc;
            /* absent in the cache (no state2 for GDN/M2; transition not tracked):
             * zeros in the host layout when reading, skipped when writing */
            if (!parts[p].base)
                rc = to_host ? (memset(h, 0, bytes), CL_OK) : CL_OK;
            else if (to_host)
                rc = o->to_host(c->b, h, parts[p].base + slot * parts[p].n, bytes);
            else
                rc = o->from_host(c->b, parts[p].base + slot * parts[p].n, h, bytes);
            if (rc != CL_OK)
                return rc;
            h += parts[p].n;
        }
    }
    return CL_OK;
}

int cl_state_read_ssm(const cl_seq *s, void *host, int with_trans)
{
    return ssm_move(s, host, with_trans, 1);
}

int cl_state_write_ssm(cl_seq *s, const void *host, int with_trans)
{
    return ssm_move(s, (void *)host, with_trans, 0);
}

static void fill_header(const cl_seq *s, int64_t kv_from, int with_trans, cl_state_header *h)
{
    const cl_cache *c = s->c;
    memset(h, 0, sizeof *h);
    h->magic = CL_STATE_MAGIC;
    h->version = CL_STATE_VERSION;
    h->kv_dtype = (uint32_t)c->kv_dtype;
    h->flags = with_trans ? CL_STATE_HAS_TRANS : 0;
    h->kv_len = s->kv_len;
    h->pos = s->pos;
    h->n_tokens = s->n_tokens;
    h->hide_lo = s->hide_lo;
    h->hide_hi = s->hide_hi;
    h->kv_from = kv_from;
    h->n_attn = c->n_attn;
    h->n_ssm = c->n_ssm;
    h->n_kv_heads = c->n_attn ? c->kv[0].n_kv_heads : 0;
    h->head_dim = c->n_attn ? c->kv[0].head_dim : (c->n_ssm ? c->ssm[0].head_dim : 0);
    h->n_heads = c->n_ssm ? c->ssm[0].n_heads : 0;
    h->kv_bytes = cl_state_kv_bytes(c, s->kv_len - kv_from);
    h->ssm_bytes = cl_state_ssm_bytes(c, with_trans);
}

int cl_state_snapshot(const cl_seq *s, int64_t kv_from, void **bytes, size_t *len)
{
    if (kv_from < 0 || kv_from > s->kv_len)
        return cl_err(CL_ERR_ARG, "snapshot: kv_from %lld outside [0, %lld]", (long long)kv_from,
                      (long long)s->kv_len);
    int with_trans = 0; /* only when the cache tracks it */
    for (int i = 0; i < s->c->n_ssm; i++)
        with_trans |= cl_cache_has_trans(s->c, i);
    cl_state_header h;
    fill_header(s, kv_from, with_trans, &h);
    size_t total = sizeof h + h.kv_bytes + h.ssm_bytes;
    char *buf = malloc(total);
    if (!buf)
        return cl_err(CL_ERR_NOMEM, "out of memory for a %zu-byte snapshot", total);
    memcpy(buf, &h, sizeof h);
    int rc = cl_state_read_kv(s, kv_from, s->kv_len - kv_from, buf + sizeof h);
    if (rc == CL_OK)
        rc = cl_state_read_ssm(s, buf + sizeof h + h.kv_bytes, with_trans);
    if (rc != CL_OK) {
        free(buf);
        return rc;
    }
    *bytes = buf;
    *len = total;
    return CL_OK;
}

int cl_state_peek(const void *bytes, size_t len, const char *what, cl_state_header *h)
{
    if (len < sizeof *h)
        return cl_err(CL_ERR_CORRUPT, "%s: state snapshot is truncated (%zu bytes)", what, len);
    memcpy(h, bytes, sizeof *h);
    if (h->magic != CL_STATE_MAGIC)
        return cl_err(CL_ERR_CORRUPT, "%s: not a collage state snapshot", what);
    if (h->version != CL_STATE_VERSION)
        return cl_err(CL_ERR_UNSUPPORTED, "%s: state snapshot version %u (this build reads %u)",
                      what, h->version, CL_STATE_VERSION);
    if (len != sizeof *h + h->kv_bytes + h->ssm_bytes)
        return cl_err(CL_ERR_CORRUPT, "%s: state snapshot size %zu does not match its header",
                      what, len);
    return CL_OK;
}

int cl_state_check_header(const cl_seq *s, const cl_state_header *h, const char *what)
{
    const cl_cache *c = s->c;
    cl_state_header want;
    fill_header(s, 0, 0, &want);
    if (h->magic != CL_STATE_MAGIC)
        return cl_err(CL_ERR_CORRUPT, "%s: not a collage state snapshot", what);
    if (h->version != CL_STATE_VERSION)
        return cl_err(CL_ERR_UNSUPPORTED, "%s: state snapshot version %u (this build reads %u)",
                      what, h->version, CL_STATE_VERSION);
    if (h->n_attn != want.n_attn || h->n_ssm != want.n_ssm || h->n_kv_heads != want.n_kv_heads ||
        h->head_dim != want.head_dim || h->n_heads != want.n_heads)
        return cl_err(CL_ERR_FORMAT, "%s: state snapshot is for a different model geometry",
                      what);
    if (h->kv_dtype != (uint32_t)c->kv_dtype)
        return cl_err(CL_ERR_UNSUPPORTED, "%s: snapshot KV dtype %s differs from the cache's %s",
                      what, cl_dtype_name((cl_dtype)h->kv_dtype), cl_dtype_name(c->kv_dtype));
    if (h->kv_from < 0 || h->kv_from > h->kv_len ||
        h->kv_bytes != cl_state_kv_bytes(c, h->kv_len - h->kv_from))
        return cl_err(CL_ERR_CORRUPT, "%s: snapshot KV range is inconsistent", what);
    int snap_trans = (h->flags & CL_STATE_HAS_TRANS) != 0;
    if (h->ssm_bytes != cl_state_ssm_bytes(c, snap_trans))
        return cl_err(CL_ERR_CORRUPT, "%s: snapshot SSM payload is inconsistent", what);
    return CL_OK;
}

int cl_state_finish_restore(cl_seq *s, const cl_state_header *h, const void *ssm)
{
    int snap_trans = (h->flags & CL_STATE_HAS_TRANS) != 0, cache_trans = 0;
    for (int i = 0; i < s->c->n_ssm; i++)
        cache_trans |= cl_cache_has_trans(s->c, i);
    if (cache_trans && !snap_trans)
        CL_TRY(cl_cache_reset_slot(s->c, s->slot)); /* transition = identity from here */
    CL_TRY(cl_state_write_ssm(s, ssm, snap_trans));
    s->kv_len = h->kv_len;
    s->pos = h->pos;
    s->n_tokens = h->n_tokens;
    s->hide_lo = h->hide_lo;
    s->hide_hi = h->hide_hi;
    return CL_OK;
}

int cl_state_restore(cl_seq *s, const void *bytes, size_t len, const char *what)
{
    cl_state_header h;
    CL_TRY(cl_state_peek(bytes, len, what, &h));
    CL_TRY(cl_state_check_header(s, &h, what));
    const char *p = (const char *)bytes + sizeof h;
    CL_TRY(cl_state_write_kv(s, h.kv_from, h.kv_len - h.kv_from, p));
    return cl_state_finish_restore(s, &h, p + h.kv_bytes);
}
