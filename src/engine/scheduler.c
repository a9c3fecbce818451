#include "engine/scheduler.h"

#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/status.h"

typedef enum { R_FREE = 0, R_WAITING, R_PREFILL, R_DECODE, R_DONE } phase;

typedef struct {
    cl_sched_req req;
    int32_t *prompt;
    phase ph;
    cl_seq seq;
    int has_seq;
    cl_seq *start;      /* taken over at submit; becomes seq's content at admission */
    int64_t fed;        /* prompt tokens in the state (restored or fed) */
    int64_t max_new;    /* budget after the context check */
    int64_t num_iter;   /* GKA solver iterations of this request */
    int32_t next;       /* token to feed in the next decode step */
    cl_sampler sampler;
    cl_ids out, hist;
    cl_prefix_capture cap; /* snapshot one token before the end of the prompt */
    cl_sched_result res;
    double t_submit, t_admit, t_first;
} request;

struct cl_sched {
    cl_model *m;
    cl_cache *c;
    cl_sched_opts o;
    request *r;
    int n, cap, running, max_running;
    int64_t steps, rows;
    int rr;              /* round robin over requests: whose solver-iteration group runs */
    float *logits, *raw;
    int64_t logits_rows;
};

void cl_sched_opts_default(cl_sched_opts *o)
{
    memset(o, 0, sizeof *o);
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
    if (s->o.prefix && (s->o.prefix->m != m || s->o.prefix->c != c)) {
        free(s);
        return cl_err(CL_ERR_ARG, "scheduler: the prefix cache belongs to another model/cache");
    }
    *out = s;
    return CL_OK;
}

static void drop_seq(request *r)
{
    if (r->has_seq)
        cl_seq_release(&r->seq);
    r->has_seq = 0;
    if (r->start)
        cl_seq_free(r->start);
    r->start = NULL;
    cl_prefix_capture_free(&r->cap);
}

static void clear(request *r)
{
    drop_seq(r);
    free(r->prompt);
    cl_sampler_release(&r->sampler);
    cl_ids_free(&r->out);
    cl_ids_free(&r->hist);
    memset(r, 0, sizeof *r);
}

void cl_sched_free(cl_sched *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->n; i++)
        clear(&s->r[i]);
    free(s->r);
    free(s->logits);
    free(s->raw);
    free(s);
}

/* Stores what a finished request computed: KV blocks of prompt + answer (as far as
 * the state covers them), the snapshot before the prompt's last token and the one
 * at the end. A failing store is only a warning (cl_prefix_save). */
static void store_finished(cl_sched *s, request *r)
{
    cl_prefix *p = s->o.prefix;
    if (!p || !r->req.reuse || !r->has_seq || r->seq.kv_len != r->seq.pos)
        return;
    int64_t total = r->req.n_prompt + (int64_t)r->out.n;
    int32_t *all = malloc((size_t)total * sizeof *all);
    cl_prefix_capture caps[2];
    int n_caps = 0;
    if (!all)
        return;
    memcpy(all, r->prompt, (size_t)r->req.n_prompt * sizeof *all);
    memcpy(all + r->req.n_prompt, r->out.v, r->out.n * sizeof *all);
    if (r->cap.bytes)
        caps[n_caps++] = r->cap;
    cl_prefix_capture end = {0};
    if (cl_prefix_capture_now(p, &r->seq, &end) == CL_OK)
        caps[n_caps++] = end;
    int64_t n = r->seq.kv_len < total ? r->seq.kv_len : total;
    int had_cap = r->cap.bytes != NULL;
    if (cl_prefix_save(p, &r->seq, all, n, caps, n_caps) != CL_OK)
        cl_log_warn("%s (state not stored)", cl_errmsg());
    /* cl_prefix_save may take the snapshot bytes it hands to a background writer (it
     * clears them in the array): the request's own copies must not free them again */
    if (had_cap && !caps[0].bytes)
        r->cap.bytes = NULL;
    if (end.bytes && !caps[n_caps - 1].bytes)
        end.bytes = NULL;
    cl_prefix_capture_free(&end);
    free(all);
}

static void finish(cl_sched *s, request *r, cl_stop_reason why, double now)
{
    r->res.stop = why;
    r->res.new_tokens = (int64_t)r->out.n;
    r->res.total_s = now - r->t_submit;
    if (r->ph == R_PREFILL || r->ph == R_DECODE) {
        s->running--;
        if (why != CL_STOP_CANCELLED)
            store_finished(s, r);
    }
    r->ph = R_DONE;
    drop_seq(r);
}

int cl_sched_submit(cl_sched *s, const cl_sched_req *q, int *id)
{
    if (q->n_prompt <= 0 || !q->prompt)
        return cl_err(CL_ERR_ARG, "scheduler: empty prompt");
    int64_t V = s->m->cfg->vocab_size;
    for (int64_t i = 0; i < q->n_prompt; i++)
        if (q->prompt[i] < 0 || q->prompt[i] >= V)
            return cl_err(CL_ERR_RANGE, "prompt token %lld: id %d out of range [0, %lld)",
                          (long long)i, q->prompt[i], (long long)V);
    if (q->start && q->start->c != s->c)
        return cl_err(CL_ERR_ARG, "scheduler: the start state is of another cache");
    CL_TRY(cl_gen_opts_check(s->m, &q->gen));
    int64_t max_new;
    CL_TRY(cl_gen_budget(s->m, q->start ? q->start->pos : 0, q->n_prompt, &q->gen, &max_new));
    int slot = -1;
    for (int i = 0; i < s->n && slot < 0; i++)
        if (s->r[i].ph == R_FREE)
            slot = i;
    if (slot < 0) {
        if (s->n == s->cap) {
            int cap = s->cap ? 2 * s->cap : 16;
            request *nr = realloc(s->r, (size_t)cap * sizeof *nr);
            if (!nr)
                return cl_err(CL_ERR_NOMEM, "out of memory");
            s->r = nr;
            s->cap = cap;
        }
        slot = s->n++;
        memset(&s->r[slot], 0, sizeof s->r[slot]);
    }
    request *r = &s->r[slot];
    memset(r, 0, sizeof *r);
    r->req = *q;
    r->max_new = max_new;
    r->prompt = malloc((size_t)q->n_prompt * sizeof *r->prompt);
    int rc = r->prompt ? cl_sampler_init(&r->sampler, &q->gen.sampling)
                       : cl_err(CL_ERR_NOMEM, "out of memory");
    if (rc == CL_OK) {
        memcpy(r->prompt, q->prompt, (size_t)q->n_prompt * sizeof *r->prompt);
        r->req.prompt = r->prompt;
        rc = cl_ids_append(&r->hist, r->prompt, (size_t)q->n_prompt);
    }
    if (rc != CL_OK) {
        clear(r);
        return rc;
    }
    r->start = q->start;
    r->req.start = NULL;
    r->num_iter = q->gen.gka_num_iter >= 0 ? q->gen.gka_num_iter : s->m->gka_num_iter;
    if (r->start || r->num_iter != s->m->gka_num_iter)
        r->req.reuse = 0; /* a composed state is not the state of its ids from position 0;
                             stored states hold the model's solver iterations */
    r->ph = R_WAITING;
    r->t_submit = cl_now();
    r->res.prompt_tokens = q->n_prompt;
    *id = slot;
    return CL_OK;
}

int cl_sched_cancel(cl_sched *s, int id)
{
    if (id < 0 || id >= s->n || s->r[id].ph == R_FREE)
        return cl_err(CL_ERR_ARG, "scheduler: no request %d", id);
    request *r = &s->r[id];
    if (r->ph != R_DONE)
        finish(s, r, CL_STOP_CANCELLED, cl_now());
    return CL_OK;
}

/* Room for a request in a fixed-size cache (growable caches always have room): KV
 * pages beyond those it holds, and a slot unless it brings its own. */
static int fits(const cl_sched *s, int64_t need_tokens, int64_t have_pages, int need_slot)
{
    if (s->c->o.growable)
        return 1;
    int64_t P = s->c->o.page_tokens;
    int64_t pages = (need_tokens + P - 1) / P - have_pages;
    return (!s->c->n_attn || s->c->n_free_pages >= pages) && s->c->n_free_slots >= need_slot;
}

/* Takes the request's state: the start state, or a fresh one with the longest stored
 * prefix of its prompt restored. */
static int take_state(cl_sched *s, request *r)
{
    if (r->start) {
        r->seq = *r->start; /* the scheduler owns the start state's slot and pages now */
        free(r->start);
        r->start = NULL;
        r->has_seq = 1;
        return CL_OK;
    }
    CL_TRY(cl_seq_init(&r->seq, s->c));
    r->has_seq = 1;
    cl_prefix *p = s->o.prefix;
    if (p && r->req.reuse) {
        int64_t cached = 0;
        CL_TRY(cl_prefix_restore(p, &r->seq, r->prompt, r->req.n_prompt - 1, &cached));
        r->fed = cached;
        r->res.cached_tokens = cached;
    }
    return CL_OK;
}

/* Admits waiting requests in order while there is room for their whole budget. */
static int admit(cl_sched *s)
{
    for (int i = 0; i < s->n && s->running < s->o.max_seqs; i++) {
        request *r = &s->r[i];
        if (r->ph != R_WAITING)
            continue;
        int64_t base = r->start ? r->start->kv_len : 0;
        int64_t need = base + r->req.n_prompt + r->max_new;
        int64_t have = r->start ? r->start->n_pages : 0;
        if (!fits(s, need, have, r->start == NULL)) {
            int64_t P = s->c->o.page_tokens;
            if (s->running == 0 && (need + P - 1) / P - have > s->c->cap_pages)
                return cl_err(CL_ERR_FULL,
                              "request %d needs %lld KV pages: more than the whole cache", i,
                              (long long)((need + P - 1) / P));
            break; /* wait for running sequences to finish (keep arrival order) */
        }
        int rc = take_state(s, r);
        if (rc == CL_OK)
            rc = cl_seq_reserve(&r->seq, need);
        if (rc != CL_OK) {
            drop_seq(r);
            return rc;
        }
        r->ph = R_PREFILL;
        r->t_admit = cl_now();
        r->res.queued_s = r->t_admit - r->t_submit;
        s->running++;
        if (s->running > s->max_running)
            s->max_running = s->running;
    }
    return CL_OK;
}

/* The next id is one the caller forced (it keeps them until the request finishes). */
static int forced_now(const request *r)
{
    return (int64_t)r->out.n < r->req.gen.n_force && r->req.gen.force_ids;
}

/* Chooses, reports and checks the stop rules for a request whose logits are ready;
 * picked >= 0: the choice, made beforehand (pre_pick). */
static int emit(cl_sched *s, request *r, float *logits, int32_t picked, double now)
{
    const cl_gen_opts *g = &r->req.gen;
    int64_t V = s->m->cfg->vocab_size;
    if (r->max_new <= 0) {
        finish(s, r, CL_STOP_LENGTH, now);
        return CL_OK;
    }
    if (g->on_logprobs)
        memcpy(s->raw, logits, (size_t)V * sizeof *s->raw);
    int forced = forced_now(r); /* a forced id replaces the choice */
    int32_t id = forced        ? g->force_ids[r->out.n]
                 : picked >= 0 ? picked
                               : cl_sampler_pick(&r->sampler, logits, V, r->hist.v,
                                                 (int64_t)r->hist.n, r->req.n_prompt);
    CL_TRY(cl_ids_push(&r->out, id));
    CL_TRY(cl_ids_push(&r->hist, id));
    if (r->out.n == 1) {
        r->t_first = now;
        r->res.ttft_s = now - r->t_submit;
    }
    r->next = id;
    r->ph = R_DECODE;
    int stop_cb = 0;
    if (g->on_logprobs) {
        cl_token_logprobs lp;
        cl_sampler_logprobs(&r->sampler, s->raw, V, id, g->top_logprobs, &lp);
        stop_cb = g->on_logprobs(g->user, &lp);
    }
    if (!forced && cl_gen_is_eos(g, s->m->cfg, id))
        finish(s, r, CL_STOP_EOS, now);
    else if (stop_cb || (g->on_token && g->on_token(g->user, id)))
        finish(s, r, CL_STOP_CALLBACK, now);
    else if ((int64_t)r->out.n >= r->max_new)
        finish(s, r, CL_STOP_LENGTH, now);
    return CL_OK;
}

/* Draws the next token of every row that needs nothing else of its logits first (no
 * logprobs, not forced, budget left), the rows in parallel: each request has its own
 * sampler, and at a 151K vocabulary a draw costs milliseconds, too much for one thread
 * at a batch of a hundred. picks[k] = -1 for the rows emit draws itself. */
static void pre_pick(cl_sched *s, const int *row_owner, int nr, float *logits, int32_t *picks)
{
    if (!picks)
        return;
    const int64_t V = s->m->cfg->vocab_size;
#pragma omp parallel for schedule(dynamic, 1) if (nr > 1)
    for (int k = 0; k < nr; k++) {
        request *r = &s->r[row_owner[k]];
        picks[k] = -1;
        if (r->max_new > 0 && !forced_now(r) && !r->req.gen.on_logprobs)
            picks[k] = cl_sampler_pick(&r->sampler, logits + (int64_t)k * V, V, r->hist.v,
                                       (int64_t)r->hist.n, r->req.n_prompt);
    }
}

/* The solver-iteration group this step runs: that of the next runnable request after
 * the last one served (one group per forward call; usually there is only one). */
static int64_t step_group(cl_sched *s)
{
    for (int k = 0; k < s->n; k++) {
        int i = (s->rr + k) % s->n;
        if (s->r[i].ph == R_DECODE || s->r[i].ph == R_PREFILL) {
            s->rr = (i + 1) % s->n;
            return s->r[i].num_iter;
        }
    }
    return s->m->gka_num_iter;
}

int cl_sched_step(cl_sched *s, int *active)
{
    CL_TRY(admit(s));
    int64_t group = step_group(s);
    int64_t V = s->m->cfg->vocab_size, budget = s->o.max_batch_tokens;
    int cap = s->running > 0 ? s->running : 1;
    cl_seq **seqs = malloc((size_t)cap * sizeof *seqs);
    const int32_t **toks = malloc((size_t)cap * sizeof *toks);
    int64_t *n = malloc((size_t)cap * sizeof *n), *rows = malloc((size_t)cap * sizeof *rows);
    int *owner = malloc((size_t)cap * sizeof *owner);
    int *row_owner = malloc((size_t)cap * sizeof *row_owner);
    int32_t *picks = malloc((size_t)cap * sizeof *picks); /* (NULL: all picked in emit) */
    int rc = seqs && toks && n && rows && owner && row_owner
                 ? CL_OK
                 : cl_err(CL_ERR_NOMEM, "out of memory");
    int ns = 0, nr = 0;
    int64_t total = 0;
    /* decode rows first: every decoding sequence advances by one token */
    for (int i = 0; i < s->n && rc == CL_OK && total < budget; i++) {
        request *r = &s->r[i];
        if (r->ph != R_DECODE || r->num_iter != group)
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
    /* then prefill chunks in the rest of the budget; with reuse, a chunk ends one token
     * before the end of the prompt, where the snapshot for the same prompt is taken */
    for (int i = 0; i < s->n && rc == CL_OK && total < budget; i++) {
        request *r = &s->r[i];
        if (r->ph != R_PREFILL || r->num_iter != group)
            continue;
        int64_t end = r->req.n_prompt;
        if (s->o.prefix && r->req.reuse && !r->cap.bytes && r->fed < end - 1)
            end = end - 1;
        int64_t len = end - r->fed;
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
            float *rw = nl ? realloc(s->raw, (size_t)V * sizeof *rw) : NULL;
            if (nl)
                s->logits = nl;
            if (rw)
                s->raw = rw;
            if (!nl || !rw)
                rc = cl_err(CL_ERR_NOMEM, "out of memory");
            else
                s->logits_rows = nr;
        }
        int64_t model_iter = s->m->gka_num_iter;
        s->m->gka_num_iter = group;
        if (rc == CL_OK)
            rc = cl_seq_forward(s->m, seqs, toks, n, ns, rows, nr, s->logits, NULL);
        s->m->gka_num_iter = model_iter;
        s->steps++;
        s->rows += total;
    }
    for (int k = 0; k < ns && rc == CL_OK; k++) { /* prompt progress */
        request *r = &s->r[owner[k]];
        if (r->ph != R_PREFILL)
            continue;
        r->fed += n[k];
        if (s->o.prefix && r->req.reuse && !r->cap.bytes && r->fed == r->req.n_prompt - 1 &&
            r->fed > 0 && cl_prefix_capture_now(s->o.prefix, &r->seq, &r->cap) != CL_OK)
            cl_log_warn("%s (snapshot not taken)", cl_errmsg());
    }
    if (rc == CL_OK)
        pre_pick(s, row_owner, nr, s->logits, picks);
    double now = cl_now();
    for (int k = 0; k < nr && rc == CL_OK; k++) /* choose, emit, stop */
        rc = emit(s, &s->r[row_owner[k]], s->logits + k * V, picks ? picks[k] : -1, now);
    free(seqs);
    free(toks);
    free(n);
    free(rows);
    free(owner);
    free(row_owner);
    free(picks);
    int left = 0;
    for (int i = 0; i < s->n; i++)
        left += s->r[i].ph != R_DONE && s->r[i].ph != R_FREE;
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

int cl_sched_result_get(cl_sched *s, int id, const cl_ids **ids, cl_sched_result *res)
{
    if (id < 0 || id >= s->n || s->r[id].ph == R_FREE)
        return cl_err(CL_ERR_ARG, "scheduler: no request %d", id);
    if (s->r[id].ph != R_DONE)
        return cl_err(CL_ERR_ARG, "scheduler: request %d has not finished", id);
    if (ids)
        *ids = &s->r[id].out;
    if (res)
        *res = s->r[id].res;
    return CL_OK;
}

int cl_sched_release(cl_sched *s, int id)
{
    if (id < 0 || id >= s->n || s->r[id].ph == R_FREE)
        return cl_err(CL_ERR_ARG, "scheduler: no request %d", id);
    if (s->r[id].ph != R_DONE)
        CL_TRY(cl_sched_cancel(s, id));
    clear(&s->r[id]);
    return CL_OK;
}

void cl_sched_counts_get(const cl_sched *s, cl_sched_counts *out)
{
    memset(out, 0, sizeof *out);
    out->steps = s->steps;
    out->rows = s->rows;
    out->running = s->running;
    out->max_running = s->max_running;
    for (int i = 0; i < s->n; i++)
        out->queued += s->r[i].ph == R_WAITING;
}
