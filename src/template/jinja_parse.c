/* jinja_parse.c - statements: data, {{ output }}, if/elif/else, for (with
 * `if` filter and else), set (plain, ns.attr, tuple targets, block), macro,
 * break/continue, filter blocks and transformers' {% generation %}. Tags that
 * jinja2 has but chat templates do not need fail with "tag 'x' is not supported". */
#include <stdio.h>
#include <string.h>

#include "template/jinja_int.h"

static const char *const unsupported_tags[] = {
    "include", "extends", "block", "import", "from", "call", "with", "autoescape",
    "do", "trans", "pluralize", "endblock", "endcall", "endwith", "endautoescape", "endtrans",
    NULL,
};

#define OOM() cl_err(CL_ERR_NOMEM, "%s: out of memory", p->what)

static jstmt *new_stmt(jparser *p, jstmt_kind kind, int line)
{
    jstmt *s = ja_alloc(p->a, sizeof *s);
    if (s) {
        s->kind = kind;
        s->line = line;
    }
    return s;
}

static int expect_end(jparser *p, const char *tag)
{
    if (jp_peek(p)->t != JT_BLOCK_END)
        return jp_error(p, CL_ERR_FORMAT, "expected '%%}' to end '%s'", tag);
    jp_next(p);
    return CL_OK;
}

static int tok_eq(const jtok *t, const char *s) { return t->n == strlen(s) && !memcmp(t->p, s, t->n); }

/* The tag that closes a block: the last of its end tags ("endif" for if/elif/else). */
static const char *closing(const char *const *ends)
{
    int i = 0;
    while (ends[i + 1])
        i++;
    return ends[i];
}

/* Parses statements until EOF (ends == NULL) or a block tag named in `ends`;
 * then the position is just after that tag's name, and *ended names it. */
static int parse_body(jparser *p, const char *const *ends, const char *opener, int open_line,
                      jstmt **first, const char **ended);

static int parse_names(jparser *p, const char ***names, int *n)
{
    int paren = jp_is_op(jp_peek(p), "(");
    if (paren)
        jp_next(p);
    const char *tmp[32];
    *n = 0;
    for (;;) {
        const jtok *t = jp_peek(p);
        if (t->t != JT_NAME)
            return jp_error(p, CL_ERR_FORMAT, "expected a variable name");
        if (*n == 32)
            return jp_error(p, CL_ERR_UNSUPPORTED, "too many assignment targets");
        if (!(tmp[(*n)++] = ja_strndup(p->a, t->p, t->n)))
            return OOM();
        jp_next(p);
        if (!jp_is_op(jp_peek(p), ","))
            break;
        jp_next(p);
        if (paren && jp_is_op(jp_peek(p), ")"))
            break;
    }
    if (paren) {
        if (!jp_is_op(jp_peek(p), ")"))
            return jp_error(p, CL_ERR_FORMAT, "expected ')'");
        jp_next(p);
    }
    *names = ja_alloc(p->a, (size_t)*n * sizeof **names);
    if (!*names)
        return OOM();
    memcpy(*names, tmp, (size_t)*n * sizeof **names);
    return CL_OK;
}

/* `open_line` is the line of the `if` that an elif chain started from. */
static int parse_if(jparser *p, int line, int open_line, jstmt **out)
{
    jstmt *s = new_stmt(p, JS_IF, line);
    if (!s)
        return OOM();
    CL_TRY(jp_tuple(p, 0, &s->expr));
    CL_TRY(expect_end(p, "if"));
    static const char *const ends[] = {"elif", "else", "endif", NULL};
    const char *ended;
    CL_TRY(parse_body(p, ends, "if", open_line, &s->body, &ended));
    if (!strcmp(ended, "elif")) {
        CL_TRY(parse_if(p, jp_peek(p)->line, open_line, &s->else_body));
    } else if (!strcmp(ended, "else")) {
        CL_TRY(expect_end(p, "else"));
        static const char *const ends2[] = {"endif", NULL};
        CL_TRY(parse_body(p, ends2, "if", open_line, &s->else_body, &ended));
        CL_TRY(expect_end(p, "endif"));
    } else {
        CL_TRY(expect_end(p, "endif"));
    }
    *out = s;
    return CL_OK;
}

static int parse_for(jparser *p, int line, jstmt **out)
{
    jstmt *s = new_stmt(p, JS_FOR, line);
    if (!s)
        return OOM();
    CL_TRY(parse_names(p, &s->targets, &s->ntargets));
    if (!jp_is_name(jp_peek(p), "in"))
        return jp_error(p, CL_ERR_FORMAT, "expected 'in' in for loop");
    jp_next(p);
    CL_TRY(jp_tuple(p, 0, &s->expr));
    if (jp_is_name(jp_peek(p), "if")) {
        jp_next(p);
        CL_TRY(jp_expr(p, &s->cond));
    }
    if (jp_is_name(jp_peek(p), "recursive"))
        return jp_error(p, CL_ERR_UNSUPPORTED, "recursive for loops are not supported");
    CL_TRY(expect_end(p, "for"));
    static const char *const ends[] = {"else", "endfor", NULL};
    const char *ended;
    p->loops++;
    CL_TRY(parse_body(p, ends, "for", line, &s->body, &ended));
    p->loops--;
    if (!strcmp(ended, "else")) {
        CL_TRY(expect_end(p, "else"));
        static const char *const ends2[] = {"endfor", NULL};
        CL_TRY(parse_body(p, ends2, "for", line, &s->else_body, &ended));
    }
    CL_TRY(expect_end(p, "endfor"));
    *out = s;
    return CL_OK;
}

static int parse_set(jparser *p, int line, jstmt **out)
{
    jstmt *s = new_stmt(p, JS_SET, line);
    if (!s)
        return OOM();
    const jtok *t = jp_peek(p), *t2 = p->pos + 1 < p->toks->n ? &p->toks->v[p->pos + 1] : t;
    if (t->t == JT_NAME && jp_is_op(t2, ".")) {
        s->targets = ja_alloc(p->a, sizeof *s->targets);
        if (!s->targets || !(s->targets[0] = ja_strndup(p->a, t->p, t->n)))
            return OOM();
        s->ntargets = 1;
        jp_next(p);
        jp_next(p);
        const jtok *a = jp_peek(p);
        if (a->t != JT_NAME)
            return jp_error(p, CL_ERR_FORMAT, "expected an attribute name after '.'");
        if (!(s->attr = ja_strndup(p->a, a->p, a->n)))
            return OOM();
        jp_next(p);
    } else {
        CL_TRY(parse_names(p, &s->targets, &s->ntargets));
    }
    if (jp_is_op(jp_peek(p), "=")) {
        jp_next(p);
        CL_TRY(jp_tuple(p, 1, &s->expr));
        CL_TRY(expect_end(p, "set"));
    } else if (jp_peek(p)->t == JT_BLOCK_END && !s->attr && s->ntargets == 1) {
        jp_next(p);
        s->kind = JS_SETBLOCK;
        static const char *const ends[] = {"endset", NULL};
        const char *ended;
        CL_TRY(parse_body(p, ends, "set", line, &s->body, &ended));
        CL_TRY(expect_end(p, "endset"));
    } else if (jp_is_op(jp_peek(p), "|")) {
        return jp_error(p, CL_ERR_UNSUPPORTED, "filtered block assignments are not supported");
    } else {
        return jp_error(p, CL_ERR_FORMAT, "expected '=' in set");
    }
    *out = s;
    return CL_OK;
}

static int parse_macro(jparser *p, int line, jstmt **out)
{
    jstmt *s = new_stmt(p, JS_MACRO, line);
    if (!s)
        return OOM();
    const jtok *t = jp_peek(p);
    if (t->t != JT_NAME)
        return jp_error(p, CL_ERR_FORMAT, "expected a macro name");
    s->targets = ja_alloc(p->a, sizeof *s->targets);
    if (!s->targets || !(s->targets[0] = ja_strndup(p->a, t->p, t->n)))
        return OOM();
    s->ntargets = 1;
    jp_next(p);
    if (!jp_is_op(jp_peek(p), "("))
        return jp_error(p, CL_ERR_FORMAT, "expected '(' after the macro name");
    jp_next(p);
    const char *names[64];
    jexpr *defs[64];
    int n = 0;
    while (!jp_is_op(jp_peek(p), ")")) {
        if (n && !jp_is_op(jp_next(p), ","))
            return jp_error(p, CL_ERR_FORMAT, "expected ',' or ')' in macro parameters");
        if (jp_is_op(jp_peek(p), ")"))
            break;
        const jtok *a = jp_peek(p);
        if (a->t != JT_NAME)
            return jp_error(p, CL_ERR_FORMAT, "expected a parameter name");
        if (n == 64)
            return jp_error(p, CL_ERR_UNSUPPORTED, "too many macro parameters");
        if (!(names[n] = ja_strndup(p->a, a->p, a->n)))
            return OOM();
        jp_next(p);
        defs[n] = NULL;
        if (jp_is_op(jp_peek(p), "=")) {
            jp_next(p);
            CL_TRY(jp_expr(p, &defs[n]));
        } else if (n && defs[n - 1]) {
            return jp_error(p, CL_ERR_FORMAT, "parameter without a default after one with a default");
        }
        n++;
    }
    jp_next(p);
    CL_TRY(expect_end(p, "macro"));
    s->params = ja_alloc(p->a, (size_t)(n ? n : 1) * sizeof *s->params);
    s->defaults = ja_alloc(p->a, (size_t)(n ? n : 1) * sizeof *s->defaults);
    if (!s->params || !s->defaults)
        return OOM();
    memcpy(s->params, names, (size_t)n * sizeof *names);
    memcpy(s->defaults, defs, (size_t)n * sizeof *defs);
    s->nparams = n;
    static const char *const ends[] = {"endmacro", NULL};
    const char *ended;
    int loops = p->loops;
    p->loops = 0;
    CL_TRY(parse_body(p, ends, "macro", line, &s->body, &ended));
    p->loops = loops;
    CL_TRY(expect_end(p, "endmacro"));
    *out = s;
    return CL_OK;
}

static int parse_filter_block(jparser *p, int line, jstmt **out)
{
    jstmt *s = new_stmt(p, JS_FILTERBLOCK, line);
    if (!s)
        return OOM();
    CL_TRY(jp_filter(p, NULL, &s->expr));
    while (jp_is_op(jp_peek(p), "|")) {
        jp_next(p);
        CL_TRY(jp_filter(p, s->expr, &s->expr));
    }
    CL_TRY(expect_end(p, "filter"));
    static const char *const ends[] = {"endfilter", NULL};
    const char *ended;
    CL_TRY(parse_body(p, ends, "filter", line, &s->body, &ended));
    CL_TRY(expect_end(p, "endfilter"));
    *out = s;
    return CL_OK;
}

static int parse_tag(jparser *p, jstmt **out)
{
    const jtok *t = jp_peek(p);
    int line = t->line;
    if (t->t != JT_NAME)
        return jp_error(p, CL_ERR_FORMAT, "expected a tag name after '{%%'");
    jp_next(p);
    if (tok_eq(t, "if"))
        return parse_if(p, line, line, out);
    if (tok_eq(t, "for"))
        return parse_for(p, line, out);
    if (tok_eq(t, "set"))
        return parse_set(p, line, out);
    if (tok_eq(t, "macro"))
        return parse_macro(p, line, out);
    if (tok_eq(t, "filter"))
        return parse_filter_block(p, line, out);
    if (tok_eq(t, "break") || tok_eq(t, "continue")) {
        int brk = tok_eq(t, "break");
        if (!p->loops) {
            p->pos--;
            return jp_error(p, CL_ERR_FORMAT, "'%s' outside a for loop", brk ? "break" : "continue");
        }
        if (!(*out = new_stmt(p, brk ? JS_BREAK : JS_CONTINUE, line)))
            return OOM();
        return expect_end(p, brk ? "break" : "continue");
    }
    if (tok_eq(t, "generation")) {
        /* transformers' AssistantTracker marks assistant text; rendering is unchanged */
        jstmt *s = new_stmt(p, JS_SCOPE, line);
        if (!s)
            return OOM();
        CL_TRY(expect_end(p, "generation"));
        static const char *const ends[] = {"endgeneration", NULL};
        const char *ended;
        CL_TRY(parse_body(p, ends, "generation", line, &s->body, &ended));
        CL_TRY(expect_end(p, "endgeneration"));
        *out = s;
        return CL_OK;
    }
    p->pos--;
    for (int i = 0; unsupported_tags[i]; i++)
        if (tok_eq(t, unsupported_tags[i]))
            return jp_error(p, CL_ERR_UNSUPPORTED, "tag '%s' is not supported", unsupported_tags[i]);
    return jp_error(p, CL_ERR_FORMAT, "unknown tag '%.*s'", (int)(t->n > 40 ? 40 : t->n), t->p);
}

static int parse_body(jparser *p, const char *const *ends, const char *opener, int open_line,
                      jstmt **first, const char **ended)
{
    jstmt *head = NULL, **tail = &head;
    for (;;) {
        const jtok *t = jp_peek(p);
        jstmt *s = NULL;
        if (t->t == JT_EOF) {
            if (ends)
                return jp_error(p, CL_ERR_FORMAT,
                                "unexpected end of template: '%s' (line %d) is not closed "
                                "(expected '%s')",
                                opener, open_line, closing(ends));
            break;
        }
        if (t->t == JT_TEXT) {
            jp_next(p);
            if (!(s = new_stmt(p, JS_TEXT, t->line)))
                return OOM();
            s->text = t->p;
            s->len = t->n;
        } else if (t->t == JT_VAR_BEGIN) {
            jp_next(p);
            if (!(s = new_stmt(p, JS_OUT, t->line)))
                return OOM();
            CL_TRY(jp_tuple(p, 1, &s->expr));
            if (jp_peek(p)->t != JT_VAR_END)
                return jp_error(p, CL_ERR_FORMAT, "expected '}}'");
            jp_next(p);
        } else if (t->t == JT_BLOCK_BEGIN) {
            jp_next(p);
            const jtok *name = jp_peek(p);
            if (name->t == JT_NAME && ends) {
                for (int i = 0; ends[i]; i++) {
                    if (tok_eq(name, ends[i])) {
                        jp_next(p);
                        *ended = ends[i];
                        *first = head;
                        return CL_OK;
                    }
                }
            }
            if (name->t == JT_NAME &&
                (tok_eq(name, "elif") || tok_eq(name, "else") ||
                 (name->n > 3 && !memcmp(name->p, "end", 3) && !tok_eq(name, "endraw")))) {
                int known = 0;
                for (int i = 0; unsupported_tags[i]; i++)
                    known |= tok_eq(name, unsupported_tags[i]);
                if (!known) {
                    if (ends)
                        return jp_error(p, CL_ERR_FORMAT,
                                        "unexpected '%.*s' (expected '%s' to close '%s' of line %d)",
                                        (int)(name->n > 40 ? 40 : name->n), name->p,
                                        closing(ends), opener,
                                        open_line);
                    return jp_error(p, CL_ERR_FORMAT, "unexpected '%.*s'",
                                    (int)(name->n > 40 ? 40 : name->n), name->p);
                }
            }
            CL_TRY(parse_tag(p, &s));
        } else {
            return jp_error(p, CL_ERR_FORMAT, "unexpected token");
        }
        *tail = s;
        tail = &s->next;
    }
    *first = head;
    return CL_OK;
}

/* Unknown filters and tests are compile-time errors, except (as in jinja2 3)
 * inside an `if` block or a conditional expression, where they fail only when
 * evaluated: templates guard optional features that way. A for-loop or macro
 * body starts a strict frame again. */
static int check_expr(const char *what, const jexpr *e, int soft)
{
    if (!e)
        return CL_OK;
    if (e->kind == JE_COND)
        soft = 1;
    if ((e->kind == JE_FILTER || e->kind == JE_TEST) && e->id < 0 && !soft)
        return cl_err(CL_ERR_UNSUPPORTED, "%s line %d: %s '%s' is not supported", what, e->line,
                      e->kind == JE_FILTER ? "filter" : "test", e->name);
    CL_TRY(check_expr(what, e->a, soft));
    CL_TRY(check_expr(what, e->b, soft));
    CL_TRY(check_expr(what, e->c, soft));
    for (int i = 0; i < e->nitems; i++)
        CL_TRY(check_expr(what, e->items[i], soft));
    for (int i = 0; i < e->nkw; i++)
        CL_TRY(check_expr(what, e->kwvals[i], soft));
    return CL_OK;
}

static int check_unknown(const char *what, const jstmt *s, int soft)
{
    for (; s; s = s->next) {
        switch (s->kind) {
        case JS_IF:
            CL_TRY(check_expr(what, s->expr, 1));
            CL_TRY(check_unknown(what, s->body, 1));
            CL_TRY(check_unknown(what, s->else_body, 1));
            break;
        case JS_FOR:
            CL_TRY(check_expr(what, s->expr, soft));
            CL_TRY(check_expr(what, s->cond, soft));
            CL_TRY(check_unknown(what, s->body, 0));
            CL_TRY(check_unknown(what, s->else_body, 0));
            break;
        case JS_MACRO:
            for (int i = 0; i < s->nparams; i++)
                CL_TRY(check_expr(what, s->defaults[i], soft));
            CL_TRY(check_unknown(what, s->body, 0));
            break;
        default:
            CL_TRY(check_expr(what, s->expr, soft));
            CL_TRY(check_unknown(what, s->body, soft));
        }
    }
    return CL_OK;
}

int jparse(const char *what, const jtoks *toks, jarena *a, jstmt **out)
{
    jparser p = {what, toks, 0, a, 0, 0};
    const char *ended = NULL;
    CL_TRY(parse_body(&p, NULL, NULL, 0, out, &ended));
    return check_unknown(what, *out, 0);
}
