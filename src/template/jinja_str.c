/* jinja_str.c - Python str semantics over UTF-8: lengths and indexes count code
 * points, whitespace is Python's (str.isspace), case mapping uses utf8proc. */
#include <string.h>

#include <utf8proc.h>

#include "template/jinja_int.h"

size_t ju_decode(const char *s, size_t n, size_t i, uint32_t *cp)
{
    const unsigned char *u = (const unsigned char *)s + i;
    size_t left = n - i;
    unsigned char c = u[0];
    size_t k = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (k == 0 || k > left) {
        *cp = c; /* invalid byte: one "character" */
        return 1;
    }
    for (size_t j = 1; j < k; j++)
        if ((u[j] & 0xC0) != 0x80) {
            *cp = c;
            return 1;
        }
    if (k == 1)
        *cp = c;
    else if (k == 2)
        *cp = ((uint32_t)(c & 0x1F) << 6) | (u[1] & 0x3F);
    else if (k == 3)
        *cp = ((uint32_t)(c & 0x0F) << 12) | ((uint32_t)(u[1] & 0x3F) << 6) | (u[2] & 0x3F);
    else
        *cp = ((uint32_t)(c & 0x07) << 18) | ((uint32_t)(u[1] & 0x3F) << 12) |
              ((uint32_t)(u[2] & 0x3F) << 6) | (u[3] & 0x3F);
    return k;
}

int ju_encode(uint32_t cp, char *out)
{
    unsigned char *o = (unsigned char *)out;
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | (cp >> 6));
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | (cp >> 18));
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

size_t ju_cplen(const char *s, size_t n)
{
    size_t count = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        i += ju_decode(s, n, i, &cp);
        count++;
    }
    return count;
}

size_t ju_offset(const char *s, size_t n, int64_t k)
{
    size_t i = 0;
    while (k > 0 && i < n) {
        uint32_t cp;
        i += ju_decode(s, n, i, &cp);
        k--;
    }
    return i;
}

int ju_isspace(uint32_t cp)
{
    return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20) || cp == 0x85 || cp == 0xA0 ||
           cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 ||
           cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

static int in_set(uint32_t cp, const char *chars, size_t n)
{
    if (!chars)
        return ju_isspace(cp);
    for (size_t i = 0; i < n;) {
        uint32_t c;
        i += ju_decode(chars, n, i, &c);
        if (c == cp)
            return 1;
    }
    return 0;
}

/* Start byte of the code point that ends at byte `end` (exclusive). */
static size_t prev_start(const char *s, size_t end)
{
    size_t i = end - 1;
    int back = 0;
    while (i > 0 && back < 3 && ((unsigned char)s[i] & 0xC0) == 0x80) {
        i--;
        back++;
    }
    uint32_t cp;
    if (ju_decode(s, end, i, &cp) != end - i)
        return end - 1; /* invalid sequence: one byte */
    return i;
}

jv ju_strip(jv s, const char *chars, size_t nchars, int which)
{
    const char *p = s.u.s.p;
    size_t b = 0, e = s.u.s.n;
    if (which & 1) {
        while (b < e) {
            uint32_t cp;
            size_t k = ju_decode(p, e, b, &cp);
            if (!in_set(cp, chars, nchars))
                break;
            b += k;
        }
    }
    if (which & 2) {
        while (e > b) {
            size_t st = prev_start(p, e);
            uint32_t cp;
            ju_decode(p, e, st, &cp);
            if (!in_set(cp, chars, nchars))
                break;
            e = st;
        }
    }
    return jv_str(p + b, e - b);
}

/* mode: 0 lower, 1 upper, 2 capitalize, 3 title (jinja's title filter) */
static int map_case(jarena *a, jv s, int mode, jv *out)
{
    const char *p = s.u.s.p;
    size_t n = s.u.s.n;
    char *o = ja_alloc(a, n * 2 + 8); /* case mapping can grow a code point by one byte */
    if (!o)
        return cl_err(CL_ERR_NOMEM, "chat template: out of memory");
    size_t on = 0;
    int word_start = 1;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t k = ju_decode(p, n, i, &cp);
        uint32_t m = cp;
        int up = mode == 1 || (mode == 2 && i == 0) || (mode == 3 && word_start);
        if (cp < 0x110000 && !(cp >= 0xD800 && cp < 0xE000))
            m = (uint32_t)(up ? (mode >= 2 ? utf8proc_totitle((utf8proc_int32_t)cp)
                                            : utf8proc_toupper((utf8proc_int32_t)cp))
                              : utf8proc_tolower((utf8proc_int32_t)cp));
        if (k == 1 && cp >= 0x80) {
            o[on++] = p[i]; /* invalid byte: copy */
        } else {
            if (on + 4 > n * 2 + 8)
                return cl_err(CL_ERR_INTERNAL, "chat template: case mapping overflow");
            on += (size_t)ju_encode(m, o + on);
        }
        if (mode == 3)
            word_start = cp == '-' || cp == '(' || cp == '{' || cp == '[' || cp == '<' ||
                         ju_isspace(cp);
        i += k;
    }
    o[on] = 0;
    *out = jv_str(o, on);
    return CL_OK;
}

int ju_lower(jarena *a, jv s, int upper, jv *out) { return map_case(a, s, upper ? 1 : 0, out); }
int ju_capitalize(jarena *a, jv s, jv *out) { return map_case(a, s, 2, out); }
int ju_title(jarena *a, jv s, jv *out) { return map_case(a, s, 3, out); }

int64_t ju_find(const char *s, size_t n, const char *needle, size_t nn, size_t from)
{
    if (nn == 0)
        return from <= n ? (int64_t)from : -1;
    if (nn > n)
        return -1;
    for (size_t i = from; i + nn <= n; i++)
        if (s[i] == needle[0] && !memcmp(s + i, needle, nn))
            return (int64_t)i;
    return -1;
}

int ju_replace(jarena *a, jv s, jv old, jv new_, int64_t count, jv *out)
{
    jbuf b = {0};
    const char *p = s.u.s.p;
    size_t n = s.u.s.n, i = 0;
    int64_t done = 0;
    int rc = CL_OK;
    if (old.u.s.n == 0) {
        /* Python inserts `new` before every character and at the end */
        while (rc == CL_OK && (count < 0 || done < count) && i <= n) {
            rc = jb_put(&b, new_.u.s.p, new_.u.s.n);
            done++;
            if (i == n)
                break;
            uint32_t cp;
            size_t k = ju_decode(p, n, i, &cp);
            if (rc == CL_OK)
                rc = jb_put(&b, p + i, k);
            i += k;
            if (i == n && !(count < 0 || done < count))
                break;
        }
        if (rc == CL_OK && i < n)
            rc = jb_put(&b, p + i, n - i);
    } else {
        while (rc == CL_OK) {
            int64_t f = (count < 0 || done < count) ? ju_find(p, n, old.u.s.p, old.u.s.n, i) : -1;
            if (f < 0) {
                rc = jb_put(&b, p + i, n - i);
                break;
            }
            rc = jb_put(&b, p + i, (size_t)f - i);
            if (rc == CL_OK)
                rc = jb_put(&b, new_.u.s.p, new_.u.s.n);
            i = (size_t)f + old.u.s.n;
            done++;
        }
    }
    if (rc == CL_OK) {
        char *r = ja_strndup(a, b.p ? b.p : "", b.n);
        if (!r)
            rc = cl_err(CL_ERR_NOMEM, "chat template: out of memory");
        else
            *out = jv_str(r, b.n);
    }
    jb_free(&b);
    return rc;
}

static int64_t rfind(const char *s, const char *needle, size_t nn, size_t end)
{
    if (nn > end)
        return -1;
    for (size_t i = end - nn + 1; i-- > 0;)
        if (!memcmp(s + i, needle, nn))
            return (int64_t)i;
    return -1;
}

int ju_split(const jctx *c, int line, jv s, const jv *sep, int64_t maxsplit, int from_right,
             jv *out)
{
    jlist *l = jl_new(c->ar, 0);
    if (!l)
        return cl_err(CL_ERR_NOMEM, "%s: out of memory", c->what);
    const char *p = s.u.s.p;
    size_t n = s.u.s.n;
    if (sep && sep->u.s.n == 0)
        return jerr(c, line, CL_ERR_FORMAT, "split: empty separator");
    if (sep) {
        if (!from_right) {
            size_t i = 0;
            for (int64_t k = 0; maxsplit < 0 || k < maxsplit; k++) {
                int64_t f = ju_find(p, n, sep->u.s.p, sep->u.s.n, i);
                if (f < 0)
                    break;
                CL_TRY(jl_push(c->ar, l, jv_str(p + i, (size_t)f - i)));
                i = (size_t)f + sep->u.s.n;
            }
            CL_TRY(jl_push(c->ar, l, jv_str(p + i, n - i)));
        } else {
            size_t end = n;
            for (int64_t k = 0; maxsplit < 0 || k < maxsplit; k++) {
                int64_t f = rfind(p, sep->u.s.p, sep->u.s.n, end);
                if (f < 0)
                    break;
                CL_TRY(jl_push(c->ar, l, jv_str(p + f + sep->u.s.n, end - (size_t)f - sep->u.s.n)));
                end = (size_t)f;
            }
            CL_TRY(jl_push(c->ar, l, jv_str(p, end)));
            for (size_t i = 0; i < l->n / 2; i++) {
                jv t = l->v[i];
                l->v[i] = l->v[l->n - 1 - i];
                l->v[l->n - 1 - i] = t;
            }
        }
        *out = jv_list(l);
        return CL_OK;
    }
    /* whitespace split: runs of whitespace separate, no empty strings */
    if (!from_right) {
        size_t i = 0;
        int64_t k = 0;
        for (;;) {
            jv rest = ju_strip(jv_str(p + i, n - i), NULL, 0, 1);
            i = (size_t)(rest.u.s.p - p);
            if (i >= n)
                break;
            if (maxsplit >= 0 && k >= maxsplit) {
                CL_TRY(jl_push(c->ar, l, jv_str(p + i, n - i)));
                break;
            }
            size_t j = i;
            while (j < n) {
                uint32_t cp;
                size_t w = ju_decode(p, n, j, &cp);
                if (ju_isspace(cp))
                    break;
                j += w;
            }
            CL_TRY(jl_push(c->ar, l, jv_str(p + i, j - i)));
            k++;
            i = j;
        }
    } else {
        size_t end = n;
        int64_t k = 0;
        for (;;) {
            jv rest = ju_strip(jv_str(p, end), NULL, 0, 2);
            end = rest.u.s.n;
            if (end == 0)
                break;
            if (maxsplit >= 0 && k >= maxsplit) {
                CL_TRY(jl_push(c->ar, l, jv_str(p, end)));
                break;
            }
            size_t j = end;
            while (j > 0) {
                size_t st = prev_start(p, j);
                uint32_t cp;
                ju_decode(p, j, st, &cp);
                if (ju_isspace(cp))
                    break;
                j = st;
            }
            CL_TRY(jl_push(c->ar, l, jv_str(p + j, end - j)));
            k++;
            end = j;
        }
        for (size_t i = 0; i < l->n / 2; i++) {
            jv t = l->v[i];
            l->v[i] = l->v[l->n - 1 - i];
            l->v[l->n - 1 - i] = t;
        }
    }
    *out = jv_list(l);
    return CL_OK;
}

static int is_line_break(uint32_t cp)
{
    return cp == '\n' || cp == '\r' || cp == 0x0B || cp == 0x0C || cp == 0x1C || cp == 0x1D ||
           cp == 0x1E || cp == 0x85 || cp == 0x2028 || cp == 0x2029;
}

int ju_splitlines(jarena *a, jv s, int keepends, jlist **out)
{
    jlist *l = jl_new(a, 0);
    if (!l)
        return cl_err(CL_ERR_NOMEM, "chat template: out of memory");
    const char *p = s.u.s.p;
    size_t n = s.u.s.n, start = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t k = ju_decode(p, n, i, &cp);
        if (!is_line_break(cp)) {
            i += k;
            continue;
        }
        size_t eol = i + k;
        if (cp == '\r' && eol < n && p[eol] == '\n')
            eol++;
        CL_TRY(jl_push(a, l, jv_str(p + start, (keepends ? eol : i) - start)));
        start = i = eol;
    }
    if (start < n)
        CL_TRY(jl_push(a, l, jv_str(p + start, n - start)));
    *out = l;
    return CL_OK;
}

jv ju_concat(jarena *a, jv x, jv y, int *oom)
{
    char *s = ja_alloc(a, x.u.s.n + y.u.s.n + 1);
    if (!s) {
        *oom = 1;
        return jv_str("", 0);
    }
    if (x.u.s.n)
        memcpy(s, x.u.s.p, x.u.s.n);
    if (y.u.s.n)
        memcpy(s + x.u.s.n, y.u.s.p, y.u.s.n);
    s[x.u.s.n + y.u.s.n] = 0;
    return jv_str(s, x.u.s.n + y.u.s.n);
}
