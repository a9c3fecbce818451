/* jinja_eval.c - expression evaluation: operators with Python semantics
 * (int/float arithmetic, str/list concatenation and repetition, chained
 * comparisons, `in`, short-circuit and/or returning an operand), filters,
 * tests, and calls of globals, methods and macros. Lookups are in
 * jinja_access.c. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "template/jinja_int.h"

#define OOM() cl_err(CL_ERR_NOMEM, "%s: out of memory", c->what)

static int is_num(jv v) { return v.t == JV_INT || v.t == JV_BOOL || v.t == JV_FLOAT; }
static double fval(jv v) { return v.t == JV_FLOAT ? v.u.f : v.t == JV_INT ? (double)v.u.i : v.u.b; }
static int64_t ival(jv v) { return v.t == JV_INT ? v.u.i : v.u.b; }

static const char *op_name(int op)
{
    static const char *const names[] = {"+", "-", "*", "/", "//", "%", "**"};
    return op >= 0 && op <= JOP_POW ? names[op] : "?";
}

static int seq_repeat(jctx *c, jv seq, int64_t times, jv *out)
{
    if (times < 0)
        times = 0;
    if (seq.t == JV_STR) {
        if (seq.u.s.n && (uint64_t)times > ((uint64_t)1 << 31) / seq.u.s.n)
            return jerr(c, 0, CL_ERR_RANGE, "string repetition too large");
        size_t n = seq.u.s.n * (size_t)times;
        char *s = ja_alloc(c->ar, n + 1);
        if (!s)
            return OOM();
        for (int64_t i = 0; i < times; i++)
            memcpy(s + (size_t)i * seq.u.s.n, seq.u.s.p, seq.u.s.n);
        *out = jv_str(s, n);
        return CL_OK;
    }
    jlist *l = jl_new(c->ar, 0);
    if (!l)
        return OOM();
    l->is_tuple = seq.u.l->is_tuple;
    if (seq.u.l->n && (uint64_t)times > ((uint64_t)1 << 24) / seq.u.l->n)
        return jerr(c, 0, CL_ERR_RANGE, "list repetition too large");
    for (int64_t i = 0; i < times; i++)
        for (size_t k = 0; k < seq.u.l->n; k++)
            CL_TRY(jl_push(c->ar, l, seq.u.l->v[k]));
    *out = jv_list(l);
    return CL_OK;
}

static int binop(jctx *c, int line, int op, jv a, jv b, jv *out)
{
    if (a.t == JV_UNDEF || b.t == JV_UNDEF) {
        char what[64];
        snprintf(what, sizeof what, "used with operator '%s'", op_name(op));
        return jundefined_error(c, line, a.t == JV_UNDEF ? a : b, what);
    }
    if (is_num(a) && is_num(b)) {
        int ints = a.t != JV_FLOAT && b.t != JV_FLOAT;
        int64_t x = ival(a), y = ival(b), r;
        double fx = fval(a), fy = fval(b);
        switch (op) {
        case JOP_ADD:
        case JOP_SUB:
        case JOP_MUL:
            if (ints) {
                int ovf = op == JOP_ADD   ? __builtin_add_overflow(x, y, &r)
                          : op == JOP_SUB ? __builtin_sub_overflow(x, y, &r)
                                          : __builtin_mul_overflow(x, y, &r);
                if (ovf)
                    return jerr(c, line, CL_ERR_RANGE, "integer overflow in '%s'", op_name(op));
                *out = jv_int(r);
            } else {
                *out = jv_float(op == JOP_ADD ? fx + fy : op == JOP_SUB ? fx - fy : fx * fy);
            }
            return CL_OK;
        case JOP_DIV:
            if (fy == 0)
                return jerr(c, line, CL_ERR_FORMAT, "division by zero");
            *out = jv_float(fx / fy);
            return CL_OK;
        case JOP_FLOORDIV:
        case JOP_MOD:
            if (ints ? y == 0 : fy == 0)
                return jerr(c, line, CL_ERR_FORMAT, "division by zero");
            if (ints) {
                if (x == INT64_MIN && y == -1)
                    return jerr(c, line, CL_ERR_RANGE, "integer overflow in '%s'", op_name(op));
                int64_t q = x / y, m = x % y;
                if (m != 0 && ((m < 0) != (y < 0))) {
                    q--;
                    m += y;
                }
                *out = jv_int(op == JOP_FLOORDIV ? q : m);
            } else {
                double m = fmod(fx, fy);
                if (m != 0 && ((m < 0) != (fy < 0)))
                    m += fy;
                *out = jv_float(op == JOP_FLOORDIV ? floor(fx / fy) : m);
            }
            return CL_OK;
        case JOP_POW:
            if (ints && y >= 0) {
                int64_t acc = 1;
                for (int64_t k = 0; k < y; k++)
                    if (__builtin_mul_overflow(acc, x, &acc))
                        return jerr(c, line, CL_ERR_RANGE, "integer overflow in '**'");
                *out = jv_int(acc);
            } else {
                *out = jv_float(pow(fx, fy));
            }
            return CL_OK;
        }
    }
    int oom = 0;
    if (op == JOP_ADD && a.t == JV_STR && b.t == JV_STR) {
        *out = ju_concat(c->ar, a, b, &oom);
        return oom ? OOM() : CL_OK;
    }
    if (op == JOP_ADD && a.t == JV_LIST && b.t == JV_LIST && a.u.l->is_tuple == b.u.l->is_tuple) {
        jlist *l = jl_new(c->ar, a.u.l->n + b.u.l->n);
        if (!l)
            return OOM();
        l->is_tuple = a.u.l->is_tuple;
        for (size_t i = 0; i < a.u.l->n; i++)
            l->v[l->n++] = a.u.l->v[i];
        for (size_t i = 0; i < b.u.l->n; i++)
            l->v[l->n++] = b.u.l->v[i];
        *out = jv_list(l);
        return CL_OK;
    }
    if (op == JOP_MUL && (a.t == JV_STR || a.t == JV_LIST) && (b.t == JV_INT || b.t == JV_BOOL))
        return seq_repeat(c, a, ival(b), out);
    if (op == JOP_MUL && (b.t == JV_STR || b.t == JV_LIST) && (a.t == JV_INT || a.t == JV_BOOL))
        return seq_repeat(c, b, ival(a), out);
    if (op == JOP_MOD && a.t == JV_STR)
        return jerr(c, line, CL_ERR_UNSUPPORTED, "'%%' string formatting is not supported");
    return jerr(c, line, CL_ERR_FORMAT, "unsupported operand types for %s: '%s' and '%s'",
                op_name(op), jv_type_name(a), jv_type_name(b));
}

static int contains(jctx *c, int line, jv hay, jv needle, int *out)
{
    switch (hay.t) {
    case JV_UNDEF: *out = 0; return CL_OK;
    case JV_STR:
        if (needle.t != JV_STR)
            return jerr(c, line, CL_ERR_FORMAT, "'in <string>' requires a string, not '%s'",
                        jv_type_name(needle));
        *out = ju_find(hay.u.s.p, hay.u.s.n, needle.u.s.p, needle.u.s.n, 0) >= 0;
        return CL_OK;
    case JV_LIST:
        *out = 0;
        for (size_t i = 0; i < hay.u.l->n && !*out; i++)
            *out = jv_equal(hay.u.l->v[i], needle);
        return CL_OK;
    case JV_DICT:
    case JV_NS: *out = jd_get(hay.u.d, needle) != NULL; return CL_OK;
    default:
        return jerr(c, line, CL_ERR_FORMAT, "argument of type '%s' is not iterable",
                    jv_type_name(hay));
    }
}

static int compare(jctx *c, int line, int op, jv a, jv b, int *res)
{
    int cmp;
    switch (op) {
    case JOP_EQ: *res = jv_equal(a, b); return CL_OK;
    case JOP_NE: *res = !jv_equal(a, b); return CL_OK;
    case JOP_IN: return contains(c, line, b, a, res);
    case JOP_NOTIN: CL_TRY(contains(c, line, b, a, res)); *res = !*res; return CL_OK;
    default: break;
    }
    if (a.t == JV_UNDEF || b.t == JV_UNDEF)
        return jundefined_error(c, line, a.t == JV_UNDEF ? a : b, "compared with '<' or '>'");
    CL_TRY(jv_compare(c, line, a, b, &cmp));
    *res = op == JOP_LT ? cmp < 0 : op == JOP_LE ? cmp <= 0 : op == JOP_GT ? cmp > 0 : cmp >= 0;
    return CL_OK;
}

/* Evaluates call/filter/test arguments into `a`. */
static int eval_args(jctx *c, const jexpr *e, jargs *a)
{
    a->npos = e->nitems;
    a->nkw = e->nkw;
    a->kwn = e->kwnames;
    a->pos = ja_alloc(c->ar, (size_t)(e->nitems + 1) * sizeof *a->pos);
    a->kwv = ja_alloc(c->ar, (size_t)(e->nkw + 1) * sizeof *a->kwv);
    if (!a->pos || !a->kwv)
        return OOM();
    for (int i = 0; i < e->nitems; i++)
        CL_TRY(jeval(c, e->items[i], &a->pos[i]));
    for (int i = 0; i < e->nkw; i++)
        CL_TRY(jeval(c, e->kwvals[i], &a->kwv[i]));
    return CL_OK;
}

int jcall_value(jctx *c, int line, jv callee, jv *args, int nargs, const char **kwn, jv *kwv,
                int nkw, jv *out)
{
    jargs a = {args, nargs, kwn, kwv, nkw};
    switch (callee.t) {
    case JV_FUNC: return jfunc_call(c, line, callee.u.fn, &a, out);
    case JV_METHOD: return jmethod_call(c, line, callee.u.m, &a, out);
    case JV_MACRO: return jcall_macro(c, line, callee.u.macro, args, nargs, kwn, kwv, nkw, out);
    case JV_UNDEF:
        if (callee.u.s.p)
            return jerr(c, line, CL_ERR_UNSUPPORTED,
                        "'%.*s' is undefined or not a supported function/method", (int)callee.u.s.n,
                        callee.u.s.p);
        return jerr(c, line, CL_ERR_FORMAT, "cannot call an undefined value");
    default:
        return jerr(c, line, CL_ERR_FORMAT, "'%s' object is not callable", jv_type_name(callee));
    }
}

int jeval(jctx *c, const jexpr *e, jv *out)
{
    switch (e->kind) {
    case JE_CONST: *out = e->cval; return CL_OK;
    case JE_NAME: {
        jv *v = jscope_lookup(c->scope, e->name);
        *out = v ? *v : jv_undef(e->name);
        return CL_OK;
    }
    case JE_LIST:
    case JE_TUPLE: {
        jlist *l = jl_new(c->ar, (size_t)e->nitems);
        if (!l)
            return OOM();
        l->is_tuple = e->kind == JE_TUPLE;
        for (int i = 0; i < e->nitems; i++)
            CL_TRY(jeval(c, e->items[i], &l->v[l->n++]));
        *out = jv_list(l);
        return CL_OK;
    }
    case JE_DICT: {
        jdict *d = jd_new(c->ar, (size_t)e->nitems / 2);
        if (!d)
            return OOM();
        for (int i = 0; i + 1 < e->nitems; i += 2) {
            jv k, v;
            CL_TRY(jeval(c, e->items[i], &k));
            CL_TRY(jeval(c, e->items[i + 1], &v));
            CL_TRY(jd_set(c->ar, d, k, v));
        }
        *out = jv_dict(d);
        return CL_OK;
    }
    case JE_ATTR: {
        jv obj;
        CL_TRY(jeval(c, e->a, &obj));
        return jget_attr(c, e->line, obj, e->name, strlen(e->name), out);
    }
    case JE_ITEM: {
        jv obj, key;
        CL_TRY(jeval(c, e->a, &obj));
        CL_TRY(jeval(c, e->b, &key));
        return jget_item(c, e->line, obj, key, out);
    }
    case JE_SLICE: return jeval_slice(c, e, out);
    case JE_CALL: {
        jv callee;
        jargs a;
        if (e->a->kind == JE_ATTR) {
            jv obj;
            CL_TRY(jeval(c, e->a->a, &obj));
            CL_TRY(jget_attr(c, e->line, obj, e->a->name, strlen(e->a->name), &callee));
            if (callee.t == JV_UNDEF && obj.t != JV_DICT && obj.t != JV_NS)
                return jerr(c, e->line, CL_ERR_UNSUPPORTED,
                            "'%s' object has no method '%s' (or it is not supported)",
                            jv_type_name(obj), e->a->name);
        } else {
            CL_TRY(jeval(c, e->a, &callee));
        }
        CL_TRY(eval_args(c, e, &a));
        return jcall_value(c, e->line, callee, a.pos, a.npos, a.kwn, a.kwv, a.nkw, out);
    }
    case JE_FILTER: {
        jv v;
        jargs a;
        if (e->a)
            CL_TRY(jeval(c, e->a, &v));
        else
            v = c->filter_input;
        if (e->id < 0)
            return jerr(c, e->line, CL_ERR_UNSUPPORTED, "filter '%s' is not supported", e->name);
        CL_TRY(eval_args(c, e, &a));
        return jfilter_apply(c, e->line, e->id, v, &a, out);
    }
    case JE_TEST: {
        jv v;
        jargs a;
        int r;
        if (e->id < 0)
            return jerr(c, e->line, CL_ERR_UNSUPPORTED, "test '%s' is not supported", e->name);
        CL_TRY(jeval(c, e->a, &v));
        CL_TRY(eval_args(c, e, &a));
        CL_TRY(jtest_apply(c, e->line, e->id, v, &a, &r));
        *out = jv_bool(e->negate ? !r : r);
        return CL_OK;
    }
    case JE_NEG:
    case JE_POS: {
        jv v;
        CL_TRY(jeval(c, e->a, &v));
        if (v.t == JV_UNDEF)
            return jundefined_error(c, e->line, v, "used with a unary sign");
        if (!is_num(v))
            return jerr(c, e->line, CL_ERR_FORMAT, "bad operand type for unary %s: '%s'",
                        e->kind == JE_NEG ? "-" : "+", jv_type_name(v));
        if (e->kind == JE_POS)
            *out = v.t == JV_BOOL ? jv_int(v.u.b) : v;
        else if (v.t == JV_FLOAT)
            *out = jv_float(-v.u.f);
        else if (ival(v) == INT64_MIN)
            return jerr(c, e->line, CL_ERR_RANGE, "integer overflow in unary '-'");
        else
            *out = jv_int(-ival(v));
        return CL_OK;
    }
    case JE_NOT: {
        jv v;
        CL_TRY(jeval(c, e->a, &v));
        *out = jv_bool(!jv_truthy(v));
        return CL_OK;
    }
    case JE_BIN: {
        jv a, b;
        CL_TRY(jeval(c, e->a, &a));
        CL_TRY(jeval(c, e->b, &b));
        return binop(c, e->line, e->id, a, b, out);
    }
    case JE_AND:
    case JE_OR: {
        CL_TRY(jeval(c, e->a, out));
        int t = jv_truthy(*out);
        if ((e->kind == JE_AND) == t)
            return jeval(c, e->b, out);
        return CL_OK;
    }
    case JE_CMP: {
        jv left, right;
        CL_TRY(jeval(c, e->items[0], &left));
        for (int i = 1; i < e->nitems; i++) {
            int r;
            CL_TRY(jeval(c, e->items[i], &right));
            CL_TRY(compare(c, e->line, e->ops[i - 1], left, right, &r));
            if (!r) {
                *out = jv_bool(0);
                return CL_OK;
            }
            left = right;
        }
        *out = jv_bool(1);
        return CL_OK;
    }
    case JE_COND: {
        jv cond;
        CL_TRY(jeval(c, e->a, &cond));
        if (jv_truthy(cond))
            return jeval(c, e->b, out);
        if (e->c)
            return jeval(c, e->c, out);
        *out = jv_undef(NULL);
        return CL_OK;
    }
    case JE_CONCAT: {
        jbuf b = {0};
        int rc = CL_OK;
        for (int i = 0; rc == CL_OK && i < e->nitems; i++) {
            jv v;
            rc = jeval(c, e->items[i], &v);
            if (rc == CL_OK)
                rc = jv_write_str(&b, v);
        }
        if (rc == CL_OK) {
            char *s = ja_strndup(c->ar, b.p ? b.p : "", b.n);
            if (!s)
                rc = OOM();
            else
                *out = jv_str(s, b.n);
        }
        jb_free(&b);
        return rc;
    }
    }
    return jerr(c, e->line, CL_ERR_INTERNAL, "unknown expression kind %d", (int)e->kind);
}
