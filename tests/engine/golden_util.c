#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/status.h"
#include "golden_util.h"
#include "testutil.h"

double golden_tol(const cl_model *m)
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

const char *golden_path(const char *name, const char *file)
{
    char rel[512];
    snprintf(rel, sizeof rel, "golden/%s/%s", name, file);
    return tu_shared(rel);
}

cl_model *golden_load(const char *name, int64_t gka_num_iter)
{
    const char *dir = golden_path(name, "");
    cl_model_opts o;
    cl_model_opts_default(&o);
    o.backend = "cpu";
    o.gka_num_iter = gka_num_iter;
    cl_model *m = NULL;
    int rc = cl_model_load(dir, &o, &m);
    if (rc != 0)
        fail_msg("loading %s: %s", dir, cl_errmsg());
    return m;
}

int32_t *golden_ids(const char *file, const char *tensor, int64_t *n)
{
    int64_t *v;
    *n = tu_load_i64(file, tensor, &v);
    int32_t *r = malloc((size_t)(*n ? *n : 1) * sizeof *r);
    for (int64_t i = 0; i < *n; i++)
        r[i] = (int32_t)v[i];
    free(v);
    return r;
}

float *state_kv(const cl_seq *s, int attn_idx, int want_v, int64_t n)
{
    const cl_kv_layer *kv = &s->c->kv[attn_idx];
    int64_t H = kv->n_kv_heads, D = kv->head_dim, P = kv->page_tokens;
    float *out = malloc((size_t)(H * n * D) * sizeof *out);
    const float *pool = want_v ? kv->v : kv->k;
    for (int64_t t = 0; t < n; t++)
        for (int64_t h = 0; h < H; h++)
            memcpy(out + (h * n + t) * D,
                   pool + ((s->pages[t / P] * P + t % P) * H + h) * D, (size_t)D * sizeof *out);
    return out;
}

float *state_conv(const cl_seq *s, int ssm_idx, int64_t c0, int64_t C, const float *ref)
{
    const cl_ssm_layer *l = &s->c->ssm[ssm_idx];
    int64_t W = l->conv_width, Ctot = l->conv_channels;
    const float *st = l->conv + (int64_t)s->slot * (W - 1) * Ctot;
    float *out = malloc((size_t)(C * W) * sizeof *out);
    for (int64_t c = 0; c < C; c++) {
        out[c * W] = ref[c * W]; /* oldest reference slot: not part of the live state */
        for (int64_t j = 0; j < W - 1; j++)
            out[c * W + 1 + j] = st[j * Ctot + c0 + c];
    }
    return out;
}

const float *state_ssm(const cl_seq *s, int ssm_idx, int which)
{
    const cl_ssm_layer *l = &s->c->ssm[ssm_idx];
    size_t n = (size_t)(l->n_heads * l->head_dim * l->head_dim);
    return (which ? l->state2 : l->state) + (size_t)s->slot * n;
}

const float *state_log_decay(const cl_seq *s, int ssm_idx)
{
    const cl_ssm_layer *l = &s->c->ssm[ssm_idx];
    return l->log_decay + (size_t)s->slot * (size_t)l->n_heads;
}

static void cmp(const char *what, const float *got, const float *ref, size_t n, double tol)
{
    double e = tu_rel_err(got, ref, n);
    print_message("    %-40s rel err %.3g (tol %.1g)\n", what, e, tol);
    if (!(e <= tol))
        fail_msg("%s: relative error %.3g > %.3g", what, e, tol);
}

void check_states(const cl_model *m, const cl_seq *s, const char *case_name, const char *file,
                  const char *prefix, double tol)
{
    (void)case_name;
    const cl_config *cf = m->cfg;
    char name[256];
    int64_t D = cf->head_dim, Hq = cf->num_heads, Hkv = cf->num_kv_heads;
    for (int64_t l = 0; l < cf->num_layers; l++) {
        const cl_layer_bw *lb = &m->layers[l];
        cl_layer_type t = cf->layer_types[l];
        float *ref;
        int64_t shape[8];
        int nd;
        if (cl_layer_is_attention(t)) {
            for (int v = 0; v < 2; v++) {
                snprintf(name, sizeof name, "%s.layer%lld.attn.%s", prefix, (long long)l,
                         v ? "v" : "k");
                int64_t n = tu_load_f32(file, name, &ref, shape, &nd);
                float *got = state_kv(s, lb->attn_index, v, shape[2]);
                cmp(name, got, ref, (size_t)n, tol);
                free(got);
                free(ref);
            }
            continue;
        }
        int si = lb->ssm_index;
        if (t == CL_LAYER_M2) {
            snprintf(name, sizeof name, "%s.layer%lld.m2.conv", prefix, (long long)l);
            int64_t n = tu_load_f32(file, name, &ref, shape, &nd);
            float *got = state_conv(s, si, 0, shape[1], ref);
            cmp(name, got, ref, (size_t)n, tol);
            free(got);
            free(ref);
            snprintf(name, sizeof name, "%s.layer%lld.m2.ssm", prefix, (long long)l);
            n = tu_load_f32(file, name, &ref, shape, &nd);
            /* The reference's Mamba2 chunk-scan kernel multiplies in TF32: its stored SSM
             * state is itself only ~7e-4 from exact math (spec MODEL.md verification
             * table: an fp64 implementation lands at 6.7e-4), so this one state is
             * compared at the reference's noise floor, 1e-3, not 1e-4. */
            cmp(name, state_ssm(s, si, 0), ref, (size_t)n, tol > 1e-3 ? tol : 1e-3);
            free(ref);
            snprintf(name, sizeof name, "%s.layer%lld.m2.log_aprods", prefix, (long long)l);
            if (tu_has_tensor(file, name)) {
                n = tu_load_f32(file, name, &ref, shape, &nd);
                cmp(name, state_log_decay(s, si), ref, (size_t)n, tol);
                free(ref);
            }
            continue;
        }
        const char *kind = t == CL_LAYER_GDN ? "gdn" : "gka";
        const char *parts[3] = {"conv_q", "conv_k", "conv_v"};
        int64_t c0 = 0, widths[3] = {Hq * D, Hkv * D, Hkv * D};
        for (int p = 0; p < 3; p++) {
            snprintf(name, sizeof name, "%s.layer%lld.%s.%s", prefix, (long long)l, kind,
                     parts[p]);
            int64_t n = tu_load_f32(file, name, &ref, shape, &nd);
            float *got = state_conv(s, si, c0, widths[p], ref);
            cmp(name, got, ref, (size_t)n, tol);
            free(got);
            free(ref);
            c0 += widths[p];
        }
        if (t == CL_LAYER_GDN) {
            snprintf(name, sizeof name, "%s.layer%lld.gdn.recurrent", prefix, (long long)l);
            int64_t n = tu_load_f32(file, name, &ref, shape, &nd);
            cmp(name, state_ssm(s, si, 0), ref, (size_t)n, tol);
            free(ref);
        } else {
            snprintf(name, sizeof name, "%s.layer%lld.gka.h_kv", prefix, (long long)l);
            int64_t n = tu_load_f32(file, name, &ref, shape, &nd);
            cmp(name, state_ssm(s, si, 0), ref, (size_t)n, tol);
            free(ref);
            snprintf(name, sizeof name, "%s.layer%lld.gka.h_kk", prefix, (long long)l);
            if (tu_has_tensor(file, name)) {
                n = tu_load_f32(file, name, &ref, shape, &nd);
                cmp(name, state_ssm(s, si, 1), ref, (size_t)n, tol);
                free(ref);
            }
        }
    }
}
