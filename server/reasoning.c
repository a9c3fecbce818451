#include "reasoning.h"

#include <string.h>

static const char THINK[] = "<think>", END_THINK[] = "</think>";

const char *find_tag(const char *s, size_t n, const char *tag)
{
    size_t t = strlen(tag);
    if (t == 0 || n < t)
        return NULL;
    for (const char *p = s; (p = memchr(p, tag[0], (size_t)(s + n - p))) != NULL; p++) {
        if ((size_t)(s + n - p) < t)
            return NULL;
        if (!memcmp(p, tag, t))
            return p;
    }
    return NULL;
}

size_t tag_overlap(const char *s, size_t n, const char *tag)
{
    size_t t = strlen(tag);
    size_t k = n < t - 1 ? n : t - 1;
    for (; k > 0; k--)
        if (!memcmp(s + n - k, tag, k))
            return k;
    return 0;
}

void rsn_extract(const char *text, size_t len, const char **reasoning, size_t *reasoning_len,
                 const char **content, size_t *content_len)
{
    *reasoning = NULL;
    *reasoning_len = 0;
    *content = text;
    *content_len = len;
    const char *open = find_tag(text, len, THINK);
    if (!open || !find_tag(text, len, END_THINK))
        return;
    const char *body = open + strlen(THINK);
    const char *close = find_tag(body, (size_t)(text + len - body), END_THINK);
    if (!close) { /* </think> only before <think>: as vLLM, the text after <think> */
        *content = body;
        *content_len = (size_t)(text + len - body);
        return;
    }
    *reasoning = body;
    *reasoning_len = (size_t)(close - body);
    const char *after = close + strlen(END_THINK);
    *content_len = (size_t)(text + len - after);
    *content = *content_len ? after : NULL;
}

void rsn_init(rsn_stream *r) { memset(r, 0, sizeof *r); }

void rsn_free(rsn_stream *r) { sb_free(&r->held); }

void rsn_push(rsn_stream *r, const char *delta, size_t n, sbuf *reasoning, sbuf *content)
{
    if (r->phase == 2) {
        sb_put(content, delta, n);
        return;
    }
    sb_put(&r->held, delta, n);
    const char *s = r->held.p ? r->held.p : "";
    size_t len = r->held.n, at = 0;
    while (r->phase < 2) {
        const char *tag = r->phase == 0 ? THINK : END_THINK;
        sbuf *out = r->phase == 0 ? content : reasoning;
        const char *hit = find_tag(s + at, len - at, tag);
        if (!hit) {
            size_t keep = tag_overlap(s + at, len - at, tag);
            sb_put(out, s + at, len - at - keep);
            at = len - keep;
            break;
        }
        sb_put(out, s + at, (size_t)(hit - (s + at)));
        at = (size_t)(hit - s) + strlen(tag);
        r->phase++;
    }
    if (r->phase == 2) {
        sb_put(content, s + at, len - at);
        at = len;
    }
    /* keep only the held-back tail */
    if (r->held.p) {
        memmove(r->held.p, s + at, len - at);
        r->held.n = len - at;
        r->held.p[r->held.n] = 0;
    }
}

void rsn_finish(rsn_stream *r, sbuf *reasoning, sbuf *content)
{
    if (r->held.n)
        sb_put(r->phase == 1 ? reasoning : content, r->held.p, r->held.n);
    sb_reset(&r->held);
}
