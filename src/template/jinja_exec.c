/* jinja_exec.c - statement execution and the public compile/render entry
 * points. Scopes follow jinja2: each for-loop iteration and each macro call
 * gets a fresh scope (so `set` inside a loop does not leak out; namespace()
 * objects are the way to carry state), `if` does not create one. */
#include <stdlib.h>
#include <string.h>

#include "template/jinja.h"
#include "template/jinja_int.h"

#define OOM() cl_err(CL_ERR_NOMEM, "%s: out of memory", c->what)

enum { J_MAX_DEPTH = 64, J_RENDER_LIMIT_BYTES = 1 << 30 };

struct cl_jinja {
    jarena ar;
    jstmt *body;
    char *name;
};

static int new_scope(jctx *c, jscope *parent, jscope **out)
{
    jscope *s = ja_alloc(c->ar, sizeof *s);
    if (!s)
        return OOM();
    s->parent = parent;
    *out = s;
    return CL_OK;
}

static int assign(jctx *c, int line, jscope *s, const char **targets, int n, jv v)
{
    if (n == 1)
        return jscope_set(c->ar, s, targets[0], v);
    jlist *l;
    if (v.t == JV_LIST)
        l = v.u.l;
    else
        CL_TRY(jv_iterate(c, line, v, &l));
    if ((int)l->n != n)
        return jerr(c, line, CL_ERR_FORMAT, "cannot unpack %zu values into %d names", l->n, n);
    for (int i = 0; i < n; i++)
        CL_TRY(jscope_set(c->ar, s, targets[i], l->v[i]));
    return CL_OK;
}

/* Runs `body` with output captured into a string value. */
static int capture(jctx *c, const jstmt *body, jv *out)
{
    jbuf buf = {0}, *saved = c->out;
    c->out = &buf;
    int rc = jexec(c, c->scope, body);
    c->out = saved;
    if (rc == CL_OK) {
        char *s = ja_strndup(c->ar, buf.p ? buf.p : "", buf.n);
        if (!s)
            rc = OOM();
        else
            *out = jv_str(s, buf.n);
    }
    jb_free(&buf);
    return rc;
}

static int exec_for(jctx *c, const jstmt *s)
{
    jv iterable;
    jlist *items;
    CL_TRY(jeval(c, s->expr, &iterable));
    CL_TRY(jv_iterate(c, s->line, iterable, &items));
    jscope *outer = c->scope;
    if (s->cond) {
        jlist *kept = jl_new(c->ar, 0);
        if (!kept)
            return OOM();
        for (size_t i = 0; i < items->n; i++) {
            jscope *it = NULL;
            jv ok;
            CL_TRY(new_scope(c, outer, &it));
            CL_TRY(assign(c, s->line, it, s->targets, s->ntargets, items->v[i]));
            c->scope = it;
            int rc = jeval(c, s->cond, &ok);
            c->scope = outer;
            CL_TRY(rc);
            if (jv_truthy(ok))
                CL_TRY(jl_push(c->ar, kept, items->v[i]));
        }
        items = kept;
    }
    if (items->n == 0)
        return s->else_body ? jexec(c, outer, s->else_body) : CL_OK;
    if (++c->depth > J_MAX_DEPTH)
        return jerr(c, s->line, CL_ERR_RANGE, "loops and macro calls nested too deeply");
    jloop *L = ja_alloc(c->ar, sizeof *L);
    if (!L)
        return OOM();
    L->items = items;
    L->depth = 1;
    jv loopv = {.t = JV_LOOP};
    loopv.u.loop = L;
    int rc = CL_OK;
    for (size_t i = 0; i < items->n && rc == CL_OK; i++) {
        jscope *it = NULL;
        L->index0 = i;
        rc = new_scope(c, outer, &it);
        if (rc == CL_OK)
            rc = jscope_set(c->ar, it, "loop", loopv);
        if (rc == CL_OK)
            rc = assign(c, s->line, it, s->targets, s->ntargets, items->v[i]);
        if (rc == CL_OK)
            rc = jexec(c, it, s->body);
        if (rc == JR_CONTINUE)
            rc = CL_OK;
    }
    c->scope = outer;
    c->depth--;
    return rc == JR_BREAK ? CL_OK : rc;
}

static int exec_set(jctx *c, const jstmt *s)
{
    jv v;
    if (s->kind == JS_SETBLOCK)
        CL_TRY(capture(c, s->body, &v));
    else
        CL_TRY(jeval(c, s->expr, &v));
    if (!s->attr)
        return assign(c, s->line, c->scope, s->targets, s->ntargets, v);
    jv *ns = jscope_lookup(c->scope, s->targets[0]);
    if (!ns || ns->t != JV_NS)
        return jerr(c, s->line, CL_ERR_FORMAT,
                    "cannot assign attribute '%s': '%s' is not a namespace()", s->attr,
                    s->targets[0]);
    return jd_set(c->ar, ns->u.d, jv_str(s->attr, strlen(s->attr)), v);
}

int jexec(jctx *c, jscope *scope, const jstmt *s)
{
    jscope *saved = c->scope;
    c->scope = scope;
    int rc = CL_OK;
    for (; s && rc == CL_OK; s = s->next) {
        switch (s->kind) {
        case JS_TEXT: rc = jb_put(c->out, s->text, s->len); break;
        case JS_OUT: {
            jv v;
            rc = jeval(c, s->expr, &v);
            if (rc == CL_OK)
                rc = jv_write_str(c->out, v);
            break;
        }
        case JS_IF: {
            jv v;
            rc = jeval(c, s->expr, &v);
            if (rc == CL_OK)
                rc = jexec(c, scope, jv_truthy(v) ? s->body : s->else_body);
            break;
        }
        case JS_FOR: rc = exec_for(c, s); break;
        case JS_SET:
        case JS_SETBLOCK: rc = exec_set(c, s); break;
        case JS_MACRO: {
            jv m = {.t = JV_MACRO};
            m.u.macro = s;
            rc = jscope_set(c->ar, scope, s->targets[0], m);
            break;
        }
        case JS_BREAK: rc = JR_BREAK; break;
        case JS_CONTINUE: rc = JR_CONTINUE; break;
        case JS_FILTERBLOCK: {
            jv body, v;
            rc = capture(c, s->body, &body);
            if (rc == CL_OK) {
                jv saved_in = c->filter_input;
                c->filter_input = body;
                rc = jeval(c, s->expr, &v);
                c->filter_input = saved_in;
            }
            if (rc == CL_OK)
                rc = jv_write_str(c->out, v);
            break;
        }
        case JS_SCOPE: rc = jexec(c, scope, s->body); break;
        }
        c->scope = scope;
    }
    c->scope = saved;
    return rc;
}

int jcall_macro(jctx *c, int line, const jstmt *m, jv *args, int nargs, const char **kwn, jv *kwv,
                int nkw, jv *out)
{
    const char *name = m->targets[0];
    if (nargs > m->nparams)
        return jerr(c, line, CL_ERR_FORMAT, "macro '%s' takes %d arguments, %d given", name,
                    m->nparams, nargs);
    if (++c->depth > J_MAX_DEPTH)
        return jerr(c, line, CL_ERR_RANGE, "loops and macro calls nested too deeply");
    jscope *s = NULL;
    CL_TRY(new_scope(c, c->globals, &s));
    jscope *saved = c->scope;
    c->scope = s;
    int rc = CL_OK;
    for (int k = 0; k < nkw && rc == CL_OK; k++) {
        int found = 0;
        for (int i = 0; i < m->nparams; i++)
            found |= !strcmp(kwn[k], m->params[i]) && i >= nargs;
        if (!found)
            rc = jerr(c, line, CL_ERR_FORMAT, "macro '%s' got an unexpected argument '%s'", name,
                      kwn[k]);
    }
    for (int i = 0; i < m->nparams && rc == CL_OK; i++) {
        jv v = jv_undef(m->params[i]);
        int given = 0;
        if (i < nargs) {
            v = args[i];
            given = 1;
        }
        for (int k = 0; k < nkw; k++)
            if (!strcmp(kwn[k], m->params[i])) {
                v = kwv[k];
                given = 1;
            }
        if (!given && m->defaults[i])
            rc = jeval(c, m->defaults[i], &v);
        if (rc == CL_OK)
            rc = jscope_set(c->ar, s, m->params[i], v);
    }
    if (rc == CL_OK)
        rc = capture(c, m->body, out);
    c->scope = saved;
    c->depth--;
    return rc;
}

int cl_jinja_compile(const char *source, size_t len, const char *name, cl_jinja **out)
{
    *out = NULL;
    cl_jinja *t = calloc(1, sizeof *t);
    if (!t)
        return cl_err(CL_ERR_NOMEM, "%s: out of memory", name);
    int rc = CL_ERR_NOMEM;
    char *src = ja_alloc(&t->ar, len + 1);
    t->name = ja_strndup(&t->ar, name, strlen(name));
    if (!src || !t->name) {
        cl_err(rc, "%s: out of memory", name);
        goto fail;
    }
    /* jinja2 normalizes \r\n and \r to \n and drops one trailing newline */
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (source[i] == '\r') {
            src[n++] = '\n';
            if (i + 1 < len && source[i + 1] == '\n')
                i++;
        } else {
            src[n++] = source[i];
        }
    }
    if (n && src[n - 1] == '\n')
        n--;
    src[n] = 0;
    jtoks toks = {0};
    rc = jlex(t->name, src, n, &t->ar, &toks);
    if (rc == CL_OK)
        rc = jparse(t->name, &toks, &t->ar, &t->body);
    if (rc != CL_OK)
        goto fail;
    *out = t;
    return CL_OK;
fail:
    cl_jinja_free(t);
    return rc;
}

int cl_jinja_render(const cl_jinja *t, const cJSON *vars, char **out, size_t *out_len)
{
    *out = NULL;
    jarena ar = {.limit_bytes = J_RENDER_LIMIT_BYTES};
    jbuf buf = {0};
    jctx ctx = {.what = t->name, .ar = &ar, .out = &buf};
    jctx *c = &ctx;
    int rc = new_scope(c, NULL, &ctx.globals);
    static const char *const funcs[] = {"range", "namespace", "dict", "raise_exception",
                                        "strftime_now"};
    for (int i = 0; rc == CL_OK && i < JF_COUNT; i++) {
        jv f = {.t = JV_FUNC};
        f.u.fn = jfunc_lookup(funcs[i]);
        rc = jscope_set(&ar, ctx.globals, funcs[i], f);
    }
    if (rc == CL_OK && vars && !cJSON_IsObject(vars))
        rc = cl_err(CL_ERR_ARG, "%s: template variables must be a JSON object", t->name);
    for (const cJSON *v = vars ? vars->child : NULL; rc == CL_OK && v; v = v->next) {
        jv val;
        rc = jv_from_json(&ar, v, &val);
        if (rc == CL_OK)
            rc = jscope_set(&ar, ctx.globals, v->string, val);
    }
    ctx.scope = ctx.globals;
    if (rc == CL_OK)
        rc = jexec(c, ctx.globals, t->body);
    if (rc == JR_BREAK || rc == JR_CONTINUE)
        rc = cl_err(CL_ERR_INTERNAL, "%s: loop control outside a loop", t->name);
    if (rc == CL_OK && !buf.p)
        rc = jb_put(&buf, "", 0);
    ja_free(&ar);
    if (rc != CL_OK) {
        jb_free(&buf);
        return rc;
    }
    *out = buf.p;
    if (out_len)
        *out_len = buf.n;
    return CL_OK;
}

void cl_jinja_free(cl_jinja *t)
{
    if (!t)
        return;
    ja_free(&t->ar);
    free(t);
}
