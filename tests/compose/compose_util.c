#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/rng.h"
#include "common/status.h"
#include "compose/strategy.h"
#include "compose_util.h"
#include "engine/state.h"
#include "mkmodel/mkmodel.h"
#include "testutil.h"

const char *cu_golden_file(const char *name, const char *file)
{
    char rel[512];
    snprintf(rel, sizeof rel, "golden/%s/%s", name, file);
    return tu_shared(rel);
}

static cl_model *load_cpu(const char *dir)
{
    cl_model_opts o;
    cl_model_opts_default(&o);
    o.backend = "cpu";
    cl_model *m = NULL;
    if (cl_model_load(dir, &o, &m) != CL_OK)
        fail_msg("loading %s: %s", dir, cl_errmsg());
    return m;
}

cl_model *cu_golden_model(const char *name) { return load_cpu(cu_golden_file(name, "")); }

double cu_tol(const cl_model *m)
{
    double tol = 1e-4;
    for (int64_t l = 0; l < m->cfg->num_layers; l++) {
        if (m->cfg->layer_types[l] == CL_LAYER_GDN && tol < 2e-3)
            tol = 2e-3;
        if (m->cfg->layer_types[l] == CL_LAYER_GKA)
            tol = 2e-2;
    }
    return tol;
}

cl_model *cu_mkmodel(const char *preset, const char *pattern, int64_t layers, uint64_t seed)
{
    char name[256];
    snprintf(name, sizeof name, "compose-%s-%s-%lld-%llu", preset, pattern ? pattern : "def",
             (long long)layers, (unsigned long long)seed);
    for (char *p = name; *p; p++)
        if (*p == '*')
            *p = 'A';
    const char *dir = tu_tmpdir(name);
    cl_mkmodel_opts o = {preset, dir, seed, pattern, NULL, layers, 1};
    if (cl_mkmodel(&o) != CL_OK)
        fail_msg("mkmodel %s: %s", preset, cl_errmsg());
    return load_cpu(dir);
}

void cu_random_ids(int32_t *ids, int64_t n, int64_t V, uint64_t seed)
{
    for (int64_t i = 0; i < n; i++)
        ids[i] = 1 + (int32_t)(cl_rng_uniform(seed, (uint64_t)i) * (float)(V - 1)) % (int32_t)(V - 1);
}

int32_t *cu_ids(const char *file, const char *tensor, int64_t *n)
{
    int64_t *v;
    *n = tu_load_i64(file, tensor, &v);
    int32_t *r = malloc((size_t)(*n ? *n : 1) * sizeof *r);
    for (int64_t i = 0; i < *n; i++)
        r[i] = (int32_t)v[i];
    free(v);
    return r;
}

int cu_cache_has_trans(const cl_cache *c)
{
    for (int i = 0; i < c->n_ssm; i++)
        if (c->ssm[i].trans)
            return 1;
    return 0;
}

float *cu_read_ssm(const cl_seq *s, int with_trans)
{
    size_t bytes = cl_state_ssm_bytes(s->c, with_trans);
    float *h = malloc(bytes ? bytes : 1);
    assert_non_null(h);
    if (cl_state_read_ssm(s, h, with_trans) != CL_OK)
        fail_msg("reading SSM state: %s", cl_errmsg());
    return h;
}

double cu_cmp(const char *what, const float *got, const float *ref, size_t n, double tol)
{
    double e = tu_rel_err(got, ref, n);
    print_message("    %-36s rel err %.3g (tol %.1g)\n", what, e, tol);
    if (!(e <= tol))
        fail_msg("%s: relative error %.3g > %.3g", what, e, tol);
    return e;
}

/* Our conv channels [c0, c0+C) ([W-1, Ctot] oldest first) vs the reference's
 * [C, W] whose column 0 is no longer live. */
static double cmp_conv(const char *what, const float *conv, int64_t W, int64_t Ctot, int64_t c0,
                     int64_t C, const float *ref, double tol)
{
    float *got = malloc((size_t)(C * W) * sizeof *got);
    for (int64_t c = 0; c < C; c++) {
        got[c * W] = ref[c * W];
        for (int64_t j = 0; j < W - 1; j++)
            got[c * W + 1 + j] = conv[j * Ctot + c0 + c];
    }
    double e = cu_cmp(what, got, ref, (size_t)(C * W), tol);
    free(got);
    return e;
}

static double worse(double a, double b) { return a > b ? a : b; }

double cu_check_composed(const cl_model *m, const cl_seq *s, const char *file, double tol)
{
    double worst = 0;
    const cl_config *cf = m->cfg;
    const cl_cache *c = s->c;
    char name[256];
    int64_t *scal;
    tu_load_i64(file, "composed.cache_position", &scal);
    assert_int_equal(s->kv_len, scal[0]);
    free(scal);
    tu_load_i64(file, "composed.seqlen_offset", &scal);
    assert_int_equal(s->pos, scal[0]);
    free(scal);
    int64_t T = s->kv_len, D = cf->head_dim, Hq = cf->num_heads, Hkv = cf->num_kv_heads;
    float *kv = malloc(cl_state_kv_bytes(c, T) + 1);
    assert_int_equal(cl_state_read_kv(s, 0, T, kv), CL_OK);
    int with_trans = cu_cache_has_trans(c);
    float *ssm = cu_read_ssm(s, with_trans);
    cl_compose_ssm_view *views;
    size_t floats;
    assert_int_equal(cl_compose_ssm_views(c, with_trans, &views, &floats), CL_OK);
    for (int64_t l = 0; l < cf->num_layers; l++) {
        const cl_layer_bw *lb = &m->layers[l];
        cl_layer_type t = cf->layer_types[l];
        float *ref;
        int64_t shape[8];
        int nd;
        if (cl_layer_is_attention(t)) {
            for (int v = 0; v < 2; v++) {
                snprintf(name, sizeof name, "composed.layer%lld.attn.%s", (long long)l,
                         v ? "v" : "k");
                int64_t n = tu_load_f32(file, name, &ref, shape, &nd);
                assert_int_equal(shape[2], T);
                const float *base = kv + (size_t)(lb->attn_index * 2 + v) * (size_t)(T * Hkv * D);
                float *got = malloc((size_t)n * sizeof *got);
                for (int64_t tt = 0; tt < T; tt++)
                    for (int64_t h = 0; h < Hkv; h++)
                        memcpy(got + (h * T + tt) * D, base + (tt * Hkv + h) * D,
                               (size_t)D * sizeof *got);
                worst = worse(worst, cu_cmp(name, got, ref, (size_t)n, tol));
                free(got);
                free(ref);
            }
            continue;
        }
        const cl_compose_ssm_view *v = &views[lb->ssm_index];
        const cl_ssm_layer *sl = &c->ssm[lb->ssm_index];
        int64_t W = sl->conv_width, Ctot = sl->conv_channels;
        if (t == CL_LAYER_M2) {
            snprintf(name, sizeof name, "composed.layer%lld.m2.conv", (long long)l);
            tu_load_f32(file, name, &ref, shape, &nd);
            worst = worse(worst, cmp_conv(name, ssm + v->conv, W, Ctot, 0, shape[1], ref, tol));
            free(ref);
            snprintf(name, sizeof name, "composed.layer%lld.m2.ssm", (long long)l);
            int64_t n = tu_load_f32(file, name, &ref, shape, &nd);
            /* the reference's TF32 chunk scan leaves its own SSM state ~7e-4 from exact
             * math (spec MODEL.md): compared at that noise floor */
            worst = worse(worst, cu_cmp(name, ssm + v->state, ref, (size_t)n, tol > 1e-3 ? tol : 1e-3));
            free(ref);
            snprintf(name, sizeof name, "composed.layer%lld.m2.log_aprods", (long long)l);
            n = tu_load_f32(file, name, &ref, shape, &nd);
            worst = worse(worst, cu_cmp(name, ssm + v->log_decay, ref, (size_t)n, tol));
            free(ref);
            continue;
        }
        const char *kind = t == CL_LAYER_GDN ? "gdn" : "gka";
        const char *parts[3] = {"conv_q", "conv_k", "conv_v"};
        int64_t c0 = 0, widths[3] = {Hq * D, Hkv * D, Hkv * D};
        for (int p = 0; p < 3; p++) {
            snprintf(name, sizeof name, "composed.layer%lld.%s.%s", (long long)l, kind, parts[p]);
            tu_load_f32(file, name, &ref, shape, &nd);
            worst = worse(worst, cmp_conv(name, ssm + v->conv, W, Ctot, c0, widths[p], ref, tol));
            free(ref);
            c0 += widths[p];
        }
        const char *st[2] = {t == CL_LAYER_GDN ? "recurrent" : "h_kv", "h_kk"};
        for (int p = 0; p < (t == CL_LAYER_GKA ? 2 : 1); p++) {
            snprintf(name, sizeof name, "composed.layer%lld.%s.%s", (long long)l, kind, st[p]);
            int64_t n = tu_load_f32(file, name, &ref, shape, &nd);
            worst = worse(worst, cu_cmp(name, ssm + (p ? v->state2 : v->state), ref, (size_t)n, tol));
            free(ref);
        }
    }
    free(views);
    free(ssm);
    free(kv);
    return worst;
}
