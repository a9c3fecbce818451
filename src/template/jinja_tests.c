/* jinja_tests.c - the `is` tests of jinja2 (defined, none, string, number,
 * mapping, iterable, sequence, ...), the argument helpers shared by builtins,
 * and the global functions: range, namespace, dict, raise_exception (from
 * transformers) and strftime_now (also from transformers). */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <utf8proc.h>

#include "template/jinja_int.h"

#define OOM() cl_err(CL_ERR_NOMEM, "%s: out of memory", c->what)

const jv *jarg(const jargs *a, int i, const char *name)
{
    if (i >= 0 && i < a->npos)
        return &a->pos[i];
    for (int k = 0; name && k < a->nkw; k++)
        if (!strcmp(a->kwn[k], name))
            return &a->kwv[k];
    return NULL;
}

int jargs_check(const jctx *c, int line, const char *fname, const jargs *a, int max_pos,
                const char *const *known)
{
    if (a->npos > max_pos)
        return jerr(c, line, CL_ERR_FORMAT, "%s takes at most %d argument%s (%d given)", fname,
                    max_pos, max_pos == 1 ? "" : "s", a->npos);
    for (int k = 0; k < a->nkw; k++) {
        int ok = 0;
        for (int i = 0; known && known[i]; i++)
            ok |= !strcmp(known[i], a->kwn[k]);
        if (!ok)
            return jerr(c, line, CL_ERR_UNSUPPORTED, "%s: argument '%s' is not supported", fname,
                        a->kwn[k]);
    }
    return CL_OK;
}

enum {
    JT_BOOLEAN, JT_CALLABLE, JT_DEFINED, JT_DIVISIBLEBY, JT_EQ, JT_ESCAPED, JT_EVEN, JT_FALSE,
    JT_FILTER, JT_FLOAT_, JT_GE, JT_GT, JT_IN, JT_INTEGER, JT_ITERABLE, JT_LE, JT_LOWER, JT_LT,
    JT_MAPPING, JT_NE, JT_NONE, JT_NUMBER, JT_ODD, JT_SAMEAS, JT_SEQUENCE, JT_STRING_, JT_TEST,
    JT_TRUE, JT_UNDEFINED, JT_UPPER,
};

static const struct {
    const char *name;
    int id;
} tests[] = {
    {"boolean", JT_BOOLEAN}, {"callable", JT_CALLABLE}, {"defined", JT_DEFINED},
    {"divisibleby", JT_DIVISIBLEBY}, {"eq", JT_EQ}, {"equalto", JT_EQ}, {"==", JT_EQ},
    {"escaped", JT_ESCAPED}, {"even", JT_EVEN}, {"false", JT_FALSE}, {"filter", JT_FILTER},
    {"float", JT_FLOAT_}, {"ge", JT_GE}, {">=", JT_GE}, {"gt", JT_GT}, {"greaterthan", JT_GT},
    {">", JT_GT}, {"in", JT_IN}, {"integer", JT_INTEGER}, {"iterable", JT_ITERABLE},
    {"le", JT_LE}, {"<=", JT_LE}, {"lower", JT_LOWER}, {"lt", JT_LT}, {"lessthan", JT_LT},
    {"<", JT_LT}, {"mapping", JT_MAPPING}, {"ne", JT_NE}, {"!=", JT_NE}, {"none", JT_NONE},
    {"number", JT_NUMBER}, {"odd", JT_ODD}, {"sameas", JT_SAMEAS}, {"sequence", JT_SEQUENCE},
    {"string", JT_STRING_}, {"test", JT_TEST}, {"true", JT_TRUE}, {"undefined", JT_UNDEFINED},
    {"upper", JT_UPPER},
};

int jtest_lookup(const char *name)
{
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++)
        if (!strcmp(tests[i].name, name))
            return tests[i].id;
    return -1;
}

static const char *test_name(int id)
{
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++)
        if (tests[i].id == id)
            return tests[i].name;
    return "?";
}

/* Python str.islower / isupper: some cased character, none of the other case. */
static int case_test(jv s, int upper)
{
    int cased = 0;
    for (size_t i = 0; i < s.u.s.n;) {
        uint32_t cp;
        i += ju_decode(s.u.s.p, s.u.s.n, i, &cp);
        int lo = utf8proc_islower((utf8proc_int32_t)cp), up = utf8proc_isupper((utf8proc_int32_t)cp);
        if (upper ? lo : up)
            return 0;
        cased |= upper ? up : lo;
    }
    return cased;
}

int jtest_apply(jctx *c, int line, int id, jv v, const jargs *a, int *out)
{
    const jv *arg = jarg(a, 0, NULL);
    int needs_arg = id == JT_DIVISIBLEBY || id == JT_EQ || id == JT_NE || id == JT_LT ||
                    id == JT_LE || id == JT_GT || id == JT_GE || id == JT_IN || id == JT_SAMEAS;
    char fname[48];
    snprintf(fname, sizeof fname, "test '%s'", test_name(id));
    CL_TRY(jargs_check(c, line, fname, a, needs_arg ? 1 : 0, NULL));
    if (needs_arg && !arg)
        return jerr(c, line, CL_ERR_FORMAT, "%s needs an argument", fname);
    int num = v.t == JV_INT || v.t == JV_BOOL || v.t == JV_FLOAT;
    switch (id) {
    case JT_BOOLEAN: *out = v.t == JV_BOOL; return CL_OK;
    case JT_CALLABLE:
        *out = v.t == JV_FUNC || v.t == JV_METHOD || v.t == JV_MACRO || v.t == JV_UNDEF;
        return CL_OK;
    case JT_DEFINED: *out = v.t != JV_UNDEF; return CL_OK;
    case JT_UNDEFINED: *out = v.t == JV_UNDEF; return CL_OK;
    case JT_ESCAPED: *out = 0; return CL_OK;
    case JT_FALSE: *out = v.t == JV_BOOL && !v.u.b; return CL_OK;
    case JT_TRUE: *out = v.t == JV_BOOL && v.u.b; return CL_OK;
    case JT_NONE: *out = v.t == JV_NONE; return CL_OK;
    case JT_FLOAT_: *out = v.t == JV_FLOAT; return CL_OK;
    case JT_INTEGER: *out = v.t == JV_INT; return CL_OK;
    case JT_NUMBER: *out = num; return CL_OK;
    case JT_STRING_: *out = v.t == JV_STR; return CL_OK;
    case JT_MAPPING: *out = v.t == JV_DICT; return CL_OK;
    case JT_ITERABLE:
    case JT_SEQUENCE:
        *out = v.t == JV_STR || v.t == JV_LIST || v.t == JV_DICT || v.t == JV_UNDEF ||
               (id == JT_ITERABLE && v.t == JV_LOOP);
        return CL_OK;
    case JT_FILTER:
    case JT_TEST:
        *out = 0;
        if (v.t == JV_STR && v.u.s.n < 64) {
            char name[64];
            memcpy(name, v.u.s.p, v.u.s.n);
            name[v.u.s.n] = 0;
            *out = (id == JT_FILTER ? jfilter_lookup(name) : jtest_lookup(name)) >= 0;
        }
        return CL_OK;
    case JT_LOWER:
    case JT_UPPER: {
        jv s;
        CL_TRY(jv_to_str(c, v, &s));
        *out = case_test(s, id == JT_UPPER);
        return CL_OK;
    }
    case JT_EVEN:
    case JT_ODD:
    case JT_DIVISIBLEBY: {
        jv m = jv_int(id == JT_DIVISIBLEBY ? 0 : 2);
        if (id == JT_DIVISIBLEBY)
            m = *arg;
        if (!num || !(m.t == JV_INT || m.t == JV_BOOL || m.t == JV_FLOAT))
            return jerr(c, line, CL_ERR_FORMAT, "%s needs numbers, got '%s'", fname,
                        jv_type_name(num ? m : v));
        if (v.t == JV_FLOAT || m.t == JV_FLOAT) {
            double x = v.t == JV_FLOAT ? v.u.f : (double)(v.t == JV_INT ? v.u.i : v.u.b);
            double y = m.t == JV_FLOAT ? m.u.f : (double)(m.t == JV_INT ? m.u.i : m.u.b);
            if (y == 0)
                return jerr(c, line, CL_ERR_FORMAT, "division by zero");
            double r = x - y * (double)(long long)(x / y);
            *out = id == JT_ODD ? r != 0 : r == 0;
        } else {
            int64_t x = v.t == JV_INT ? v.u.i : v.u.b, y = m.t == JV_INT ? m.u.i : m.u.b;
            if (y == 0)
                return jerr(c, line, CL_ERR_FORMAT, "division by zero");
            *out = id == JT_ODD ? x % y != 0 : x % y == 0;
        }
        return CL_OK;
    }
    case JT_EQ: *out = jv_equal(v, *arg); return CL_OK;
    case JT_NE: *out = !jv_equal(v, *arg); return CL_OK;
    case JT_LT:
    case JT_LE:
    case JT_GT:
    case JT_GE: {
        int cmp;
        CL_TRY(jv_compare(c, line, v, *arg, &cmp));
        *out = id == JT_LT ? cmp < 0 : id == JT_LE ? cmp <= 0 : id == JT_GT ? cmp > 0 : cmp >= 0;
        return CL_OK;
    }
    case JT_IN: {
        jlist *l;
        if (arg->t == JV_STR) {
            if (v.t != JV_STR)
                return jerr(c, line, CL_ERR_FORMAT, "'in <string>' requires a string");
            *out = ju_find(arg->u.s.p, arg->u.s.n, v.u.s.p, v.u.s.n, 0) >= 0;
            return CL_OK;
        }
        if (arg->t == JV_DICT || arg->t == JV_NS) {
            *out = jd_get(arg->u.d, v) != NULL;
            return CL_OK;
        }
        CL_TRY(jv_iterate(c, line, *arg, &l));
        *out = 0;
        for (size_t i = 0; i < l->n && !*out; i++)
            *out = jv_equal(l->v[i], v);
        return CL_OK;
    }
    case JT_SAMEAS: {
        jv b = *arg;
        if (v.t != b.t)
            *out = 0;
        else if (v.t == JV_STR)
            *out = v.u.s.p == b.u.s.p && v.u.s.n == b.u.s.n;
        else
            *out = jv_equal(v, b);
        return CL_OK;
    }
    }
    return jerr(c, line, CL_ERR_INTERNAL, "unknown test %d", id);
}

/* ---- global functions -------------------------------------------------------- */
int jfunc_lookup(const char *name)
{
    static const char *const names[JF_COUNT] = {"range", "namespace", "dict", "raise_exception",
                                                "strftime_now"};
    for (int i = 0; i < JF_COUNT; i++)
        if (!strcmp(names[i], name))
            return i;
    return -1;
}

static int int_arg(const jctx *c, int line, const char *fname, const jv *v, int64_t *out)
{
    if (v->t == JV_INT)
        *out = v->u.i;
    else if (v->t == JV_BOOL)
        *out = v->u.b;
    else
        return jerr(c, line, CL_ERR_FORMAT, "%s: expected an integer, got '%s'", fname,
                    jv_type_name(*v));
    return CL_OK;
}

static int kw_dict(jctx *c, const jargs *a, jdict *d)
{
    for (int k = 0; k < a->nkw; k++)
        CL_TRY(jd_set(c->ar, d, jv_str(a->kwn[k], strlen(a->kwn[k])), a->kwv[k]));
    return CL_OK;
}

int jfunc_call(jctx *c, int line, int fn, const jargs *a, jv *out)
{
    switch (fn) {
    case JF_RANGE: {
        CL_TRY(jargs_check(c, line, "range()", a, 3, NULL));
        if (a->npos == 0)
            return jerr(c, line, CL_ERR_FORMAT, "range() needs at least 1 argument");
        int64_t v[3] = {0, 0, 1};
        for (int i = 0; i < a->npos; i++)
            CL_TRY(int_arg(c, line, "range()", &a->pos[i], &v[i]));
        int64_t start = a->npos == 1 ? 0 : v[0], stop = a->npos == 1 ? v[0] : v[1];
        int64_t step = a->npos == 3 ? v[2] : 1;
        if (step == 0)
            return jerr(c, line, CL_ERR_FORMAT, "range() step must not be zero");
        jlist *l = jl_new(c->ar, 0);
        if (!l)
            return OOM();
        for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
            if (l->n >= 10000000)
                return jerr(c, line, CL_ERR_RANGE, "range() is too large");
            CL_TRY(jl_push(c->ar, l, jv_int(i)));
            if ((step > 0 && i > INT64_MAX - step) || (step < 0 && i < INT64_MIN - step))
                break;
        }
        *out = jv_list(l);
        return CL_OK;
    }
    case JF_NAMESPACE:
    case JF_DICT: {
        const char *fname = fn == JF_DICT ? "dict()" : "namespace()";
        if (a->npos > 1)
            return jerr(c, line, CL_ERR_FORMAT, "%s takes at most 1 positional argument", fname);
        jdict *d = jd_new(c->ar, 0);
        if (!d)
            return OOM();
        if (a->npos == 1) {
            jv src = a->pos[0];
            if (src.t != JV_DICT && src.t != JV_NS)
                return jerr(c, line, CL_ERR_FORMAT, "%s: expected a mapping, got '%s'", fname,
                            jv_type_name(src));
            for (size_t i = 0; i < src.u.d->n; i++)
                CL_TRY(jd_set(c->ar, d, src.u.d->k[i], src.u.d->v[i]));
        }
        CL_TRY(kw_dict(c, a, d));
        out->t = fn == JF_DICT ? JV_DICT : JV_NS;
        out->u.d = d;
        return CL_OK;
    }
    case JF_RAISE: {
        const jv *m = jarg(a, 0, NULL);
        jv s = jv_str("", 0);
        if (m)
            CL_TRY(jv_to_str(c, *m, &s));
        return jerr(c, line, CL_ERR_FORMAT, "template raised an error: %.*s",
                    (int)(s.u.s.n > 400 ? 400 : s.u.s.n), s.u.s.p);
    }
    case JF_STRFTIME: {
        CL_TRY(jargs_check(c, line, "strftime_now()", a, 1, NULL));
        const jv *f = jarg(a, 0, NULL);
        if (!f || f->t != JV_STR)
            return jerr(c, line, CL_ERR_FORMAT, "strftime_now() needs a format string");
        char fmt[256], buf[512];
        if (f->u.s.n >= sizeof fmt)
            return jerr(c, line, CL_ERR_RANGE, "strftime_now(): format too long");
        memcpy(fmt, f->u.s.p, f->u.s.n);
        fmt[f->u.s.n] = 0;
        time_t now = time(NULL);
        struct tm tm;
        localtime_r(&now, &tm);
        size_t n = strftime(buf, sizeof buf, fmt, &tm);
        char *s = ja_strndup(c->ar, buf, n);
        if (!s)
            return OOM();
        *out = jv_str(s, n);
        return CL_OK;
    }
    }
    return jerr(c, line, CL_ERR_INTERNAL, "unknown function %d", fn);
}
