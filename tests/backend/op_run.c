/* op_run.c - runs a problem of op_util.h on a backend under a schedule of op
 * calls, and compares results. Backend memory is reached only through the op
 * table (alloc, from_host, to_host), so the same code drives the CPU and the
 * CUDA backend. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/status.h"
#include "op_util.h"
#include "testutil.h"

/* A part of a call: tokens [first, first + n) of sequence seq. */
typedef struct {
    int seq;
    int64_t first, n;
} part;

typedef struct {
    cl_backend *b;
    const ou_problem *p;
    cl_dtype kv_dtype;
    /* backend memory */
    float *in, *gate, *out;
    cl_bweight wt[4];
    void *kv_k, *kv_v;
    float *conv, *state, *state2, *log_decay, *trans;
    /* host staging of one call */
    float *h_in, *h_gate, *h_out;
    int32_t *tokens;
    int64_t *positions;
} runner;

static int slot_of(const ou_problem *p, int seq) { return p->sp.n_seq - seq; }

/* ------------------------------------------------------------ memory */

static int dev_alloc(runner *R, void **dst, size_t bytes)
{
    *dst = R->b->ops->alloc(R->b, bytes ? bytes : 1);
    return *dst ? CL_OK : cl_err(CL_ERR_NOMEM, "op test: backend alloc of %zu bytes", bytes);
}

/* Uploads n fp32 host values as dtype t. */
static int upload(runner *R, void *dst, const float *src, size_t n, cl_dtype t)
{
    if (t == CL_F32)
        return R->b->ops->from_host(R->b, dst, src, n * sizeof(float));
    void *tmp = malloc(n * cl_dtype_size(t) + 1);
    if (!tmp)
        return cl_err(CL_ERR_NOMEM, "op test: out of memory");
    cl_convert_from_f32(tmp, t, src, n);
    int rc = R->b->ops->from_host(R->b, dst, tmp, n * cl_dtype_size(t));
    free(tmp);
    return rc;
}

/* Downloads n values of dtype t into a new fp32 host array *out. */
static int download(runner *R, float **out, const void *src, size_t n, cl_dtype t)
{
    *out = malloc(n * sizeof(float) + 1);
    void *tmp = t == CL_F32 ? (void *)*out : malloc(n * cl_dtype_size(t) + 1);
    if (!*out || !tmp) {
        if (tmp != *out)
            free(tmp);
        return cl_err(CL_ERR_NOMEM, "op test: out of memory");
    }
    int rc = R->b->ops->to_host(R->b, tmp, src, n * cl_dtype_size(t));
    if (t != CL_F32) {
        if (rc == CL_OK)
            cl_convert_to_f32(*out, tmp, t, n);
        free(tmp);
    }
    return rc;
}

static int runner_open(runner *R, cl_backend *b, const ou_problem *p)
{
    memset(R, 0, sizeof *R);
    R->b = b;
    R->p = p;
    const ou_spec *sp = &p->sp;
    const int64_t T = p->T;
    R->kv_dtype = sp->op == OU_ATTN ? b->ops->kv_dtype(b, sp->bf16_model ? CL_BF16 : CL_F32)
                                    : CL_F32;
    R->h_in = malloc((size_t)(T * p->in_ld) * sizeof(float));
    R->h_gate = malloc((size_t)(T * (p->gate_ld ? p->gate_ld : 1)) * sizeof(float));
    R->h_out = malloc((size_t)((T + 1) * p->out_cols) * sizeof(float));
    R->tokens = calloc((size_t)T, sizeof *R->tokens);
    R->positions = calloc((size_t)T, sizeof *R->positions);
    if (!R->h_in || !R->h_gate || !R->h_out || !R->tokens || !R->positions)
        return cl_err(CL_ERR_NOMEM, "op test: out of memory");
    CL_TRY(dev_alloc(R, (void **)&R->in, (size_t)(T * p->in_ld) * sizeof(float)));
    if (p->gate)
        CL_TRY(dev_alloc(R, (void **)&R->gate, (size_t)(T * p->gate_ld) * sizeof(float)));
    CL_TRY(dev_alloc(R, (void **)&R->out, (size_t)((T + 1) * p->out_cols) * sizeof(float)));
    for (int i = 0; i < p->n_wt; i++)
        CL_TRY(b->ops->weight_from_f32(b, p->wt[i], p->wt_rows[i], p->wt_cols[i], &R->wt[i]));
    size_t kvb = p->n_kv * cl_dtype_size(R->kv_dtype);
    if (p->kv_k) {
        CL_TRY(dev_alloc(R, &R->kv_k, kvb));
        CL_TRY(dev_alloc(R, &R->kv_v, kvb));
        CL_TRY(upload(R, R->kv_k, p->kv_k, p->n_kv, R->kv_dtype));
        CL_TRY(upload(R, R->kv_v, p->kv_v, p->n_kv, R->kv_dtype));
    }
    struct {
        float **dst;
        const float *src;
        size_t n;
    } pools[] = {{&R->conv, p->conv, p->n_conv},     {&R->state, p->state, p->n_state},
                 {&R->state2, p->state2, p->n_state}, {&R->log_decay, p->log_decay, p->n_logd},
                 {&R->trans, p->trans, p->n_state}};
    for (size_t i = 0; i < sizeof pools / sizeof pools[0]; i++) {
        if (!pools[i].src)
            continue;
        CL_TRY(dev_alloc(R, (void **)pools[i].dst, pools[i].n * sizeof(float)));
        CL_TRY(upload(R, *pools[i].dst, pools[i].src, pools[i].n, CL_F32));
    }
    return CL_OK;
}

static void runner_close(runner *R)
{
    cl_backend *b = R->b;
    if (!b)
        return;
    void *dev[] = {R->in,    R->gate,   R->out,       R->kv_k, R->kv_v,
                   R->conv,  R->state,  R->state2,    R->log_decay, R->trans};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++)
        if (dev[i])
            b->ops->free(b, dev[i]);
    for (int i = 0; i < 4; i++)
        if (R->wt[i].data)
            b->ops->weight_free(b, &R->wt[i]);
    free(R->h_in);
    free(R->h_gate);
    free(R->h_out);
    free(R->tokens);
    free(R->positions);
    memset(R, 0, sizeof *R);
}

/* ------------------------------------------------------------ one call */

static int call_op(runner *R, const cl_batch *bt)
{
    const ou_problem *p = R->p;
    const ou_spec *sp = &p->sp;
    cl_backend *b = R->b;
    const cl_backend_ops *o = b->ops;
    const int64_t Hq = sp->n_heads, Hkv = sp->n_kv_heads, D = sp->head_dim, H = Hq;
    cl_mixer_params mp;
    memset(&mp, 0, sizeof mp);
    mp.n_heads = Hq;
    mp.n_kv_heads = Hkv;
    mp.head_dim = D;
    mp.scale = D > 0 ? (float)(1.0 / sqrt((double)D)) : 1.0f;
    mp.window = sp->window;
    mp.allow_neg_eigval = sp->allow_neg_eigval;
    mp.num_iter = sp->num_iter;
    mp.ridge_strength = sp->ridge;
    mp.use_alpha = sp->use_alpha;
    cl_kv_layer kv = {R->kv_k, R->kv_v, sp->page_tokens, Hkv, D, R->kv_dtype};
    cl_ssm_layer s;
    memset(&s, 0, sizeof s);
    s.conv = R->conv;
    s.state = R->state;
    s.state2 = R->state2;
    s.log_decay = R->log_decay;
    s.trans = R->trans;
    s.conv_channels = sp->op == OU_CONV ? sp->channels : p->in_cols;
    s.conv_width = sp->op == OU_CONV ? sp->width : 4;
    s.n_heads = H;
    s.head_dim = D;
    const float *g = R->gate;
    switch (sp->op) {
    case OU_ATTN:
        return o->attention(b, R->out, R->in, p->in_ld, R->in + Hq * D, R->in + (Hq + Hkv) * D,
                            p->in_ld, &kv, bt, &mp);
    case OU_CONV:
        return o->conv1d(b, R->out, R->in, p->in_ld, &R->wt[0], sp->conv_bias ? &R->wt[1] : NULL,
                         &s, bt);
    case OU_M2:
        return o->mamba2(b, R->out, R->in, g, p->gate_ld, &R->wt[0], &R->wt[1], &R->wt[2], &s, bt,
                         &mp);
    case OU_GDN:
        return o->gdn(b, R->out, R->in, g, g + H, p->gate_ld, &R->wt[0], &R->wt[1], &s, bt, &mp);
    case OU_GKA:
        return o->gka(b, R->out, R->in, g, g + H, g + 2 * H, p->gate_ld, &R->wt[0], &R->wt[1],
                      &R->wt[2], &R->wt[3], &s, bt, &mp);
    }
    return cl_err(CL_ERR_ARG, "op test: unknown op %d", (int)sp->op);
}

/* One op call over the given parts; the output rows go to r->out. */
static int run_call(runner *R, const part *parts, int n_parts, ou_result *r)
{
    const ou_problem *p = R->p;
    const ou_spec *sp = &p->sp;
    cl_backend *b = R->b;
    cl_batch_seq bs[OU_MAX_SEQ];
    int64_t rows = 0;
    for (int k = 0; k < n_parts; k++) {
        const part *pt = &parts[k];
        memset(&bs[k], 0, sizeof bs[k]);
        bs[k].tok_start = rows;
        bs[k].n_tok = pt->n;
        bs[k].kv_start = sp->kv_start[pt->seq] + pt->first;
        bs[k].blocks = sp->op == OU_ATTN ? p->blocks[pt->seq] : NULL;
        bs[k].slot = slot_of(p, pt->seq);
        bs[k].hide_lo = sp->hide_lo[pt->seq];
        bs[k].hide_hi = sp->hide_hi[pt->seq];
        for (int64_t i = 0; i < pt->n; i++) {
            int64_t src = p->row0[pt->seq] + pt->first + i;
            memcpy(R->h_in + (rows + i) * p->in_ld, p->in + src * p->in_ld,
                   (size_t)p->in_ld * sizeof(float));
            if (p->gate)
                memcpy(R->h_gate + (rows + i) * p->gate_ld, p->gate + src * p->gate_ld,
                       (size_t)p->gate_ld * sizeof(float));
            R->positions[rows + i] = bs[k].kv_start + i;
        }
        rows += pt->n;
    }
    const size_t n_out = (size_t)((rows + 1) * p->out_cols);
    for (size_t i = 0; i < n_out; i++)
        R->h_out[i] = NAN; /* poison: every element of the call's rows must be written */
    CL_TRY(upload(R, R->in, R->h_in, (size_t)(rows * p->in_ld), CL_F32));
    if (p->gate)
        CL_TRY(upload(R, R->gate, R->h_gate, (size_t)(rows * p->gate_ld), CL_F32));
    CL_TRY(upload(R, R->out, R->h_out, n_out, CL_F32));
    cl_batch bt = {n_parts, rows, bs, R->tokens, R->positions, NULL};
    CL_TRY(b->ops->batch_prepare(b, &bt));
    int rc = call_op(R, &bt);
    b->ops->batch_release(b, &bt);
    CL_TRY(rc);
    CL_TRY(b->ops->to_host(b, R->h_out, R->out, n_out * sizeof(float)));
    const size_t n_rows = (size_t)(rows * p->out_cols);
    for (size_t i = 0; i < n_out; i++) {
        if (i < n_rows)
            r->unwritten += isnan(R->h_out[i]) != 0;
        else
            r->overrun += !isnan(R->h_out[i]);
    }
    int64_t row = 0;
    for (int k = 0; k < n_parts; k++) {
        memcpy(r->out + (p->row0[parts[k].seq] + parts[k].first) * p->out_cols,
               R->h_out + row * p->out_cols, (size_t)(parts[k].n * p->out_cols) * sizeof(float));
        row += parts[k].n;
    }
    return CL_OK;
}

/* ------------------------------------------------------------ final pools */

static int64_t changed(const float *a, const float *b, size_t n)
{
    int64_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += memcmp(&a[i], &b[i], sizeof a[i]) != 0;
    return c;
}

/* Elements changed where no sequence of the problem may write: slot 0 of the
 * SSM pools, KV positions outside every sequence's new slots. */
static int64_t foreign_changes(const ou_problem *p, const ou_result *r)
{
    const ou_spec *sp = &p->sp;
    int64_t c = 0;
    if (p->conv)
        c += changed(r->conv, p->conv, p->n_conv / (size_t)p->n_slots);
    const float *init[] = {p->state, p->state2, p->log_decay, p->trans};
    const float *fin[] = {r->state, r->state2, r->log_decay, r->trans};
    const size_t n[] = {p->n_state, p->n_state, p->n_logd, p->n_state};
    for (int i = 0; i < 4; i++)
        if (init[i])
            c += changed(fin[i], init[i], n[i] / (size_t)p->n_slots);
    if (!p->kv_k)
        return c;
    const int64_t P = sp->page_tokens, per = sp->n_kv_heads * sp->head_dim;
    unsigned char *mine = calloc((size_t)(p->n_pages * P), 1);
    if (!mine)
        return -1;
    for (int s = 0; s < sp->n_seq; s++)
        for (int64_t j = sp->kv_start[s]; j < sp->kv_start[s] + sp->n_tok[s]; j++)
            mine[p->blocks[s][j / P] * P + j % P] = 1;
    for (int64_t pos = 0; pos < p->n_pages * P; pos++)
        if (!mine[pos])
            c += changed(r->kv_k + pos * per, p->kv_k + pos * per, (size_t)per) +
                 changed(r->kv_v + pos * per, p->kv_v + pos * per, (size_t)per);
    free(mine);
    return c;
}

static int read_pools(runner *R, ou_result *r)
{
    const ou_problem *p = R->p;
    if (p->kv_k) {
        CL_TRY(download(R, &r->kv_k, R->kv_k, p->n_kv, R->kv_dtype));
        CL_TRY(download(R, &r->kv_v, R->kv_v, p->n_kv, R->kv_dtype));
    }
    if (p->conv)
        CL_TRY(download(R, &r->conv, R->conv, p->n_conv, CL_F32));
    if (p->state)
        CL_TRY(download(R, &r->state, R->state, p->n_state, CL_F32));
    if (p->state2)
        CL_TRY(download(R, &r->state2, R->state2, p->n_state, CL_F32));
    if (p->log_decay)
        CL_TRY(download(R, &r->log_decay, R->log_decay, p->n_logd, CL_F32));
    if (p->trans)
        CL_TRY(download(R, &r->trans, R->trans, p->n_state, CL_F32));
    r->foreign = foreign_changes(p, r);
    return CL_OK;
}

/* ------------------------------------------------------------ schedules */

static int run_schedule(runner *R, ou_schedule sch, ou_result *r)
{
    const ou_spec *sp = &R->p->sp;
    part parts[OU_MAX_SEQ];
    int n = 0;
    switch (sch) {
    case OU_WHOLE:
        for (int s = 0; s < sp->n_seq; s++)
            parts[n++] = (part){s, 0, sp->n_tok[s]};
        return run_call(R, parts, n, r);
    case OU_ALONE:
        for (int s = 0; s < sp->n_seq; s++) {
            parts[0] = (part){s, 0, sp->n_tok[s]};
            CL_TRY(run_call(R, parts, 1, r));
        }
        return CL_OK;
    case OU_STEPS:
        for (int64_t t = 0;; t++) {
            n = 0;
            for (int s = 0; s < sp->n_seq; s++)
                if (t < sp->n_tok[s])
                    parts[n++] = (part){s, t, 1};
            if (!n)
                return CL_OK;
            CL_TRY(run_call(R, parts, n, r));
        }
    case OU_SPLIT:
        for (int s = 0; s < sp->n_seq; s++)
            parts[n++] = (part){s, 0, sp->split < sp->n_tok[s] ? sp->split : sp->n_tok[s]};
        CL_TRY(run_call(R, parts, n, r));
        n = 0;
        for (int s = 0; s < sp->n_seq; s++)
            if (sp->split < sp->n_tok[s])
                parts[n++] = (part){s, sp->split, sp->n_tok[s] - sp->split};
        return n ? run_call(R, parts, n, r) : CL_OK;
    }
    return cl_err(CL_ERR_ARG, "op test: unknown schedule %d", (int)sch);
}

int ou_run(cl_backend *b, const ou_problem *p, ou_schedule sch, ou_result *r)
{
    memset(r, 0, sizeof *r);
    r->out = malloc((size_t)(p->T * p->out_cols) * sizeof(float));
    if (!r->out)
        return cl_err(CL_ERR_NOMEM, "op test: out of memory");
    for (size_t i = 0; i < (size_t)(p->T * p->out_cols); i++)
        r->out[i] = NAN;
    runner R;
    int rc = runner_open(&R, b, p);
    if (rc == CL_OK)
        rc = run_schedule(&R, sch, r);
    if (rc == CL_OK)
        rc = read_pools(&R, r);
    runner_close(&R);
    return rc;
}

/* ------------------------------------------------------------ comparisons */

int ou_compare(const ou_problem *p, const char *what, const ou_result *a, const ou_result *ref,
               const ou_tol *tol)
{
    struct {
        const char *name;
        const float *x, *y;
        size_t n;
    } c[] = {{"kv_k", a->kv_k, ref->kv_k, p->n_kv},
             {"kv_v", a->kv_v, ref->kv_v, p->n_kv},
             {"conv", a->conv, ref->conv, p->n_conv},
             {"state", a->state, ref->state, p->n_state},
             {"state2", a->state2, ref->state2, p->n_state},
             {"log_decay", a->log_decay, ref->log_decay, p->n_logd},
             {"trans", a->trans, ref->trans, p->n_state}};
    double e_out = tu_rel_err(a->out, ref->out, (size_t)(p->T * p->out_cols));
    int ok = e_out <= tol->out;
    char line[256];
    int len = snprintf(line, sizeof line, "out %.1e", e_out);
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        if (!c[i].y)
            continue;
        double e = c[i].x ? tu_rel_err(c[i].x, c[i].y, c[i].n) : INFINITY;
        ok &= e <= tol->state;
        if (len < (int)sizeof line)
            len += snprintf(line + len, sizeof line - (size_t)len, " %s %.1e", c[i].name, e);
    }
    const ou_result *rs[2] = {a, ref};
    int clean = 1;
    for (int i = 0; i < 2; i++) {
        if (rs[i]->unwritten || rs[i]->overrun || rs[i]->foreign) {
            printf("  %s: %s: %s result: %lld outputs unwritten, %lld written past the rows, "
                   "%lld pool values changed outside the sequences\n",
                   p->sp.name, what, i ? "reference" : "tested", (long long)rs[i]->unwritten,
                   (long long)rs[i]->overrun, (long long)rs[i]->foreign);
            clean = 0;
        }
    }
    printf("  %-34s %-30s %s (tol %.0e / %.0e)%s\n", p->sp.name, what, line, tol->out, tol->state,
           ok && clean ? "" : "  FAIL");
    return ok && clean;
}

static int run_or_say(cl_backend *b, const ou_problem *p, ou_schedule sch, ou_result *r,
                      const char *what)
{
    int rc = ou_run(b, p, sch, r);
    if (rc != CL_OK)
        printf("  %s: %s on %s: %s  FAIL\n", p->sp.name, what, b->ops->name, cl_errmsg());
    return rc == CL_OK;
}

int ou_forms_agree(cl_backend *b, const ou_spec *sp, const ou_tol *tol, const ou_tol *tol_batch)
{
    ou_problem p;
    if (ou_problem_make(sp, &p) != CL_OK) {
        printf("  %s: %s  FAIL\n", sp->name, cl_errmsg());
        return 0;
    }
    ou_result whole, steps, other;
    memset(&whole, 0, sizeof whole);
    memset(&steps, 0, sizeof steps);
    memset(&other, 0, sizeof other);
    int ok = run_or_say(b, &p, OU_WHOLE, &whole, "one call") &&
             run_or_say(b, &p, OU_STEPS, &steps, "token by token");
    if (ok)
        ok = ou_compare(&p, "chunked vs recurrent", &whole, &steps, tol);
    if (sp->split > 0) {
        if (run_or_say(b, &p, OU_SPLIT, &other, "split")) {
            char what[64];
            snprintf(what, sizeof what, "continued at %lld vs recurrent", (long long)sp->split);
            ok &= ou_compare(&p, what, &other, &steps, tol);
        } else {
            ok = 0;
        }
        ou_result_free(&other);
    }
    if (sp->n_seq > 1) {
        if (run_or_say(b, &p, OU_ALONE, &other, "alone"))
            ok &= ou_compare(&p, "batch vs each alone", &whole, &other, tol_batch);
        else
            ok = 0;
        ou_result_free(&other);
    }
    ou_result_free(&whole);
    ou_result_free(&steps);
    ou_problem_free(&p);
    return ok;
}

int ou_backends_agree(cl_backend *test, cl_backend *ref, const ou_spec *sp, const ou_tol *tol)
{
    ou_problem p;
    if (ou_problem_make(sp, &p) != CL_OK) {
        printf("  %s: %s  FAIL\n", sp->name, cl_errmsg());
        return 0;
    }
    static const struct {
        ou_schedule sch;
        const char *name;
    } sched[] = {{OU_WHOLE, "one call"},
                 {OU_STEPS, "token by token"},
                 {OU_ALONE, "each sequence alone"},
                 {OU_SPLIT, "split in two calls"}};
    int ok = 1;
    for (size_t i = 0; i < sizeof sched / sizeof sched[0]; i++) {
        if ((sched[i].sch == OU_SPLIT && sp->split <= 0) ||
            (sched[i].sch == OU_ALONE && sp->n_seq < 2))
            continue;
        ou_result a, r;
        memset(&a, 0, sizeof a);
        memset(&r, 0, sizeof r);
        if (run_or_say(test, &p, sched[i].sch, &a, sched[i].name) &&
            run_or_say(ref, &p, sched[i].sch, &r, sched[i].name)) {
            char what[64];
            snprintf(what, sizeof what, "%s vs %s, %s", test->ops->name, ref->ops->name,
                     sched[i].name);
            ok &= ou_compare(&p, what, &a, &r, tol);
        } else {
            ok = 0;
        }
        ou_result_free(&a);
        ou_result_free(&r);
    }
    ou_problem_free(&p);
    return ok;
}
