/* fuzz.c - the mutation engine and result checks of fuzz.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/status.h"
#include "fuzz.h"
#include "testutil.h"

/* ---- buffers and random numbers ---- */

static void reserve(fz_buf *b, size_t n)
{
    if (n + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < n + 1)
        cap *= 2;
    b->p = realloc(b->p, cap);
    if (!b->p)
        fail_msg("fuzz: out of memory (%zu bytes)", cap);
    b->cap = cap;
}

void fz_buf_set(fz_buf *b, const void *data, size_t len)
{
    reserve(b, len);
    memmove(b->p, data, len);
    b->len = len;
    b->p[len] = 0;
}

void fz_buf_append(fz_buf *b, const void *data, size_t len)
{
    reserve(b, b->len + len);
    memcpy(b->p + b->len, data, len);
    b->len += len;
    b->p[b->len] = 0;
}

void fz_buf_free(fz_buf *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

/* Replaces b[at, at + del) with ins[0, n). */
static void splice(fz_buf *b, size_t at, size_t del, const char *ins, size_t n)
{
    if (at > b->len)
        at = b->len;
    if (del > b->len - at)
        del = b->len - at;
    reserve(b, b->len - del + n);
    memmove(b->p + at + n, b->p + at + del, b->len - at - del);
    memcpy(b->p + at, ins, n);
    b->len = b->len - del + n;
    b->p[b->len] = 0;
}

static uint64_t mix(uint64_t x)
{
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* splitmix64; the seed is mixed first, so that seeds s and s + 1 do not give
 * streams one step apart */
void fz_rng_init(fz_rng *r, uint64_t seed) { r->state = mix(seed ^ 0x5851f42d4c957f2dull); }

uint64_t fz_next(fz_rng *r) { return mix(r->state += 0x9e3779b97f4a7c15ull); }

uint64_t fz_below(fz_rng *r, uint64_t n) { return fz_next(r) % n; }

int fz_iterations(int normal)
{
    const char *scale = getenv("COLLAGE_FUZZ_SCALE"), *san = getenv("COLLAGE_SANITIZED");
    double f = scale && atof(scale) > 0 ? atof(scale) : san && atoi(san) ? 0.25 : 1.0;
    int n = (int)(normal * f);
    return n > 0 ? n : 1;
}

uint64_t fz_seed(void)
{
    const char *s = getenv("COLLAGE_FUZZ_SEED");
    return s ? strtoull(s, NULL, 0) : 20250611;
}

/* ---- JSON values in the text ------------------------------------------------
 * A lenient walk records where each value lies (and, inside objects, where its
 * "key": starts); it stops at the first thing it cannot read, keeping what it saw,
 * so it works on texts that earlier mutations already broke. */

typedef struct {
    size_t start, end;  /* the value */
    size_t member;      /* start of its "key": in an object, else SIZE_MAX */
    char kind;          /* o a s n l */
    int depth;
} span;

typedef struct {
    const char *t;
    size_t i, n;
    span *v;
    size_t nv, cap;
} walker;

static void ws(walker *w)
{
    while (w->i < w->n && (w->t[w->i] == ' ' || w->t[w->i] == '\n' || w->t[w->i] == '\r' ||
                           w->t[w->i] == '\t'))
        w->i++;
}

static int walk_string(walker *w)
{
    if (w->i >= w->n || w->t[w->i] != '"')
        return -1;
    for (w->i++; w->i < w->n; w->i++) {
        if (w->t[w->i] == '\\')
            w->i++;
        else if (w->t[w->i] == '"') {
            w->i++;
            return 0;
        }
    }
    return -1;
}

static void push(walker *w, span s)
{
    if (w->nv == w->cap) {
        w->cap = w->cap ? 2 * w->cap : 1024;
        w->v = realloc(w->v, w->cap * sizeof *w->v);
        if (!w->v)
            fail_msg("fuzz: out of memory");
    }
    w->v[w->nv++] = s;
}

static int walk_value(walker *w, size_t member, int depth)
{
    ws(w);
    if (w->i >= w->n || depth > 200)
        return -1;
    span s = {w->i, 0, member, 0, depth};
    char c = w->t[w->i];
    size_t slot = w->nv;
    push(w, s); /* end filled in below (containers record their children after) */
    if (c == '{' || c == '[') {
        w->v[slot].kind = c == '{' ? 'o' : 'a';
        w->i++;
        ws(w);
        if (w->i < w->n && w->t[w->i] == (c == '{' ? '}' : ']')) {
            w->i++;
        } else {
            for (;;) {
                size_t m = SIZE_MAX;
                ws(w);
                if (c == '{') {
                    m = w->i;
                    if (walk_string(w))
                        return -1;
                    ws(w);
                    if (w->i >= w->n || w->t[w->i] != ':')
                        return -1;
                    w->i++;
                }
                if (walk_value(w, m, depth + 1))
                    return -1;
                ws(w);
                if (w->i < w->n && w->t[w->i] == ',') {
                    w->i++;
                    continue;
                }
                if (w->i < w->n && w->t[w->i] == (c == '{' ? '}' : ']')) {
                    w->i++;
                    break;
                }
                return -1;
            }
        }
    } else if (c == '"') {
        w->v[slot].kind = 's';
        if (walk_string(w))
            return -1;
    } else if (c == '-' || (c >= '0' && c <= '9')) {
        w->v[slot].kind = 'n';
        while (w->i < w->n && strchr("+-0123456789.eE", w->t[w->i]))
            w->i++;
    } else if (c == 't' || c == 'f' || c == 'n') {
        w->v[slot].kind = 'l';
        while (w->i < w->n && w->t[w->i] >= 'a' && w->t[w->i] <= 'z')
            w->i++;
    } else {
        w->nv = slot; /* not a value */
        return -1;
    }
    w->v[slot].end = w->i;
    return 0;
}

/* A random value of b: prefers the shallow ones (sections, settings)
 * half of the time, since deep ones (vocabulary entries) vastly outnumber them. */
static int pick_value(fz_rng *r, const fz_buf *b, char want, span *out)
{
    walker w = {b->p, 0, b->len, NULL, 0, 0};
    walk_value(&w, SIZE_MAX, 0);
    size_t n = 0;
    int shallow = fz_below(r, 2) == 0;
    for (int pass = 0; pass < 2 && n == 0; pass++) {
        n = 0;
        for (size_t i = 0; i < w.nv; i++)
            if (w.v[i].end > w.v[i].start && (!want || w.v[i].kind == want) &&
                (!shallow || pass || w.v[i].depth <= 3))
                n++;
        if (n == 0)
            continue;
        uint64_t k = fz_below(r, n);
        for (size_t i = 0; i < w.nv; i++)
            if (w.v[i].end > w.v[i].start && (!want || w.v[i].kind == want) &&
                (!shallow || pass || w.v[i].depth <= 3) && k-- == 0) {
                *out = w.v[i];
                break;
            }
    }
    free(w.v);
    return n ? 0 : -1;
}

/* ---- mutations ---- */

static const char *const numbers[] = {
    "0", "-1", "1", "2", "12.5", "-0.5", "0.0", "-0", "1e999", "-1e999", "1e308", "1e-320",
    "9007199254740993", "18446744073709551616", "4611686018427387904", "-9223372036854775809",
    "2147483648", "4294967296", "16777216", "16777215", "65536", "1048576", "255", "256",
    "1000000000000", "3.4e38", "1e-7", "NaN", "Infinity", "0x10", "01", "1.", "-", "1e"};
static const char *const others[] = {
    "\"\"", "\"x\"", "\"\\ud800\"", "\"\\u0000\"", "\"\xff\xfe\"", "\"\xc3\x28\"",
    "\"\xed\xa0\x80\"", "\"a\\nb\"", "true", "false", "null", "{}", "[]", "[1,2,3]",
    "{\"a\":1}", "[[]]", "\"F32\"", "\"BPE\"", "\"NFC\"", "\"GKA\"", "\"*-GKA\"", "\"ByteLevel\"",
    "\"Split\"", "\"Sequence\"", "\"default\"", "\"<|im_end|>\"", "\"(\"", "\".*\"", "\"\\\\\""};

static void mutate_bytes(fz_rng *r, fz_buf *b, const fz_buf *other)
{
    static const char interesting[] = {0, (char)0xff, '"', '\\', '{', '}', '[', ']', ',', ':',
                                       '0', '-', '.', 'e', (char)0x80, (char)0xc0, ' ', '\n'};
    size_t at = b->len ? fz_below(r, b->len) : 0;
    switch (fz_below(r, 7)) {
    case 0:
        if (b->len)
            b->p[at] ^= (char)(1u << fz_below(r, 8));
        break;
    case 1:
        if (b->len)
            b->p[at] = interesting[fz_below(r, sizeof interesting)];
        break;
    case 2: { /* delete a range: mostly short */
        size_t n = fz_below(r, 8) ? 1 + fz_below(r, 16) : fz_below(r, b->len / 8 + 1);
        splice(b, at, n, "", 0);
        break;
    }
    case 3: {
        char ins[8];
        size_t n = 1 + fz_below(r, sizeof ins);
        for (size_t i = 0; i < n; i++)
            ins[i] = fz_below(r, 2) ? interesting[fz_below(r, sizeof interesting)]
                                    : (char)fz_below(r, 256);
        splice(b, at, 0, ins, n);
        break;
    }
    case 4: { /* duplicate a range elsewhere */
        if (!b->len)
            break;
        size_t n = 1 + fz_below(r, b->len - at < 64 ? b->len - at : 64);
        char *copy = malloc(n);
        memcpy(copy, b->p + at, n);
        splice(b, fz_below(r, b->len + 1), 0, copy, n);
        free(copy);
        break;
    }
    case 5: /* truncate */
        if (b->len) {
            b->len = at;
            b->p[at] = 0;
        }
        break;
    default: /* splice the tail of the other input */
        if (other && other->len) {
            size_t from = fz_below(r, other->len);
            size_t n = fz_below(r, 4) ? (other->len - from < 256 ? other->len - from : 256)
                                      : other->len - from;
            splice(b, at, fz_below(r, 2) ? b->len - at : n, other->p + from, n);
        }
    }
}

/* Replaces a number with a related one (v + 1, 2v, -v, v + 0.5, 1e10 v, ...). */
static void tweak_number(fz_rng *r, fz_buf *b, const span *s)
{
    char text[64], out[64];
    size_t n = s->end - s->start < sizeof text - 1 ? s->end - s->start : sizeof text - 1;
    memcpy(text, b->p + s->start, n);
    text[n] = 0;
    double v = strtod(text, NULL);
    switch (fz_below(r, 7)) {
    case 0: v += 1; break;
    case 1: v -= 1; break;
    case 2: v *= 2; break;
    case 3: v = -v; break;
    case 4: v += 0.5; break;
    case 5: v *= 1e10; break;
    default: v = v / 2; break;
    }
    snprintf(out, sizeof out, "%.17g", v);
    splice(b, s->start, s->end - s->start, out, strlen(out));
}

static void mutate_json(fz_rng *r, fz_buf *b)
{
    span s;
    unsigned op = (unsigned)fz_below(r, 9);
    if (pick_value(r, b, op == 1 ? 'n' : op == 6 ? 's' : 0, &s))
        return;
    switch (op) {
    case 0: { /* another value, often of another type */
        const char *v = fz_below(r, 2) ? numbers[fz_below(r, sizeof numbers / sizeof *numbers)]
                                       : others[fz_below(r, sizeof others / sizeof *others)];
        splice(b, s.start, s.end - s.start, v, strlen(v));
        break;
    }
    case 1: tweak_number(r, b, &s); break;
    case 2: /* delete a key (with its comma) or an array element */
        if (s.member != SIZE_MAX) {
            size_t a = s.member, e = s.end;
            while (e < b->len && (b->p[e] == ' ' || b->p[e] == '\n'))
                e++;
            if (e < b->len && b->p[e] == ',')
                e++;
            splice(b, a, e - a, "", 0);
        } else {
            splice(b, s.start, s.end - s.start, "", 0);
        }
        break;
    case 3: /* duplicate a key (same or other value) */
        if (s.member != SIZE_MAX) {
            size_t n = s.end - s.member;
            char *m = malloc(n + 2);
            m[0] = ',';
            memcpy(m + 1, b->p + s.member, n);
            splice(b, s.end, 0, m, n + 1);
            free(m);
        }
        break;
    case 4: { /* deep nesting around the value */
        static const size_t depths[] = {8, 300, 1500, 100000};
        size_t d = depths[fz_below(r, 4)];
        int obj = (int)fz_below(r, 2);
        size_t open_len = obj ? 5 : 1;
        char *w = malloc(d * (open_len + 1) + (s.end - s.start));
        size_t o = 0;
        for (size_t i = 0; i < d; i++, o += open_len)
            memcpy(w + o, obj ? "{\"a\":" : "[", open_len);
        memcpy(w + o, b->p + s.start, s.end - s.start);
        o += s.end - s.start;
        for (size_t i = 0; i < d; i++)
            w[o++] = obj ? '}' : ']';
        splice(b, s.start, s.end - s.start, w, o);
        free(w);
        break;
    }
    case 5: { /* a long string */
        size_t n = fz_below(r, 2) ? 300 : 70000;
        char *w = malloc(n + 2);
        w[0] = '"';
        for (size_t i = 1; i <= n; i++)
            w[i] = (char)('a' + i % 26);
        w[n + 1] = '"';
        splice(b, s.start, s.end - s.start, w, n + 2);
        free(w);
        break;
    }
    case 6: { /* invalid UTF-8 inside a string */
        static const char *const bad[] = {"\xff", "\xc0\x80", "\xed\xa0\x80", "\x80",
                                          "\xf4\x90\x80\x80", "\xe2\x82"};
        const char *x = bad[fz_below(r, 6)];
        size_t at = s.start + 1 + fz_below(r, s.end - s.start - 1); /* inside the quotes */
        splice(b, at, 0, x, strlen(x));
        break;
    }
    case 7: { /* copy another value over this one */
        span t;
        if (pick_value(r, b, 0, &t) == 0) {
            size_t n = t.end - t.start;
            char *w = malloc(n + 1);
            memcpy(w, b->p + t.start, n);
            splice(b, s.start, s.end - s.start, w, n);
            free(w);
        }
        break;
    }
    default: /* a key renamed (a missing key, or an unknown one) */
        if (s.member != SIZE_MAX)
            splice(b, s.member + 1, 0, "x", 1);
        break;
    }
}

void fz_mutate_bytes(fz_rng *r, fz_buf *b, const fz_buf *other) { mutate_bytes(r, b, other); }

void fz_mutate(fz_rng *r, fz_buf *b, const fz_buf *other)
{
    int n = 1 + (int)fz_below(r, 4);
    for (int i = 0; i < n; i++) {
        if (fz_below(r, 3) == 0)
            mutate_bytes(r, b, other);
        else
            mutate_json(r, b);
    }
}

/* ---- checks ---- */

void fz_check_error(int rc, const int *allowed, const char *file, int iter)
{
    const char *m = cl_errmsg();
    int ok = rc == CL_ERR_NOMEM;
    for (const int *a = allowed; *a && !ok; a++)
        ok = rc == *a;
    if (!ok)
        fail_msg("iteration %d: status %d (%s) is not expected here: %s", iter, rc,
                 cl_status_name(rc), m);
    if (!m[0])
        fail_msg("iteration %d: status %d with an empty message", iter, rc);
    if (strchr(m, '\n') || strchr(m, '\r'))
        fail_msg("iteration %d: the message is not one line: %s", iter, m);
    if (rc != CL_ERR_NOMEM && !strstr(m, file))
        fail_msg("iteration %d: the message does not name %s: %s", iter, file, m);
}
