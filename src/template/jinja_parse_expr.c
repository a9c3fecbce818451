/* jinja_parse_expr.c - expressions, with jinja2's precedence (lowest first):
 * `x if c else y`, or, and, not, comparisons (== != < > <= >= in, not in,
 * chained), + -, ~, * / // %, **, unary - +, then postfix (.attr, [i], [a:b:c],
 * calls) and filters/tests (`|f(...)`, `is [not] t(...)`), which bind tighter
 * than everything but the primary: `messages|length - 1` is (messages|length) - 1. */
#include <stdio.h>
#include <string.h>

#include "template/jinja_int.h"

enum { JP_MAX_DEPTH = 200 };

#define NODE(var, kind, line)                                                   \
    jexpr *var = jp_node(p, kind, line);                                        \
    if (!var)                                                                   \
        return cl_err(CL_ERR_NOMEM, "%s: out of memory", p->what)

static int parse_or(jparser *p, jexpr **out);
static int parse_unary(jparser *p, int with_filter, jexpr **out);

/* Call arguments after '(' up to and including ')': positional and name=value. */
static int parse_args(jparser *p, jexpr *e)
{
    int cap = 0, kwcap = 0;
    CL_TRY(jp_expect_op(p, "("));
    while (!jp_is_op(jp_peek(p), ")")) {
        if (e->nitems || e->nkw)
            CL_TRY(jp_expect_op(p, ","));
        if (jp_is_op(jp_peek(p), ")"))
            break;
        if (jp_is_op(jp_peek(p), "*") || jp_is_op(jp_peek(p), "**"))
            return jp_error(p, CL_ERR_UNSUPPORTED, "*args and **kwargs are not supported");
        if (jp_peek(p)->t == JT_NAME && jp_is_op(jp_peek2(p), "=")) {
            const char *name = jp_tok_str(p, jp_next(p));
            jp_next(p);
            jexpr *v;
            CL_TRY(jp_expr(p, &v));
            if (!name || e->nkw == kwcap) {
                int nc = kwcap ? kwcap * 2 : 4;
                const char **kn = ja_alloc(p->a, (size_t)nc * sizeof *kn);
                jexpr **kv = ja_alloc(p->a, (size_t)nc * sizeof *kv);
                if (!name || !kn || !kv)
                    return cl_err(CL_ERR_NOMEM, "%s: out of memory", p->what);
                if (e->nkw) {
                    memcpy(kn, e->kwnames, (size_t)e->nkw * sizeof *kn);
                    memcpy(kv, e->kwvals, (size_t)e->nkw * sizeof *kv);
                }
                e->kwnames = kn;
                e->kwvals = kv;
                kwcap = nc;
            }
            e->kwnames[e->nkw] = name;
            e->kwvals[e->nkw++] = v;
        } else {
            if (e->nkw)
                return jp_error(p, CL_ERR_FORMAT, "positional argument after keyword argument");
            jexpr *v;
            CL_TRY(jp_expr(p, &v));
            CL_TRY(jp_push(p, &e->items, &e->nitems, &cap, v));
        }
    }
    jp_next(p);
    return CL_OK;
}

int jp_filter(jparser *p, jexpr *arg, jexpr **out)
{
    const jtok *t = jp_peek(p);
    if (t->t != JT_NAME)
        return jp_unexpected(p, "a filter name");
    NODE(e, JE_FILTER, t->line);
    e->name = jp_tok_str(p, jp_next(p));
    if (!e->name)
        return cl_err(CL_ERR_NOMEM, "%s: out of memory", p->what);
    e->id = jfilter_lookup(e->name); /* unknown (-1): see check_unknown() in jinja_parse.c */
    e->a = arg;
    if (jp_is_op(jp_peek(p), "("))
        CL_TRY(parse_args(p, e));
    *out = e;
    return CL_OK;
}

static int parse_test(jparser *p, jexpr *arg, jexpr **out)
{
    int negate = 0;
    if (jp_is_name(jp_peek(p), "not")) {
        jp_next(p);
        negate = 1;
    }
    const jtok *t = jp_peek(p);
    if (t->t != JT_NAME)
        return jp_unexpected(p, "a test name");
    NODE(e, JE_TEST, t->line);
    e->name = jp_tok_str(p, jp_next(p));
    if (!e->name)
        return cl_err(CL_ERR_NOMEM, "%s: out of memory", p->what);
    e->id = jtest_lookup(e->name);
    e->a = arg;
    e->negate = negate;
    const jtok *n = jp_peek(p);
    if (jp_is_op(n, "(")) {
        CL_TRY(parse_args(p, e));
    } else if ((n->t == JT_NAME && !jp_is_name(n, "else") && !jp_is_name(n, "or") &&
                !jp_is_name(n, "and") && !jp_is_name(n, "if") && !jp_is_name(n, "in") &&
                !jp_is_name(n, "not") && !jp_is_name(n, "is")) ||
               n->t == JT_STRING || n->t == JT_INT || n->t == JT_FLOAT ||
               jp_is_op(n, "[") || jp_is_op(n, "{")) {
        /* `x is divisibleby 3`: one argument without parentheses */
        jexpr *v;
        CL_TRY(parse_unary(p, 0, &v));
        int cap = 0;
        CL_TRY(jp_push(p, &e->items, &e->nitems, &cap, v));
    }
    *out = e;
    return CL_OK;
}

static int parse_primary(jparser *p, jexpr **out)
{
    const jtok *t = jp_peek(p);
    int line = t->line, cap = 0;
    if (t->t == JT_NAME) {
        jp_next(p);
        NODE(e, JE_CONST, line);
        if (jp_is_name(t, "true") || jp_is_name(t, "True"))
            e->cval = jv_bool(1);
        else if (jp_is_name(t, "false") || jp_is_name(t, "False"))
            e->cval = jv_bool(0);
        else if (jp_is_name(t, "none") || jp_is_name(t, "None"))
            e->cval = jv_none();
        else {
            e->kind = JE_NAME;
            if (!(e->name = jp_tok_str(p, t)))
                return cl_err(CL_ERR_NOMEM, "%s: out of memory", p->what);
        }
        *out = e;
        return CL_OK;
    }
    if (t->t == JT_STRING) {
        /* adjacent literals concatenate: "a" "b" == "ab" */
        size_t total = 0, k = p->pos;
        while (k < p->toks->n && p->toks->v[k].t == JT_STRING)
            total += p->toks->v[k++].n;
        char *s = ja_alloc(p->a, total + 1);
        if (!s)
            return cl_err(CL_ERR_NOMEM, "%s: out of memory", p->what);
        size_t o = 0;
        while (jp_peek(p)->t == JT_STRING) {
            const jtok *st = jp_next(p);
            memcpy(s + o, st->p, st->n);
            o += st->n;
        }
        NODE(e, JE_CONST, line);
        e->cval = jv_str(s, total);
        *out = e;
        return CL_OK;
    }
    if (t->t == JT_INT || t->t == JT_FLOAT) {
        jp_next(p);
        NODE(e, JE_CONST, line);
        e->cval = t->t == JT_INT ? jv_int(t->i) : jv_float(t->f);
        *out = e;
        return CL_OK;
    }
    if (jp_is_op(t, "(")) {
        jp_next(p);
        if (jp_is_op(jp_peek(p), ")")) {
            jp_next(p);
            NODE(e, JE_TUPLE, line);
            *out = e;
            return CL_OK;
        }
        jexpr *first;
        CL_TRY(jp_expr(p, &first));
        if (!jp_is_op(jp_peek(p), ",")) {
            CL_TRY(jp_expect_op(p, ")"));
            *out = first;
            return CL_OK;
        }
        NODE(e, JE_TUPLE, line);
        CL_TRY(jp_push(p, &e->items, &e->nitems, &cap, first));
        while (jp_is_op(jp_peek(p), ",")) {
            jp_next(p);
            if (jp_is_op(jp_peek(p), ")"))
                break;
            jexpr *v;
            CL_TRY(jp_expr(p, &v));
            CL_TRY(jp_push(p, &e->items, &e->nitems, &cap, v));
        }
        CL_TRY(jp_expect_op(p, ")"));
        *out = e;
        return CL_OK;
    }
    if (jp_is_op(t, "[") || jp_is_op(t, "{")) {
        int dict = jp_is_op(t, "{");
        const char *close = dict ? "}" : "]";
        jp_next(p);
        NODE(e, dict ? JE_DICT : JE_LIST, line);
        int count = 0;
        while (!jp_is_op(jp_peek(p), close)) {
            if (count++)
                CL_TRY(jp_expect_op(p, ","));
            if (jp_is_op(jp_peek(p), close))
                break;
            jexpr *v;
            CL_TRY(jp_expr(p, &v));
            CL_TRY(jp_push(p, &e->items, &e->nitems, &cap, v));
            if (dict) {
                CL_TRY(jp_expect_op(p, ":"));
                CL_TRY(jp_expr(p, &v));
                CL_TRY(jp_push(p, &e->items, &e->nitems, &cap, v));
            }
        }
        jp_next(p);
        *out = e;
        return CL_OK;
    }
    return jp_unexpected(p, "an expression");
}

/* After '[': an index or a slice. */
static int parse_subscript(jparser *p, jexpr *obj, int line, jexpr **out)
{
    jexpr *parts[3] = {NULL, NULL, NULL};
    int slice = 0;
    if (!jp_is_op(jp_peek(p), ":"))
        CL_TRY(jp_expr(p, &parts[0]));
    if (jp_is_op(jp_peek(p), ":")) {
        slice = 1;
        jp_next(p);
        if (!jp_is_op(jp_peek(p), "]") && !jp_is_op(jp_peek(p), ":"))
            CL_TRY(jp_expr(p, &parts[1]));
        if (jp_is_op(jp_peek(p), ":")) {
            jp_next(p);
            if (!jp_is_op(jp_peek(p), "]"))
                CL_TRY(jp_expr(p, &parts[2]));
        }
    }
    if (jp_is_op(jp_peek(p), ","))
        return jp_error(p, CL_ERR_UNSUPPORTED, "tuple subscripts are not supported");
    CL_TRY(jp_expect_op(p, "]"));
    NODE(e, slice ? JE_SLICE : JE_ITEM, line);
    e->a = obj;
    if (slice) {
        e->items = ja_alloc(p->a, 3 * sizeof *e->items);
        if (!e->items)
            return cl_err(CL_ERR_NOMEM, "%s: out of memory", p->what);
        memcpy(e->items, parts, sizeof parts);
        e->nitems = 3;
    } else {
        e->b = parts[0];
    }
    *out = e;
    return CL_OK;
}

static int parse_postfix(jparser *p, jexpr *e, int filters, jexpr **out)
{
    for (;;) {
        const jtok *t = jp_peek(p);
        int line = t->line;
        if (jp_is_op(t, ".")) {
            jp_next(p);
            const jtok *n = jp_next(p);
            if (n->t == JT_NAME) {
                NODE(a, JE_ATTR, line);
                a->a = e;
                if (!(a->name = jp_tok_str(p, n)))
                    return cl_err(CL_ERR_NOMEM, "%s: out of memory", p->what);
                e = a;
            } else if (n->t == JT_INT) {
                NODE(k, JE_CONST, line);
                k->cval = jv_int(n->i);
                NODE(a, JE_ITEM, line);
                a->a = e;
                a->b = k;
                e = a;
            } else {
                p->pos--;
                return jp_unexpected(p, "an attribute name");
            }
        } else if (jp_is_op(t, "[")) {
            jp_next(p);
            CL_TRY(parse_subscript(p, e, line, &e));
        } else if (jp_is_op(t, "(")) {
            NODE(c, JE_CALL, line);
            c->a = e;
            CL_TRY(parse_args(p, c));
            e = c;
        } else if (filters && jp_is_op(t, "|")) {
            jp_next(p);
            CL_TRY(jp_filter(p, e, &e));
        } else if (filters && jp_is_name(t, "is")) {
            jp_next(p);
            CL_TRY(parse_test(p, e, &e));
        } else {
            break;
        }
    }
    *out = e;
    return CL_OK;
}

static int parse_unary(jparser *p, int with_filter, jexpr **out)
{
    if (++p->depth > JP_MAX_DEPTH)
        return jp_error(p, CL_ERR_FORMAT, "expression nested too deeply");
    const jtok *t = jp_peek(p);
    jexpr *e;
    if (jp_is_op(t, "-") || jp_is_op(t, "+")) {
        jp_next(p);
        NODE(u, jp_is_op(t, "-") ? JE_NEG : JE_POS, t->line);
        CL_TRY(parse_unary(p, 0, &u->a));
        e = u;
    } else {
        CL_TRY(parse_primary(p, &e));
    }
    CL_TRY(parse_postfix(p, e, 0, &e));
    if (with_filter)
        CL_TRY(parse_postfix(p, e, 1, &e));
    p->depth--;
    *out = e;
    return CL_OK;
}

static int binary(jparser *p, jexpr *a, int op, int line, jexpr *b, jexpr **out)
{
    NODE(e, JE_BIN, line);
    e->id = op;
    e->a = a;
    e->b = b;
    *out = e;
    return CL_OK;
}

static int parse_pow(jparser *p, jexpr **out)
{
    CL_TRY(parse_unary(p, 1, out));
    while (jp_is_op(jp_peek(p), "**")) {
        int line = jp_next(p)->line;
        jexpr *b;
        CL_TRY(parse_unary(p, 1, &b));
        CL_TRY(binary(p, *out, JOP_POW, line, b, out));
    }
    return CL_OK;
}

static int parse_math2(jparser *p, jexpr **out)
{
    CL_TRY(parse_pow(p, out));
    for (;;) {
        const jtok *t = jp_peek(p);
        int op = jp_is_op(t, "*")    ? JOP_MUL
                 : jp_is_op(t, "/")  ? JOP_DIV
                 : jp_is_op(t, "//") ? JOP_FLOORDIV
                 : jp_is_op(t, "%")  ? JOP_MOD
                                     : -1;
        if (op < 0)
            return CL_OK;
        jp_next(p);
        jexpr *b;
        CL_TRY(parse_pow(p, &b));
        CL_TRY(binary(p, *out, op, t->line, b, out));
    }
}

static int parse_concat(jparser *p, jexpr **out)
{
    jexpr *first;
    CL_TRY(parse_math2(p, &first));
    if (!jp_is_op(jp_peek(p), "~")) {
        *out = first;
        return CL_OK;
    }
    NODE(e, JE_CONCAT, jp_peek(p)->line);
    int cap = 0;
    CL_TRY(jp_push(p, &e->items, &e->nitems, &cap, first));
    while (jp_is_op(jp_peek(p), "~")) {
        jp_next(p);
        jexpr *v;
        CL_TRY(parse_math2(p, &v));
        CL_TRY(jp_push(p, &e->items, &e->nitems, &cap, v));
    }
    *out = e;
    return CL_OK;
}

static int parse_math1(jparser *p, jexpr **out)
{
    CL_TRY(parse_concat(p, out));
    for (;;) {
        const jtok *t = jp_peek(p);
        int op = jp_is_op(t, "+") ? JOP_ADD : jp_is_op(t, "-") ? JOP_SUB : -1;
        if (op < 0)
            return CL_OK;
        jp_next(p);
        jexpr *b;
        CL_TRY(parse_concat(p, &b));
        CL_TRY(binary(p, *out, op, t->line, b, out));
    }
}

static int parse_compare(jparser *p, jexpr **out)
{
    jexpr *first;
    CL_TRY(parse_math1(p, &first));
    jexpr *e = NULL;
    int cap = 0, opcap = 0;
    for (;;) {
        const jtok *t = jp_peek(p);
        int op = jp_is_op(t, "==")   ? JOP_EQ
                 : jp_is_op(t, "!=") ? JOP_NE
                 : jp_is_op(t, "<")  ? JOP_LT
                 : jp_is_op(t, "<=") ? JOP_LE
                 : jp_is_op(t, ">")  ? JOP_GT
                 : jp_is_op(t, ">=") ? JOP_GE
                 : jp_is_name(t, "in") ? JOP_IN
                 : (jp_is_name(t, "not") && jp_is_name(jp_peek2(p), "in")) ? JOP_NOTIN
                                                                             : -1;
        if (op < 0)
            break;
        jp_next(p);
        if (op == JOP_NOTIN)
            jp_next(p);
        if (!e) {
            e = jp_node(p, JE_CMP, t->line);
            if (!e)
                return cl_err(CL_ERR_NOMEM, "%s: out of memory", p->what);
            CL_TRY(jp_push(p, &e->items, &e->nitems, &cap, first));
        }
        jexpr *v;
        CL_TRY(parse_math1(p, &v));
        int n = e->nitems;
        CL_TRY(jp_push(p, &e->items, &e->nitems, &cap, v));
        if (n > opcap - 1) {
            int nc = opcap ? opcap * 2 : 4;
            int *ops = ja_alloc(p->a, (size_t)nc * sizeof *ops);
            if (!ops)
                return cl_err(CL_ERR_NOMEM, "%s: out of memory", p->what);
            if (opcap)
                memcpy(ops, e->ops, (size_t)(n - 1) * sizeof *ops);
            e->ops = ops;
            opcap = nc;
        }
        e->ops[n - 1] = op;
    }
    *out = e ? e : first;
    return CL_OK;
}

static int parse_not(jparser *p, jexpr **out)
{
    const jtok *t = jp_peek(p);
    if (jp_is_name(t, "not")) {
        if (++p->depth > JP_MAX_DEPTH)
            return jp_error(p, CL_ERR_FORMAT, "expression nested too deeply");
        jp_next(p);
        NODE(e, JE_NOT, t->line);
        CL_TRY(parse_not(p, &e->a));
        p->depth--;
        *out = e;
        return CL_OK;
    }
    return parse_compare(p, out);
}

static int parse_and(jparser *p, jexpr **out)
{
    CL_TRY(parse_not(p, out));
    while (jp_is_name(jp_peek(p), "and")) {
        NODE(e, JE_AND, jp_next(p)->line);
        e->a = *out;
        CL_TRY(parse_not(p, &e->b));
        *out = e;
    }
    return CL_OK;
}

static int parse_or(jparser *p, jexpr **out)
{
    CL_TRY(parse_and(p, out));
    while (jp_is_name(jp_peek(p), "or")) {
        NODE(e, JE_OR, jp_next(p)->line);
        e->a = *out;
        CL_TRY(parse_and(p, &e->b));
        *out = e;
    }
    return CL_OK;
}

int jp_expr_nocond(jparser *p, jexpr **out) { return parse_or(p, out); }

int jp_expr(jparser *p, jexpr **out)
{
    if (++p->depth > JP_MAX_DEPTH)
        return jp_error(p, CL_ERR_FORMAT, "expression nested too deeply");
    CL_TRY(parse_or(p, out));
    while (jp_is_name(jp_peek(p), "if")) {
        NODE(e, JE_COND, jp_next(p)->line);
        e->b = *out;
        CL_TRY(parse_or(p, &e->a));
        if (jp_is_name(jp_peek(p), "else")) {
            jp_next(p);
            CL_TRY(jp_expr(p, &e->c));
        }
        *out = e;
    }
    p->depth--;
    return CL_OK;
}

static int tuple_end(const jtok *t)
{
    return t->t == JT_BLOCK_END || t->t == JT_VAR_END || t->t == JT_EOF || jp_is_op(t, ")") ||
           jp_is_name(t, "if") || jp_is_name(t, "recursive");
}

int jp_tuple(jparser *p, int with_cond, jexpr **out)
{
    int line = jp_peek(p)->line;
    jexpr *first;
    CL_TRY(with_cond ? jp_expr(p, &first) : jp_expr_nocond(p, &first));
    if (!jp_is_op(jp_peek(p), ",")) {
        *out = first;
        return CL_OK;
    }
    NODE(e, JE_TUPLE, line);
    int cap = 0;
    CL_TRY(jp_push(p, &e->items, &e->nitems, &cap, first));
    while (jp_is_op(jp_peek(p), ",")) {
        jp_next(p);
        if (tuple_end(jp_peek(p)))
            break;
        jexpr *v;
        CL_TRY(with_cond ? jp_expr(p, &v) : jp_expr_nocond(p, &v));
        CL_TRY(jp_push(p, &e->items, &e->nitems, &cap, v));
    }
    *out = e;
    return CL_OK;
}
