/* jinja_json.c - the `tojson` filter as transformers defines it:
 * json.dumps(value, ensure_ascii=False, indent=None, separators=None,
 * sort_keys=False). Python's separators are ", " and ": " on one line, and ","
 * plus newline/indent when `indent` is given; key order is insertion order. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "template/jinja_int.h"

static int put_json_string(jbuf *b, const char *p, size_t n, int ensure_ascii)
{
    CL_TRY(jb_putc(b, '"'));
    size_t run = 0; /* start of bytes copied verbatim */
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)p[i];
        const char *esc = NULL;
        char tmp[16];
        size_t k = 1;
        switch (c) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        default:
            if (c < 0x20 || (ensure_ascii && c == 0x7f)) {
                snprintf(tmp, sizeof tmp, "\\u%04x", c);
                esc = tmp;
            } else if (ensure_ascii && c >= 0x80) {
                uint32_t cp;
                k = ju_decode(p, n, i, &cp);
                if (cp >= 0x10000) {
                    uint32_t v = cp - 0x10000;
                    snprintf(tmp, sizeof tmp, "\\u%04x\\u%04x", 0xD800 + (v >> 10),
                             0xDC00 + (v & 0x3FF));
                } else {
                    snprintf(tmp, sizeof tmp, "\\u%04x", cp);
                }
                esc = tmp;
            }
        }
        if (esc) {
            CL_TRY(jb_put(b, p + run, i - run));
            CL_TRY(jb_puts(b, esc));
            run = i + k;
        }
        i += k;
    }
    CL_TRY(jb_put(b, p + run, n - run));
    return jb_putc(b, '"');
}

static int newline_indent(jbuf *b, const jjson_opts *o, int level)
{
    CL_TRY(jb_putc(b, '\n'));
    for (int i = 0; i < level; i++)
        CL_TRY(jb_put(b, o->indent, o->indent_n));
    return CL_OK;
}

static int put_float(jbuf *b, double f)
{
    if (isnan(f))
        return jb_puts(b, "NaN");
    if (isinf(f))
        return jb_puts(b, f < 0 ? "-Infinity" : "Infinity");
    char tmp[64];
    jv_float_repr(tmp, sizeof tmp, f);
    return jb_puts(b, tmp);
}

/* A dict key as json.dumps writes it: strings as is, numbers/bools/None converted. */
static int key_string(const jctx *c, int line, jv k, jbuf *tmp)
{
    switch (k.t) {
    case JV_STR: return jb_put(tmp, k.u.s.p, k.u.s.n);
    case JV_BOOL: return jb_puts(tmp, k.u.b ? "true" : "false");
    case JV_NONE: return jb_puts(tmp, "null");
    case JV_INT: return jb_printf(tmp, "%lld", (long long)k.u.i);
    case JV_FLOAT: return put_float(tmp, k.u.f);
    default:
        return jerr(c, line, CL_ERR_FORMAT, "tojson: keys must be str, int, float, bool or None, not %s",
                    jv_type_name(k));
    }
}

typedef struct {
    const char *p;
    size_t n;
    size_t idx;
} jkey;

static int key_cmp(const void *x, const void *y)
{
    const jkey *a = x, *b = y;
    size_t n = a->n < b->n ? a->n : b->n;
    int r = n ? memcmp(a->p, b->p, n) : 0;
    if (r)
        return r;
    if (a->n != b->n)
        return a->n < b->n ? -1 : 1;
    return a->idx < b->idx ? -1 : a->idx > b->idx;
}

static int dump(const jctx *c, int line, jv v, const jjson_opts *o, jbuf *b, int level)
{
    if (level > 200)
        return jerr(c, line, CL_ERR_FORMAT, "tojson: value nested too deeply");
    switch (v.t) {
    case JV_NONE: return jb_puts(b, "null");
    case JV_BOOL: return jb_puts(b, v.u.b ? "true" : "false");
    case JV_INT: return jb_printf(b, "%lld", (long long)v.u.i);
    case JV_FLOAT: return put_float(b, v.u.f);
    case JV_STR: return put_json_string(b, v.u.s.p, v.u.s.n, o->ensure_ascii);
    case JV_LIST: {
        const jlist *l = v.u.l;
        if (!l->n)
            return jb_puts(b, "[]");
        CL_TRY(jb_putc(b, '['));
        for (size_t i = 0; i < l->n; i++) {
            if (i)
                CL_TRY(jb_put(b, o->item_sep, o->item_sep_n));
            if (o->indent)
                CL_TRY(newline_indent(b, o, level + 1));
            CL_TRY(dump(c, line, l->v[i], o, b, level + 1));
        }
        if (o->indent)
            CL_TRY(newline_indent(b, o, level));
        return jb_putc(b, ']');
    }
    case JV_DICT: {
        const jdict *d = v.u.d;
        if (!d->n)
            return jb_puts(b, "{}");
        /* keys rendered first (all of them, so sort_keys can order them) */
        jbuf keys = {0};
        size_t *off = malloc(d->n * sizeof *off);
        jkey *order = malloc(d->n * sizeof *order);
        int rc = off && order ? CL_OK : cl_err(CL_ERR_NOMEM, "%s: out of memory", c->what);
        for (size_t i = 0; rc == CL_OK && i < d->n; i++) {
            off[i] = keys.n;
            rc = key_string(c, line, d->k[i], &keys);
        }
        for (size_t i = 0; rc == CL_OK && i < d->n; i++) {
            order[i].idx = i;
            order[i].n = (i + 1 < d->n ? off[i + 1] : keys.n) - off[i];
        }
        for (size_t i = 0; rc == CL_OK && i < d->n; i++)
            order[i].p = keys.p ? keys.p + off[i] : "";
        if (rc == CL_OK && o->sort_keys)
            qsort(order, d->n, sizeof *order, key_cmp);
        if (rc == CL_OK)
            rc = jb_putc(b, '{');
        for (size_t j = 0; rc == CL_OK && j < d->n; j++) {
            size_t i = order[j].idx;
            if (j)
                rc = jb_put(b, o->item_sep, o->item_sep_n);
            if (rc == CL_OK && o->indent)
                rc = newline_indent(b, o, level + 1);
            if (rc == CL_OK)
                rc = put_json_string(b, order[j].p, order[j].n, o->ensure_ascii);
            if (rc == CL_OK)
                rc = jb_put(b, o->key_sep, o->key_sep_n);
            if (rc == CL_OK)
                rc = dump(c, line, d->v[i], o, b, level + 1);
        }
        if (rc == CL_OK && o->indent)
            rc = newline_indent(b, o, level);
        if (rc == CL_OK)
            rc = jb_putc(b, '}');
        jb_free(&keys);
        free(off);
        free(order);
        return rc;
    }
    case JV_UNDEF:
        if (v.u.s.p)
            return jerr(c, line, CL_ERR_FORMAT, "tojson: '%.*s' is undefined", (int)v.u.s.n,
                        v.u.s.p);
        return jerr(c, line, CL_ERR_FORMAT, "tojson: value is undefined");
    default:
        return jerr(c, line, CL_ERR_FORMAT, "tojson: object of type '%s' is not JSON serializable",
                    jv_type_name(v));
    }
}

int jv_tojson(const jctx *c, int line, jv v, const jjson_opts *o, jbuf *b)
{
    return dump(c, line, v, o, b, 0);
}
