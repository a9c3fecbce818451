/* jinja_filters.c - the filters of jinja2 that chat templates use, with
 * jinja2's argument names and defaults, plus transformers' `tojson`
 * (json.dumps(x, ensure_ascii=False, indent=None, separators=None,
 * sort_keys=False), positional arguments in that order). The sequence filters
 * (map, select, sort, ...) are in jinja_filters_seq.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <utf8proc.h>

#include "template/jinja_filters.h"
#include "template/jinja_int.h"

#define OOM() cl_err(CL_ERR_NOMEM, "%s: out of memory", c->what)

static const struct {
    const char *name;
    int id;
} filters[] = {
    {"abs", JFL_ABS}, {"attr", JFL_ATTR}, {"capitalize", JFL_CAPITALIZE}, {"count", JFL_LENGTH},
    {"d", JFL_DEFAULT}, {"default", JFL_DEFAULT}, {"dictsort", JFL_DICTSORT},
    {"e", JFL_ESCAPE}, {"escape", JFL_ESCAPE}, {"first", JFL_FIRST}, {"float", JFL_FLOAT},
    {"indent", JFL_INDENT}, {"int", JFL_INT}, {"items", JFL_ITEMS}, {"join", JFL_JOIN},
    {"last", JFL_LAST}, {"length", JFL_LENGTH}, {"list", JFL_LIST}, {"lower", JFL_LOWER},
    {"map", JFL_MAP}, {"max", JFL_MAX}, {"min", JFL_MIN}, {"reject", JFL_REJECT},
    {"rejectattr", JFL_REJECTATTR}, {"replace", JFL_REPLACE}, {"reverse", JFL_REVERSE},
    {"round", JFL_ROUND}, {"safe", JFL_SAFE}, {"select", JFL_SELECT},
    {"selectattr", JFL_SELECTATTR}, {"sort", JFL_SORT}, {"string", JFL_STRING},
    {"sum", JFL_SUM}, {"title", JFL_TITLE}, {"tojson", JFL_TOJSON}, {"trim", JFL_TRIM},
    {"unique", JFL_UNIQUE}, {"upper", JFL_UPPER}, {"wordcount", JFL_WORDCOUNT},
};

int jfilter_lookup(const char *name)
{
    for (size_t i = 0; i < sizeof filters / sizeof filters[0]; i++)
        if (!strcmp(filters[i].name, name))
            return filters[i].id;
    return -1;
}

const char *jfilter_name(int id)
{
    for (size_t i = 0; i < sizeof filters / sizeof filters[0]; i++)
        if (filters[i].id == id)
            return filters[i].name;
    return "?";
}

static int buf_value(jctx *c, jbuf *b, int rc, jv *out)
{
    if (rc == CL_OK) {
        char *s = ja_strndup(c->ar, b->p ? b->p : "", b->n);
        if (!s)
            rc = OOM();
        else
            *out = jv_str(s, b->n);
    }
    jb_free(b);
    return rc;
}

static int do_tojson(jctx *c, int line, jv v, const jargs *a, jv *out)
{
    static const char *const kw[] = {"ensure_ascii", "indent", "separators", "sort_keys", NULL};
    CL_TRY(jargs_check(c, line, "filter 'tojson'", a, 4, kw));
    const jv *ea = jarg(a, 0, "ensure_ascii"), *ind = jarg(a, 1, "indent"),
             *sep = jarg(a, 2, "separators"), *sk = jarg(a, 3, "sort_keys");
    jjson_opts o = {0};
    o.ensure_ascii = ea && jv_truthy(*ea);
    o.sort_keys = sk && jv_truthy(*sk);
    char spaces[64];
    if (ind && ind->t != JV_NONE) {
        if (ind->t == JV_STR) {
            o.indent = ind->u.s.p;
            o.indent_n = ind->u.s.n;
        } else if (ind->t == JV_INT) {
            int64_t n = ind->u.i < 0 ? 0 : ind->u.i > 63 ? 63 : ind->u.i;
            memset(spaces, ' ', (size_t)n);
            o.indent = spaces;
            o.indent_n = (size_t)n;
        } else {
            return jerr(c, line, CL_ERR_FORMAT, "tojson: indent must be an integer or a string");
        }
    }
    o.item_sep = o.indent ? "," : ", ";
    o.item_sep_n = o.indent ? 1 : 2;
    o.key_sep = ": ";
    o.key_sep_n = 2;
    if (sep && sep->t != JV_NONE) {
        if (sep->t != JV_LIST || sep->u.l->n != 2 || sep->u.l->v[0].t != JV_STR ||
            sep->u.l->v[1].t != JV_STR)
            return jerr(c, line, CL_ERR_FORMAT, "tojson: separators must be a pair of strings");
        o.item_sep = sep->u.l->v[0].u.s.p;
        o.item_sep_n = sep->u.l->v[0].u.s.n;
        o.key_sep = sep->u.l->v[1].u.s.p;
        o.key_sep_n = sep->u.l->v[1].u.s.n;
    }
    jbuf b = {0};
    return buf_value(c, &b, jv_tojson(c, line, v, &o, &b), out);
}

static int do_indent(jctx *c, int line, jv s, const jargs *a, jv *out)
{
    static const char *const kw[] = {"width", "first", "blank", NULL};
    CL_TRY(jargs_check(c, line, "filter 'indent'", a, 3, kw));
    const jv *w = jarg(a, 0, "width"), *first = jarg(a, 1, "first"), *blank = jarg(a, 2, "blank");
    jv pad = jv_str("    ", 4);
    char spaces[256];
    if (w && w->t == JV_STR) {
        pad = *w;
    } else if (w && (w->t == JV_INT || w->t == JV_BOOL)) {
        int64_t n = w->t == JV_INT ? w->u.i : w->u.b;
        n = n < 0 ? 0 : n > 255 ? 255 : n;
        memset(spaces, ' ', (size_t)n);
        pad = jv_str(spaces, (size_t)n);
    } else if (w) {
        return jerr(c, line, CL_ERR_FORMAT, "indent: width must be an integer or a string");
    }
    /* jinja2 appends a newline and splits lines, so a trailing newline survives */
    jv text;
    int oom = 0;
    text = ju_concat(c->ar, s, jv_str("\n", 1), &oom);
    if (oom)
        return OOM();
    jlist *lines;
    CL_TRY(ju_splitlines(c->ar, text, 0, &lines));
    jbuf b = {0};
    int rc = CL_OK;
    if (first && jv_truthy(*first))
        rc = jb_put(&b, pad.u.s.p, pad.u.s.n);
    for (size_t i = 0; rc == CL_OK && i < lines->n; i++) {
        jv ln = lines->v[i];
        if (i) {
            rc = jb_putc(&b, '\n');
            if (rc == CL_OK && (ln.u.s.n || (blank && jv_truthy(*blank))))
                rc = jb_put(&b, pad.u.s.p, pad.u.s.n);
        }
        if (rc == CL_OK)
            rc = jb_put(&b, ln.u.s.p, ln.u.s.n);
    }
    return buf_value(c, &b, rc, out);
}

static int do_escape(jctx *c, jv s, jv *out)
{
    jbuf b = {0};
    int rc = CL_OK;
    for (size_t i = 0; rc == CL_OK && i < s.u.s.n; i++) {
        char ch = s.u.s.p[i];
        switch (ch) {
        case '&': rc = jb_puts(&b, "&amp;"); break;
        case '<': rc = jb_puts(&b, "&lt;"); break;
        case '>': rc = jb_puts(&b, "&gt;"); break;
        case '"': rc = jb_puts(&b, "&#34;"); break;
        case '\'': rc = jb_puts(&b, "&#39;"); break;
        default: rc = jb_putc(&b, ch);
        }
    }
    return buf_value(c, &b, rc, out);
}

/* Python int(str) / float(str): surrounding whitespace, sign, '_' between digits. */
static int parse_number(jv s, int want_int, int64_t *iv, double *fv)
{
    jv t = ju_strip(s, NULL, 0, 3);
    char tmp[128];
    size_t n = 0;
    if (!t.u.s.n || t.u.s.n >= sizeof tmp)
        return 0;
    for (size_t i = 0; i < t.u.s.n; i++) {
        char ch = t.u.s.p[i];
        if (ch == '_') {
            if (!i || i + 1 >= t.u.s.n || !(t.u.s.p[i - 1] >= '0' && t.u.s.p[i - 1] <= '9') ||
                !(t.u.s.p[i + 1] >= '0' && t.u.s.p[i + 1] <= '9'))
                return 0;
            continue;
        }
        tmp[n++] = ch;
    }
    tmp[n] = 0;
    char *end;
    if (want_int) {
        long long v = strtoll(tmp, &end, 10);
        if (*end == 0 && end != tmp && tmp[0] != ' ') {
            *iv = v;
            return 1;
        }
        return 0;
    }
    double d = strtod(tmp, &end);
    if (*end || end == tmp || (tmp[0] == '0' && (tmp[1] == 'x' || tmp[1] == 'X')))
        return 0;
    *fv = d;
    return 1;
}

static int do_int_float(jctx *c, int line, int id, jv v, const jargs *a, jv *out)
{
    static const char *const kw_i[] = {"default", "base", NULL}, *const kw_f[] = {"default", NULL};
    CL_TRY(jargs_check(c, line, id == JFL_INT ? "filter 'int'" : "filter 'float'", a,
                       id == JFL_INT ? 2 : 1, id == JFL_INT ? kw_i : kw_f));
    const jv *def = jarg(a, 0, "default");
    const jv *base = id == JFL_INT ? jarg(a, 1, "base") : NULL;
    if (base && !(base->t == JV_INT && base->u.i == 10))
        return jerr(c, line, CL_ERR_UNSUPPORTED, "filter 'int': only base 10 is supported");
    int64_t iv = 0;
    double fv = 0;
    int ok = 1;
    switch (v.t) {
    case JV_INT: iv = v.u.i; fv = (double)v.u.i; break;
    case JV_BOOL: iv = v.u.b; fv = v.u.b; break;
    case JV_FLOAT:
        fv = v.u.f;
        ok = isfinite(fv) && fabs(fv) < 9.2e18;
        iv = ok ? (int64_t)fv : 0;
        ok = ok || id == JFL_FLOAT;
        break;
    case JV_STR:
        if (id == JFL_INT) {
            ok = parse_number(v, 1, &iv, &fv);
            if (!ok && parse_number(v, 0, &iv, &fv) && isfinite(fv) && fabs(fv) < 9.2e18) {
                iv = (int64_t)fv;
                ok = 1;
            }
        } else {
            ok = parse_number(v, 0, &iv, &fv);
        }
        break;
    default: ok = 0;
    }
    if (!ok) {
        *out = def ? *def : id == JFL_INT ? jv_int(0) : jv_float(0.0);
        return CL_OK;
    }
    *out = id == JFL_INT ? jv_int(iv) : jv_float(fv);
    return CL_OK;
}

static int do_round(jctx *c, int line, jv v, const jargs *a, jv *out)
{
    static const char *const kw[] = {"precision", "method", NULL};
    CL_TRY(jargs_check(c, line, "filter 'round'", a, 2, kw));
    const jv *pv = jarg(a, 0, "precision"), *mv = jarg(a, 1, "method");
    int64_t prec = pv && pv->t == JV_INT ? pv->u.i : 0;
    if (prec > 30 || prec < -30)
        prec = prec > 0 ? 30 : -30;
    const char *method = "common";
    char m[16];
    if (mv && mv->t == JV_STR && mv->u.s.n < sizeof m) {
        memcpy(m, mv->u.s.p, mv->u.s.n);
        m[mv->u.s.n] = 0;
        method = m;
    }
    if (strcmp(method, "common") && strcmp(method, "ceil") && strcmp(method, "floor"))
        return jerr(c, line, CL_ERR_FORMAT, "round: method must be common, ceil or floor");
    if (v.t == JV_INT || v.t == JV_BOOL) {
        if (!strcmp(method, "common") && prec >= 0) {
            *out = jv_int(v.t == JV_INT ? v.u.i : v.u.b);
            return CL_OK;
        }
        v = jv_float(v.t == JV_INT ? (double)v.u.i : v.u.b);
    }
    if (v.t != JV_FLOAT)
        return jerr(c, line, CL_ERR_FORMAT, "round: expected a number, got '%s'", jv_type_name(v));
    double x = v.u.f, scale = pow(10.0, (double)prec), r;
    if (!strcmp(method, "common")) {
        if (prec >= 0) {
            char tmp[400];
            snprintf(tmp, sizeof tmp, "%.*f", (int)prec, x); /* correctly rounded, half-even */
            r = strtod(tmp, NULL);
        } else {
            r = nearbyint(x * scale) / scale;
        }
    } else {
        r = (!strcmp(method, "ceil") ? ceil(x * scale) : floor(x * scale)) / scale;
    }
    *out = jv_float(r);
    return CL_OK;
}

static int str_args(jctx *c, int line, const char *fname, const jargs *a, int max_pos,
                    const char *const *kw)
{
    char name[48];
    snprintf(name, sizeof name, "filter '%s'", fname);
    return jargs_check(c, line, name, a, max_pos, kw);
}

int jfilter_apply(jctx *c, int line, int id, jv v, const jargs *a, jv *out)
{
    jv s;
    switch (id) {
    case JFL_TOJSON: return do_tojson(c, line, v, a, out);
    case JFL_SAFE:
        CL_TRY(str_args(c, line, "safe", a, 0, NULL));
        *out = v;
        return CL_OK;
    case JFL_STRING:
        CL_TRY(str_args(c, line, "string", a, 0, NULL));
        return jv_to_str(c, v, out);
    case JFL_DEFAULT: {
        static const char *const kw[] = {"default_value", "boolean", NULL};
        CL_TRY(str_args(c, line, "default", a, 2, kw));
        const jv *d = jarg(a, 0, "default_value"), *b = jarg(a, 1, "boolean");
        int use = v.t == JV_UNDEF || (b && jv_truthy(*b) && !jv_truthy(v));
        *out = use ? (d ? *d : jv_str("", 0)) : v;
        return CL_OK;
    }
    case JFL_LENGTH: {
        int64_t n;
        CL_TRY(str_args(c, line, "length", a, 0, NULL));
        CL_TRY(jv_length(c, line, v, &n));
        *out = jv_int(n);
        return CL_OK;
    }
    case JFL_TRIM: {
        CL_TRY(str_args(c, line, "trim", a, 1, NULL));
        const jv *ch = jarg(a, 0, "chars");
        CL_TRY(jv_to_str(c, v, &s));
        if (ch && ch->t == JV_STR)
            *out = ju_strip(s, ch->u.s.p, ch->u.s.n, 3);
        else
            *out = ju_strip(s, NULL, 0, 3);
        return CL_OK;
    }
    case JFL_LOWER:
    case JFL_UPPER:
        CL_TRY(str_args(c, line, id == JFL_LOWER ? "lower" : "upper", a, 0, NULL));
        CL_TRY(jv_to_str(c, v, &s));
        return ju_lower(c->ar, s, id == JFL_UPPER, out);
    case JFL_CAPITALIZE:
        CL_TRY(str_args(c, line, "capitalize", a, 0, NULL));
        CL_TRY(jv_to_str(c, v, &s));
        return ju_capitalize(c->ar, s, out);
    case JFL_TITLE:
        CL_TRY(str_args(c, line, "title", a, 0, NULL));
        CL_TRY(jv_to_str(c, v, &s));
        return ju_title(c->ar, s, out);
    case JFL_WORDCOUNT: {
        CL_TRY(str_args(c, line, "wordcount", a, 0, NULL));
        CL_TRY(jv_to_str(c, v, &s));
        int64_t words = 0;
        int in_word = 0;
        for (size_t i = 0; i < s.u.s.n;) {
            uint32_t cp;
            i += ju_decode(s.u.s.p, s.u.s.n, i, &cp);
            utf8proc_category_t cat = utf8proc_category((utf8proc_int32_t)cp);
            int w = cp == '_' || (cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO) ||
                    (cat >= UTF8PROC_CATEGORY_ND && cat <= UTF8PROC_CATEGORY_NO);
            words += w && !in_word;
            in_word = w;
        }
        *out = jv_int(words);
        return CL_OK;
    }
    case JFL_ESCAPE:
        CL_TRY(str_args(c, line, "escape", a, 0, NULL));
        CL_TRY(jv_to_str(c, v, &s));
        return do_escape(c, s, out);
    case JFL_REPLACE: {
        static const char *const kw[] = {"old", "new", "count", NULL};
        CL_TRY(str_args(c, line, "replace", a, 3, kw));
        const jv *o = jarg(a, 0, "old"), *n = jarg(a, 1, "new"), *cnt = jarg(a, 2, "count");
        if (!o || !n)
            return jerr(c, line, CL_ERR_FORMAT, "filter 'replace' needs old and new strings");
        jv os, ns;
        CL_TRY(jv_to_str(c, v, &s));
        CL_TRY(jv_to_str(c, *o, &os));
        CL_TRY(jv_to_str(c, *n, &ns));
        int64_t count = cnt && cnt->t == JV_INT ? cnt->u.i : -1;
        return ju_replace(c->ar, s, os, ns, count, out);
    }
    case JFL_INDENT:
        CL_TRY(jv_to_str(c, v, &s));
        return do_indent(c, line, s, a, out);
    case JFL_INT:
    case JFL_FLOAT: return do_int_float(c, line, id, v, a, out);
    case JFL_ROUND: return do_round(c, line, v, a, out);
    case JFL_ABS:
        CL_TRY(str_args(c, line, "abs", a, 0, NULL));
        if (v.t == JV_INT && v.u.i != INT64_MIN)
            *out = jv_int(v.u.i < 0 ? -v.u.i : v.u.i);
        else if (v.t == JV_BOOL)
            *out = jv_int(v.u.b);
        else if (v.t == JV_FLOAT)
            *out = jv_float(fabs(v.u.f));
        else
            return jerr(c, line, CL_ERR_FORMAT, "abs: expected a number, got '%s'",
                        jv_type_name(v));
        return CL_OK;
    case JFL_ATTR: {
        CL_TRY(str_args(c, line, "attr", a, 1, NULL));
        const jv *n = jarg(a, 0, NULL);
        if (!n || n->t != JV_STR)
            return jerr(c, line, CL_ERR_FORMAT, "filter 'attr' needs an attribute name");
        return jget_attr(c, line, v, n->u.s.p, n->u.s.n, out);
    }
    default: return jfilter_seq(c, line, id, v, a, out);
    }
}
