/* cl_compose_states / cl_compose_ssm_into: combining already-prefilled states
 * (spec COMPOSITION.md §4 step 5, §5, §6). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/status.h"
#include "compose/compose.h"
#include "compose/picaso.h"
#include "compose/strategy.h"
#include "engine/state.h"

static int check_docs(const cl_seq *const *docs, int n, const cl_seq *out)
{
    if (n < 1)
        return cl_err(CL_ERR_ARG, "compose: no documents to compose");
    for (int i = 0; i < n; i++) {
        if (!docs[i] || docs[i]->c != out->c)
            return cl_err(CL_ERR_ARG, "compose: document %d is not a state of the output's cache",
                          i);
        if (docs[i] == out || docs[i]->slot == out->slot)
            return cl_err(CL_ERR_ARG, "compose: the output state is also document %d", i);
    }
    return CL_OK;
}

static int any_trans(const cl_cache *c)
{
    for (int i = 0; i < c->n_ssm; i++)
        if (cl_cache_has_trans(c, i))
            return 1;
    return 0;
}

/* GDN fuse of SSM layer l on the backend (on every rank's heads when sharded). */
typedef struct {
    cl_cache *c;
    int l, n;
    const int32_t *slots;
    const float *weight;
    int32_t out;
} fuse_job;

static int fuse_on(cl_cache *c, const fuse_job *j)
{
    return c->b->ops->gdn_fuse(c->b, &c->ssm[j->l], j->slots, j->n, j->weight, j->out);
}

static int fuse_rank(void *user, int r)
{
    const fuse_job *j = user;
    return fuse_on(j->c->shard[r], j);
}

static int gdn_fuse_layer(cl_cache *c, int l, const int32_t *slots, int n, const float *weight,
                          int32_t out)
{
    fuse_job j = {c, l, n, slots, weight, out};
    return c->shard ? cl_ranks_run(c->ranks, fuse_rank, &j, NULL) : fuse_on(c, &j);
}

int cl_compose_ssm_into(const cl_seq *const *docs, int n, cl_compose_ssm ssm, cl_seq *out)
{
    CL_TRY(check_docs(docs, n, out));
    cl_cache *c = out->c;
    if (!c->n_ssm)
        return CL_OK;
    if (cl_compose_ssm_device_ok(c, ssm)) /* no host round trip of the states */
        return cl_compose_ssm_device(docs, n, ssm, out);
    int with_trans = any_trans(c);
    size_t bytes = cl_state_ssm_bytes(c, with_trans);
    float **bufs = calloc((size_t)n + 1, sizeof *bufs);
    if (!bufs)
        return cl_err(CL_ERR_NOMEM, "out of memory");
    int rc = CL_OK;
    for (int i = 0; i <= n && rc == CL_OK; i++) {
        bufs[i] = malloc(bytes);
        if (!bufs[i])
            rc = cl_err(CL_ERR_NOMEM, "out of memory for %d SSM states of %zu bytes", n + 1,
                        bytes);
        else if (i < n)
            rc = cl_state_read_ssm(docs[i], bufs[i], with_trans);
    }
    /* GDN fuse runs on the device where the backend can (the slots are there) */
    const int on_device = ssm == CL_COMPOSE_SSM_FUSE && with_trans && c->b->ops->gdn_fuse;
    if (rc == CL_OK)
        rc = cl_compose_ssm_combine(c, with_trans, ssm, (const float *const *)bufs, n, on_device,
                                    bufs[n]);
    if (rc == CL_OK)
        rc = cl_state_write_ssm(out, bufs[n], with_trans);
    if (rc == CL_OK && on_device) {
        int32_t *slots = malloc((size_t)n * sizeof *slots);
        float *weight = malloc((size_t)n * sizeof *weight);
        if (!slots || !weight)
            rc = cl_err(CL_ERR_NOMEM, "out of memory");
        for (int i = 0; rc == CL_OK && i < n; i++) {
            slots[i] = docs[i]->slot;
            weight[i] = cl_picaso_matrix_weight(n, i);
        }
        for (int l = 0; rc == CL_OK && l < c->n_ssm; l++)
            if (cl_cache_has_trans(c, l) && c->ssm_type[l] == CL_LAYER_GDN)
                rc = gdn_fuse_layer(c, l, slots, n, weight, out->slot);
        free(slots);
        free(weight);
    }
    for (int i = 0; i <= n; i++)
        free(bufs[i]);
    free(bufs);
    return rc;
}

int cl_compose_states(const cl_seq *const *docs, int n, const cl_compose_opts *o, cl_seq *out,
                      cl_compose_info *info)
{
    CL_TRY(check_docs(docs, n, out));
    if (o->kv == CL_COMPOSE_KV_FULL)
        return cl_err(CL_ERR_ARG, "compose: full-KV composition needs the whole context, not "
                      "prefilled documents (use the in-memory composition)");
    double t_start = cl_now();
    int64_t kept = 0, gap = 0, lead0 = 0, max_pos = 0;
    for (int i = 0; i < n; i++) {
        int64_t lead = o->doc_lead ? o->doc_lead[i] : o->n_prefix;
        if (lead < 0 || lead > docs[i]->kv_len)
            return cl_err(CL_ERR_ARG, "compose: document %d has %lld KV slots, fewer than its "
                          "%lld lead tokens", i, (long long)docs[i]->kv_len, (long long)lead);
        if (i == 0)
            lead0 = lead;
        int64_t content = docs[i]->kv_len - lead;
        kept += i == 0 ? docs[i]->kv_len : content;
        if (i < n - 1)
            gap += content;
        if (docs[i]->pos > max_pos)
            max_pos = docs[i]->pos;
    }
    CL_TRY(cl_seq_reset(out));
    cl_cache *c = out->c;
    if (c->n_attn > 0 && kept > 0) {
        /* concatenated KV: backend-to-backend copies (on a GPU, device to device) */
        int rc = cl_seq_reserve(out, kept);
        int64_t dst = 0;
        for (int i = 0; i < n && rc == CL_OK; i++) {
            int64_t from = i == 0 ? 0 : (o->doc_lead ? o->doc_lead[i] : o->n_prefix);
            rc = cl_state_copy_kv(docs[i], from, docs[i]->kv_len - from, out, dst);
            dst += docs[i]->kv_len - from;
        }
        CL_TRY(rc);
    }
    CL_TRY(cl_compose_ssm_into(docs, n, o->ssm, out));
    out->kv_len = kept;
    out->n_tokens = kept;
    out->pos = o->sequential_positions ? kept : max_pos;
    out->hide_lo = out->hide_hi = 0;
    if (o->kv == CL_COMPOSE_KV_SW && gap > 0) {
        out->hide_lo = lead0;
        out->hide_hi = lead0 + gap;
    }
    if (info) {
        info->n_docs = n;
        info->lead_tokens = lead0;
        info->kept_tokens = kept;
        info->pos = out->pos;
        info->hide_lo = out->hide_lo;
        info->hide_hi = out->hide_hi;
        info->compose_s = cl_now() - t_start;
    }
    return CL_OK;
}
