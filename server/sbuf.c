#include "sbuf.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sb_free(sbuf *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

void sb_reset(sbuf *b)
{
    b->n = 0;
    if (b->p)
        b->p[0] = 0;
}

static int reserve(sbuf *b, size_t more)
{
    if (b->oom)
        return 0;
    if (b->n + more + 1 <= b->cap)
        return 1;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + more + 1)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->oom = 1;
        return 0;
    }
    b->p = p;
    b->cap = cap;
    return 1;
}

void sb_put(sbuf *b, const void *s, size_t n)
{
    if (!reserve(b, n))
        return;
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

void sb_puts(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

void sb_printf(sbuf *b, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof small) {
        sb_put(b, small, (size_t)n);
        return;
    }
    if (!reserve(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->n, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->n += (size_t)n;
}

void sb_i64(sbuf *b, int64_t v) { sb_printf(b, "%lld", (long long)v); }

void sb_double(sbuf *b, double v)
{
    if (!isfinite(v)) {
        /* JSON has no infinities: a logprob of -inf is reported as a very low number */
        if (isinf(v) && v < 0)
            sb_puts(b, "-9999.0");
        else
            sb_puts(b, "null");
        return;
    }
    sb_printf(b, "%.9g", v);
}

/* Length of the well-formed UTF-8 sequence at s (n bytes left), 0 if malformed. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len;
    unsigned min;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2, min = 0x80;
    else if (c >= 0xE0 && c <= 0xEF)
        len = 3, min = 0x800;
    else if (c >= 0xF0 && c <= 0xF4)
        len = 4, min = 0x10000;
    else
        return 0;
    if (n < len)
        return 0;
    unsigned cp = c & (0x7F >> len);
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

void sb_json_str(sbuf *b, const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    if (!reserve(b, n + 2))
        return;
    sb_put(b, "\"", 1);
    size_t run = 0; /* start of the pending run of bytes copied as they are */
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
            i++;
            continue;
        }
        size_t len = c >= 0x80 ? utf8_len(s + i, n - i) : 0;
        if (len > 1) {
            i += len;
            continue;
        }
        sb_put(b, s + run, i - run);
        switch (c) {
        case '"': sb_put(b, "\\\"", 2); break;
        case '\\': sb_put(b, "\\\\", 2); break;
        case '\n': sb_put(b, "\\n", 2); break;
        case '\r': sb_put(b, "\\r", 2); break;
        case '\t': sb_put(b, "\\t", 2); break;
        case 0: break; /* NUL bytes are dropped */
        default:
            if (c < 0x20)
                sb_printf(b, "\\u%04x", c);
            else
                sb_put(b, "\xEF\xBF\xBD", 3); /* U+FFFD for a malformed byte */
        }
        i++;
        run = i;
    }
    sb_put(b, s + run, n - run);
    sb_put(b, "\"", 1);
}

char *sb_take(sbuf *b, size_t *len)
{
    if (!b->p)
        reserve(b, 0);
    char *p = b->oom ? NULL : b->p;
    if (len)
        *len = b->n;
    if (b->oom)
        free(b->p);
    memset(b, 0, sizeof *b);
    return p;
}
