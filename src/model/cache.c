#include "model/cache.h"

#include <stdlib.h>
#include <string.h>

#include "common/status.h"

void cl_cache_opts_for_model(const cl_model *m, cl_cache_opts *o)
{
    (void)m;
    memset(o, 0, sizeof *o);
    o->page_tokens = 64;
    o->init_pages = 16;
    o->init_slots = 2;
    o->growable = 1;
    o->track_transition = 0;
}

size_t cl_cache_page_bytes(const cl_cache *c)
{
    if (!c->n_attn)
        return 0;
    const cl_kv_layer *k = &c->kv[0];
    return (size_t)(k->page_tokens * k->n_kv_heads * k->head_dim) * cl_dtype_size(k->kv_dtype);
}

size_t cl_cache_conv_floats(const cl_cache *c, int i)
{
    return (size_t)((c->ssm[i].conv_width - 1) * c->ssm[i].conv_channels);
}

size_t cl_cache_state_floats(const cl_cache *c, int i)
{
    return (size_t)(c->ssm[i].n_heads * c->ssm[i].head_dim * c->ssm[i].head_dim);
}

int cl_cache_has_trans(const cl_cache *c, int i)
{
    return c->shard ? c->shard[0]->ssm[i].trans != NULL : c->ssm[i].trans != NULL;
}

/* ---- the pools of one (rank) cache ---- */

static int resize_page_pools(cl_cache *c, int64_t cap)
{
    size_t pb = cl_cache_page_bytes(c);
    for (int i = 0; i < c->n_attn; i++) {
        void *k = c->b->ops->realloc(c->b, c->kv[i].k, pb * (size_t)c->cap_pages, pb * (size_t)cap);
        if (!k)
            return cl_err(CL_ERR_NOMEM, "out of memory growing the KV cache to %lld pages",
                          (long long)cap);
        c->kv[i].k = k;
        void *v = c->b->ops->realloc(c->b, c->kv[i].v, pb * (size_t)c->cap_pages, pb * (size_t)cap);
        if (!v)
            return cl_err(CL_ERR_NOMEM, "out of memory growing the KV cache to %lld pages",
                          (long long)cap);
        c->kv[i].v = v;
    }
    c->cap_pages = cap;
    return CL_OK;
}

static int grow_one(cl_backend *b, float **p, size_t per_slot, int64_t old_cap, int64_t cap)
{
    if (!per_slot)
        return CL_OK;
    float *n = b->ops->realloc(b, *p, per_slot * sizeof(float) * (size_t)old_cap,
                               per_slot * sizeof(float) * (size_t)cap);
    if (!n)
        return cl_err(CL_ERR_NOMEM, "out of memory growing the SSM state pool");
    *p = n;
    return CL_OK;
}

static int resize_slot_pools(cl_cache *c, int64_t cap)
{
    for (int i = 0; i < c->n_ssm; i++) {
        cl_ssm_layer *s = &c->ssm[i];
        size_t st = cl_cache_state_floats(c, i);
        CL_TRY(grow_one(c->b, &s->conv, cl_cache_conv_floats(c, i), c->cap_slots, cap));
        CL_TRY(grow_one(c->b, &s->state, st, c->cap_slots, cap));
        CL_TRY(grow_one(c->b, &s->log_decay, (size_t)s->n_heads, c->cap_slots, cap));
        if (c->ssm_type[i] == CL_LAYER_GKA)
            CL_TRY(grow_one(c->b, &s->state2, st, c->cap_slots, cap));
        if (c->ssm_type[i] == CL_LAYER_GDN && c->o.track_transition)
            CL_TRY(grow_one(c->b, &s->trans, st, c->cap_slots, cap));
    }
    c->cap_slots = cap;
    return CL_OK;
}

static int reset_slot_local(cl_cache *c, int32_t slot)
{
    const cl_backend_ops *o = c->b->ops;
    for (int i = 0; i < c->n_ssm; i++) {
        cl_ssm_layer *s = &c->ssm[i];
        size_t cf = cl_cache_conv_floats(c, i), sf = cl_cache_state_floats(c, i);
        CL_TRY(o->zero(c->b, s->conv + (size_t)slot * cf, cf * sizeof(float)));
        CL_TRY(o->zero(c->b, s->state + (size_t)slot * sf, sf * sizeof(float)));
        CL_TRY(o->zero(c->b, s->log_decay + (size_t)slot * (size_t)s->n_heads,
                       (size_t)s->n_heads * sizeof(float)));
        if (s->state2)
            CL_TRY(o->zero(c->b, s->state2 + (size_t)slot * sf, sf * sizeof(float)));
        if (s->trans)
            CL_TRY(o->from_host(c->b, s->trans + (size_t)slot * sf, c->identity,
                                sf * sizeof(float)));
    }
    return CL_OK;
}

static int copy_slot_local(cl_cache *c, int32_t dst, int32_t src)
{
    const cl_backend_ops *o = c->b->ops;
    for (int i = 0; i < c->n_ssm; i++) {
        cl_ssm_layer *s = &c->ssm[i];
        size_t cf = cl_cache_conv_floats(c, i), sf = cl_cache_state_floats(c, i);
        size_t H = (size_t)s->n_heads;
        CL_TRY(o->copy(c->b, s->conv + dst * cf, s->conv + src * cf, cf * 4));
        CL_TRY(o->copy(c->b, s->state + dst * sf, s->state + src * sf, sf * 4));
        CL_TRY(o->copy(c->b, s->log_decay + dst * H, s->log_decay + src * H, H * 4));
        if (s->state2)
            CL_TRY(o->copy(c->b, s->state2 + dst * sf, s->state2 + src * sf, sf * 4));
        if (s->trans)
            CL_TRY(o->copy(c->b, s->trans + dst * sf, s->trans + src * sf, sf * 4));
    }
    return CL_OK;
}

/* Fixed pools sized from memory: the pages that fit in `fraction` of what is free now
 * (the slots already taken). */
static int pages_that_fit_local(cl_cache *c, double fraction, int64_t *pages)
{
    size_t free_b = 0, total_b = 0;
    CL_TRY(c->b->ops->mem_info(c->b, &free_b, &total_b));
    size_t per_page = 2 * (size_t)c->n_attn * cl_cache_page_bytes(c);
    if (fraction > 1)
        fraction = 1;
    *pages = per_page ? (int64_t)((double)free_b * fraction / (double)per_page) : 1;
    if (*pages < 1)
        return cl_err(CL_ERR_FULL, "no memory left for the KV cache (%zu bytes free)", free_b);
    return CL_OK;
}

static void free_pools_local(cl_cache *c)
{
    for (int i = 0; c->kv && i < c->n_attn; i++) {
        c->b->ops->free(c->b, c->kv[i].k);
        c->b->ops->free(c->b, c->kv[i].v);
    }
    for (int i = 0; c->ssm && i < c->n_ssm; i++) {
        cl_ssm_layer *s = &c->ssm[i];
        c->b->ops->free(c->b, s->conv);
        c->b->ops->free(c->b, s->state);
        c->b->ops->free(c->b, s->state2);
        c->b->ops->free(c->b, s->log_decay);
        c->b->ops->free(c->b, s->trans);
    }
}

/* ---- the same on every rank of a sharded cache (each on its rank's thread) ---- */

typedef struct {
    cl_cache *c;
    int64_t a, b;
    double fraction;
    int64_t *pages; /* [tp] */
} rank_job;

static int rank_pages(void *u, int r)
{
    rank_job *j = u;
    return resize_page_pools(j->c->shard[r], j->a);
}
static int rank_slots(void *u, int r)
{
    rank_job *j = u;
    return resize_slot_pools(j->c->shard[r], j->a);
}
static int rank_reset(void *u, int r)
{
    rank_job *j = u;
    return reset_slot_local(j->c->shard[r], (int32_t)j->a);
}
static int rank_copy(void *u, int r)
{
    rank_job *j = u;
    return copy_slot_local(j->c->shard[r], (int32_t)j->a, (int32_t)j->b);
}
static int rank_fit(void *u, int r)
{
    rank_job *j = u;
    return pages_that_fit_local(j->c->shard[r], j->fraction, &j->pages[r]);
}
static int rank_free(void *u, int r)
{
    rank_job *j = u;
    free_pools_local(j->c->shard[r]);
    return CL_OK;
}

static int on_ranks(cl_cache *c, cl_rank_fn fn, int64_t a, int64_t b)
{
    rank_job j = {c, a, b, 0, NULL};
    return cl_ranks_run(c->ranks, fn, &j, NULL);
}

/* ---- bookkeeping ---- */

static int grow_pages(cl_cache *c, int64_t want)
{
    if (want <= c->cap_pages)
        return CL_OK;
    if (!c->o.growable && c->cap_pages)
        return cl_err(CL_ERR_FULL, "KV cache is full (%lld pages)", (long long)c->cap_pages);
    /* fixed pools get exactly what was asked; growable ones at least double */
    int64_t cap = c->o.growable && 2 * c->cap_pages > want ? 2 * c->cap_pages : want;
    int32_t *fp = realloc(c->free_pages, (size_t)cap * sizeof *fp);
    if (!fp)
        return cl_err(CL_ERR_NOMEM, "out of memory");
    c->free_pages = fp;
    int64_t old = c->cap_pages;
    CL_TRY(c->shard ? on_ranks(c, rank_pages, cap, 0) : resize_page_pools(c, cap));
    for (int64_t p = cap - 1; p >= old; p--)
        c->free_pages[c->n_free_pages++] = (int32_t)p;
    c->cap_pages = cap;
    return CL_OK;
}

static int grow_slots(cl_cache *c, int64_t want)
{
    if (want <= c->cap_slots)
        return CL_OK;
    if (!c->o.growable && c->cap_slots)
        return cl_err(CL_ERR_FULL, "SSM state pool is full (%lld slots)", (long long)c->cap_slots);
    int64_t cap = c->o.growable && 2 * c->cap_slots > want ? 2 * c->cap_slots : want;
    int32_t *fs = realloc(c->free_slots, (size_t)cap * sizeof *fs);
    if (!fs)
        return cl_err(CL_ERR_NOMEM, "out of memory");
    c->free_slots = fs;
    int64_t old = c->cap_slots;
    CL_TRY(c->shard ? on_ranks(c, rank_slots, cap, 0) : resize_slot_pools(c, cap));
    for (int64_t p = cap - 1; p >= old; p--)
        c->free_slots[c->n_free_slots++] = (int32_t)p;
    c->cap_slots = cap;
    return CL_OK;
}

static int pages_that_fit(cl_cache *c, double fraction, int64_t *pages)
{
    if (!c->shard)
        return pages_that_fit_local(c, fraction, pages);
    int64_t *per = calloc((size_t)c->tp, sizeof *per);
    if (!per)
        return cl_err(CL_ERR_NOMEM, "out of memory");
    rank_job j = {c, 0, 0, fraction, per};
    int rc = cl_ranks_run(c->ranks, rank_fit, &j, NULL);
    *pages = per[0];
    for (int r = 1; r < c->tp; r++)
        if (per[r] < *pages)
            *pages = per[r];
    free(per);
    return rc;
}

/* A cache's structure and geometry for model m (no pool memory yet). */
static int make_cache(cl_model *m, const cl_cache_opts *o, cl_cache **out)
{
    const cl_config *cfg = m->cfg;
    cl_cache *c = calloc(1, sizeof *c);
    if (!c)
        return cl_err(CL_ERR_NOMEM, "out of memory");
    c->b = m->b;
    c->o = *o;
    c->kv_dtype = m->b->ops->kv_dtype(m->b, m->cfg->dtype);
    c->n_attn = cfg->n_attn_layers;
    c->n_ssm = cfg->n_ssm_layers;
    c->tp = 1;
    c->kv = calloc((size_t)(c->n_attn ? c->n_attn : 1), sizeof *c->kv);
    c->ssm = calloc((size_t)(c->n_ssm ? c->n_ssm : 1), sizeof *c->ssm);
    c->ssm_type = calloc((size_t)(c->n_ssm ? c->n_ssm : 1), sizeof *c->ssm_type);
    int64_t D = cfg->head_dim, H = cfg->num_heads;
    c->identity = malloc((size_t)(H * D * D) * sizeof(float));
    if (!c->kv || !c->ssm || !c->ssm_type || !c->identity) {
        cl_cache_free(c);
        return cl_err(CL_ERR_NOMEM, "out of memory");
    }
    memset(c->identity, 0, (size_t)(H * D * D) * sizeof(float));
    for (int64_t h = 0; h < H; h++)
        for (int64_t i = 0; i < D; i++)
            c->identity[(h * D + i) * D + i] = 1.0f;
    for (int i = 0; i < c->n_attn; i++)
        c->kv[i] = (cl_kv_layer){NULL, NULL, o->page_tokens, cfg->num_kv_heads, D, c->kv_dtype};
    int si = 0;
    for (int64_t l = 0; l < cfg->num_layers; l++) {
        cl_layer_type t = cfg->layer_types[l];
        if (!cl_layer_is_ssm(t))
            continue;
        int64_t W = t == CL_LAYER_M2 ? cfg->m2.conv_size
                    : t == CL_LAYER_GDN ? cfg->gdn.conv_size
                                        : cfg->gka.conv_size;
        c->ssm_type[si] = t;
        c->ssm[si++] = (cl_ssm_layer){NULL, NULL, NULL, NULL, NULL,
                                      cl_config_conv_channels(cfg, t), W, H, D};
    }
    *out = c;
    return CL_OK;
}

int cl_cache_create(cl_model *m, const cl_cache_opts *o, cl_cache **out)
{
    cl_cache_opts def;
    if (!o) {
        cl_cache_opts_for_model(m, &def);
        o = &def;
    }
    if (!m->loaded)
        return cl_err(CL_ERR_ARG, "%s: the model was opened without its weights (describe "
                                  "only): it cannot run",
                      m->ck.dir);
    cl_cache *c;
    CL_TRY(make_cache(m, o, &c));
    int rc = CL_OK;
    if (m->shard) { /* the full geometry here, each rank's heads in its cache */
        c->tp = m->tp;
        c->ranks = m->ranks;
        c->shard = calloc((size_t)m->tp, sizeof *c->shard);
        if (!c->shard)
            rc = cl_err(CL_ERR_NOMEM, "out of memory");
        for (int r = 0; rc == CL_OK && r < m->tp; r++)
            rc = make_cache(m->shard[r], o, &c->shard[r]);
    }
    if (rc == CL_OK)
        rc = grow_slots(c, o->init_slots > 0 ? o->init_slots : 1);
    int64_t pages = o->init_pages;
    if (rc == CL_OK && !o->growable && pages <= 0)
        rc = pages_that_fit(c, o->memory_fraction > 0 ? o->memory_fraction : 0.9, &pages);
    if (rc == CL_OK)
        rc = grow_pages(c, pages);
    if (rc != CL_OK) {
        cl_cache_free(c);
        return rc;
    }
    *out = c;
    return CL_OK;
}

static void free_struct(cl_cache *c)
{
    free(c->kv);
    free(c->ssm);
    free(c->ssm_type);
    free(c->free_pages);
    free(c->free_slots);
    free(c->identity);
    free(c);
}

void cl_cache_free(cl_cache *c)
{
    if (!c)
        return;
    if (c->io && c->io_free)
        c->io_free(c->io);
    if (c->shard) {
        rank_job j = {c, 0, 0, 0, NULL};
        int all = 1;
        for (int r = 0; r < c->tp; r++)
            all &= c->shard[r] != NULL;
        if (all)
            cl_ranks_run(c->ranks, rank_free, &j, NULL);
        for (int r = 0; r < c->tp; r++)
            if (c->shard[r])
                free_struct(c->shard[r]);
        free(c->shard);
    } else {
        free_pools_local(c);
    }
    free_struct(c);
}

int cl_cache_alloc_pages(cl_cache *c, int64_t n, int32_t *out)
{
    if (c->n_attn == 0) {
        for (int64_t i = 0; i < n; i++)
            out[i] = 0; /* no attention layers: pages are never touched */
        return CL_OK;
    }
    if (c->n_free_pages < n)
        CL_TRY(grow_pages(c, c->cap_pages + (n - c->n_free_pages)));
    for (int64_t i = 0; i < n; i++)
        out[i] = c->free_pages[--c->n_free_pages];
    return CL_OK;
}

void cl_cache_release_pages(cl_cache *c, const int32_t *pages, int64_t n)
{
    if (c->n_attn == 0)
        return;
    for (int64_t i = 0; i < n; i++)
        c->free_pages[c->n_free_pages++] = pages[i];
}

int cl_cache_reset_slot(cl_cache *c, int32_t slot)
{
    if (c->shard)
        return c->n_ssm ? on_ranks(c, rank_reset, slot, 0) : CL_OK;
    return reset_slot_local(c, slot);
}

int cl_cache_alloc_slot(cl_cache *c, int32_t *slot)
{
    if (c->n_free_slots == 0)
        CL_TRY(grow_slots(c, c->cap_slots + 1));
    *slot = c->free_slots[--c->n_free_slots];
    return cl_cache_reset_slot(c, *slot);
}

void cl_cache_release_slot(cl_cache *c, int32_t slot)
{
    if (slot >= 0)
        c->free_slots[c->n_free_slots++] = slot;
}

int cl_cache_copy_slot(cl_cache *c, int32_t dst, int32_t src)
{
    if (c->shard)
        return c->n_ssm ? on_ranks(c, rank_copy, dst, src) : CL_OK;
    return copy_slot_local(c, dst, src);
}

/* Pool bytes of one (rank) cache. */
static void pool_bytes(const cl_cache *c, int64_t pages, int64_t slots, uint64_t *kv,
                       uint64_t *ssm)
{
    *kv += 2 * (uint64_t)c->n_attn * cl_cache_page_bytes(c) * (uint64_t)pages;
    for (int i = 0; i < c->n_ssm; i++) {
        const cl_ssm_layer *s = &c->ssm[i];
        uint64_t st = cl_cache_state_floats(c, i);
        int gka = c->ssm_type[i] == CL_LAYER_GKA;
        int trans = c->ssm_type[i] == CL_LAYER_GDN && c->o.track_transition;
        uint64_t per = cl_cache_conv_floats(c, i) + st + (uint64_t)s->n_heads +
                       (gka ? st : 0) + (trans ? st : 0);
        *ssm += 4 * per * (uint64_t)slots;
    }
}

void cl_cache_stats_get(const cl_cache *c, cl_cache_stats *out)
{
    memset(out, 0, sizeof *out);
    out->page_tokens = c->o.page_tokens;
    out->total_pages = c->cap_pages;
    out->free_pages = c->n_free_pages;
    out->total_slots = c->cap_slots;
    out->free_slots = c->n_free_slots;
    out->growable = c->o.growable;
    out->track_transition = c->o.track_transition;
    if (c->shard)
        for (int r = 0; r < c->tp; r++)
            pool_bytes(c->shard[r], c->cap_pages, c->cap_slots, &out->kv_bytes, &out->ssm_bytes);
    else
        pool_bytes(c, c->cap_pages, c->cap_slots, &out->kv_bytes, &out->ssm_bytes);
}
