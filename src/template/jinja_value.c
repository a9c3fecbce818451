/* jinja_value.c - values with Python semantics: truthiness, ==, ordering,
 * str() and repr() (float repr is the shortest round-trip form, like Python),
 * lists and insertion-ordered dicts, iteration, len(), and conversion from cJSON. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <utf8proc.h>

#include "template/jinja_int.h"

const char *jv_type_name(jv v)
{
    switch (v.t) {
    case JV_UNDEF: return "undefined";
    case JV_NONE: return "NoneType";
    case JV_BOOL: return "bool";
    case JV_INT: return "int";
    case JV_FLOAT: return "float";
    case JV_STR: return "str";
    case JV_LIST: return v.u.l->is_tuple ? "tuple" : "list";
    case JV_DICT: return "dict";
    case JV_NS: return "Namespace";
    case JV_LOOP: return "LoopContext";
    case JV_MACRO: return "Macro";
    case JV_FUNC: return "function";
    case JV_METHOD: return "method";
    }
    return "?";
}

int jv_truthy(jv v)
{
    switch (v.t) {
    case JV_UNDEF:
    case JV_NONE: return 0;
    case JV_BOOL: return v.u.b;
    case JV_INT: return v.u.i != 0;
    case JV_FLOAT: return v.u.f != 0.0;
    case JV_STR: return v.u.s.n != 0;
    case JV_LIST: return v.u.l->n != 0;
    case JV_DICT: return v.u.d->n != 0;
    default: return 1;
    }
}

static int is_num(jv v) { return v.t == JV_BOOL || v.t == JV_INT || v.t == JV_FLOAT; }

static double num_f(jv v)
{
    return v.t == JV_FLOAT ? v.u.f : v.t == JV_INT ? (double)v.u.i : (double)v.u.b;
}

static int64_t num_i(jv v) { return v.t == JV_INT ? v.u.i : v.u.b; }

int jv_equal(jv a, jv b)
{
    if (is_num(a) && is_num(b)) {
        if (a.t != JV_FLOAT && b.t != JV_FLOAT)
            return num_i(a) == num_i(b);
        return num_f(a) == num_f(b);
    }
    if (a.t != b.t)
        return 0;
    switch (a.t) {
    case JV_UNDEF:
    case JV_NONE: return 1;
    case JV_STR: return a.u.s.n == b.u.s.n && !memcmp(a.u.s.p, b.u.s.p, a.u.s.n);
    case JV_LIST:
        if (a.u.l->is_tuple != b.u.l->is_tuple || a.u.l->n != b.u.l->n)
            return 0;
        for (size_t i = 0; i < a.u.l->n; i++)
            if (!jv_equal(a.u.l->v[i], b.u.l->v[i]))
                return 0;
        return 1;
    case JV_DICT:
        if (a.u.d->n != b.u.d->n)
            return 0;
        for (size_t i = 0; i < a.u.d->n; i++) {
            jv *o = jd_get(b.u.d, a.u.d->k[i]);
            if (!o || !jv_equal(a.u.d->v[i], *o))
                return 0;
        }
        return 1;
    case JV_NS: return a.u.d == b.u.d;
    case JV_LOOP: return a.u.loop == b.u.loop;
    case JV_MACRO: return a.u.macro == b.u.macro;
    case JV_FUNC: return a.u.fn == b.u.fn;
    case JV_METHOD: return a.u.m == b.u.m;
    default: return 0;
    }
}

int jv_compare(const jctx *c, int line, jv a, jv b, int *cmp)
{
    if (is_num(a) && is_num(b)) {
        if (a.t != JV_FLOAT && b.t != JV_FLOAT) {
            int64_t x = num_i(a), y = num_i(b);
            *cmp = (x > y) - (x < y);
        } else {
            double x = num_f(a), y = num_f(b);
            *cmp = (x > y) - (x < y);
        }
        return CL_OK;
    }
    if (a.t == JV_STR && b.t == JV_STR) {
        size_t n = a.u.s.n < b.u.s.n ? a.u.s.n : b.u.s.n;
        int r = n ? memcmp(a.u.s.p, b.u.s.p, n) : 0;
        *cmp = r ? (r > 0) - (r < 0) : (a.u.s.n > b.u.s.n) - (a.u.s.n < b.u.s.n);
        return CL_OK;
    }
    if (a.t == JV_LIST && b.t == JV_LIST && a.u.l->is_tuple == b.u.l->is_tuple) {
        size_t n = a.u.l->n < b.u.l->n ? a.u.l->n : b.u.l->n;
        for (size_t i = 0; i < n; i++) {
            if (jv_equal(a.u.l->v[i], b.u.l->v[i]))
                continue;
            return jv_compare(c, line, a.u.l->v[i], b.u.l->v[i], cmp);
        }
        *cmp = (a.u.l->n > b.u.l->n) - (a.u.l->n < b.u.l->n);
        return CL_OK;
    }
    return jerr(c, line, CL_ERR_FORMAT, "cannot order values of types '%s' and '%s'",
                jv_type_name(a), jv_type_name(b));
}

void jv_float_repr(char *buf, size_t n, double f)
{
    if (isnan(f)) {
        snprintf(buf, n, "nan");
        return;
    }
    if (isinf(f)) {
        snprintf(buf, n, f < 0 ? "-inf" : "inf");
        return;
    }
    /* shortest %.Ne that reads back exactly gives Python's repr digits */
    char sci[40];
    for (int prec = 0; prec < 17; prec++) {
        snprintf(sci, sizeof sci, "%.*e", prec, f);
        if (strtod(sci, NULL) == f)
            break;
    }
    char digits[24];
    int nd = 0, neg = sci[0] == '-';
    const char *s = sci + neg;
    for (; *s && *s != 'e'; s++)
        if (*s >= '0' && *s <= '9')
            digits[nd++] = *s;
    digits[nd] = 0;
    int exp10 = atoi(s + 1);
    while (nd > 1 && digits[nd - 1] == '0')
        digits[--nd] = 0;
    char out[64];
    int o = 0;
    if (neg)
        out[o++] = '-';
    if (exp10 >= -4 && exp10 < 16) {
        if (exp10 >= 0) {
            for (int i = 0; i <= exp10; i++)
                out[o++] = i < nd ? digits[i] : '0';
            out[o++] = '.';
            if (nd > exp10 + 1)
                for (int i = exp10 + 1; i < nd; i++)
                    out[o++] = digits[i];
            else
                out[o++] = '0';
        } else {
            out[o++] = '0';
            out[o++] = '.';
            for (int i = 0; i < -exp10 - 1; i++)
                out[o++] = '0';
            for (int i = 0; i < nd; i++)
                out[o++] = digits[i];
        }
        out[o] = 0;
    } else {
        out[o++] = digits[0];
        if (nd > 1) {
            out[o++] = '.';
            for (int i = 1; i < nd; i++)
                out[o++] = digits[i];
        }
        snprintf(out + o, sizeof out - (size_t)o, "e%c%02d", exp10 < 0 ? '-' : '+',
                 exp10 < 0 ? -exp10 : exp10);
    }
    snprintf(buf, n, "%s", out);
}

static int write_str_repr(jbuf *b, const char *p, size_t n)
{
    int has_sq = memchr(p, '\'', n) != NULL, has_dq = memchr(p, '"', n) != NULL;
    char q = has_sq && !has_dq ? '"' : '\'';
    CL_TRY(jb_putc(b, q));
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t k = ju_decode(p, n, i, &cp);
        char tmp[16];
        if (cp == (uint32_t)q || cp == '\\') {
            tmp[0] = '\\', tmp[1] = (char)cp;
            CL_TRY(jb_put(b, tmp, 2));
        } else if (cp == '\n') {
            CL_TRY(jb_puts(b, "\\n"));
        } else if (cp == '\r') {
            CL_TRY(jb_puts(b, "\\r"));
        } else if (cp == '\t') {
            CL_TRY(jb_puts(b, "\\t"));
        } else if (cp < 0x20 || cp == 0x7f) {
            CL_TRY(jb_printf(b, "\\x%02x", cp));
        } else if (cp < 0x80) {
            CL_TRY(jb_putc(b, (char)cp));
        } else {
            utf8proc_category_t cat = utf8proc_category((utf8proc_int32_t)cp);
            int printable = !(cat == UTF8PROC_CATEGORY_CC || cat == UTF8PROC_CATEGORY_CF ||
                              cat == UTF8PROC_CATEGORY_CS || cat == UTF8PROC_CATEGORY_CO ||
                              cat == UTF8PROC_CATEGORY_CN || cat == UTF8PROC_CATEGORY_ZL ||
                              cat == UTF8PROC_CATEGORY_ZP || cat == UTF8PROC_CATEGORY_ZS);
            if (printable)
                CL_TRY(jb_put(b, p + i, k));
            else if (cp < 0x100)
                CL_TRY(jb_printf(b, "\\x%02x", cp));
            else if (cp < 0x10000)
                CL_TRY(jb_printf(b, "\\u%04x", cp));
            else
                CL_TRY(jb_printf(b, "\\U%08x", cp));
        }
        i += k;
    }
    return jb_putc(b, q);
}

int jv_write_repr(jbuf *b, jv v)
{
    switch (v.t) {
    case JV_STR: return write_str_repr(b, v.u.s.p, v.u.s.n);
    case JV_UNDEF: return jb_puts(b, "Undefined");
    case JV_LIST: {
        const jlist *l = v.u.l;
        CL_TRY(jb_putc(b, l->is_tuple ? '(' : '['));
        for (size_t i = 0; i < l->n; i++) {
            if (i)
                CL_TRY(jb_puts(b, ", "));
            CL_TRY(jv_write_repr(b, l->v[i]));
        }
        if (l->is_tuple && l->n == 1)
            CL_TRY(jb_putc(b, ','));
        return jb_putc(b, l->is_tuple ? ')' : ']');
    }
    case JV_DICT:
    case JV_NS: {
        const jdict *d = v.u.d;
        CL_TRY(jb_puts(b, v.t == JV_NS ? "<Namespace {" : "{"));
        for (size_t i = 0; i < d->n; i++) {
            if (i)
                CL_TRY(jb_puts(b, ", "));
            CL_TRY(jv_write_repr(b, d->k[i]));
            CL_TRY(jb_puts(b, ": "));
            CL_TRY(jv_write_repr(b, d->v[i]));
        }
        return jb_puts(b, v.t == JV_NS ? "}>" : "}");
    }
    default: return jv_write_str(b, v);
    }
}

int jv_write_str(jbuf *b, jv v)
{
    char tmp[64];
    switch (v.t) {
    case JV_UNDEF: return CL_OK;
    case JV_NONE: return jb_puts(b, "None");
    case JV_BOOL: return jb_puts(b, v.u.b ? "True" : "False");
    case JV_INT: return jb_printf(b, "%lld", (long long)v.u.i);
    case JV_FLOAT: jv_float_repr(tmp, sizeof tmp, v.u.f); return jb_puts(b, tmp);
    case JV_STR: return jb_put(b, v.u.s.p, v.u.s.n);
    case JV_LIST:
    case JV_DICT:
    case JV_NS: return jv_write_repr(b, v);
    case JV_LOOP: return jb_puts(b, "<LoopContext>");
    case JV_MACRO: return jb_puts(b, "<Macro>");
    case JV_FUNC: return jb_puts(b, "<function>");
    case JV_METHOD: return jb_puts(b, "<built-in method>");
    }
    return CL_OK;
}

int jv_to_str(const jctx *c, jv v, jv *out)
{
    if (v.t == JV_STR) {
        *out = v;
        return CL_OK;
    }
    if (v.t == JV_UNDEF) {
        *out = jv_str("", 0);
        return CL_OK;
    }
    jbuf b = {0};
    int rc = jv_write_str(&b, v);
    if (rc == CL_OK) {
        char *s = ja_strndup(c->ar, b.p ? b.p : "", b.n);
        if (!s)
            rc = cl_err(CL_ERR_NOMEM, "%s: out of memory", c->what);
        else
            *out = jv_str(s, b.n);
    }
    jb_free(&b);
    return rc;
}

jlist *jl_new(jarena *a, size_t cap)
{
    jlist *l = ja_alloc(a, sizeof *l);
    if (!l)
        return NULL;
    if (cap) {
        l->v = ja_alloc(a, cap * sizeof *l->v);
        if (!l->v)
            return NULL;
        l->cap = cap;
    }
    return l;
}

int jl_push(jarena *a, jlist *l, jv v)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        jv *nv = ja_alloc(a, cap * sizeof *nv);
        if (!nv)
            return cl_err(CL_ERR_NOMEM, "chat template: out of memory");
        if (l->n)
            memcpy(nv, l->v, l->n * sizeof *nv);
        l->v = nv;
        l->cap = cap;
    }
    l->v[l->n++] = v;
    return CL_OK;
}

jdict *jd_new(jarena *a, size_t cap)
{
    jdict *d = ja_alloc(a, sizeof *d);
    if (!d)
        return NULL;
    if (cap) {
        d->k = ja_alloc(a, cap * sizeof *d->k);
        d->v = ja_alloc(a, cap * sizeof *d->v);
        if (!d->k || !d->v)
            return NULL;
        d->cap = cap;
    }
    return d;
}

jv *jd_get(jdict *d, jv key)
{
    for (size_t i = 0; i < d->n; i++)
        if (jv_equal(d->k[i], key))
            return &d->v[i];
    return NULL;
}

jv *jd_get_str(jdict *d, const char *key, size_t n)
{
    for (size_t i = 0; i < d->n; i++)
        if (d->k[i].t == JV_STR && d->k[i].u.s.n == n && !memcmp(d->k[i].u.s.p, key, n))
            return &d->v[i];
    return NULL;
}

int jd_set(jarena *a, jdict *d, jv key, jv val)
{
    jv *slot = jd_get(d, key);
    if (slot) {
        *slot = val;
        return CL_OK;
    }
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 8;
        jv *nk = ja_alloc(a, cap * sizeof *nk), *nv = ja_alloc(a, cap * sizeof *nv);
        if (!nk || !nv)
            return cl_err(CL_ERR_NOMEM, "chat template: out of memory");
        if (d->n) {
            memcpy(nk, d->k, d->n * sizeof *nk);
            memcpy(nv, d->v, d->n * sizeof *nv);
        }
        d->k = nk;
        d->v = nv;
        d->cap = cap;
    }
    d->k[d->n] = key;
    d->v[d->n++] = val;
    return CL_OK;
}

int jv_iterate(const jctx *c, int line, jv v, jlist **out)
{
    jlist *l;
    switch (v.t) {
    case JV_LIST: *out = v.u.l; return CL_OK;
    case JV_UNDEF:
        if (!(*out = jl_new(c->ar, 0)))
            return cl_err(CL_ERR_NOMEM, "%s: out of memory", c->what);
        return CL_OK;
    case JV_DICT:
    case JV_NS:
        if (!(l = jl_new(c->ar, v.u.d->n)))
            return cl_err(CL_ERR_NOMEM, "%s: out of memory", c->what);
        for (size_t i = 0; i < v.u.d->n; i++)
            l->v[i] = v.u.d->k[i];
        l->n = v.u.d->n;
        *out = l;
        return CL_OK;
    case JV_STR:
        if (!(l = jl_new(c->ar, ju_cplen(v.u.s.p, v.u.s.n))))
            return cl_err(CL_ERR_NOMEM, "%s: out of memory", c->what);
        for (size_t i = 0; i < v.u.s.n;) {
            uint32_t cp;
            size_t k = ju_decode(v.u.s.p, v.u.s.n, i, &cp);
            l->v[l->n++] = jv_str(v.u.s.p + i, k);
            i += k;
        }
        *out = l;
        return CL_OK;
    default:
        return jerr(c, line, CL_ERR_FORMAT, "'%s' object is not iterable", jv_type_name(v));
    }
}

int jv_length(const jctx *c, int line, jv v, int64_t *out)
{
    switch (v.t) {
    case JV_UNDEF: *out = 0; return CL_OK;
    case JV_STR: *out = (int64_t)ju_cplen(v.u.s.p, v.u.s.n); return CL_OK;
    case JV_LIST: *out = (int64_t)v.u.l->n; return CL_OK;
    case JV_DICT:
    case JV_NS: *out = (int64_t)v.u.d->n; return CL_OK;
    case JV_LOOP: *out = (int64_t)v.u.loop->items->n; return CL_OK;
    default:
        return jerr(c, line, CL_ERR_FORMAT, "object of type '%s' has no length", jv_type_name(v));
    }
}

int jv_from_json(jarena *a, const cJSON *j, jv *out)
{
    if (cJSON_IsNull(j) || !j) {
        *out = jv_none();
    } else if (cJSON_IsBool(j)) {
        *out = jv_bool(cJSON_IsTrue(j));
    } else if (cJSON_IsNumber(j)) {
        /* cJSON keeps no int/float distinction: integral values become ints */
        double d = j->valuedouble;
        if (d == floor(d) && fabs(d) < 9.2e18)
            *out = jv_int((int64_t)d);
        else
            *out = jv_float(d);
    } else if (cJSON_IsString(j)) {
        *out = jv_str(j->valuestring, strlen(j->valuestring));
    } else if (cJSON_IsArray(j)) {
        jlist *l = jl_new(a, (size_t)cJSON_GetArraySize(j));
        if (!l)
            return cl_err(CL_ERR_NOMEM, "chat template: out of memory");
        for (const cJSON *e = j->child; e; e = e->next)
            CL_TRY(jv_from_json(a, e, &l->v[l->n++]));
        *out = jv_list(l);
    } else if (cJSON_IsObject(j)) {
        jdict *d = jd_new(a, (size_t)cJSON_GetArraySize(j));
        if (!d)
            return cl_err(CL_ERR_NOMEM, "chat template: out of memory");
        for (const cJSON *e = j->child; e; e = e->next) {
            jv v;
            CL_TRY(jv_from_json(a, e, &v));
            const char *k = e->string ? e->string : "";
            CL_TRY(jd_set(a, d, jv_str(k, strlen(k)), v));
        }
        *out = jv_dict(d);
    } else {
        return cl_err(CL_ERR_FORMAT, "chat template: unsupported JSON value");
    }
    return CL_OK;
}
