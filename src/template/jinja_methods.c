/* jinja_methods.c - methods callable on values, as Python has them:
 * str.startswith/endswith/split/rsplit/strip/lstrip/rstrip/lower/upper/
 * replace/find/rfind/count/title/capitalize/join/splitlines/is*(),
 * dict.items/keys/values/get, list.index/count, and loop.cycle. Methods that
 * modify their receiver are absent, as in transformers' immutable sandbox. */
#include <stdio.h>
#include <string.h>

#include <utf8proc.h>

#include "template/jinja_int.h"

#define OOM() cl_err(CL_ERR_NOMEM, "%s: out of memory", c->what)

enum {
    JM_STARTSWITH, JM_ENDSWITH, JM_SPLIT, JM_RSPLIT, JM_STRIP, JM_LSTRIP, JM_RSTRIP, JM_LOWER,
    JM_UPPER, JM_REPLACE, JM_FIND, JM_RFIND, JM_COUNT, JM_TITLE, JM_CAPITALIZE, JM_JOIN,
    JM_SPLITLINES, JM_ISDIGIT, JM_ISALPHA, JM_ISALNUM, JM_ISSPACE, JM_ISLOWER, JM_ISUPPER,
    JM_STR_END,
    JM_ITEMS = 100, JM_KEYS, JM_VALUES, JM_GET,
    JM_INDEX = 200, JM_LCOUNT,
    JM_CYCLE = 300,
};

static const struct {
    const char *name;
    int id;
} str_methods[] = {
    {"startswith", JM_STARTSWITH}, {"endswith", JM_ENDSWITH}, {"split", JM_SPLIT},
    {"rsplit", JM_RSPLIT}, {"strip", JM_STRIP}, {"lstrip", JM_LSTRIP}, {"rstrip", JM_RSTRIP},
    {"lower", JM_LOWER}, {"upper", JM_UPPER}, {"replace", JM_REPLACE}, {"find", JM_FIND},
    {"rfind", JM_RFIND}, {"count", JM_COUNT}, {"title", JM_TITLE},
    {"capitalize", JM_CAPITALIZE}, {"join", JM_JOIN}, {"splitlines", JM_SPLITLINES},
    {"isdigit", JM_ISDIGIT}, {"isalpha", JM_ISALPHA}, {"isalnum", JM_ISALNUM},
    {"isspace", JM_ISSPACE}, {"islower", JM_ISLOWER}, {"isupper", JM_ISUPPER},
}, dict_methods[] = {
    {"items", JM_ITEMS}, {"keys", JM_KEYS}, {"values", JM_VALUES}, {"get", JM_GET},
}, list_methods[] = {
    {"index", JM_INDEX}, {"count", JM_LCOUNT},
};

#define FIND(table)                                                                 \
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)                     \
        if (strlen(table[i].name) == n && !memcmp(table[i].name, name, n))          \
            return table[i].id;                                                     \
    return -1

int jmethod_lookup(jv self, const char *name, size_t n)
{
    if (self.t == JV_STR) {
        FIND(str_methods);
    } else if (self.t == JV_DICT) {
        FIND(dict_methods);
    } else if (self.t == JV_LIST) {
        FIND(list_methods);
    } else if (self.t == JV_LOOP) {
        return n == 5 && !memcmp(name, "cycle", 5) ? JM_CYCLE : -1;
    }
    return -1;
}

static const char *method_name(int id)
{
    for (size_t i = 0; i < sizeof str_methods / sizeof str_methods[0]; i++)
        if (str_methods[i].id == id)
            return str_methods[i].name;
    for (size_t i = 0; i < sizeof dict_methods / sizeof dict_methods[0]; i++)
        if (dict_methods[i].id == id)
            return dict_methods[i].name;
    for (size_t i = 0; i < sizeof list_methods / sizeof list_methods[0]; i++)
        if (list_methods[i].id == id)
            return list_methods[i].name;
    return "cycle";
}

static int str_arg(const jctx *c, int line, const char *fname, const jv *v, int opt, jv *out)
{
    if (!v || v->t == JV_NONE) {
        if (opt)
            return CL_OK;
        return jerr(c, line, CL_ERR_FORMAT, "%s needs a string argument", fname);
    }
    if (v->t != JV_STR)
        return jerr(c, line, CL_ERR_FORMAT, "%s: expected a string argument, got '%s'", fname,
                    jv_type_name(*v));
    *out = *v;
    return CL_OK;
}

static int affix(const jctx *c, int line, const char *fname, jv s, jv arg, int end, int *out)
{
    if (arg.t == JV_LIST) {
        *out = 0;
        for (size_t i = 0; i < arg.u.l->n && !*out; i++)
            CL_TRY(affix(c, line, fname, s, arg.u.l->v[i], end, out));
        return CL_OK;
    }
    jv p;
    CL_TRY(str_arg(c, line, fname, &arg, 0, &p));
    *out = p.u.s.n <= s.u.s.n &&
           !memcmp(s.u.s.p + (end ? s.u.s.n - p.u.s.n : 0), p.u.s.p, p.u.s.n);
    return CL_OK;
}

static int char_class(jv s, int id)
{
    if (!s.u.s.n)
        return 0;
    int cased = 0;
    for (size_t i = 0; i < s.u.s.n;) {
        uint32_t cp;
        i += ju_decode(s.u.s.p, s.u.s.n, i, &cp);
        utf8proc_category_t cat = utf8proc_category((utf8proc_int32_t)cp);
        int letter = cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO;
        int digit = cat == UTF8PROC_CATEGORY_ND;
        int number = cat >= UTF8PROC_CATEGORY_ND && cat <= UTF8PROC_CATEGORY_NO;
        int lo = utf8proc_islower((utf8proc_int32_t)cp), up = utf8proc_isupper((utf8proc_int32_t)cp);
        switch (id) {
        case JM_ISDIGIT: if (!digit) return 0; break;
        case JM_ISALPHA: if (!letter) return 0; break;
        case JM_ISALNUM: if (!letter && !number) return 0; break;
        case JM_ISSPACE: if (!ju_isspace(cp)) return 0; break;
        case JM_ISLOWER: if (up) return 0; cased |= lo; break;
        case JM_ISUPPER: if (lo) return 0; cased |= up; break;
        }
    }
    return id == JM_ISLOWER || id == JM_ISUPPER ? cased : 1;
}

static int str_method(jctx *c, int line, int id, jv s, const jargs *a, jv *out)
{
    char fname[48];
    snprintf(fname, sizeof fname, "str.%s()", method_name(id));
    static const char *const split_kw[] = {"sep", "maxsplit", NULL};
    static const char *const replace_kw[] = {"count", NULL};
    static const char *const lines_kw[] = {"keepends", NULL};
    jv arg = jv_none();
    switch (id) {
    case JM_STARTSWITH:
    case JM_ENDSWITH: {
        CL_TRY(jargs_check(c, line, fname, a, 1, NULL));
        const jv *p = jarg(a, 0, NULL);
        if (!p)
            return jerr(c, line, CL_ERR_FORMAT, "%s needs an argument", fname);
        int r;
        CL_TRY(affix(c, line, fname, s, *p, id == JM_ENDSWITH, &r));
        *out = jv_bool(r);
        return CL_OK;
    }
    case JM_SPLIT:
    case JM_RSPLIT: {
        CL_TRY(jargs_check(c, line, fname, a, 2, split_kw));
        const jv *sep = jarg(a, 0, "sep"), *maxv = jarg(a, 1, "maxsplit");
        int has_sep = sep && sep->t != JV_NONE;
        if (has_sep)
            CL_TRY(str_arg(c, line, fname, sep, 0, &arg));
        int64_t maxsplit = -1;
        if (maxv) {
            if (maxv->t != JV_INT)
                return jerr(c, line, CL_ERR_FORMAT, "%s: maxsplit must be an integer", fname);
            maxsplit = maxv->u.i;
        }
        return ju_split(c, line, s, has_sep ? &arg : NULL, maxsplit, id == JM_RSPLIT, out);
    }
    case JM_STRIP:
    case JM_LSTRIP:
    case JM_RSTRIP: {
        CL_TRY(jargs_check(c, line, fname, a, 1, NULL));
        const jv *ch = jarg(a, 0, NULL);
        int has = ch && ch->t != JV_NONE;
        if (has)
            CL_TRY(str_arg(c, line, fname, ch, 0, &arg));
        *out = ju_strip(s, has ? arg.u.s.p : NULL, has ? arg.u.s.n : 0,
                        id == JM_STRIP ? 3 : id == JM_LSTRIP ? 1 : 2);
        return CL_OK;
    }
    case JM_LOWER:
    case JM_UPPER:
        CL_TRY(jargs_check(c, line, fname, a, 0, NULL));
        return ju_lower(c->ar, s, id == JM_UPPER, out);
    case JM_TITLE:
        CL_TRY(jargs_check(c, line, fname, a, 0, NULL));
        return ju_title(c->ar, s, out);
    case JM_CAPITALIZE:
        CL_TRY(jargs_check(c, line, fname, a, 0, NULL));
        CL_TRY(ju_lower(c->ar, s, 0, &s));
        return ju_capitalize(c->ar, s, out);
    case JM_REPLACE: {
        CL_TRY(jargs_check(c, line, fname, a, 3, replace_kw));
        jv old, new_;
        CL_TRY(str_arg(c, line, fname, jarg(a, 0, NULL), 0, &old));
        CL_TRY(str_arg(c, line, fname, jarg(a, 1, NULL), 0, &new_));
        const jv *cnt = jarg(a, 2, "count");
        if (cnt && cnt->t != JV_INT)
            return jerr(c, line, CL_ERR_FORMAT, "%s: count must be an integer", fname);
        return ju_replace(c->ar, s, old, new_, cnt ? cnt->u.i : -1, out);
    }
    case JM_FIND:
    case JM_RFIND:
    case JM_COUNT: {
        CL_TRY(jargs_check(c, line, fname, a, 2, NULL));
        jv sub;
        CL_TRY(str_arg(c, line, fname, jarg(a, 0, NULL), 0, &sub));
        const jv *st = jarg(a, 1, NULL);
        size_t from = 0;
        if (st && st->t != JV_NONE) {
            if (st->t != JV_INT)
                return jerr(c, line, CL_ERR_FORMAT, "%s: start must be an integer", fname);
            int64_t k = st->u.i;
            if (k < 0)
                k += (int64_t)ju_cplen(s.u.s.p, s.u.s.n);
            from = ju_offset(s.u.s.p, s.u.s.n, k < 0 ? 0 : k);
        }
        if (id == JM_COUNT) {
            int64_t count = 0;
            if (!sub.u.s.n) {
                count = (int64_t)ju_cplen(s.u.s.p + from, s.u.s.n - from) + 1;
            } else {
                int64_t f;
                while ((f = ju_find(s.u.s.p, s.u.s.n, sub.u.s.p, sub.u.s.n, from)) >= 0) {
                    count++;
                    from = (size_t)f + sub.u.s.n;
                }
            }
            *out = jv_int(count);
            return CL_OK;
        }
        int64_t f = ju_find(s.u.s.p, s.u.s.n, sub.u.s.p, sub.u.s.n, from);
        if (id == JM_RFIND && f >= 0) {
            int64_t g;
            while ((g = ju_find(s.u.s.p, s.u.s.n, sub.u.s.p, sub.u.s.n, (size_t)f + 1)) >= 0 &&
                   (size_t)f + 1 <= s.u.s.n)
                f = g;
        }
        *out = jv_int(f < 0 ? -1 : (int64_t)ju_cplen(s.u.s.p, (size_t)f));
        return CL_OK;
    }
    case JM_JOIN: {
        CL_TRY(jargs_check(c, line, fname, a, 1, NULL));
        const jv *it = jarg(a, 0, NULL);
        if (!it)
            return jerr(c, line, CL_ERR_FORMAT, "%s needs an argument", fname);
        jlist *l;
        CL_TRY(jv_iterate(c, line, *it, &l));
        jbuf b = {0};
        int rc = CL_OK;
        for (size_t i = 0; rc == CL_OK && i < l->n; i++) {
            if (l->v[i].t != JV_STR)
                rc = jerr(c, line, CL_ERR_FORMAT, "%s: item %zu is '%s', not a string", fname, i,
                          jv_type_name(l->v[i]));
            if (rc == CL_OK && i)
                rc = jb_put(&b, s.u.s.p, s.u.s.n);
            if (rc == CL_OK)
                rc = jb_put(&b, l->v[i].u.s.p, l->v[i].u.s.n);
        }
        if (rc == CL_OK) {
            char *r = ja_strndup(c->ar, b.p ? b.p : "", b.n);
            if (!r)
                rc = OOM();
            else
                *out = jv_str(r, b.n);
        }
        jb_free(&b);
        return rc;
    }
    case JM_SPLITLINES: {
        CL_TRY(jargs_check(c, line, fname, a, 1, lines_kw));
        const jv *k = jarg(a, 0, "keepends");
        jlist *l;
        CL_TRY(ju_splitlines(c->ar, s, k && jv_truthy(*k), &l));
        *out = jv_list(l);
        return CL_OK;
    }
    default:
        CL_TRY(jargs_check(c, line, fname, a, 0, NULL));
        *out = jv_bool(char_class(s, id));
        return CL_OK;
    }
}

int jmethod_call(jctx *c, int line, const jmethod *m, const jargs *a, jv *out)
{
    jv self = m->self;
    if (m->id < JM_STR_END)
        return str_method(c, line, m->id, self, a, out);
    char fname[48];
    snprintf(fname, sizeof fname, "%s.%s()", jv_type_name(self), method_name(m->id));
    switch (m->id) {
    case JM_ITEMS:
    case JM_KEYS:
    case JM_VALUES: {
        CL_TRY(jargs_check(c, line, fname, a, 0, NULL));
        const jdict *d = self.u.d;
        jlist *l = jl_new(c->ar, d->n ? d->n : 1);
        if (!l)
            return OOM();
        for (size_t i = 0; i < d->n; i++) {
            if (m->id == JM_ITEMS) {
                jlist *pair = jl_new(c->ar, 2);
                if (!pair)
                    return OOM();
                pair->is_tuple = 1;
                pair->v[0] = d->k[i];
                pair->v[1] = d->v[i];
                pair->n = 2;
                l->v[l->n++] = jv_list(pair);
            } else {
                l->v[l->n++] = m->id == JM_KEYS ? d->k[i] : d->v[i];
            }
        }
        *out = jv_list(l);
        return CL_OK;
    }
    case JM_GET: {
        static const char *const kw[] = {"default", NULL};
        CL_TRY(jargs_check(c, line, fname, a, 2, kw));
        const jv *k = jarg(a, 0, NULL), *def = jarg(a, 1, "default");
        if (!k)
            return jerr(c, line, CL_ERR_FORMAT, "%s needs a key", fname);
        jv *v = jd_get(self.u.d, *k);
        *out = v ? *v : def ? *def : jv_none();
        return CL_OK;
    }
    case JM_INDEX:
    case JM_LCOUNT: {
        CL_TRY(jargs_check(c, line, fname, a, 1, NULL));
        const jv *x = jarg(a, 0, NULL);
        if (!x)
            return jerr(c, line, CL_ERR_FORMAT, "%s needs an argument", fname);
        int64_t count = 0;
        for (size_t i = 0; i < self.u.l->n; i++) {
            if (!jv_equal(self.u.l->v[i], *x))
                continue;
            if (m->id == JM_INDEX) {
                *out = jv_int((int64_t)i);
                return CL_OK;
            }
            count++;
        }
        if (m->id == JM_INDEX)
            return jerr(c, line, CL_ERR_FORMAT, "%s: value is not in the list", fname);
        *out = jv_int(count);
        return CL_OK;
    }
    case JM_CYCLE:
        if (a->npos == 0)
            return jerr(c, line, CL_ERR_FORMAT, "loop.cycle() needs at least one value");
        *out = a->pos[self.u.loop->index0 % (size_t)a->npos];
        return CL_OK;
    }
    return jerr(c, line, CL_ERR_INTERNAL, "unknown method %d", m->id);
}
