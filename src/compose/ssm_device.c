/* ssm_device.c - the SSM strategies of compose/strategy.h applied where the
 * states live (the backend's memory), with no host round trip of the states:
 * averages and per-head weighted sums are the backend's ssm_lincomb, GDN fuse
 * and caso its gdn_fuse and gdn_caso. Only the per-head log decays (a few
 * floats per layer and document) and, for the GDN transition check, one D x D
 * block per layer and document come to the host.
 *
 * Why: at 8B size one document's SSM state is ~110 MB (GDN with its
 * transition); a composition of 4 read them all to pageable host memory,
 * combined them on one core and wrote the result back, about half a second of a
 * query that should take tens of milliseconds once the KV is in place. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/status.h"
#include "compose/picaso.h"
#include "compose/strategy.h"

static int layer_needs_gdn_op(const cl_cache *c, int i, cl_compose_ssm ssm)
{
    return c->ssm_type[i] == CL_LAYER_GDN &&
           (ssm == CL_COMPOSE_SSM_FUSE || ssm == CL_COMPOSE_SSM_CASO);
}

int cl_compose_ssm_device_ok(const cl_cache *c, cl_compose_ssm ssm)
{
    const cl_backend_ops *o = c->b->ops;
    if (c->shard || !o->ssm_lincomb)
        return 0;
    for (int i = 0; i < c->n_ssm; i++)
        if (layer_needs_gdn_op(c, i, ssm) &&
            (ssm == CL_COMPOSE_SSM_FUSE ? !o->gdn_fuse : !o->gdn_caso))
            return 0;
    return 1;
}

/* Per-slot array of one layer part: base + slot * per. */
static float *at(float *base, int32_t slot, size_t per) { return base + (size_t)slot * per; }

/* out = sum_i coef[i][block] * part of slots[i] (blocks per slot). */
static int lincomb(cl_cache *c, float *base, size_t per, int64_t blocks, const int32_t *slots,
                   int n, const float *coef, int32_t out)
{
    return c->b->ops->ssm_lincomb(c->b, base, per, blocks, slots, n, coef, out);
}

/* strategy.c's transition check on each document's head-0 block, fetched from the
 * device (only for documents that processed tokens). */
static int gdn_check_trans(cl_cache *c, const cl_ssm_layer *l, const int32_t *slots, int n,
                           const float *ld, cl_compose_ssm ssm, float *block)
{
    const int64_t D = l->head_dim;
    const size_t sf = (size_t)l->n_heads * (size_t)(D * D);
    if (!l->trans)
        return cl_compose_err_no_trans(ssm);
    for (int i = 0; i < n; i++) {
        const float ld0 = ld[(size_t)i * (size_t)l->n_heads];
        if (ld0 == 0.0f)
            continue;
        CL_TRY(c->b->ops->to_host(c->b, block, at(l->trans, slots[i], sf),
                                  (size_t)(D * D) * sizeof *block));
        CL_TRY(cl_compose_check_trans(block, D, ld0, i));
    }
    return CL_OK;
}

/* Per-head coefficients of the scalar strategies from the documents' log decays
 * ld[i][h]: fuse, the scalar PICASO; caso, prod_{j>i} a_j = exp(sum_{j>i}
 * ld_j). */
static int scalar_coefs(cl_compose_ssm ssm, const float *ld, int n, int64_t H, float *coef)
{
    double *x = malloc((size_t)n * 2 * sizeof *x);
    if (!x)
        return cl_err(CL_ERR_NOMEM, "out of memory");
    double *logc = x + n;
    int rc = CL_OK;
    for (int64_t h = 0; h < H && rc == CL_OK; h++) {
        for (int i = 0; i < n; i++)
            x[i] = ld[(size_t)i * (size_t)H + (size_t)h];
        if (ssm == CL_COMPOSE_SSM_FUSE) {
            rc = cl_picaso_log_coeffs(x, n, logc);
            for (int i = 0; i < n && rc == CL_OK; i++)
                coef[(size_t)i * (size_t)H + (size_t)h] = (float)exp(logc[i]);
        } else {
            for (int i = 0; i < n; i++)
                coef[(size_t)i * (size_t)H + (size_t)h] =
                    (float)exp(cl_caso_scalar_log_weight(x, n, i));
        }
    }
    free(x);
    return rc;
}

typedef struct {
    int32_t *slots;
    float *ld;    /* [n][H] log decays */
    float *coef;  /* [n][H] */
    float *ones;  /* [n] of 1/n (mean) and [n] of 1 (sum) */
    float *block; /* one D x D block (transition check) */
    float *out_ld;
} work;

static int combine_layer(cl_cache *c, int i, cl_compose_ssm ssm, int n, int32_t out, work *w)
{
    const cl_backend_ops *o = c->b->ops;
    cl_backend *b = c->b;
    cl_ssm_layer *l = &c->ssm[i];
    const cl_layer_type type = c->ssm_type[i];
    const int64_t H = l->n_heads;
    const size_t cf = cl_cache_conv_floats(c, i), sf = cl_cache_state_floats(c, i);
    const float *mean = w->ones, *sum = w->ones + n;
    const int32_t last = w->slots[n - 1];
    if (ssm == CL_COMPOSE_SSM_FUSE || ssm == CL_COMPOSE_SSM_CASO)
        for (int d = 0; d < n; d++)
            CL_TRY(o->to_host(b, w->ld + (size_t)d * (size_t)H, at(l->log_decay, w->slots[d], H),
                              (size_t)H * sizeof(float)));
    /* conv */
    if (ssm == CL_COMPOSE_SSM_KV_ONLY)
        CL_TRY(o->zero(b, at(l->conv, out, cf), cf * sizeof(float)));
    else if (ssm == CL_COMPOSE_SSM_CASO)
        CL_TRY(o->copy(b, at(l->conv, out, cf), at(l->conv, last, cf), cf * sizeof(float)));
    else
        CL_TRY(lincomb(c, l->conv, cf, 1, w->slots, n, mean, out));
    /* log decay and transition of the composed state (caso and GDN caso
     * overwrite) */
    for (int64_t h = 0; h < H; h++) {
        double t = 0.0;
        for (int d = 0; ssm == CL_COMPOSE_SSM_CASO && d < n; d++)
            t += w->ld[(size_t)d * (size_t)H + (size_t)h];
        w->out_ld[h] = (float)t;
    }
    CL_TRY(o->from_host(b, at(l->log_decay, out, H), w->out_ld, (size_t)H * sizeof(float)));
    const int gdn_op = layer_needs_gdn_op(c, i, ssm);
    if (l->trans && !(gdn_op && ssm == CL_COMPOSE_SSM_CASO))
        CL_TRY(o->from_host(b, at(l->trans, out, sf), c->identity, sf * sizeof(float)));
    /* the states */
    float *parts[2] = {l->state, type == CL_LAYER_GKA ? l->state2 : NULL};
    if (l->state2 && !parts[1])
        CL_TRY(o->zero(b, at(l->state2, out, sf), sf * sizeof(float)));
    if (gdn_op) {
        CL_TRY(gdn_check_trans(c, l, w->slots, n, w->ld, ssm, w->block));
        if (ssm == CL_COMPOSE_SSM_FUSE) {
            for (int d = 0; d < n; d++)
                w->coef[d] = cl_picaso_matrix_weight(n, d);
            return o->gdn_fuse(b, l, w->slots, n, w->coef, out);
        }
        return o->gdn_caso(b, l, w->slots, n, out);
    }
    if (ssm == CL_COMPOSE_SSM_KV_ONLY) {
        for (int p = 0; p < 2; p++)
            if (parts[p])
                CL_TRY(o->zero(b, at(parts[p], out, sf), sf * sizeof(float)));
        return CL_OK;
    }
    /* soup: the mean; GKA fuse: the sum; M2 fuse and scalar caso: per-head weights */
    const float *coef = ssm == CL_COMPOSE_SSM_SOUP ? mean : sum;
    int64_t blocks = 1;
    if (ssm == CL_COMPOSE_SSM_CASO || (ssm == CL_COMPOSE_SSM_FUSE && type != CL_LAYER_GKA)) {
        CL_TRY(scalar_coefs(ssm, w->ld, n, H, w->coef));
        coef = w->coef;
        blocks = H;
    }
    for (int p = 0; p < 2; p++)
        if (parts[p])
            CL_TRY(lincomb(c, parts[p], sf, blocks, w->slots, n, coef, out));
    return CL_OK;
}

int cl_compose_ssm_device(const cl_seq *const *docs, int n, cl_compose_ssm ssm, cl_seq *out)
{
    cl_cache *c = out->c;
    int64_t maxH = 1, maxD = 1;
    for (int i = 0; i < c->n_ssm; i++) {
        if (c->ssm[i].n_heads > maxH)
            maxH = c->ssm[i].n_heads;
        if (c->ssm[i].head_dim > maxD)
            maxD = c->ssm[i].head_dim;
    }
    work w = {0};
    w.slots = malloc((size_t)n * sizeof *w.slots);
    w.ld = malloc((size_t)n * (size_t)maxH * sizeof *w.ld);
    w.coef = malloc((size_t)n * (size_t)maxH * sizeof *w.coef);
    w.ones = malloc((size_t)(2 * n) * sizeof *w.ones);
    w.block = malloc((size_t)(maxD * maxD) * sizeof *w.block);
    w.out_ld = malloc((size_t)maxH * sizeof *w.out_ld);
    int rc = w.slots && w.ld && w.coef && w.ones && w.block && w.out_ld
                 ? CL_OK
                 : cl_err(CL_ERR_NOMEM, "out of memory");
    for (int d = 0; rc == CL_OK && d < n; d++) {
        w.slots[d] = docs[d]->slot;
        w.ones[d] = 1.0f / (float)n;
        w.ones[n + d] = 1.0f;
    }
    for (int i = 0; i < c->n_ssm && rc == CL_OK; i++)
        rc = combine_layer(c, i, ssm, n, out->slot, &w);
    free(w.slots);
    free(w.ld);
    free(w.coef);
    free(w.ones);
    free(w.block);
    free(w.out_ld);
    return rc;
}
