/* op_util.c - problems of the per-op tests: generation (host), runs on a backend
 * under a schedule, and comparisons (see op_util.h). */
#include "op_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/half.h"
#include "common/rng.h"
#include "common/status.h"

/* ------------------------------------------------------------ random inputs */

/* x[i] = value i of stream `name` of the problem's seed (cl_rng_value kinds). */
static void fill(float *x, size_t n, uint64_t seed, const char *name, int kind, float a, float b)
{
    uint64_t key = cl_rng_key(seed, name);
    for (size_t i = 0; i < n; i++)
        x[i] = cl_rng_value(kind, key, i, a, b);
}

static float silu(float x) { return x / (1.0f + expf(-x)); }
static float sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

static void round_bf16(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] = cl_bf16_to_f32(cl_f32_to_bf16(x[i]));
}

/* Scales each of n vectors of D values (vector j at x + j * stride) to RMS `rms`:
 * what a head RMSNorm with weights `rms` makes of a projection's output. */
static void rms_vectors(float *x, int64_t n, int64_t stride, int64_t D, float rms)
{
    for (int64_t j = 0; j < n; j++) {
        float *v = x + j * stride;
        double ss = 0;
        for (int64_t i = 0; i < D; i++)
            ss += (double)v[i] * v[i];
        float f = (float)(rms / sqrt(ss / (double)D + 1e-12));
        for (int64_t i = 0; i < D; i++)
            v[i] *= f;
    }
}

static float *falloc(size_t n) { return calloc(n ? n : 1, sizeof(float)); }

/* ------------------------------------------------------------ problem */

/* Main input rows, in the ranges the op sees in the model. */
static void make_inputs(ou_problem *p)
{
    const ou_spec *sp = &p->sp;
    const int64_t T = p->T, Hq = sp->n_heads, Hkv = sp->n_kv_heads, D = sp->head_dim;
    const uint64_t s = sp->seed;
    fill(p->in, (size_t)(T * p->in_ld), s, "in", CL_RNG_NORMAL, 1.0f, 0.0f);
    if (sp->op == OU_ATTN) {
        /* q, k after their head RMSNorms (q with a gain of 2, so that the softmax
         * is peaked as in trained models), v a projection's output */
        for (int64_t t = 0; t < T; t++) {
            float *r = p->in + t * p->in_ld;
            rms_vectors(r, Hq, D, D, 2.0f);
            rms_vectors(r + Hq * D, Hkv, D, D, 1.0f);
        }
        if (sp->bf16_model) /* K/V are stored as bf16: the reference sees those values */
            for (int64_t t = 0; t < T; t++)
                round_bf16(p->in + t * p->in_ld + Hq * D, (size_t)(2 * Hkv * D));
    } else if (sp->op != OU_CONV) {
        /* SSM mixers take post-conv activations: silu of the conv's sum */
        for (int64_t t = 0; t < T; t++)
            for (int64_t i = 0; i < p->in_cols; i++)
                p->in[t * p->in_ld + i] = silu(p->in[t * p->in_ld + i]);
    }
    if (p->gate) /* raw gate projections (biases are added inside the ops) */
        fill(p->gate, (size_t)(T * p->gate_ld), s, "gate", CL_RNG_NORMAL, 1.0f, 0.0f);
}

static int add_weight(ou_problem *p, int64_t rows, int64_t cols, const char *name, int kind,
                      float a, float b)
{
    int i = p->n_wt++;
    p->wt_rows[i] = rows;
    p->wt_cols[i] = cols;
    if (!(p->wt[i] = falloc((size_t)(rows * cols))))
        return cl_err(CL_ERR_NOMEM, "op test: out of memory");
    fill(p->wt[i], (size_t)(rows * cols), p->sp.seed, name, kind, a, b);
    if (p->sp.bf16_model)
        round_bf16(p->wt[i], (size_t)(rows * cols));
    return CL_OK;
}

/* Per-slot pools: guard slot 0 always random (a write there is seen), the
 * sequences' slots random when sp->init_state, else zero. */
static void slot_pool(const ou_problem *p, float *x, size_t per_slot, const char *name, float std,
                      float mean, int zero_is_identity)
{
    const int init = p->sp.init_state;
    fill(x, per_slot * (size_t)p->n_slots, p->sp.seed, name, CL_RNG_NORMAL, std, mean);
    if (init)
        return;
    memset(x + per_slot, 0, per_slot * (size_t)(p->n_slots - 1) * sizeof *x);
    if (zero_is_identity) { /* GDN transition product of a fresh slot: identity per head */
        const int64_t D = p->sp.head_dim;
        for (size_t m = per_slot; m < per_slot * (size_t)p->n_slots; m += (size_t)(D * D))
            for (int64_t i = 0; i < D; i++)
                x[m + (size_t)(i * D + i)] = 1.0f;
    }
}

/* GKA initial states of the sequences' slots: h_kk and h_kv of a random history of
 * 16 decayed tokens (h_kk must be a Gram matrix: symmetric positive semi-definite). */
static void gka_history(ou_problem *p)
{
    const int64_t H = p->sp.n_heads, D = p->sp.head_dim, m = 16;
    float *k = falloc((size_t)D), *v = falloc((size_t)D);
    if (!k || !v)
        goto out;
    uint64_t key = cl_rng_key(p->sp.seed, "gka history");
    uint64_t ctr = 0;
    for (int64_t sl = 1; sl < p->n_slots; sl++)
        for (int64_t h = 0; h < H; h++) {
            float *S = p->state + (sl * H + h) * D * D, *Hm = p->state2 + (sl * H + h) * D * D;
            memset(S, 0, (size_t)(D * D) * sizeof *S);
            memset(Hm, 0, (size_t)(D * D) * sizeof *Hm);
            for (int64_t j = 0; j < m; j++) {
                double nn = 0;
                for (int64_t i = 0; i < D; i++) {
                    k[i] = cl_rng_normal(key, ctr++);
                    v[i] = silu(cl_rng_normal(key, ctr++));
                    nn += (double)k[i] * k[i];
                }
                float beta = sigmoid(cl_rng_normal(key, ctr++)) + 1e-6f;
                float w = expf(-0.2f * (float)(m - 1 - j)), kn = (float)(1.0 / sqrt(nn));
                for (int64_t i = 0; i < D; i++)
                    k[i] *= beta * kn;
                for (int64_t a = 0; a < D; a++)
                    for (int64_t b = 0; b < D; b++) {
                        Hm[a * D + b] += w * k[a] * k[b];
                        S[a * D + b] += w * k[a] * beta * v[b];
                    }
            }
        }
out:
    free(k);
    free(v);
}

static int make_pools(ou_problem *p)
{
    const ou_spec *sp = &p->sp;
    const int64_t H = sp->n_heads, D = sp->head_dim;
    p->n_slots = sp->n_seq + 1;
    if (sp->op == OU_ATTN) {
        const int64_t P = sp->page_tokens, Hkv = sp->n_kv_heads;
        int64_t used = 0, np[OU_MAX_SEQ];
        for (int i = 0; i < sp->n_seq; i++) {
            np[i] = (sp->kv_start[i] + sp->n_tok[i] + P - 1) / P;
            used += np[i];
        }
        p->n_pages = used + 2; /* page 0 and the last page belong to no sequence */
        p->n_kv = (size_t)(p->n_pages * P * Hkv * D);
        p->kv_k = falloc(p->n_kv);
        p->kv_v = falloc(p->n_kv);
        int32_t *order = malloc((size_t)used * sizeof *order + 1);
        if (!p->kv_k || !p->kv_v || !order) {
            free(order);
            return cl_err(CL_ERR_NOMEM, "op test: out of memory");
        }
        /* cached K after its norm (RMS 1 per head), V a projection's output */
        fill(p->kv_k, p->n_kv, sp->seed, "kv k", CL_RNG_NORMAL, 1.0f, 0.0f);
        fill(p->kv_v, p->n_kv, sp->seed, "kv v", CL_RNG_NORMAL, 1.0f, 0.0f);
        rms_vectors(p->kv_k, (int64_t)(p->n_kv / (size_t)D), D, D, 1.0f);
        if (sp->bf16_model) {
            round_bf16(p->kv_k, p->n_kv);
            round_bf16(p->kv_v, p->n_kv);
        }
        /* pages 1..used, shuffled, handed out in order */
        uint64_t key = cl_rng_key(sp->seed, "pages");
        for (int64_t j = 0; j < used; j++)
            order[j] = (int32_t)(j + 1);
        for (int64_t j = used - 1; j > 0; j--) {
            int64_t r = (int64_t)(cl_rng_uniform(key, (uint64_t)j) * (float)(j + 1));
            if (r > j)
                r = j;
            int32_t t = order[j];
            order[j] = order[r];
            order[r] = t;
        }
        int64_t next = 0;
        for (int i = 0; i < sp->n_seq; i++) {
            if (!(p->blocks[i] = malloc((size_t)np[i] * sizeof(int32_t) + 1))) {
                free(order);
                return cl_err(CL_ERR_NOMEM, "op test: out of memory");
            }
            memcpy(p->blocks[i], order + next, (size_t)np[i] * sizeof(int32_t));
            next += np[i];
        }
        free(order);
        return CL_OK;
    }
    if (sp->op == OU_CONV) {
        size_t per = (size_t)((sp->width - 1) * sp->channels);
        p->n_conv = per * (size_t)p->n_slots;
        if (!(p->conv = falloc(p->n_conv)))
            return cl_err(CL_ERR_NOMEM, "op test: out of memory");
        slot_pool(p, p->conv, per, "conv state", 1.0f, 0.0f, 0); /* pre-conv inputs */
        return CL_OK;
    }
    size_t per = (size_t)(H * D * D);
    p->n_state = per * (size_t)p->n_slots;
    p->n_logd = (size_t)(H * p->n_slots);
    p->state = falloc(p->n_state);
    p->log_decay = falloc(p->n_logd);
    if (sp->op == OU_GKA)
        p->state2 = falloc(p->n_state);
    if (sp->op == OU_GDN && sp->track_trans)
        p->trans = falloc(p->n_state);
    if (!p->state || !p->log_decay || (sp->op == OU_GKA && !p->state2) ||
        (sp->op == OU_GDN && sp->track_trans && !p->trans))
        return cl_err(CL_ERR_NOMEM, "op test: out of memory");
    /* log decays accumulate sums of negative gates */
    slot_pool(p, p->log_decay, (size_t)H, "log decay", 1.0f, -3.0f, 0);
    slot_pool(p, p->state, per, "state", 0.5f, 0.0f, 0);
    if (p->state2) {
        slot_pool(p, p->state2, per, "state2", 0.5f, 0.0f, 0);
        if (sp->init_state)
            gka_history(p);
    }
    if (p->trans) /* a product of transitions e^g (I - beta k k^T): near a scaled identity */
        slot_pool(p, p->trans, per, "trans", 0.05f, 0.0f, 1);
    if (p->trans && sp->init_state)
        for (int64_t m = 0; m < H * p->n_slots; m++)
            for (int64_t i = 0; i < D; i++)
                p->trans[m * D * D + i * D + i] += 0.8f;
    return CL_OK;
}

int ou_problem_make(const ou_spec *sp, ou_problem *p)
{
    memset(p, 0, sizeof *p);
    p->sp = *sp;
    const int64_t Hq = sp->n_heads, Hkv = sp->n_kv_heads, D = sp->head_dim, H = Hq;
    if (sp->n_seq < 1 || sp->n_seq > OU_MAX_SEQ)
        return cl_err(CL_ERR_ARG, "op test: %d sequences", sp->n_seq);
    for (int i = 0; i < sp->n_seq; i++) {
        if (sp->n_tok[i] < 1)
            return cl_err(CL_ERR_ARG, "op test: sequence %d has no tokens", i);
        p->row0[i] = p->T;
        p->T += sp->n_tok[i];
    }
    int64_t gate_cols = 0;
    switch (sp->op) {
    case OU_ATTN:
        p->in_cols = p->in_ld = (Hq + 2 * Hkv) * D;
        p->out_cols = Hq * D;
        break;
    case OU_CONV:
        p->in_cols = sp->channels;
        /* a row stride wider than the channels (a multiple of 4 with them: the
         * CUDA backend's vector path needs 16-byte rows) */
        p->in_ld = sp->channels + 4;
        p->out_cols = sp->channels;
        break;
    case OU_M2: /* x | B (Hkv heads each) | C (Hq heads): the conv's channels */
    case OU_GDN: /* q (Hq heads) | k | v (Hkv heads each) */
    case OU_GKA:
        p->in_cols = p->in_ld = (Hq + 2 * Hkv) * D;
        p->out_cols = Hq * D;
        gate_cols = sp->op == OU_M2 ? H : sp->op == OU_GDN ? 2 * H : 3 * H;
        p->gate_ld = gate_cols + 3; /* a row stride wider than the gates */
        break;
    }
    p->in = falloc((size_t)(p->T * p->in_ld));
    if (gate_cols)
        p->gate = falloc((size_t)(p->T * p->gate_ld));
    if (!p->in || (gate_cols && !p->gate))
        goto nomem;
    make_inputs(p);
    int rc = CL_OK;
    switch (sp->op) {
    case OU_ATTN: break;
    case OU_CONV:
        /* depthwise conv init: uniform within +-1/sqrt(W) */
        rc = add_weight(p, sp->channels, sp->width, "conv w", CL_RNG_UNIFORM,
                        2.0f / sqrtf((float)sp->width), -1.0f / sqrtf((float)sp->width));
        if (rc == CL_OK && sp->conv_bias)
            rc = add_weight(p, 1, sp->channels, "conv b", CL_RNG_UNIFORM, 1.0f, -0.5f);
        break;
    case OU_M2: /* dt_bias, a_log, d_skip */
        rc = add_weight(p, 1, H, "dt_bias", CL_RNG_DT_BIAS, 0, 0);
        if (rc == CL_OK)
            rc = add_weight(p, 1, H, "a_log", CL_RNG_A_LOG, 0, 0);
        if (rc == CL_OK)
            rc = add_weight(p, 1, H, "d_skip", CL_RNG_UNIFORM, 1.0f, 0.5f);
        break;
    case OU_GDN: /* a_log, dt_bias */
        rc = add_weight(p, 1, H, "a_log", CL_RNG_A_LOG, 0, 0);
        if (rc == CL_OK)
            rc = add_weight(p, 1, H, "dt_bias", CL_RNG_DT_BIAS, 0, 0);
        break;
    case OU_GKA: /* b_bias, alpha_bias, a_log, dt_bias */
        rc = add_weight(p, 1, H, "b_bias", CL_RNG_NORMAL, 0.5f, 0.0f);
        if (rc == CL_OK)
            rc = add_weight(p, 1, H, "alpha_bias", CL_RNG_NORMAL, 0.5f, 0.0f);
        if (rc == CL_OK)
            rc = add_weight(p, 1, H, "a_log", CL_RNG_A_LOG, 0, 0);
        if (rc == CL_OK)
            rc = add_weight(p, 1, H, "dt_bias", CL_RNG_DT_BIAS, 0, 0);
        break;
    }
    if (rc == CL_OK)
        rc = make_pools(p);
    if (rc != CL_OK)
        ou_problem_free(p);
    return rc;
nomem:
    ou_problem_free(p);
    return cl_err(CL_ERR_NOMEM, "op test: out of memory");
}

void ou_problem_free(ou_problem *p)
{
    free(p->in);
    free(p->gate);
    for (int i = 0; i < 4; i++)
        free(p->wt[i]);
    for (int i = 0; i < OU_MAX_SEQ; i++)
        free(p->blocks[i]);
    free(p->kv_k);
    free(p->kv_v);
    free(p->conv);
    free(p->state);
    free(p->state2);
    free(p->log_decay);
    free(p->trans);
    memset(p, 0, sizeof *p);
}

void ou_result_free(ou_result *r)
{
    free(r->out);
    free(r->kv_k);
    free(r->kv_v);
    free(r->conv);
    free(r->state);
    free(r->state2);
    free(r->log_decay);
    free(r->trans);
    memset(r, 0, sizeof *r);
}
