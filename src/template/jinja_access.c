/* jinja_access.c - names, attributes, items and slices: scopes are searched
 * innermost first; `.name` finds a method of the value's type before a dict
 * key and `[key]` a key before a method, as jinja2's sandbox does; missing
 * things are undefined, but reading from an undefined value is an error;
 * slices follow Python, counting code points in strings. */
#include <stdio.h>
#include <string.h>

#include "template/jinja_int.h"

#define OOM() cl_err(CL_ERR_NOMEM, "%s: out of memory", c->what)

jv *jscope_lookup(jscope *s, const char *name)
{
    for (; s; s = s->parent)
        for (int i = s->n - 1; i >= 0; i--)
            if (!strcmp(s->names[i], name))
                return &s->vals[i];
    return NULL;
}

int jscope_set(jarena *a, jscope *s, const char *name, jv v)
{
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->names[i], name)) {
            s->vals[i] = v;
            return CL_OK;
        }
    if (s->n == s->cap) {
        int cap = s->cap ? s->cap * 2 : 8;
        const char **nn = ja_alloc(a, (size_t)cap * sizeof *nn);
        jv *nv = ja_alloc(a, (size_t)cap * sizeof *nv);
        if (!nn || !nv)
            return cl_err(CL_ERR_NOMEM, "chat template: out of memory");
        if (s->n) {
            memcpy(nn, s->names, (size_t)s->n * sizeof *nn);
            memcpy(nv, s->vals, (size_t)s->n * sizeof *nv);
        }
        s->names = nn;
        s->vals = nv;
        s->cap = cap;
    }
    s->names[s->n] = name;
    s->vals[s->n++] = v;
    return CL_OK;
}

static jv undef_named(const char *p, size_t n)
{
    jv v = {.t = JV_UNDEF};
    v.u.s.p = p;
    v.u.s.n = n;
    return v;
}

int jundefined_error(jctx *c, int line, jv v, const char *what)
{
    if (v.u.s.p)
        return jerr(c, line, CL_ERR_FORMAT, "'%.*s' is undefined (%s)", (int)v.u.s.n, v.u.s.p,
                    what);
    return jerr(c, line, CL_ERR_FORMAT, "%s of an undefined value", what);
}

static int bind_method(jctx *c, jv obj, int id, jv *out)
{
    jmethod *m = ja_alloc(c->ar, sizeof *m);
    if (!m)
        return OOM();
    m->self = obj;
    m->id = id;
    out->t = JV_METHOD;
    out->u.m = m;
    return CL_OK;
}

static int loop_attr(jctx *c, jv obj, const char *name, size_t n, jv *out)
{
    const jloop *L = obj.u.loop;
    int64_t len = (int64_t)L->items->n, i0 = (int64_t)L->index0;
#define IS(s) (n == sizeof(s) - 1 && !memcmp(name, s, n))
    if (IS("index")) *out = jv_int(i0 + 1);
    else if (IS("index0")) *out = jv_int(i0);
    else if (IS("revindex")) *out = jv_int(len - i0);
    else if (IS("revindex0")) *out = jv_int(len - i0 - 1);
    else if (IS("first")) *out = jv_bool(i0 == 0);
    else if (IS("last")) *out = jv_bool(i0 == len - 1);
    else if (IS("length")) *out = jv_int(len);
    else if (IS("depth")) *out = jv_int(L->depth);
    else if (IS("depth0")) *out = jv_int(L->depth - 1);
    else if (IS("previtem")) *out = i0 > 0 ? L->items->v[i0 - 1] : undef_named("previtem", 8);
    else if (IS("nextitem")) *out = i0 + 1 < len ? L->items->v[i0 + 1] : undef_named("nextitem", 8);
    else {
        int id = jmethod_lookup(obj, name, n);
        if (id >= 0)
            return bind_method(c, obj, id, out);
        *out = undef_named(name, n);
    }
#undef IS
    return CL_OK;
}

int jget_attr(jctx *c, int line, jv obj, const char *name, size_t n, jv *out)
{
    if (obj.t == JV_UNDEF) {
        char what[128];
        snprintf(what, sizeof what, "cannot read its attribute '%.*s'", (int)(n > 60 ? 60 : n), name);
        return jundefined_error(c, line, obj, what);
    }
    if (obj.t == JV_LOOP)
        return loop_attr(c, obj, name, n, out);
    if (obj.t == JV_NS) {
        jv *v = jd_get_str(obj.u.d, name, n);
        *out = v ? *v : undef_named(name, n);
        return CL_OK;
    }
    int id = jmethod_lookup(obj, name, n);
    if (id >= 0)
        return bind_method(c, obj, id, out);
    if (obj.t == JV_DICT) {
        jv *v = jd_get_str(obj.u.d, name, n);
        *out = v ? *v : undef_named(name, n);
        return CL_OK;
    }
    *out = undef_named(name, n);
    return CL_OK;
}

static int as_index(jv k, int64_t *i)
{
    if (k.t == JV_INT)
        *i = k.u.i;
    else if (k.t == JV_BOOL)
        *i = k.u.b;
    else
        return 0;
    return 1;
}

int jget_item(jctx *c, int line, jv obj, jv key, jv *out)
{
    int64_t i;
    if (obj.t == JV_UNDEF)
        return jundefined_error(c, line, obj, "cannot subscript it");
    if (obj.t == JV_DICT || obj.t == JV_NS) {
        jv *v = jd_get(obj.u.d, key);
        if (v) {
            *out = *v;
            return CL_OK;
        }
    } else if (obj.t == JV_LIST && as_index(key, &i)) {
        int64_t n = (int64_t)obj.u.l->n;
        if (i < 0)
            i += n;
        if (i >= 0 && i < n) {
            *out = obj.u.l->v[i];
            return CL_OK;
        }
        *out = undef_named(NULL, 0);
        return CL_OK;
    } else if (obj.t == JV_STR && as_index(key, &i)) {
        const char *p = obj.u.s.p;
        size_t n = obj.u.s.n;
        if (i < 0)
            i += (int64_t)ju_cplen(p, n);
        size_t off = i >= 0 ? ju_offset(p, n, i) : n;
        if (off < n) {
            uint32_t cp;
            *out = jv_str(p + off, ju_decode(p, n, off, &cp));
        } else {
            *out = undef_named(NULL, 0);
        }
        return CL_OK;
    }
    if (key.t == JV_STR) /* jinja falls back to the attribute: d['items'] is d.items */
        return jget_attr(c, line, obj, key.u.s.p, key.u.s.n, out);
    *out = undef_named(NULL, 0);
    return CL_OK;
}

/* Python's slice index adjustment for a sequence of length n. */
static int slice_indices(jctx *c, int line, const jv *parts, int64_t n, int64_t *start,
                         int64_t *stop, int64_t *step)
{
    int64_t v[3];
    int given[3];
    for (int k = 0; k < 3; k++) {
        given[k] = parts[k].t != JV_NONE && parts[k].t != JV_UNDEF;
        if (given[k] && !as_index(parts[k], &v[k]))
            return jerr(c, line, CL_ERR_FORMAT, "slice indices must be integers or none, not '%s'",
                        jv_type_name(parts[k]));
    }
    *step = given[2] ? v[2] : 1;
    if (*step == 0)
        return jerr(c, line, CL_ERR_FORMAT, "slice step cannot be zero");
    int neg = *step < 0;
    int64_t *dst[2] = {start, stop};
    for (int k = 0; k < 2; k++) {
        if (!given[k]) {
            *dst[k] = k == 0 ? (neg ? n - 1 : 0) : (neg ? -1 : n);
            continue;
        }
        int64_t x = v[k];
        if (x < 0) {
            x += n;
            if (x < 0)
                x = neg ? -1 : 0;
        } else if (x >= n) {
            x = neg ? n - 1 : n;
        }
        *dst[k] = x;
    }
    return CL_OK;
}

int jeval_slice(jctx *c, const jexpr *e, jv *out)
{
    jv obj, parts[3];
    CL_TRY(jeval(c, e->a, &obj));
    for (int k = 0; k < 3; k++) {
        parts[k] = jv_none();
        if (e->items[k])
            CL_TRY(jeval(c, e->items[k], &parts[k]));
    }
    if (obj.t == JV_UNDEF)
        return jundefined_error(c, e->line, obj, "cannot slice it");
    if (obj.t != JV_LIST && obj.t != JV_STR)
        return jerr(c, e->line, CL_ERR_FORMAT, "'%s' object cannot be sliced", jv_type_name(obj));
    int64_t n, start = 0, stop = 0, step = 1;
    size_t *offs = NULL;
    if (obj.t == JV_LIST) {
        n = (int64_t)obj.u.l->n;
    } else {
        n = (int64_t)ju_cplen(obj.u.s.p, obj.u.s.n);
        offs = ja_alloc(c->ar, (size_t)(n + 1) * sizeof *offs);
        if (!offs)
            return OOM();
        size_t b = 0;
        for (int64_t k = 0; k < n; k++) {
            offs[k] = b;
            uint32_t cp;
            b += ju_decode(obj.u.s.p, obj.u.s.n, b, &cp);
        }
        offs[n] = b;
    }
    CL_TRY(slice_indices(c, e->line, parts, n, &start, &stop, &step));
    if (obj.t == JV_LIST) {
        jlist *l = jl_new(c->ar, 0);
        if (!l)
            return OOM();
        l->is_tuple = obj.u.l->is_tuple;
        for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step)
            CL_TRY(jl_push(c->ar, l, obj.u.l->v[i]));
        *out = jv_list(l);
        return CL_OK;
    }
    if (step == 1) {
        *out = start < stop ? jv_str(obj.u.s.p + offs[start], offs[stop] - offs[start])
                            : jv_str("", 0);
        return CL_OK;
    }
    char *s = ja_alloc(c->ar, obj.u.s.n + 1);
    if (!s)
        return OOM();
    size_t o = 0;
    for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
        memcpy(s + o, obj.u.s.p + offs[i], offs[i + 1] - offs[i]);
        o += offs[i + 1] - offs[i];
    }
    *out = jv_str(s, o);
    return CL_OK;
}

