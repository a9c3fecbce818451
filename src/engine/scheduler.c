#include "engine/scheduler.h"

#include <stdlib.h>
#include <string.h>

#include "common/status.h"

typedef enum { R_WAITING = 0, R_PREFILL, R_DECODE, R_DONE } phase;

typedef struct {
    cl_sched_req req;
    int32_t *prompt;
    phase ph;
    cl_seq seq;
    int64_t fed;       /* prompt tokens fed */
    int32_t next;      /* token to feed in the next decode step */
    cl_sampler sampler;
    cl_ids out, hist;
    cl_stop_reason stop;
} request;

struct cl_sched {
    cl_model *m;
    cl_cache *c;
    cl_sched_opts o;
    request *r;
    int n, cap, running, max_running;
    int64_t steps, rows;
    float *logits;
    int64_t logits_rows;
};

void cl_sched_opts_default(cl_sched_opts *o)
{
    o->max_batch_tokens = 512;
    o->max_seqs = 64;
}

int cl_sched_create(cl_model *m, cl_cache *c, const cl_sched_opts *o, cl_sched **out)
{
    cl_sched *s = calloc(1, sizeof *s);
    if (!s)
        return cl_err(CL_ERR_NOMEM, "out of memory");
    s->m = m;
    s->c = c;
    if (o)
        s->o = *o;
    else
        cl_sched_opts_default(&s->o);
    if (s->o.max_batch_tokens < 1 || s->o.max_seqs < 1) {
        free(s);
        return cl_err(CL_ERR_ARG, "scheduler: max_batch_tokens and max_seqs must be >= 1");
    }
    *out = s;
    return CL_OK;
}

static void finish(cl_sched *s, request *r, cl_stop_reason why)
{
    r->stop = why;
    r->ph = R_DONE;
    cl_seq_release(&r->seq);
    s->running--;
}

void cl_sched_free(cl_sched *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->n; i++) {
        request *r = &s->r[i];
        if (r->ph == R_PREFILL || r->ph == R_DECODE)
            cl_seq_release(&r->seq);
        free(r->prompt);
        cl_sampler_free(&r->sampler);
        cl_ids_free(&r->out);
        cl_ids_free(&r->hist);
    }
    free(s->r);
    free(s->logits);
    free(s);
}

int cl_sched_submit(cl_sched *s, const cl_sched_req *q, int *id)
{
    if (q->n_prompt <= 0)
        return cl_err(CL_ERR_ARG, "scheduler: empty prompt");
    int64_t V = s->m->cfg->vocab_size;
    for (int64_t i = 0; i < q->n_prompt; i++)
        if (q->prompt[i] < 0 || q->prompt[i] >= V)
            return cl_err(CL_ERR_RANGE, "request %d: token id %d out of range [0, %lld)", s->n,
                          q->prompt[i], (long long)V);
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 16;
        request *nr = realloc(s->r, (size_t)cap * sizeof *nr);
        if (!nr)
            return cl_err(CL_ERR_NOMEM, "out of memory");
        s->r = nr;
        s->cap = cap;
    }
    request *r = &s->r[s->n];
    memset(r, 0, sizeof *r);
    r->req = *q;
    r->prompt = malloc((size_t)q->n_prompt * sizeof *r->prompt);
    if (!r->prompt)
        return cl_err(CL_ERR_NOMEM, "out of memory");
    memcpy(r->prompt, q->prompt, (size_t)q->n_prompt * sizeof *r->prompt);
    r->req.prompt = r->prompt;
    int rc = cl_sampler_init(&r->sampler, &q->gen.sampling);
    if (rc == CL_OK)
        rc = cl_ids_append(&r->hist, r->prompt, (size_t)q->n_prompt);
    if (rc != CL_OK) {
        free(r->prompt);
        cl_sampler_free(&r->sampler);
        cl_ids_free(&r->hist);
        return rc;
    }
    *id = s->n++;
    return CL_OK;
}

/* Admits waiting requests in order while there is room for their whole budget. */
static int admit(cl_sched *s)
{
    for (int i = 0; i < s->n && s->running < s->o.max_seqs; i++) {
        request *r = &s->r[i];
        if (r->ph != R_WAITING)
            continue;
        int64_t need = r->req.n_prompt + (r->req.gen.max_new_tokens > 0 ? r->req.gen.max_new_tokens : 0);
        CL_TRY(cl_check_context(s->m, &(cl_seq){.pos = 0}, need, r->req.gen.max_context));
        int64_t pages = (need + s->c->o.page_tokens - 1) / s->c->o.page_tokens;
        if (!s->c->o.growable &&
            ((s->c->n_attn && s->c->n_free_pages < pages) || s->c->n_free_slots < 1)) {
            if (s->running == 0)
                return cl_err(CL_ERR_FULL,
                              "request %d needs %lld KV pages: more than the whole cache", i,
                              (long long)pages);
            break; /* wait for running sequences to finish (keep arrival order) */
        }
        CL_TRY(cl_seq_init(&r->seq, s->c));
        int rc = cl_seq_reserve(&r->seq, need);
        if (rc != CL_OK) {
            cl_seq_release(&r->seq);
            return rc;
        }
        r->ph = R_PREFILL;
        s->running++;
        if (s->running > s->max_running)
            s->max_running = s->running;
    }
    return CL_OK;
}

int cl_sched_step(cl_sched *s, int *active)
{
    CL_TRY(admit(s));
    int64_t V = s->m->cfg->vocab_size, budget = s->o.max_batch_tokens;
    int cap = s->running > 0 ? s->running : 1;
    cl_seq **seqs = malloc((size_t)cap * sizeof *seqs);
    const int32_t **toks = malloc((size_t)cap * sizeof *toks);
    int64_t *n = malloc((size_t)cap * sizeof *n), *rows = malloc((size_t)cap * sizeof *rows);
    int *owner = malloc((size_t)cap * sizeof *owner), *row_owner = malloc((size_t)cap * sizeof *row_owner);
    int rc = seqs && toks && n && rows && owner && row_owner ? CL_OK
                                                            : cl_err(CL_ERR_NOMEM, "out of memory");
    int ns = 0, nr = 0;
    int64_t total = 0;
    /* decode rows first: every decoding sequence advances by one token */
    for (int i = 0; i < s->n && rc == CL_OK && total < budget; i++) {
        request *r = &s->r[i];
        if (r->ph != R_DECODE)
            continue;
        seqs[ns] = &r->seq;
        toks[ns] = &r->next;
        n[ns] = 1;
        owner[ns] = i;
        rows[nr] = total;
        row_owner[nr++] = i;
        total += 1;
        ns++;
    }
    /* then prefill chunks in the rest of the budget */
    for (int i = 0; i < s->n && rc == CL_OK && total < budget; i++) {
        request *r = &s->r[i];
        if (r->ph != R_PREFILL)
            continue;
        int64_t len = r->req.n_prompt - r->fed;
        if (len > budget - total)
            len = budget - total;
        seqs[ns] = &r->seq;
        toks[ns] = r->prompt + r->fed;
        n[ns] = len;
        owner[ns] = i;
        if (r->fed + len == r->req.n_prompt) {
            rows[nr] = total + len - 1;
            row_owner[nr++] = i;
        }
        total += len;
        ns++;
    }
    if (rc == CL_OK && ns > 0) {
        if (s->logits_rows < nr) {
            float *nl = realloc(s->logits, (size_t)(nr * V) * sizeof *nl);
            if (!nl)
                rc = cl_err(CL_ERR_NOMEM, "out of memory");
            else {
                s->logits = nl;
                s->logits_rows = nr;
            }
        }
        if (rc == CL_OK)
            rc = cl_seq_forward(s->m, seqs, toks, n, ns, rows, nr, s->logits, NULL);
        s->steps++;
        s->rows += total;
    }
    for (int k = 0; k < ns && rc == CL_OK; k++) { /* prompt progress */
        request *r = &s->r[owner[k]];
        if (r->ph == R_PREFILL)
            r->fed += n[k];
    }
    for (int k = 0; k < nr && rc == CL_OK; k++) { /* choose, emit, stop */
        request *r = &s->r[row_owner[k]];
        const cl_gen_opts *g = &r->req.gen;
        if (g->max_new_tokens <= 0) {
            finish(s, r, CL_STOP_LENGTH);
            continue;
        }
        int32_t id = cl_sampler_pick(&r->sampler, s->logits + k * V, V, r->hist.v,
                                     (int64_t)r->hist.n);
        if ((rc = cl_ids_push(&r->out, id)) != CL_OK || (rc = cl_ids_push(&r->hist, id)) != CL_OK)
            break;
        r->next = id;
        r->ph = R_DECODE;
        if (cl_gen_is_eos(g, s->m->cfg, id))
            finish(s, r, CL_STOP_EOS);
        else if (g->on_token && g->on_token(g->user, id))
            finish(s, r, CL_STOP_CALLBACK);
        else if ((int64_t)r->out.n >= g->max_new_tokens)
            finish(s, r, CL_STOP_LENGTH);
    }
    free(seqs);
    free(toks);
    free(n);
    free(rows);
    free(owner);
    free(row_owner);
    int left = 0;
    for (int i = 0; i < s->n; i++)
        left += s->r[i].ph != R_DONE;
    *active = left;
    return rc;
}

int cl_sched_run(cl_sched *s)
{
    int active = 1;
    while (active)
        CL_TRY(cl_sched_step(s, &active));
    return CL_OK;
}

int cl_sched_result(cl_sched *s, int id, const cl_ids **ids, cl_stop_reason *stop)
{
    if (id < 0 || id >= s->n)
        return cl_err(CL_ERR_ARG, "scheduler: no request %d", id);
    if (s->r[id].ph != R_DONE)
        return cl_err(CL_ERR_ARG, "scheduler: request %d has not finished", id);
    *ids = &s->r[id].out;
    if (stop)
        *stop = s->r[id].stop;
    return CL_OK;
}

void cl_sched_counts(const cl_sched *s, int64_t *steps, int64_t *rows, int *max_running)
{
    *steps = s->steps;
    *rows = s->rows;
    *max_running = s->max_running;
}
