/* jinja_parse_util.c - the parser's token cursor, node allocation and error
 * messages ("<template> line N: expected X, got Y"), shared by the statement
 * and expression parsers. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "template/jinja_int.h"

static const jtok eof_tok = {.t = JT_EOF};

const jtok *jp_peek(jparser *p) { return p->pos < p->toks->n ? &p->toks->v[p->pos] : &eof_tok; }

const jtok *jp_peek2(jparser *p)
{
    return p->pos + 1 < p->toks->n ? &p->toks->v[p->pos + 1] : &eof_tok;
}

const jtok *jp_next(jparser *p)
{
    const jtok *t = jp_peek(p);
    if (p->pos < p->toks->n)
        p->pos++;
    return t;
}

int jp_is_op(const jtok *t, const char *op)
{
    return t->t == JT_OP && t->n == strlen(op) && !memcmp(t->p, op, t->n);
}

int jp_is_name(const jtok *t, const char *name)
{
    return t->t == JT_NAME && t->n == strlen(name) && !memcmp(t->p, name, t->n);
}

int jp_error(jparser *p, int status, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return cl_err(status, "%s line %d: %s", p->what, jp_peek(p)->line, msg);
}

jexpr *jp_node(jparser *p, jexpr_kind kind, int line)
{
    jexpr *e = ja_alloc(p->a, sizeof *e);
    if (e) {
        e->kind = kind;
        e->line = line;
    }
    return e;
}

static const char *tok_desc(const jtok *t, char *buf, size_t n)
{
    switch (t->t) {
    case JT_EOF: return "end of template";
    case JT_TEXT: return "template data";
    case JT_BLOCK_BEGIN: return "'{%'";
    case JT_BLOCK_END: return "'%}'";
    case JT_VAR_BEGIN: return "'{{'";
    case JT_VAR_END: return "'}}'";
    case JT_STRING: return "string literal";
    default: snprintf(buf, n, "'%.*s'", (int)(t->n > 40 ? 40 : t->n), t->p); return buf;
    }
}

int jp_unexpected(jparser *p, const char *wanted)
{
    char b[64];
    const char *d = tok_desc(jp_peek(p), b, sizeof b);
    if (wanted)
        return jp_error(p, CL_ERR_FORMAT, "expected %s, got %s", wanted, d);
    return jp_error(p, CL_ERR_FORMAT, "unexpected %s", d);
}

int jp_expect_op(jparser *p, const char *op)
{
    if (!jp_is_op(jp_peek(p), op)) {
        char w[16];
        snprintf(w, sizeof w, "'%s'", op);
        return jp_unexpected(p, w);
    }
    jp_next(p);
    return CL_OK;
}

int jp_push(jparser *p, jexpr ***items, int *n, int *cap, jexpr *e)
{
    if (*n == *cap) {
        int nc = *cap ? *cap * 2 : 4;
        jexpr **v = ja_alloc(p->a, (size_t)nc * sizeof *v);
        if (!v)
            return cl_err(CL_ERR_NOMEM, "%s: out of memory", p->what);
        if (*n)
            memcpy(v, *items, (size_t)*n * sizeof *v);
        *items = v;
        *cap = nc;
    }
    (*items)[(*n)++] = e;
    return CL_OK;
}

const char *jp_tok_str(jparser *p, const jtok *t)
{
    return ja_strndup(p->a, t->p, t->n);
}

