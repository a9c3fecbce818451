#include "output.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Scratch buffers of the engine thread (the only thread building answers). */
static _Thread_local sbuf s_reason, s_pre, s_content, s_tools, s_chunk;
static _Thread_local double s_callback_s; /* CPU time in out_on_token (per-token work) */

double out_callback_seconds(void) { return s_callback_s; }

void out_thread_cleanup(void)
{
    sb_free(&s_reason);
    sb_free(&s_pre);
    sb_free(&s_content);
    sb_free(&s_tools);
    sb_free(&s_chunk);
}

static double clock_s(clockid_t id)
{
    struct timespec t;
    clock_gettime(id, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static double now_s(void) { return clock_s(CLOCK_MONOTONIC); }

int out_job_init(srv_job *j)
{
    srv_gen_req *r = &j->req;
    j->n_ch = r->n_prompts * r->n;
    j->ch = calloc((size_t)j->n_ch, sizeof *j->ch);
    if (!j->ch)
        return cl_err(CL_ERR_NOMEM, "out of memory");
    for (int i = 0; i < j->n_ch; i++) {
        srv_choice *c = &j->ch[i];
        c->job = j;
        c->index = i;
        c->prompt = i / r->n;
        c->sched_id = -1;
        rsn_init(&c->rsn);
        tc_init(&c->tc);
        CL_TRY(cl_textstream_create(j->s->tok, (const char *const *)r->stop, r->n_stop,
                                    j->s->stop_ids, j->s->n_stop_ids, &c->ts));
    }
    return CL_OK;
}

/* ---- pieces of JSON ------------------------------------------------------------------ */

static void token_json(sbuf *b, const cl_tokenizer *tok, int32_t id, int with_bytes)
{
    const char *bytes = "";
    size_t n = 0;
    cl_tokenizer_token_bytes(tok, id, &bytes, &n);
    sb_puts(b, "\"token\":");
    sb_json_str(b, bytes, n);
    if (with_bytes) {
        sb_puts(b, ",\"bytes\":[");
        for (size_t i = 0; i < n; i++)
            sb_printf(b, i ? ",%u" : "%u", (unsigned)(unsigned char)bytes[i]);
        sb_puts(b, "]");
    }
}

static void usage_json(sbuf *b, const srv_job *j)
{
    int64_t gen = 0;
    for (int i = 0; i < j->n_ch; i++)
        gen += j->ch[i].tokens;
    sb_printf(b,
              "{\"prompt_tokens\":%lld,\"completion_tokens\":%lld,\"total_tokens\":%lld,"
              "\"prompt_tokens_details\":{\"cached_tokens\":%lld}}",
              (long long)j->prompt_tokens, (long long)gen, (long long)(j->prompt_tokens + gen),
              (long long)j->cached_tokens);
}

static const char *finish_reason(const srv_choice *c)
{
    if (c->job->req.tools && (tc_count(&c->tc) > 0 || c->n_calls > 0))
        return "tool_calls";
    switch (c->res.stop) {
    case CL_STOP_LENGTH: return "length";
    case CL_STOP_CANCELLED: return "abort";
    default: return "stop";
    }
}

static void chunk_head(sbuf *b, const srv_job *j)
{
    int chat = j->req.api == SRV_API_CHAT;
    sb_puts(b, "data: {\"id\":\"");
    sb_puts(b, j->id);
    sb_puts(b, chat ? "\",\"object\":\"chat.completion.chunk\",\"created\":"
                    : "\",\"object\":\"text_completion\",\"created\":");
    sb_i64(b, j->created);
    sb_puts(b, ",\"model\":");
    sb_json_str(b, j->s->model_name, strlen(j->s->model_name));
}

/* Appends bytes to the job's stream and wakes its connection. */
static void stream_put(srv_job *j, const sbuf *b)
{
    pthread_mutex_lock(&j->mu);
    sb_put(&j->out, b->p, b->n);
    struct MHD_Connection *c = job_wake_take(j);
    pthread_mutex_unlock(&j->mu);
    job_resume(c);
}

/* ---- logprobs -------------------------------------------------------------------------- */

int out_on_logprobs(void *user, const cl_token_logprobs *lp)
{
    srv_choice *c = user;
    const cl_tokenizer *tok = c->job->s->tok;
    sbuf *b = &c->lp_pending;
    sb_reset(b);
    c->has_pending = 1;
    if (c->job->req.api == SRV_API_CHAT) {
        sb_puts(b, "{");
        token_json(b, tok, lp->id, 1);
        sb_puts(b, ",\"logprob\":");
        sb_double(b, lp->logprob);
        sb_puts(b, ",\"top_logprobs\":[");
        for (int k = 0; k < lp->n_top; k++) {
            sb_puts(b, k ? ",{" : "{");
            token_json(b, tok, lp->top_ids[k], 1);
            sb_puts(b, ",\"logprob\":");
            sb_double(b, lp->top_logprobs[k]);
            sb_puts(b, "}");
        }
        sb_puts(b, "]}");
        return 0;
    }
    /* completions: "token\x01logprob\x01{top}" kept as three parts in one buffer */
    const char *bytes = "";
    size_t n = 0;
    cl_tokenizer_token_bytes(tok, lp->id, &bytes, &n);
    sb_json_str(b, bytes, n);
    sb_put(b, "\x01", 1);
    sb_double(b, lp->logprob);
    sb_put(b, "\x01{", 2);
    for (int k = 0; k < lp->n_top; k++) {
        const char *tb = "";
        size_t tn = 0;
        cl_tokenizer_token_bytes(tok, lp->top_ids[k], &tb, &tn);
        if (k)
            sb_puts(b, ",");
        sb_json_str(b, tb, tn);
        sb_puts(b, ":");
        sb_double(b, lp->top_logprobs[k]);
    }
    sb_puts(b, "}");
    sb_put(b, "\x01", 1);
    sb_i64(b, c->text_offset);
    c->text_offset += (int64_t)n;
    return 0;
}

/* The pending entry becomes part of the choice's logprobs (its token was emitted). */
static void commit_logprobs(srv_choice *c)
{
    if (!c->has_pending)
        return;
    c->has_pending = 0;
    if (c->job->req.api == SRV_API_CHAT) {
        if (c->lp_count)
            sb_puts(&c->lp, ",");
        sb_put(&c->lp, c->lp_pending.p, c->lp_pending.n);
        c->lp_count++;
        return;
    }
    sbuf *dst[4] = {&c->lp_tok, &c->lp_val, &c->lp_top, &c->lp_off};
    const char *p = c->lp_pending.p, *end = p + c->lp_pending.n;
    for (int k = 0; k < 4; k++) {
        const char *sep = memchr(p, '\x01', (size_t)(end - p));
        const char *stop = sep ? sep : end;
        if (c->lp_count)
            sb_puts(dst[k], ",");
        sb_put(dst[k], p, (size_t)(stop - p));
        p = sep ? sep + 1 : end;
    }
    c->lp_count++;
}

static void logprobs_json(sbuf *b, srv_choice *c)
{
    if (!c->job->req.logprobs) {
        sb_puts(b, "null");
        return;
    }
    if (c->job->req.api == SRV_API_CHAT) {
        sb_puts(b, "{\"content\":[");
        sb_put(b, c->lp.p, c->lp.n);
        sb_puts(b, "]}");
        return;
    }
    sb_puts(b, "{\"tokens\":[");
    sb_put(b, c->lp_tok.p, c->lp_tok.n);
    sb_puts(b, "],\"token_logprobs\":[");
    sb_put(b, c->lp_val.p, c->lp_val.n);
    sb_puts(b, "],\"top_logprobs\":[");
    sb_put(b, c->lp_top.p, c->lp_top.n);
    sb_puts(b, "],\"text_offset\":[");
    sb_put(b, c->lp_off.p, c->lp_off.n);
    sb_puts(b, "]}");
}

static void logprobs_sent(srv_choice *c)
{
    sb_reset(&c->lp);
    sb_reset(&c->lp_tok);
    sb_reset(&c->lp_val);
    sb_reset(&c->lp_top);
    sb_reset(&c->lp_off);
    c->lp_count = 0;
}

/* ---- streamed deltas ---------------------------------------------------------------------- */

typedef struct {
    srv_choice *c;
    sbuf *out;
} tool_sink;

static void on_tool_delta(void *user, int index, const char *name, const char *args,
                          size_t args_len)
{
    tool_sink *t = user;
    srv_choice *c = t->c;
    if (t->out->n)
        sb_puts(t->out, ",");
    if (name) {
        if (index >= c->n_tool_ids) {
            char(*ids)[40] = realloc(c->tool_ids, (size_t)(index + 1) * sizeof *ids);
            if (!ids)
                return;
            c->tool_ids = ids;
            c->n_tool_ids = index + 1;
        }
        memcpy(c->tool_ids[index], "chatcmpl-tool-", 14);
        srv_random_hex(c->tool_ids[index] + 14, 24);
        sb_printf(t->out, "{\"index\":%d,\"id\":\"%s\",\"type\":\"function\",\"function\":"
                          "{\"name\":", index, c->tool_ids[index]);
        sb_json_str(t->out, name, strlen(name));
        sb_puts(t->out, ",\"arguments\":\"\"}}");
    }
    if (args && args_len) {
        if (name)
            sb_puts(t->out, ",");
        sb_printf(t->out, "{\"index\":%d,\"function\":{\"arguments\":", index);
        sb_json_str(t->out, args, args_len);
        sb_puts(t->out, "}}");
    }
}

/* Runs a text delta through the parsers and sends what is final as one chunk. */
static void emit(srv_choice *c, const char *d, size_t n, int last)
{
    srv_job *j = c->job;
    const srv_gen_req *r = &j->req;
    int chat = r->api == SRV_API_CHAT;
    sb_reset(&s_reason);
    sb_reset(&s_pre);
    sb_reset(&s_content);
    sb_reset(&s_tools);
    tool_sink sink = {c, &s_tools};
    if (chat && r->reasoning) {
        rsn_push(&c->rsn, d, n, &s_reason, &s_pre);
        if (last)
            rsn_finish(&c->rsn, &s_reason, &s_pre);
    } else {
        sb_put(&s_pre, d, n);
    }
    if (chat && r->tools) {
        tc_push(&c->tc, s_pre.p ? s_pre.p : "", s_pre.n, &s_content, on_tool_delta, &sink);
        if (last)
            tc_finish(&c->tc, &s_content, on_tool_delta, &sink);
    } else {
        sb_put(&s_content, s_pre.p ? s_pre.p : "", s_pre.n);
    }
    if (!s_reason.n && !s_content.n && !s_tools.n && !c->lp_count && !last)
        return;
    sbuf *b = &s_chunk;
    sb_reset(b);
    chunk_head(b, j);
    sb_printf(b, ",\"choices\":[{\"index\":%d,", c->index);
    if (chat) {
        sb_puts(b, "\"delta\":{");
        int any = 0;
        if (s_reason.n) {
            sb_puts(b, "\"reasoning_content\":");
            sb_json_str(b, s_reason.p, s_reason.n);
            any = 1;
        }
        if (s_content.n) {
            sb_puts(b, any ? ",\"content\":" : "\"content\":");
            sb_json_str(b, s_content.p, s_content.n);
            any = 1;
        }
        if (s_tools.n) {
            sb_puts(b, any ? ",\"tool_calls\":[" : "\"tool_calls\":[");
            sb_put(b, s_tools.p, s_tools.n);
            sb_puts(b, "]");
        }
        sb_puts(b, "},");
    } else {
        sb_puts(b, "\"text\":");
        sb_json_str(b, s_content.p ? s_content.p : "", s_content.n);
        sb_puts(b, ",");
    }
    sb_puts(b, "\"logprobs\":");
    logprobs_json(b, c);
    logprobs_sent(c);
    sb_puts(b, ",\"finish_reason\":");
    if (last) {
        const char *why = finish_reason(c);
        sb_json_str(b, why, strlen(why));
    } else {
        sb_puts(b, "null");
    }
    sb_puts(b, "}]}\n\n");
    stream_put(j, b);
}

int out_on_token(void *user, int32_t id)
{
    srv_choice *c = user;
    srv_job *j = c->job;
    double cpu0 = clock_s(CLOCK_THREAD_CPUTIME_ID), t = now_s();
    srv_metrics *m = &j->s->metrics;
    srv_metrics_lock(m);
    m->generation_tokens++;
    if (c->tokens == 0)
        srv_hist_observe(&m->ttft, t - j->t_arrival);
    else
        srv_hist_observe(&m->itl, t - c->t_last);
    srv_metrics_unlock(m);
    c->tokens++;
    c->t_last = t;
    const char *d = "";
    size_t n = 0;
    int stop = cl_textstream_push(c->ts, id, &d, &n);
    if (stop < 0) { /* an id the tokenizer has no text for (the embedding has spare rows):
                       it adds nothing to the text, as in vLLM's detokenizer */
        stop = 0;
        d = "";
        n = 0;
    }
    commit_logprobs(c);
    if (j->req.stream)
        emit(c, d, n, 0);
    s_callback_s += clock_s(CLOCK_THREAD_CPUTIME_ID) - cpu0;
    return stop;
}

void out_stream_begin(srv_job *j)
{
    sbuf *b = &s_chunk;
    for (int i = 0; i < j->n_ch; i++) {
        srv_choice *c = &j->ch[i];
        if (j->req.api == SRV_API_COMPLETIONS && !j->req.echo)
            continue;
        sb_reset(b);
        chunk_head(b, j);
        sb_printf(b, ",\"choices\":[{\"index\":%d,", c->index);
        if (j->req.api == SRV_API_CHAT) {
            sb_puts(b, "\"delta\":{\"role\":\"assistant\",\"content\":\"\"},");
        } else {
            const char *t = j->req.echo_text[c->prompt];
            sb_puts(b, "\"text\":");
            sb_json_str(b, t, strlen(t));
            sb_puts(b, ",");
        }
        sb_puts(b, "\"logprobs\":null,\"finish_reason\":null}]}\n\n");
        stream_put(j, b);
    }
}

void out_choice_end(srv_choice *c)
{
    const char *d = "";
    size_t n = 0;
    cl_textstream_finish(c->ts, &d, &n);
    c->has_pending = 0; /* the EOS token's entry: not part of the answer */
    if (c->job->req.stream)
        emit(c, d, n, 1);
}

void out_stream_end(srv_job *j)
{
    sbuf *b = &s_chunk;
    sb_reset(b);
    if (j->req.include_usage) {
        chunk_head(b, j);
        sb_puts(b, ",\"choices\":[],\"usage\":");
        usage_json(b, j);
        sb_puts(b, "}\n\n");
    }
    sb_puts(b, "data: [DONE]\n\n");
    stream_put(j, b);
}

void out_stream_error(srv_job *j, const char *msg)
{
    sbuf *b = &s_chunk;
    sb_reset(b);
    sb_puts(b, "data: {\"error\":{\"message\":");
    sb_json_str(b, msg, strlen(msg));
    sb_puts(b, ",\"type\":\"server_error\",\"param\":null,\"code\":500}}\n\ndata: [DONE]\n\n");
    stream_put(j, b);
}

/* ---- whole answers ---------------------------------------------------------------------- */

static void message_json(sbuf *b, srv_choice *c)
{
    size_t len;
    const char *text = cl_textstream_text(c->ts, &len);
    const char *reason = NULL, *content = text;
    size_t reason_len = 0, content_len = len;
    if (c->job->req.reasoning)
        rsn_extract(text, len, &reason, &reason_len, &content, &content_len);
    tc_call *calls = NULL;
    int n_calls = 0;
    if (c->job->req.tools && content &&
        tc_extract(content, content_len, &calls, &n_calls, &content, &content_len) != 0)
        b->oom = 1;
    sb_puts(b, "{\"role\":\"assistant\",\"content\":");
    if (content)
        sb_json_str(b, content, content_len);
    else
        sb_puts(b, "null");
    sb_puts(b, ",\"reasoning_content\":");
    if (reason)
        sb_json_str(b, reason, reason_len);
    else
        sb_puts(b, "null");
    sb_puts(b, ",\"tool_calls\":[");
    for (int k = 0; k < n_calls; k++) {
        char id[40] = "chatcmpl-tool-";
        srv_random_hex(id + 14, 24);
        sb_printf(b, "%s{\"id\":\"%s\",\"type\":\"function\",\"function\":{\"name\":", k ? "," : "",
                  id);
        sb_json_str(b, calls[k].name, strlen(calls[k].name));
        sb_puts(b, ",\"arguments\":");
        sb_json_str(b, calls[k].arguments, strlen(calls[k].arguments));
        sb_puts(b, "}}");
    }
    sb_puts(b, "]}");
    c->n_calls = n_calls; /* the finish reason follows the calls found */
    tc_calls_free(calls, n_calls);
}

char *out_body(srv_job *j, size_t *len)
{
    sbuf b = {0};
    int chat = j->req.api == SRV_API_CHAT;
    sb_puts(&b, "{\"id\":\"");
    sb_puts(&b, j->id);
    sb_puts(&b, chat ? "\",\"object\":\"chat.completion\",\"created\":"
                     : "\",\"object\":\"text_completion\",\"created\":");
    sb_i64(&b, j->created);
    sb_puts(&b, ",\"model\":");
    sb_json_str(&b, j->s->model_name, strlen(j->s->model_name));
    sb_puts(&b, ",\"choices\":[");
    for (int i = 0; i < j->n_ch; i++) {
        srv_choice *c = &j->ch[i];
        sb_printf(&b, "%s{\"index\":%d,", i ? "," : "", c->index);
        if (chat) {
            sb_puts(&b, "\"message\":");
            message_json(&b, c);
        } else {
            size_t tl;
            const char *text = cl_textstream_text(c->ts, &tl);
            sb_puts(&b, "\"text\":");
            if (j->req.echo) {
                sbuf both = {0};
                sb_puts(&both, j->req.echo_text[c->prompt]);
                sb_put(&both, text, tl);
                sb_json_str(&b, both.p ? both.p : "", both.n);
                if (both.oom)
                    b.oom = 1;
                sb_free(&both);
            } else {
                sb_json_str(&b, text, tl);
            }
        }
        sb_puts(&b, ",\"logprobs\":");
        logprobs_json(&b, c);
        const char *why = finish_reason(c);
        sb_puts(&b, ",\"finish_reason\":");
        sb_json_str(&b, why, strlen(why));
        sb_puts(&b, "}");
    }
    sb_puts(&b, "],\"usage\":");
    usage_json(&b, j);
    sb_puts(&b, "}");
    return sb_take(&b, len);
}
