#include "engine/generate.h"

#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/status.h"

void cl_gen_opts_default(cl_gen_opts *o)
{
    memset(o, 0, sizeof *o);
    o->max_new_tokens = 64;
    o->gka_num_iter = -1;
    cl_sampler_opts_default(&o->sampling);
}

int cl_check_context(const cl_model *m, const cl_seq *s, int64_t n, int64_t max_context)
{
    if (max_context <= 0)
        max_context = m->cfg->max_position_embeddings;
    if (s->pos + n > max_context)
        return cl_err(CL_ERR_RANGE,
                      "context overflow: %lld tokens in the state + %lld more exceed the "
                      "context of %lld positions (--max-context to change)",
                      (long long)s->pos, (long long)n, (long long)max_context);
    return CL_OK;
}

int cl_check_prompt(const cl_model *m, const cl_seq *s, const int32_t *ids, int64_t n,
                    int64_t max_context)
{
    int64_t V = m->cfg->vocab_size;
    for (int64_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= V)
            return cl_err(CL_ERR_RANGE, "input token %lld: id %d out of range [0, %lld)",
                          (long long)i, ids[i], (long long)V);
    return cl_check_context(m, s, n, max_context);
}

int cl_gen_budget(const cl_model *m, int64_t pos, int64_t n, const cl_gen_opts *o,
                  int64_t *max_new)
{
    int64_t limit = o->max_context > 0 ? o->max_context : m->cfg->max_position_embeddings;
    int64_t want = o->max_new_tokens > 0 ? o->max_new_tokens : 0;
    if (pos + n > limit)
        return cl_err(CL_ERR_RANGE,
                      "context overflow: a prompt of %lld tokens%s exceeds the context of %lld "
                      "positions (--max-context to change)",
                      (long long)n, pos ? " after the state's tokens" : "", (long long)limit);
    /* the last generated token is never fed: n + want - 1 positions are used */
    int64_t room = limit - pos - n + 1;
    if (want > room) {
        if (!o->shorten_to_fit)
            return cl_err(CL_ERR_RANGE,
                          "context overflow: %lld prompt tokens + %lld new tokens exceed the "
                          "context of %lld positions (lower the token budget to %lld, or "
                          "--max-context)",
                          (long long)(pos + n), (long long)want, (long long)limit,
                          (long long)room);
        cl_log_warn("the answer is limited to %lld tokens to fit the context of %lld positions",
                    (long long)room, (long long)limit);
        want = room;
    }
    *max_new = want;
    return CL_OK;
}

int cl_gen_opts_check(const cl_model *m, const cl_gen_opts *o)
{
    if (o->max_new_tokens < 0)
        return cl_err(CL_ERR_ARG, "max_new_tokens must be >= 0 (got %lld)",
                      (long long)o->max_new_tokens);
    if (o->gka_num_iter < -1 || o->gka_num_iter > 1000)
        return cl_err(CL_ERR_ARG, "gka_num_iter must be in [0, 1000] (got %lld)",
                      (long long)o->gka_num_iter);
    if (o->top_logprobs < 0 || o->top_logprobs > CL_MAX_TOP_LOGPROBS)
        return cl_err(CL_ERR_ARG, "top_logprobs must be in [0, %d] (got %d)",
                      CL_MAX_TOP_LOGPROBS, o->top_logprobs);
    int64_t V = m->cfg->vocab_size;
    for (int64_t i = 0; i < o->n_force; i++)
        if (o->force_ids[i] < 0 || o->force_ids[i] >= V)
            return cl_err(CL_ERR_RANGE, "forced id %lld: %d out of range [0, %lld)",
                          (long long)i, o->force_ids[i], (long long)V);
    for (int i = 0; o->eos_ids && i < o->n_eos; i++)
        if (o->eos_ids[i] < 0 || o->eos_ids[i] >= V)
            return cl_err(CL_ERR_RANGE, "stop id %lld out of range [0, %lld)",
                          (long long)o->eos_ids[i], (long long)V);
    return cl_sampler_opts_check(&o->sampling);
}

int cl_gen_is_eos(const cl_gen_opts *o, const cl_config *cfg, int32_t id)
{
    if (o->ignore_eos)
        return 0;
    const int64_t *ids = o->eos_ids ? o->eos_ids : cfg->eos_ids;
    int n = o->eos_ids ? o->n_eos : cfg->n_eos;
    for (int i = 0; i < n; i++)
        if (ids[i] == id)
            return 1;
    return 0;
}

int cl_generate(cl_model *m, cl_seq *s, const int32_t *prompt, int64_t n, const cl_gen_opts *o,
                cl_ids *out, cl_gen_stats *st)
{
    const int64_t V = m->cfg->vocab_size;
    cl_gen_stats local;
    if (!st)
        st = &local;
    memset(st, 0, sizeof *st);
    st->prompt_tokens = n;
    if (n <= 0)
        return cl_err(CL_ERR_ARG, "empty prompt: at least one token is needed");
    CL_TRY(cl_check_prompt(m, s, prompt, n, o->max_context));
    CL_TRY(cl_gen_opts_check(m, o));
    int64_t max_new;
    CL_TRY(cl_gen_budget(m, s->pos, n, o, &max_new));
    st->max_new_tokens = max_new;
    cl_sampler sm;
    CL_TRY(cl_sampler_init(&sm, &o->sampling));
    int want_lp = o->on_logprobs != NULL;
    float *logits = malloc((size_t)V * sizeof *logits);
    float *raw = want_lp ? malloc((size_t)V * sizeof *raw) : NULL;
    cl_ids hist = {0};
    int rc = logits && (raw || !want_lp) ? cl_ids_append(&hist, prompt, (size_t)n)
                                         : cl_err(CL_ERR_NOMEM, "out of memory");
    int64_t n_prompt = (int64_t)hist.n;
    int64_t model_iter = m->gka_num_iter; /* this request's solver iterations, restored below */
    if (o->gka_num_iter >= 0)
        m->gka_num_iter = o->gka_num_iter;
    double t0 = cl_now();
    if (rc == CL_OK)
        rc = cl_seq_feed(m, s, prompt, n, o->prefill_chunk, CL_LOGITS_LAST, logits);
    st->prefill_tokens = n;
    st->prefill_s = cl_now() - t0;
    t0 = cl_now();
    for (int64_t k = 0; k < max_new && rc == CL_OK; k++) {
        if (o->logits_out)
            memcpy(o->logits_out + k * V, logits, (size_t)V * sizeof *logits);
        if (want_lp)
            memcpy(raw, logits, (size_t)V * sizeof *raw);
        int32_t id = k < o->n_force ? o->force_ids[k]
                                    : cl_sampler_pick(&sm, logits, V, hist.v, (int64_t)hist.n,
                                                      n_prompt);
        if ((rc = cl_ids_push(out, id)) != CL_OK || (rc = cl_ids_push(&hist, id)) != CL_OK)
            break;
        st->new_tokens++;
        int stop = 0;
        if (k >= o->n_force && cl_gen_is_eos(o, m->cfg, id)) {
            st->stop = CL_STOP_EOS;
            stop = 1;
        }
        if (want_lp) {
            cl_token_logprobs lp;
            cl_sampler_logprobs(&sm, raw, V, id, o->top_logprobs, &lp);
            if (o->on_logprobs(o->user, &lp)) {
                st->stop = CL_STOP_CALLBACK;
                stop = 1;
            }
        }
        if (o->on_token && o->on_token(o->user, id)) {
            st->stop = CL_STOP_CALLBACK;
            stop = 1;
        }
        if ((stop || k + 1 == max_new) && !o->feed_last)
            break;
        rc = cl_seq_feed(m, s, &id, 1, 1, CL_LOGITS_LAST, logits);
        if (stop || k + 1 == max_new)
            break;
    }
    st->decode_s = cl_now() - t0;
    m->gka_num_iter = model_iter;
    cl_ids_free(&hist);
    cl_sampler_release(&sm);
    free(logits);
    free(raw);
    return rc;
}

int cl_model_stop_ids(const cl_model *m, const cl_tokenizer *tok, int64_t ids[CL_MAX_STOP_IDS])
{
    int n = 0;
    for (int i = 0; i < m->cfg->n_eos && n < CL_MAX_STOP_IDS; i++)
        ids[n++] = m->cfg->eos_ids[i];
    const char *names[] = {"<|im_end|>", "<|endoftext|>"};
    for (int k = 0; tok && k < 2; k++) {
        int32_t id = cl_tokenizer_find(tok, names[k]);
        int dup = id < 0 || id >= m->cfg->vocab_size;
        for (int i = 0; i < n && !dup; i++)
            dup = ids[i] == id;
        if (!dup && n < CL_MAX_STOP_IDS)
            ids[n++] = id;
    }
    return n;
}
