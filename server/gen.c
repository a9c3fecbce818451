/* gen.c - starting a generation request on the engine thread: the documents composed
 * when asked, each choice submitted to the scheduler with its sampling, stops, budget and
 * callbacks (gen.h). */
#include "gen.h"

#include <stdlib.h>
#include <string.h>

#include "output.h"

static uint64_t random_seed(void)
{
    char hex[17];
    srv_random_hex(hex, 16);
    return strtoull(hex, NULL, 16);
}

/* Composes the request's documents and feeds prompt p's body into a fresh sequence: the
 * scheduler continues it from the prompt's last token. */
static int compose_docs(srv *s, srv_job *j, int p, cl_seq **out)
{
    const srv_gen_req *r = &j->req;
    if (!s->p)
        return cl_err(CL_ERR_ARG, "documents: the server runs without a store (--no-store)");
    cl_compose_opts co;
    cl_compose_opts_default(&co);
    co.kv = r->kv;
    co.ssm = r->ssm;
    co.max_context = s->view.context;
    cl_compose_info info;
    memset(&info, 0, sizeof info);
    CL_TRY(cl_seq_create(s->c, out));
    int rc = cl_doc_query(s->p, r->docs, r->n_docs, &co, r->prompts[p].v,
                          (int64_t)r->prompts[p].n, *out, &info);
    if (rc != CL_OK) {
        cl_seq_free(*out);
        *out = NULL;
        return rc;
    }
    j->prompt_tokens += info.kept_tokens + (int64_t)r->prompts[p].n;
    j->cached_tokens += info.kept_tokens;
    return CL_OK;
}

/* A fixed cache must hold a whole request (prompt and budget), or the request would
 * wait forever: a budget that was not asked for shrinks to what fits, one that was
 * asked for and cannot fit is refused. */
static int fit_budget(srv *s, const srv_job *j, int64_t before, int64_t *budget)
{
    if (!s->fixed_cache || s->total_pages <= 0)
        return CL_OK;
    int64_t room = s->total_pages * s->page_tokens - before;
    if (*budget <= room)
        return CL_OK;
    if (!j->req.max_tokens_given && room >= 1) {
        *budget = room;
        return CL_OK;
    }
    return cl_err(CL_ERR_RANGE,
                  "max_tokens: the prompt (%lld tokens) and a budget of %lld tokens do not fit "
                  "in the whole KV cache (%lld tokens): lower max_tokens",
                  (long long)before, (long long)*budget,
                  (long long)(s->total_pages * s->page_tokens));
}

static int submit_choice(srv *s, cl_sched *sched, srv_job *j, srv_choice *c, cl_seq *start)
{
    const srv_gen_req *r = &j->req;
    cl_sched_req q;
    memset(&q, 0, sizeof q);
    const cl_ids *prompt = &r->prompts[c->prompt];
    q.prompt = start ? prompt->v + prompt->n - 1 : prompt->v;
    q.n_prompt = start ? 1 : (int64_t)prompt->n;
    q.start = start;
    q.reuse = s->p != NULL && !start;
    cl_gen_opts *g = &q.gen;
    cl_gen_opts_default(g);
    g->max_new_tokens = r->max_tokens;
    g->sampling = r->sampling;
    g->sampling.seed = r->seed_given ? r->sampling.seed + (uint64_t)c->index : random_seed();
    g->eos_ids = s->stop_ids;
    g->n_eos = s->n_stop_ids;
    g->ignore_eos = r->ignore_eos;
    g->on_token = out_on_token;
    g->user = c;
    if (r->logprobs) {
        g->on_logprobs = out_on_logprobs;
        g->top_logprobs = r->top_logprobs;
    }
    g->max_context = s->view.context;
    if (start && !r->max_tokens_given) { /* what the context leaves after the composition */
        int64_t room = s->view.context - cl_seq_pos(start) - q.n_prompt + 1;
        if (room < g->max_new_tokens)
            g->max_new_tokens = room > 0 ? room : 0;
    }
    g->gka_num_iter = r->num_iter;
    if (r->force.n) {
        g->force_ids = r->force.v;
        g->n_force = (int64_t)r->force.n;
    }
    CL_TRY(fit_budget(s, j, (start ? cl_seq_kv_len(start) : 0) + q.n_prompt,
                      &g->max_new_tokens));
    CL_TRY(cl_sched_submit(sched, &q, &c->sched_id));
    c->submitted = 1;
    return CL_OK;
}

/* Submits the n choices of prompt p (after composing the documents, when asked: the
 * first choice continues the composed state, the others copies of it). */
static int start_prompt(srv *s, cl_sched *sched, srv_job *j, int p)
{
    const srv_gen_req *r = &j->req;
    cl_seq *base = NULL;
    if (r->n_docs)
        CL_TRY(compose_docs(s, j, p, &base));
    else
        j->prompt_tokens += (int64_t)r->prompts[p].n;
    int rc = CL_OK;
    for (int k = r->n - 1; k >= 0 && rc == CL_OK; k--) {
        srv_choice *c = &j->ch[p * r->n + k];
        cl_seq *start = NULL;
        if (base && k > 0) {
            rc = cl_seq_create(s->c, &start);
            if (rc == CL_OK)
                rc = cl_seq_copy(start, base);
        } else if (base) {
            start = base; /* the last submitted takes the composed state itself */
            base = NULL;
        }
        if (rc == CL_OK) {
            rc = submit_choice(s, sched, j, c, start);
            if (rc == CL_OK)
                start = NULL; /* the scheduler owns it now */
        }
        cl_seq_free(start);
    }
    cl_seq_free(base);
    return rc;
}

int gen_start(srv *s, cl_sched *sched, srv_job *j)
{
    const srv_gen_req *r = &j->req;
    CL_TRY(out_job_init(j));
    for (int p = 0; p < r->n_prompts; p++)
        CL_TRY(start_prompt(s, sched, j, p));
    if (s->p && !r->n_docs) {
        srv_metrics_lock(&s->metrics);
        s->metrics.prefix_queries += (uint64_t)r->n_prompts;
        srv_metrics_unlock(&s->metrics);
    }
    if (r->stream) {
        pthread_mutex_lock(&j->mu);
        j->accepted = 1;
        pthread_mutex_unlock(&j->mu);
        job_wake(j);
        out_stream_begin(j);
    }
    return CL_OK;
}
