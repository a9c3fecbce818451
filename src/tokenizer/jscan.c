#include "tokenizer/jscan.h"

#include <stdlib.h>
#include <string.h>

#include "common/status.h"

/* Deeper nesting than this is refused rather than risking the C stack. */
#define MAX_DEPTH 256

void cl_jscan_init(cl_jscan *s, const char *what, const char *text, size_t len)
{
    memset(s, 0, sizeof *s);
    s->base = s->p = text;
    s->end = text + len;
    s->what = what;
}

void cl_jscan_free(cl_jscan *s)
{
    free(s->buf);
    s->buf = NULL;
    s->cap = 0;
}

int cl_jscan_error(cl_jscan *s, const char *detail)
{
    int line = 1, col = 1;
    for (const char *q = s->base; q < s->p && q < s->end; q++) {
        if (*q == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    if (s->p >= s->end && s->p == s->base)
        return cl_err(CL_ERR_FORMAT, "%s: malformed JSON: empty file", s->what);
    return cl_err(CL_ERR_FORMAT, "%s: malformed JSON at line %d, column %d%s%s", s->what, line,
                  col, detail ? ": " : "", detail ? detail : "");
}

static void skip_ws(cl_jscan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\n' || *s->p == '\r' || *s->p == '\t'))
        s->p++;
}

int cl_jscan_peek(cl_jscan *s)
{
    skip_ws(s);
    return s->p < s->end ? (unsigned char)*s->p : -1;
}

int cl_jscan_expect(cl_jscan *s, char c)
{
    if (cl_jscan_peek(s) != (unsigned char)c) {
        char d[32] = "expected ' '";
        d[10] = c;
        return cl_jscan_error(s, d);
    }
    s->p++;
    return CL_OK;
}

int cl_jscan_more(cl_jscan *s, char close, int *first, int *more)
{
    int c = cl_jscan_peek(s);
    if (c == (unsigned char)close) {
        s->p++;
        *more = 0;
        return CL_OK;
    }
    if (!*first) {
        if (c != ',')
            return cl_jscan_error(s, close == '}' ? "expected ',' or '}'" : "expected ',' or ']'");
        s->p++;
        if (cl_jscan_peek(s) == (unsigned char)close)
            return cl_jscan_error(s, "trailing comma");
    }
    *first = 0;
    *more = 1;
    return CL_OK;
}

static int hex4(const char *p, unsigned *v)
{
    unsigned x = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        x <<= 4;
        if (c >= '0' && c <= '9')
            x |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            x |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            x |= (unsigned)(c - 'A' + 10);
        else
            return -1;
    }
    *v = x;
    return 0;
}

static size_t put_utf8(char *o, unsigned cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Slow path of cl_jscan_string for strings with escapes; q is at the first byte
 * after the opening quote. */
static int unescape(cl_jscan *s, const char *q, const char **str, size_t *len)
{
    size_t o = 0;
    for (;;) {
        /* An escape never grows: 6 bytes of "\uXXXX" give at most 3 (4 for a pair
         * of 12), so a buffer as long as the rest of the file always suffices; grow
         * in steps instead of reserving that. */
        if (o + 8 > s->cap) {
            size_t cap = s->cap ? s->cap * 2 : 256;
            char *nb = realloc(s->buf, cap);
            if (!nb)
                return cl_err(CL_ERR_NOMEM, "%s: out of memory", s->what);
            s->buf = nb;
            s->cap = cap;
        }
        if (q >= s->end) {
            s->p = q;
            return cl_jscan_error(s, "unterminated string");
        }
        unsigned char c = (unsigned char)*q;
        if (c == '"') {
            s->p = q + 1;
            *str = s->buf;
            *len = o;
            return CL_OK;
        }
        if (c < 0x20) {
            s->p = q;
            return cl_jscan_error(s, "control character in string");
        }
        if (c != '\\') {
            s->buf[o++] = (char)c;
            q++;
            continue;
        }
        if (q + 1 >= s->end) {
            s->p = q;
            return cl_jscan_error(s, "unterminated string");
        }
        char e = q[1];
        q += 2;
        switch (e) {
        case '"': s->buf[o++] = '"'; break;
        case '\\': s->buf[o++] = '\\'; break;
        case '/': s->buf[o++] = '/'; break;
        case 'b': s->buf[o++] = '\b'; break;
        case 'f': s->buf[o++] = '\f'; break;
        case 'n': s->buf[o++] = '\n'; break;
        case 'r': s->buf[o++] = '\r'; break;
        case 't': s->buf[o++] = '\t'; break;
        case 'u': {
            unsigned cp, lo;
            if (q + 4 > s->end || hex4(q, &cp)) {
                s->p = q;
                return cl_jscan_error(s, "bad \\u escape");
            }
            q += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (q + 6 > s->end || q[0] != '\\' || q[1] != 'u' || hex4(q + 2, &lo) ||
                    lo < 0xDC00 || lo > 0xDFFF) {
                    s->p = q;
                    return cl_jscan_error(s, "unpaired surrogate in \\u escape");
                }
                q += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                s->p = q;
                return cl_jscan_error(s, "unpaired surrogate in \\u escape");
            }
            o += put_utf8(s->buf + o, cp);
            break;
        }
        default:
            s->p = q - 1;
            return cl_jscan_error(s, "bad escape in string");
        }
    }
}

/* Nonzero if one of the 8 bytes in v is '"', '\\' or below 0x20 (exact test:
 * the classic "has zero byte" / "has byte less than n" bit tricks). */
static inline uint64_t special_byte(uint64_t v)
{
    const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
    uint64_t quote = v ^ (ones * '"'), backslash = v ^ (ones * '\\');
    return ((quote - ones) & ~quote & high) | ((backslash - ones) & ~backslash & high) |
           ((v - ones * 0x20) & ~v & high);
}

int cl_jscan_string(cl_jscan *s, const char **str, size_t *len)
{
    if (cl_jscan_peek(s) != '"')
        return cl_jscan_error(s, "expected a string");
    const char *start = s->p + 1, *q = start;
    /* Fast path: most strings have no escapes and can be returned in place. Eight
     * bytes at a time are skipped while none is '"', '\\' or a control byte. */
    while (q < s->end) {
        if (s->end - q >= 8) {
            uint64_t v;
            memcpy(&v, q, 8);
            if (!special_byte(v)) {
                q += 8;
                continue;
            }
        }
        unsigned char c = (unsigned char)*q;
        if (c == '"') {
            *str = start;
            *len = (size_t)(q - start);
            s->p = q + 1;
            return CL_OK;
        }
        if (c == '\\')
            return unescape(s, start, str, len);
        if (c < 0x20) {
            s->p = q;
            return cl_jscan_error(s, "control character in string");
        }
        q++;
    }
    s->p = q;
    return cl_jscan_error(s, "unterminated string");
}

int cl_jscan_int(cl_jscan *s, int64_t *v)
{
    int c = cl_jscan_peek(s);
    const char *q = s->p;
    int neg = 0;
    if (c == '-') {
        neg = 1;
        q++;
    }
    if (q >= s->end || *q < '0' || *q > '9')
        return cl_jscan_error(s, "expected an integer");
    if (*q == '0' && q + 1 < s->end && q[1] >= '0' && q[1] <= '9')
        return cl_jscan_error(s, "leading zero in number");
    uint64_t x = 0;
    while (q < s->end && *q >= '0' && *q <= '9') {
        if (x >= UINT64_C(100000000000000000)) /* 1e17: far beyond any token id */
            return cl_jscan_error(s, "integer out of range");
        x = x * 10 + (uint64_t)(*q - '0');
        q++;
    }
    if (q < s->end && (*q == '.' || *q == 'e' || *q == 'E'))
        return cl_jscan_error(s, "expected an integer");
    s->p = q;
    *v = neg ? -(int64_t)x : (int64_t)x;
    return CL_OK;
}

static int skip_number(cl_jscan *s)
{
    const char *q = s->p;
    if (q < s->end && *q == '-')
        q++;
    if (q >= s->end || *q < '0' || *q > '9')
        return cl_jscan_error(s, "bad number");
    if (*q == '0')
        q++;
    else
        while (q < s->end && *q >= '0' && *q <= '9')
            q++;
    if (q < s->end && *q == '.') {
        q++;
        if (q >= s->end || *q < '0' || *q > '9')
            return cl_jscan_error(s, "bad number");
        while (q < s->end && *q >= '0' && *q <= '9')
            q++;
    }
    if (q < s->end && (*q == 'e' || *q == 'E')) {
        q++;
        if (q < s->end && (*q == '+' || *q == '-'))
            q++;
        if (q >= s->end || *q < '0' || *q > '9')
            return cl_jscan_error(s, "bad number");
        while (q < s->end && *q >= '0' && *q <= '9')
            q++;
    }
    s->p = q;
    return CL_OK;
}

static int skip_literal(cl_jscan *s, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n))
        return cl_jscan_error(s, "unexpected character");
    s->p += n;
    return CL_OK;
}

static int skip_value(cl_jscan *s, int depth)
{
    if (depth > MAX_DEPTH)
        return cl_jscan_error(s, "nesting too deep");
    int c = cl_jscan_peek(s);
    const char *str;
    size_t len;
    int first = 1, more;
    switch (c) {
    case '"': return cl_jscan_string(s, &str, &len);
    case '{':
        s->p++;
        for (;;) {
            CL_TRY(cl_jscan_more(s, '}', &first, &more));
            if (!more)
                return CL_OK;
            CL_TRY(cl_jscan_string(s, &str, &len));
            CL_TRY(cl_jscan_expect(s, ':'));
            CL_TRY(skip_value(s, depth + 1));
        }
    case '[':
        s->p++;
        for (;;) {
            CL_TRY(cl_jscan_more(s, ']', &first, &more));
            if (!more)
                return CL_OK;
            CL_TRY(skip_value(s, depth + 1));
        }
    case 't': return skip_literal(s, "true");
    case 'f': return skip_literal(s, "false");
    case 'n': return skip_literal(s, "null");
    case -1: return cl_jscan_error(s, "unexpected end of file");
    default:
        if (c == '-' || (c >= '0' && c <= '9'))
            return skip_number(s);
        return cl_jscan_error(s, "unexpected character");
    }
}

int cl_jscan_skip(cl_jscan *s) { return skip_value(s, 0); }

int cl_jscan_span(cl_jscan *s, const char **start, size_t *len)
{
    cl_jscan_peek(s);
    const char *st = s->p;
    CL_TRY(skip_value(s, 0));
    *start = st;
    *len = (size_t)(s->p - st);
    return CL_OK;
}
