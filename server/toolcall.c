#include "toolcall.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "reasoning.h"

static const char OPEN[] = "<tool_call>", CLOSE[] = "</tool_call>";

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

static void trim(const char **s, size_t *n)
{
    while (*n && is_space(**s))
        (*s)++, (*n)--;
    while (*n && is_space((*s)[*n - 1]))
        (*n)--;
}

/* The next region after `from`: [*body, *body + *body_len) between <tool_call> and
 * </tool_call> (or the end of the text: *closed = 0). *next: where to look on. 0 if
 * there is no further <tool_call>. */
static int next_region(const char *s, size_t n, size_t from, const char **body,
                       size_t *body_len, int *closed, size_t *next)
{
    const char *open = find_tag(s + from, n - from, OPEN);
    if (!open)
        return 0;
    const char *b = open + strlen(OPEN);
    const char *close = find_tag(b, (size_t)(s + n - b), CLOSE);
    *body = b;
    if (close) {
        *body_len = (size_t)(close - b);
        *closed = 1;
        *next = (size_t)(close - s) + strlen(CLOSE);
    } else {
        *body_len = (size_t)(s + n - b);
        *closed = 0;
        *next = n;
    }
    return 1;
}

void tc_calls_free(tc_call *calls, int n)
{
    for (int i = 0; i < n; i++) {
        free(calls[i].name);
        free(calls[i].arguments);
    }
    free(calls);
}

int tc_extract(const char *text, size_t len, tc_call **calls, int *n, const char **content,
               size_t *content_len)
{
    *calls = NULL;
    *n = 0;
    *content = text;
    *content_len = len;
    const char *first = find_tag(text, len, OPEN);
    if (!first)
        return 0;
    tc_call *out = NULL;
    int count = 0, ok = 1;
    const char *body;
    size_t body_len, at = 0, next;
    int closed;
    while (ok && next_region(text, len, at, &body, &body_len, &closed, &next)) {
        at = next;
        trim(&body, &body_len);
        cJSON *j = cJSON_ParseWithLength(body, body_len);
        const cJSON *name = j ? cJSON_GetObjectItemCaseSensitive(j, "name") : NULL;
        const cJSON *args = j ? cJSON_GetObjectItemCaseSensitive(j, "arguments") : NULL;
        if (!cJSON_IsObject(j) || !cJSON_IsString(name) || !args) {
            ok = 0;
        } else {
            tc_call *grown = realloc(out, (size_t)(count + 1) * sizeof *grown);
            char *nm = strdup(name->valuestring);
            char *ar = cJSON_PrintUnformatted(args);
            if (!grown || !nm || !ar) {
                free(nm);
                free(ar);
                if (grown)
                    out = grown;
                cJSON_Delete(j);
                tc_calls_free(out, count);
                return -1;
            }
            out = grown;
            out[count].name = nm;
            out[count].arguments = ar;
            count++;
        }
        cJSON_Delete(j);
    }
    if (!ok || count == 0) {
        tc_calls_free(out, count);
        return 0;
    }
    *calls = out;
    *n = count;
    *content_len = (size_t)(first - text);
    *content = *content_len ? text : NULL;
    return 0;
}

/* ---- streaming ------------------------------------------------------------------ */

void tc_init(tc_stream *t) { memset(t, 0, sizeof *t); }

void tc_free(tc_stream *t)
{
    sb_free(&t->acc);
    free(t->args_sent);
    memset(t, 0, sizeof *t);
}

int tc_count(const tc_stream *t) { return t->n_named; }

/* After `key` (a quoted JSON key) and its colon in s[0..n): the value's offset, or -1. */
static long value_after(const char *s, size_t n, const char *key)
{
    const char *k = find_tag(s, n, key);
    if (!k)
        return -1;
    size_t i = (size_t)(k - s) + strlen(key);
    while (i < n && is_space(s[i]))
        i++;
    if (i >= n || s[i] != ':')
        return -1;
    i++;
    while (i < n && is_space(s[i]))
        i++;
    return (long)i;
}

/* The name once it is complete: a non-empty string without escapes. */
static int region_name(const char *s, size_t n, const char **name, size_t *len)
{
    long v = value_after(s, n, "\"name\"");
    if (v < 0 || (size_t)v >= n || s[v] != '"')
        return 0;
    const char *b = s + v + 1;
    const char *e = memchr(b, '"', (size_t)(s + n - b));
    if (!e || e == b)
        return 0;
    *name = b;
    *len = (size_t)(e - b);
    return 1;
}

/* The arguments value as far as it has arrived: an object or array up to its matching
 * bracket (strings skipped), else the raw rest (a scalar, complete only at the end). */
static int region_args(const char *s, size_t n, int complete, const char **args, size_t *len)
{
    long v = value_after(s, n, "\"arguments\"");
    if (v < 0 || (size_t)v >= n)
        return 0;
    const char *raw = s + v;
    size_t rn = n - (size_t)v;
    if (raw[0] != '{' && raw[0] != '[') {
        if (!complete)
            return 0;
        trim(&raw, &rn);
        if (rn && raw[rn - 1] == '}') /* the enclosing object's brace */
            rn--;
        trim(&raw, &rn);
        *args = raw;
        *len = rn;
        return rn > 0;
    }
    char open = raw[0], close = open == '{' ? '}' : ']';
    int depth = 0, in_str = 0, esc = 0;
    for (size_t i = 0; i < rn; i++) {
        char c = raw[i];
        if (in_str) {
            if (esc)
                esc = 0;
            else if (c == '\\')
                esc = 1;
            else if (c == '"')
                in_str = 0;
            continue;
        }
        if (c == '"')
            in_str = 1;
        else if (c == open)
            depth++;
        else if (c == close && --depth == 0) {
            *args = raw;
            *len = i + 1;
            return 1;
        }
    }
    *args = raw;
    *len = rn;
    return 1;
}

static int grow_calls(tc_stream *t, int need)
{
    if (need <= t->cap)
        return 1;
    int cap = t->cap ? 2 * t->cap : 4;
    size_t *p = realloc(t->args_sent, (size_t)cap * sizeof *p);
    if (!p) {
        t->oom = 1;
        return 0;
    }
    memset(p + t->cap, 0, (size_t)(cap - t->cap) * sizeof *p);
    t->args_sent = p;
    t->cap = cap;
    return 1;
}

static void scan(tc_stream *t, int at_end, sbuf *content, tc_delta_fn fn, void *user)
{
    const char *s = t->acc.p ? t->acc.p : "";
    size_t n = t->acc.n;
    const char *first = find_tag(s, n, OPEN);
    size_t sendable = first ? (size_t)(first - s) : n - (at_end ? 0 : tag_overlap(s, n, OPEN));
    if (sendable > t->sent) {
        sb_put(content, s + t->sent, sendable - t->sent);
        t->sent = sendable;
    }
    const char *body;
    size_t body_len, from = 0, next;
    int closed;
    for (int i = 0; next_region(s, n, from, &body, &body_len, &closed, &next); i++) {
        from = next;
        if (!closed && !at_end) /* the end tag may be arriving */
            body_len -= tag_overlap(body, body_len, CLOSE);
        trim(&body, &body_len);
        if (i >= t->n_named) {
            const char *name;
            size_t name_len;
            if (!region_name(body, body_len, &name, &name_len) || !grow_calls(t, i + 1))
                return; /* a call is reported only after the previous one's name */
            char buf[256];
            size_t k = name_len < sizeof buf - 1 ? name_len : sizeof buf - 1;
            memcpy(buf, name, k);
            buf[k] = 0;
            t->n_named = i + 1;
            t->args_sent[i] = 0;
            fn(user, i, buf, NULL, 0);
        }
        const char *args;
        size_t args_len;
        if (region_args(body, body_len, closed || at_end, &args, &args_len) &&
            args_len > t->args_sent[i]) {
            fn(user, i, NULL, args + t->args_sent[i], args_len - t->args_sent[i]);
            t->args_sent[i] = args_len;
        }
    }
}

void tc_push(tc_stream *t, const char *delta, size_t n, sbuf *content, tc_delta_fn fn,
             void *user)
{
    sb_put(&t->acc, delta, n);
    if (t->acc.oom)
        t->oom = 1;
    if (!t->oom)
        scan(t, 0, content, fn, user);
}

void tc_finish(tc_stream *t, sbuf *content, tc_delta_fn fn, void *user)
{
    if (!t->oom)
        scan(t, 1, content, fn, user);
}
