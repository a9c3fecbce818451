/* jinja_filters_seq.c - filters over sequences: first, last, join, list,
 * items, reverse, map, select/reject, selectattr/rejectattr, sort, dictsort,
 * unique, min, max, sum. Attribute paths ("a.b", "0") are looked up item
 * first, as jinja2's make_attrgetter does; string keys compare
 * case-insensitively unless case_sensitive=true. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "template/jinja_filters.h"
#include "template/jinja_int.h"

#define OOM() cl_err(CL_ERR_NOMEM, "%s: out of memory", c->what)

static int check(jctx *c, int line, int id, const jargs *a, int max_pos, const char *const *kw)
{
    char name[48];
    snprintf(name, sizeof name, "filter '%s'", jfilter_name(id));
    return jargs_check(c, line, name, a, max_pos, kw);
}

/* item[path]: "a.b.0" walks dict keys / list indexes. */
static int get_path(jctx *c, int line, jv obj, jv path, jv *out)
{
    if (path.t != JV_STR) {
        return jget_item(c, line, obj, path, out);
    }
    const char *p = path.u.s.p, *end = p + path.u.s.n;
    while (1) {
        const char *dot = memchr(p, '.', (size_t)(end - p));
        const char *pe = dot ? dot : end;
        int digits = pe > p;
        for (const char *q = p; q < pe; q++)
            digits &= *q >= '0' && *q <= '9';
        jv key = jv_str(p, (size_t)(pe - p));
        if (digits && pe - p < 18)
            key = jv_int(strtoll(p, NULL, 10));
        CL_TRY(jget_item(c, line, obj, key, &obj));
        if (!dot)
            break;
        p = dot + 1;
    }
    *out = obj;
    return CL_OK;
}

/* Sort/compare key of an item: its attribute, lowercased unless case-sensitive. */
static int key_of(jctx *c, int line, jv item, const jv *attr, int case_sensitive, jv *out)
{
    if (attr && attr->t != JV_NONE)
        CL_TRY(get_path(c, line, item, *attr, &item));
    if (item.t == JV_STR && !case_sensitive)
        return ju_lower(c->ar, item, 0, out);
    *out = item;
    return CL_OK;
}

typedef struct {
    jctx *c;
    int line;
    const jv *keys;
    int reverse;
} sorter;

static int merge_sort(sorter *s, size_t *idx, size_t *tmp, size_t n)
{
    if (n < 2)
        return CL_OK;
    size_t h = n / 2;
    CL_TRY(merge_sort(s, idx, tmp, h));
    CL_TRY(merge_sort(s, idx + h, tmp, n - h));
    size_t i = 0, j = h, k = 0;
    while (i < h && j < n) {
        int cmp;
        CL_TRY(jv_compare(s->c, s->line, s->keys[idx[j]], s->keys[idx[i]], &cmp));
        /* take from the right only when strictly before: stable */
        if (s->reverse ? cmp > 0 : cmp < 0)
            tmp[k++] = idx[j++];
        else
            tmp[k++] = idx[i++];
    }
    while (i < h)
        tmp[k++] = idx[i++];
    while (j < n)
        tmp[k++] = idx[j++];
    memcpy(idx, tmp, n * sizeof *idx);
    return CL_OK;
}

static int sorted(jctx *c, int line, jlist *items, const jv *keys, int reverse, jv *out)
{
    size_t n = items->n;
    size_t *idx = ja_alloc(c->ar, (n + 1) * sizeof *idx), *tmp = ja_alloc(c->ar, (n + 1) * sizeof *tmp);
    jlist *l = jl_new(c->ar, n ? n : 1);
    if (!idx || !tmp || !l)
        return OOM();
    for (size_t i = 0; i < n; i++)
        idx[i] = i;
    sorter s = {c, line, keys, reverse};
    CL_TRY(merge_sort(&s, idx, tmp, n));
    for (size_t i = 0; i < n; i++)
        l->v[l->n++] = items->v[idx[i]];
    *out = jv_list(l);
    return CL_OK;
}

/* select/reject/selectattr/rejectattr */
static int do_select(jctx *c, int line, int id, jlist *items, const jargs *a, jv *out)
{
    int by_attr = id == JFL_SELECTATTR || id == JFL_REJECTATTR;
    int want = id == JFL_SELECT || id == JFL_SELECTATTR;
    int first = by_attr ? 1 : 0;
    const jv *attr = by_attr ? jarg(a, 0, NULL) : NULL;
    if (by_attr && !attr)
        return jerr(c, line, CL_ERR_FORMAT, "filter '%s' needs an attribute name",
                    jfilter_name(id));
    int test = -1;
    if (a->npos > first) {
        jv tn = a->pos[first];
        char name[64];
        if (tn.t != JV_STR || tn.u.s.n >= sizeof name)
            return jerr(c, line, CL_ERR_FORMAT, "filter '%s': expected a test name",
                        jfilter_name(id));
        memcpy(name, tn.u.s.p, tn.u.s.n);
        name[tn.u.s.n] = 0;
        test = jtest_lookup(name);
        if (test < 0)
            return jerr(c, line, CL_ERR_UNSUPPORTED, "test '%s' is not supported", name);
    }
    jargs targs = {a->pos + first + 1, a->npos - first - 1, a->kwn, a->kwv, a->nkw};
    if (targs.npos < 0)
        targs.npos = 0;
    jlist *l = jl_new(c->ar, 0);
    if (!l)
        return OOM();
    for (size_t i = 0; i < items->n; i++) {
        jv v = items->v[i];
        if (attr)
            CL_TRY(get_path(c, line, v, *attr, &v));
        int r;
        if (test >= 0)
            CL_TRY(jtest_apply(c, line, test, v, &targs, &r));
        else
            r = jv_truthy(v);
        if (r == want)
            CL_TRY(jl_push(c->ar, l, items->v[i]));
    }
    *out = jv_list(l);
    return CL_OK;
}

static int do_map(jctx *c, int line, jlist *items, const jargs *a, jv *out)
{
    const jv *attr = jarg(a, -1, "attribute");
    jlist *l = jl_new(c->ar, items->n ? items->n : 1);
    if (!l)
        return OOM();
    if (attr) {
        static const char *const kw[] = {"attribute", "default", NULL};
        CL_TRY(check(c, line, JFL_MAP, a, 0, kw));
        const jv *def = jarg(a, -1, "default");
        for (size_t i = 0; i < items->n; i++) {
            jv v;
            CL_TRY(get_path(c, line, items->v[i], *attr, &v));
            l->v[l->n++] = v.t == JV_UNDEF && def ? *def : v;
        }
        *out = jv_list(l);
        return CL_OK;
    }
    char name[64];
    if (a->npos < 1 || a->pos[0].t != JV_STR || a->pos[0].u.s.n >= sizeof name)
        return jerr(c, line, CL_ERR_FORMAT, "filter 'map' needs a filter name or attribute=");
    memcpy(name, a->pos[0].u.s.p, a->pos[0].u.s.n);
    name[a->pos[0].u.s.n] = 0;
    int f = jfilter_lookup(name);
    if (f < 0)
        return jerr(c, line, CL_ERR_UNSUPPORTED, "filter '%s' is not supported", name);
    jargs fargs = {a->pos + 1, a->npos - 1, a->kwn, a->kwv, a->nkw};
    for (size_t i = 0; i < items->n; i++)
        CL_TRY(jfilter_apply(c, line, f, items->v[i], &fargs, &l->v[l->n++]));
    *out = jv_list(l);
    return CL_OK;
}

static int tuple2(jctx *c, jv a, jv b, jv *out)
{
    jlist *p = jl_new(c->ar, 2);
    if (!p)
        return OOM();
    p->is_tuple = 1;
    p->v[0] = a;
    p->v[1] = b;
    p->n = 2;
    *out = jv_list(p);
    return CL_OK;
}

int jfilter_seq(jctx *c, int line, int id, jv v, const jargs *a, jv *out)
{
    static const char *const kw_sort[] = {"reverse", "case_sensitive", "attribute", NULL};
    static const char *const kw_uniq[] = {"case_sensitive", "attribute", NULL};
    static const char *const kw_join[] = {"d", "attribute", NULL};
    static const char *const kw_sum[] = {"attribute", "start", NULL};
    static const char *const kw_dsort[] = {"case_sensitive", "by", "reverse", NULL};
    if (id == JFL_ITEMS) {
        CL_TRY(check(c, line, id, a, 0, NULL));
        if (v.t == JV_UNDEF) {
            jlist *l = jl_new(c->ar, 0);
            if (!l)
                return OOM();
            *out = jv_list(l);
            return CL_OK;
        }
        if (v.t != JV_DICT)
            return jerr(c, line, CL_ERR_FORMAT, "filter 'items' needs a mapping, got '%s'",
                        jv_type_name(v));
    }
    if (id == JFL_DICTSORT && v.t != JV_DICT)
        return jerr(c, line, CL_ERR_FORMAT, "filter 'dictsort' needs a mapping, got '%s'",
                    jv_type_name(v));
    if ((id == JFL_FIRST || id == JFL_LAST) && v.t == JV_UNDEF) {
        *out = jv_undef(NULL);
        return CL_OK;
    }
    jlist *items;
    CL_TRY(jv_iterate(c, line, v, &items));
    size_t n = items->n;
    switch (id) {
    case JFL_FIRST:
    case JFL_LAST:
        CL_TRY(check(c, line, id, a, 0, NULL));
        *out = n ? items->v[id == JFL_FIRST ? 0 : n - 1] : jv_undef(NULL);
        return CL_OK;
    case JFL_LIST:
    case JFL_REVERSE: {
        CL_TRY(check(c, line, id, a, 0, NULL));
        jlist *l = jl_new(c->ar, n ? n : 1);
        if (!l)
            return OOM();
        for (size_t i = 0; i < n; i++)
            l->v[l->n++] = items->v[id == JFL_LIST ? i : n - 1 - i];
        if (id == JFL_REVERSE && v.t == JV_STR) {
            char *s = ja_alloc(c->ar, v.u.s.n + 1);
            if (!s)
                return OOM();
            size_t o = 0;
            for (size_t i = 0; i < n; i++) {
                memcpy(s + o, l->v[i].u.s.p, l->v[i].u.s.n);
                o += l->v[i].u.s.n;
            }
            *out = jv_str(s, o);
            return CL_OK;
        }
        *out = jv_list(l);
        return CL_OK;
    }
    case JFL_ITEMS:
    case JFL_DICTSORT: {
        jlist *l = jl_new(c->ar, n ? n : 1);
        jv *keys = ja_alloc(c->ar, (n + 1) * sizeof *keys);
        if (!l || !keys)
            return OOM();
        for (size_t i = 0; i < n; i++)
            CL_TRY(tuple2(c, v.u.d->k[i], v.u.d->v[i], &l->v[l->n++]));
        if (id == JFL_ITEMS) {
            *out = jv_list(l);
            return CL_OK;
        }
        CL_TRY(check(c, line, id, a, 3, kw_dsort));
        const jv *cs = jarg(a, 0, "case_sensitive"), *by = jarg(a, 1, "by"),
                 *rev = jarg(a, 2, "reverse");
        int by_value = by && by->t == JV_STR && by->u.s.n == 5 && !memcmp(by->u.s.p, "value", 5);
        for (size_t i = 0; i < n; i++)
            CL_TRY(key_of(c, line, by_value ? v.u.d->v[i] : v.u.d->k[i], NULL, cs && jv_truthy(*cs),
                          &keys[i]));
        return sorted(c, line, l, keys, rev && jv_truthy(*rev), out);
    }
    case JFL_JOIN: {
        CL_TRY(check(c, line, id, a, 2, kw_join));
        const jv *sep = jarg(a, 0, "d"), *attr = jarg(a, 1, "attribute");
        jv sv = jv_str("", 0);
        if (sep)
            CL_TRY(jv_to_str(c, *sep, &sv));
        jbuf b = {0};
        int rc = CL_OK;
        for (size_t i = 0; rc == CL_OK && i < n; i++) {
            jv it = items->v[i];
            if (attr)
                rc = get_path(c, line, it, *attr, &it);
            if (rc == CL_OK && i)
                rc = jb_put(&b, sv.u.s.p, sv.u.s.n);
            if (rc == CL_OK)
                rc = jv_write_str(&b, it);
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
    case JFL_MAP: return do_map(c, line, items, a, out);
    case JFL_SELECT:
    case JFL_REJECT:
    case JFL_SELECTATTR:
    case JFL_REJECTATTR: return do_select(c, line, id, items, a, out);
    case JFL_SORT:
    case JFL_UNIQUE:
    case JFL_MIN:
    case JFL_MAX: {
        const jv *rev = NULL, *cs, *attr;
        if (id == JFL_SORT) {
            CL_TRY(check(c, line, id, a, 3, kw_sort));
            rev = jarg(a, 0, "reverse");
            cs = jarg(a, 1, "case_sensitive");
            attr = jarg(a, 2, "attribute");
        } else {
            CL_TRY(check(c, line, id, a, 2, kw_uniq));
            cs = jarg(a, 0, "case_sensitive");
            attr = jarg(a, 1, "attribute");
        }
        jv *keys = ja_alloc(c->ar, (n + 1) * sizeof *keys);
        if (!keys)
            return OOM();
        for (size_t i = 0; i < n; i++)
            CL_TRY(key_of(c, line, items->v[i], attr, cs && jv_truthy(*cs), &keys[i]));
        if (id == JFL_SORT)
            return sorted(c, line, items, keys, rev && jv_truthy(*rev), out);
        if (id == JFL_UNIQUE) {
            jlist *l = jl_new(c->ar, n ? n : 1);
            if (!l)
                return OOM();
            for (size_t i = 0; i < n; i++) {
                int seen = 0;
                for (size_t j = 0; j < i && !seen; j++)
                    seen = jv_equal(keys[i], keys[j]);
                if (!seen)
                    l->v[l->n++] = items->v[i];
            }
            *out = jv_list(l);
            return CL_OK;
        }
        if (!n) {
            *out = jv_undef(NULL);
            return CL_OK;
        }
        size_t best = 0;
        for (size_t i = 1; i < n; i++) {
            int cmp;
            CL_TRY(jv_compare(c, line, keys[i], keys[best], &cmp));
            if (id == JFL_MIN ? cmp < 0 : cmp > 0)
                best = i;
        }
        *out = items->v[best];
        return CL_OK;
    }
    case JFL_SUM: {
        CL_TRY(check(c, line, id, a, 2, kw_sum));
        const jv *attr = jarg(a, 0, "attribute"), *start = jarg(a, 1, "start");
        int64_t isum = 0;
        double fsum = 0;
        int is_float = 0;
        jv acc = start ? *start : jv_int(0);
        for (size_t i = 0; i <= n; i++) {
            jv it = acc;
            if (i > 0) {
                it = items->v[i - 1];
                if (attr)
                    CL_TRY(get_path(c, line, it, *attr, &it));
            }
            if (it.t == JV_FLOAT) {
                if (!is_float)
                    fsum = (double)isum;
                is_float = 1;
                fsum += it.u.f;
            } else if (it.t == JV_INT || it.t == JV_BOOL) {
                int64_t x = it.t == JV_INT ? it.u.i : it.u.b;
                if (is_float)
                    fsum += (double)x;
                else if (__builtin_add_overflow(isum, x, &isum))
                    return jerr(c, line, CL_ERR_RANGE, "sum: integer overflow");
            } else {
                return jerr(c, line, CL_ERR_FORMAT, "sum: cannot add '%s'", jv_type_name(it));
            }
        }
        *out = is_float ? jv_float(fsum) : jv_int(isum);
        return CL_OK;
    }
    }
    return jerr(c, line, CL_ERR_INTERNAL, "unknown filter %d", id);
}
