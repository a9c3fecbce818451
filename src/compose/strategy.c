#include "compose/strategy.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/status.h"
#include "compose/picaso.h"

#define NO_TRANS ((size_t)-1)

int cl_compose_ssm_views(const cl_cache *c, int with_trans, cl_compose_ssm_view **views,
                         size_t *floats)
{
    cl_compose_ssm_view *v = calloc((size_t)(c->n_ssm > 0 ? c->n_ssm : 1), sizeof *v);
    if (!v)
        return cl_err(CL_ERR_NOMEM, "out of memory");
    size_t off = 0;
    for (int i = 0; i < c->n_ssm; i++) {
        const cl_ssm_layer *l = &c->ssm[i];
        v[i].type = c->ssm_type[i];
        v[i].n_heads = l->n_heads;
        v[i].head_dim = l->head_dim;
        v[i].conv_n = cl_cache_conv_floats(c, i);
        v[i].state_n = cl_cache_state_floats(c, i);
        v[i].conv = off;
        off += v[i].conv_n;
        v[i].state = off;
        off += v[i].state_n;
        v[i].state2 = off;
        off += v[i].state_n;
        v[i].log_decay = off;
        off += (size_t)l->n_heads;
        v[i].trans = NO_TRANS;
        if (with_trans && cl_cache_has_trans(c, i)) {
            v[i].trans = off;
            off += v[i].state_n;
        }
    }
    *views = v;
    *floats = off;
    return CL_OK;
}

static void mean_of(const float *const *docs, int n, size_t off, size_t len, float *out)
{
    float *o = out + off;
    memset(o, 0, len * sizeof *o);
    for (int i = 0; i < n; i++)
        for (size_t t = 0; t < len; t++)
            o[t] += docs[i][off + t];
    float inv = 1.0f / (float)n;
    for (size_t t = 0; t < len; t++)
        o[t] *= inv;
}

static void sum_of(const float *const *docs, int n, size_t off, size_t len, float *out)
{
    float *o = out + off;
    memset(o, 0, len * sizeof *o);
    for (int i = 0; i < n; i++)
        for (size_t t = 0; t < len; t++)
            o[t] += docs[i][off + t];
}

static void set_identity(float *p, int64_t H, int64_t D)
{
    memset(p, 0, (size_t)(H * D * D) * sizeof *p);
    for (int64_t h = 0; h < H; h++)
        for (int64_t d = 0; d < D; d++)
            p[(h * D + d) * D + d] = 1.0f;
}

/* Per head, the documents' pointers to one D x D block at offset off + h*D*D. */
static void head_ptrs(const float *const *docs, int n, size_t off, int64_t h, int64_t D,
                      const float **ptrs)
{
    for (int i = 0; i < n; i++)
        ptrs[i] = docs[i] + off + (size_t)(h * D * D);
}

/* M2 fuse: scalar PICASO per head from the log decays. */
static int fuse_scalar(const cl_compose_ssm_view *v, const float *const *docs, int n, float *out)
{
    int64_t H = v->n_heads, per = (int64_t)v->state_n / H;
    double *ld = malloc((size_t)n * 2 * sizeof *ld);
    if (!ld)
        return cl_err(CL_ERR_NOMEM, "out of memory");
    double *logc = ld + n;
    memset(out + v->state, 0, v->state_n * sizeof *out);
    int rc = CL_OK;
    for (int64_t h = 0; h < H && rc == CL_OK; h++) {
        for (int i = 0; i < n; i++)
            ld[i] = docs[i][v->log_decay + (size_t)h];
        rc = cl_picaso_log_coeffs(ld, n, logc);
        for (int i = 0; i < n && rc == CL_OK; i++) {
            float c = (float)exp(logc[i]);
            const float *s = docs[i] + v->state + (size_t)(h * per);
            float *o = out + v->state + (size_t)(h * per);
            for (int64_t t = 0; t < per; t++)
                o[t] += c * s[t];
        }
    }
    free(ld);
    return rc;
}

/* caso with scalar decays (M2, GKA: the same factor for h_kk and h_kv). */
static int caso_scalar(const cl_compose_ssm_view *v, const float *const *docs, int n, float *out)
{
    int64_t H = v->n_heads, per = (int64_t)v->state_n / H;
    double *ld = malloc((size_t)n * sizeof *ld);
    const float **ptr = malloc((size_t)n * sizeof *ptr);
    if (!ld || !ptr) {
        free(ld);
        free(ptr);
        return cl_err(CL_ERR_NOMEM, "out of memory");
    }
    int parts = v->type == CL_LAYER_GKA ? 2 : 1;
    for (int64_t h = 0; h < H; h++) {
        for (int i = 0; i < n; i++)
            ld[i] = docs[i][v->log_decay + (size_t)h];
        for (int p = 0; p < parts; p++) {
            size_t off = (p ? v->state2 : v->state) + (size_t)(h * per);
            for (int i = 0; i < n; i++)
                ptr[i] = docs[i] + off;
            cl_caso_scalar_combine(n, per, ld, ptr, out + off);
        }
    }
    free(ld);
    free(ptr);
    return CL_OK;
}

int cl_compose_err_no_trans(cl_compose_ssm ssm)
{
    return cl_err(CL_ERR_ARG, "compose: GDN %s needs the layers' transition products: "
                  "create the cache with track_transition (cl_compose_cache_opts)",
                  ssm == CL_COMPOSE_SSM_FUSE ? "fuse" : "caso");
}

int cl_compose_check_trans(const float *p, int64_t D, float ld0, int i)
{
    if (ld0 == 0.0f)
        return CL_OK;
    for (int64_t a = 0; a < D; a++)
        for (int64_t b = 0; b < D; b++)
            if (p[a * D + b] != (a == b ? 1.0f : 0.0f))
                return CL_OK;
    return cl_err(CL_ERR_ARG, "compose: GDN document %d has no transition product (its "
                  "state was made or restored without track_transition)", i);
}

/* GDN fuse and caso need every document's transition product. */
static int gdn_check_trans(const cl_compose_ssm_view *v, cl_compose_ssm ssm,
                           const float *const *docs, int n)
{
    if (v->trans == NO_TRANS)
        return cl_compose_err_no_trans(ssm);
    for (int i = 0; i < n; i++)
        CL_TRY(cl_compose_check_trans(docs[i] + v->trans, v->head_dim, docs[i][v->log_decay], i));
    return CL_OK;
}

/* GDN fuse / caso: per head, the matrix forms with the transition products. */
static int gdn_matrix(const cl_compose_ssm_view *v, cl_compose_ssm ssm, const float *const *docs,
                      int n, float *out)
{
    CL_TRY(gdn_check_trans(v, ssm, docs, n));
    int64_t H = v->n_heads, D = v->head_dim;
    /* Heads are independent: one per thread (the products are single-threaded
     * OpenBLAS calls; GDN fuse is O(n^2) D x D products per head). Errors are
     * only allocation failures, reported here because the message buffer is
     * per thread. */
    const float **ptr = malloc((size_t)H * n * 2 * sizeof *ptr);
    if (!ptr)
        return cl_err(CL_ERR_NOMEM, "out of memory");
    int failed = 0;
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t h = 0; h < H; h++) {
        const float **P = ptr + (size_t)h * n * 2, **S = P + n;
        head_ptrs(docs, n, v->trans, h, D, P);
        head_ptrs(docs, n, v->state, h, D, S);
        float *o = out + v->state + (size_t)(h * D * D);
        int rc = ssm == CL_COMPOSE_SSM_FUSE ? cl_picaso_matrix_combine(n, D, D, P, S, o)
                                            : cl_caso_matrix_combine(n, D, D, P, S, o);
        if (rc == CL_OK && ssm == CL_COMPOSE_SSM_CASO)
            rc = cl_caso_matrix_product(n, D, P, out + v->trans + (size_t)(h * D * D));
        if (rc != CL_OK) {
#pragma omp atomic write
            failed = 1;
        }
    }
    free(ptr);
    if (failed)
        return cl_err(CL_ERR_NOMEM, "out of memory for GDN %s of %d documents",
                      ssm == CL_COMPOSE_SSM_FUSE ? "fuse" : "caso", n);
    return CL_OK;
}

static int combine_layer(const cl_compose_ssm_view *v, cl_compose_ssm ssm,
                         const float *const *docs, int n, int gdn_fuse_on_device, float *out)
{
    size_t sn = v->state_n;
    int64_t H = v->n_heads;
    /* conv */
    if (ssm == CL_COMPOSE_SSM_KV_ONLY)
        memset(out + v->conv, 0, v->conv_n * sizeof *out);
    else if (ssm == CL_COMPOSE_SSM_CASO)
        memcpy(out + v->conv, docs[n - 1] + v->conv, v->conv_n * sizeof *out);
    else
        mean_of(docs, n, v->conv, v->conv_n, out);
    /* log decay and transition of the composed state (caso overwrites below) */
    memset(out + v->log_decay, 0, (size_t)H * sizeof *out);
    if (v->trans != NO_TRANS)
        set_identity(out + v->trans, H, v->head_dim);
    memset(out + v->state2, 0, sn * sizeof *out);
    switch (ssm) {
    case CL_COMPOSE_SSM_KV_ONLY:
        memset(out + v->state, 0, sn * sizeof *out);
        return CL_OK;
    case CL_COMPOSE_SSM_SOUP:
        mean_of(docs, n, v->state, sn, out);
        if (v->type == CL_LAYER_GKA)
            mean_of(docs, n, v->state2, sn, out);
        return CL_OK;
    case CL_COMPOSE_SSM_FUSE:
        if (v->type == CL_LAYER_GKA) {
            sum_of(docs, n, v->state, sn, out);
            sum_of(docs, n, v->state2, sn, out);
            return CL_OK;
        }
        if (v->type == CL_LAYER_GDN && gdn_fuse_on_device) { /* the backend writes it */
            memset(out + v->state, 0, sn * sizeof *out);
            return gdn_check_trans(v, ssm, docs, n);
        }
        if (v->type == CL_LAYER_GDN)
            return gdn_matrix(v, ssm, docs, n, out);
        return fuse_scalar(v, docs, n, out);
    case CL_COMPOSE_SSM_CASO:
        for (int64_t h = 0; h < H; h++) {
            double t = 0.0;
            for (int i = 0; i < n; i++)
                t += docs[i][v->log_decay + (size_t)h];
            out[v->log_decay + (size_t)h] = (float)t;
        }
        if (v->type == CL_LAYER_GDN)
            return gdn_matrix(v, ssm, docs, n, out);
        return caso_scalar(v, docs, n, out);
    }
    return cl_err(CL_ERR_ARG, "compose: unknown SSM strategy %d", (int)ssm);
}

int cl_compose_ssm_combine(const cl_cache *c, int with_trans, cl_compose_ssm ssm,
                           const float *const *docs, int n, int gdn_fuse_on_device, float *out)
{
    if (n < 1)
        return cl_err(CL_ERR_ARG, "compose: no documents to combine");
    cl_compose_ssm_view *v;
    size_t floats;
    CL_TRY(cl_compose_ssm_views(c, with_trans, &v, &floats));
    int rc = CL_OK;
    for (int i = 0; i < c->n_ssm && rc == CL_OK; i++)
        rc = combine_layer(&v[i], ssm, docs, n, gdn_fuse_on_device, out);
    free(v);
    return rc;
}
