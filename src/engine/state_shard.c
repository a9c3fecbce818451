/* state_shard.c - see state_shard.h. */
#include "engine/state_shard.h"

#include <stdlib.h>
#include <string.h>

#include "common/status.h"
#include "model/shard.h"

void cl_state_shard_conv_segs(const cl_cache *c, int i, void *out)
{
    cl_shard_segs *s = out;
    const cl_ssm_layer *l = &c->ssm[i];
    int64_t D = l->head_dim, Hq = l->n_heads, Hkv = (l->conv_channels / D - Hq) / 2;
    if (c->ssm_type[i] == CL_LAYER_M2)
        *s = (cl_shard_segs){3, {Hkv, Hkv, Hq}, {D, D, D}}; /* x | B | C */
    else
        *s = (cl_shard_segs){3, {Hq, Hkv, Hkv}, {D, D, D}}; /* q | k | v */
}

typedef struct {
    const cl_seq *s;
    float *host;
    int with_trans, to_host;
} ssm_job;

/* Rank r's part of every SSM layer's slot <-> the full layout in host memory. */
static int ssm_rank(void *user, int r)
{
    const ssm_job *j = user;
    const cl_cache *top = j->s->c;
    cl_cache *c = top->shard[r];
    const cl_backend_ops *o = c->b->ops;
    int n = top->tp;
    size_t slot = (size_t)j->s->slot, most = 0;
    for (int i = 0; i < c->n_ssm; i++) {
        size_t cf = cl_cache_conv_floats(c, i), sf = cl_cache_state_floats(c, i);
        most = cf > most ? cf : most;
        most = sf > most ? sf : most;
    }
    float *tmp = malloc((most ? most : 1) * sizeof *tmp);
    if (!tmp)
        return cl_err(CL_ERR_NOMEM, "out of memory");
    float *h = j->host;
    int rc = CL_OK;
    for (int i = 0; i < c->n_ssm && rc == CL_OK; i++) {
        const cl_ssm_layer *l = &c->ssm[i], *full = &top->ssm[i];
        int64_t D = full->head_dim, H = full->n_heads;
        cl_shard_segs conv, state = {1, {H}, {D * D}}, decay = {1, {H}, {1}};
        cl_state_shard_conv_segs(top, i, &conv);
        int with = j->with_trans && top->ssm_type[i] == CL_LAYER_GDN;
        struct {
            float *base;
            size_t local, full;
            const cl_shard_segs *segs;
            int64_t rows;
        } parts[5] = {
            {l->conv, cl_cache_conv_floats(c, i), cl_cache_conv_floats(top, i), &conv,
             full->conv_width - 1},
            {l->state, cl_cache_state_floats(c, i), cl_cache_state_floats(top, i), &state, 1},
            {l->state2, cl_cache_state_floats(c, i), cl_cache_state_floats(top, i), &state, 1},
            {l->log_decay, (size_t)l->n_heads, (size_t)H, &decay, 1},
            {l->trans, cl_cache_state_floats(c, i), cl_cache_state_floats(top, i), &state, 1},
        };
        for (int p = 0; p < 5 && rc == CL_OK; p++) {
            if (p == 4 && !with)
                continue;
            size_t bytes = parts[p].local * sizeof(float);
            if (!parts[p].base) { /* absent: zeros when reading (rank 0 writes them) */
                if (j->to_host && r == 0)
                    memset(h, 0, parts[p].full * sizeof(float));
            } else if (j->to_host) {
                rc = o->to_host(c->b, tmp, parts[p].base + slot * parts[p].local, bytes);
                if (rc == CL_OK)
                    cl_shard_copy(parts[p].segs, n, r, sizeof(float), parts[p].rows, h, tmp, 1);
            } else {
                cl_shard_copy(parts[p].segs, n, r, sizeof(float), parts[p].rows, h, tmp, 0);
                rc = o->from_host(c->b, parts[p].base + slot * parts[p].local, tmp, bytes);
            }
            h += parts[p].full;
        }
    }
    free(tmp);
    return rc;
}

int cl_state_shard_ssm_move(const cl_seq *s, void *host, int with_trans, int to_host)
{
    ssm_job j = {s, host, with_trans, to_host};
    return cl_ranks_run(s->c->ranks, ssm_rank, &j, NULL);
}

typedef struct {
    cl_cache *c;
    const cl_kv_run *runs;
    int64_t n;
} kv_job;

static int kv_rank(void *user, int r)
{
    const kv_job *j = user;
    cl_cache *c = j->c->shard[r];
    return c->b->ops->kv_copy_runs(c->b, c->kv, c->n_attn, j->runs, j->n);
}

int cl_state_shard_kv_copy(cl_cache *c, const cl_kv_run *runs, int64_t n)
{
    kv_job j = {c, runs, n};
    return cl_ranks_run(c->ranks, kv_rank, &j, NULL);
}
