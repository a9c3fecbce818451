#include "engine/session.h"

#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/status.h"

void cl_session_opts_default(cl_session_opts *o)
{
    memset(o, 0, sizeof *o);
    o->store_answer = 1;
    o->restore = 1;
}

int cl_session_generate(cl_prefix *pc, cl_model *m, cl_seq *s, const cl_session_opts *so,
                        const int32_t *prompt, int64_t n, const cl_gen_opts *go, cl_ids *out,
                        cl_session_stats *st)
{
    cl_session_opts dso;
    if (!so) {
        cl_session_opts_default(&dso);
        so = &dso;
    }
    memset(st, 0, sizeof *st);
    if (n <= 0)
        return cl_err(CL_ERR_ARG, "empty prompt: at least one token is needed");
    /* every check before any work: ids, options, the context for prompt + answer */
    CL_TRY(cl_check_prompt(m, s, prompt, n, go->max_context));
    CL_TRY(cl_gen_opts_check(m, go));
    int64_t budget;
    CL_TRY(cl_gen_budget(m, s->pos, n, go, &budget));
    if (go->gka_num_iter >= 0 && go->gka_num_iter != m->gka_num_iter)
        pc = NULL; /* stored states were computed with the model's solver iterations */
    double t0 = cl_now();
    int64_t cached = 0;
    if (pc && so->restore)
        CL_TRY(cl_prefix_restore(pc, s, prompt, n - 1, &cached));
    st->cached_tokens = cached;
    /* prefill up to n-1 in segments that end where a snapshot is wanted */
    enum { MAXCAP = 64 };
    cl_prefix_capture caps[MAXCAP + 2];
    int ncap = 0, rc = CL_OK;
    int64_t every = pc && pc->snapshot_every > 0 ? pc->snapshot_every * pc->block_tokens : 0;
    int64_t at = cached;
    while (at < n - 1 && rc == CL_OK) {
        int64_t end = n - 1;
        if (every) {
            int64_t next = (at / every + 1) * every;
            if (next < end)
                end = next;
        }
        int64_t model_iter = m->gka_num_iter;
        if (go->gka_num_iter >= 0)
            m->gka_num_iter = go->gka_num_iter;
        rc = cl_seq_feed(m, s, prompt + at, end - at, go->prefill_chunk, CL_LOGITS_NONE, NULL);
        m->gka_num_iter = model_iter;
        at = end;
        if (rc == CL_OK && pc && ncap < MAXCAP && (end == n - 1 || (every && end % every == 0)))
            rc = cl_prefix_capture_now(pc, s, &caps[ncap++]);
        /* snapshots of a big model are tens of MiB: store them as we go, keep few in memory */
        if (rc == CL_OK && pc && ncap >= 4 && at < n - 1) {
            rc = cl_prefix_save(pc, s, prompt, at, caps, ncap);
            for (int i = 0; i < ncap; i++)
                cl_prefix_capture_free(&caps[i]);
            ncap = 0;
        }
    }
    cl_gen_opts g = *go;
    g.max_new_tokens = budget;
    g.feed_last = g.feed_last || (pc && so->store_answer);
    if (rc == CL_OK)
        rc = cl_generate(m, s, prompt + n - 1, 1, &g, out, &st->gen);
    st->prefill_tokens = n - cached;
    st->prefill_s = cl_now() - t0 - st->gen.decode_s;
    if (rc == CL_OK)
        cl_log_info("prompt of %lld tokens: %lld restored, %lld computed in %.3f s (%.0f tok/s); "
                    "%lld new tokens in %.3f s",
                    (long long)n, (long long)cached, (long long)(n - cached), st->prefill_s,
                    st->prefill_s > 0 ? (double)(n - cached) / st->prefill_s : 0.0,
                    (long long)st->gen.new_tokens, st->gen.decode_s);
    if (rc == CL_OK && pc) {
        /* the state now covers prompt + answer (feed_last): store blocks and snapshots */
        int64_t total = n + (int64_t)out->n;
        int32_t *all = malloc((size_t)total * sizeof *all);
        if (!all) {
            rc = cl_err(CL_ERR_NOMEM, "out of memory");
        } else {
            memcpy(all, prompt, (size_t)n * sizeof *all);
            memcpy(all + n, out->v, out->n * sizeof *all);
            if (so->store_answer && s->kv_len == total)
                rc = cl_prefix_capture_now(pc, s, &caps[ncap++]);
            if (rc == CL_OK)
                rc = cl_prefix_save(pc, s, all, s->kv_len < total ? s->kv_len : total, caps,
                                    ncap);
            free(all);
        }
    }
    for (int i = 0; i < ncap; i++)
        cl_prefix_capture_free(&caps[i]);
    return rc;
}
