/* jinja_int.h - internals of the Jinja template engine shared by its files:
 * the arena, values, tokens, the AST and the render context.
 *
 * Ownership: a compiled template owns one arena holding its AST and literal
 * strings. Each render owns a second arena holding every value it creates;
 * values are plain structs passed by value that point into either arena (or
 * into the caller's cJSON strings), and nothing is freed before the render ends.
 * The output buffer is the only malloc'd object that outlives a render. */
#ifndef CL_JINJA_INT_H
#define CL_JINJA_INT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/status.h"

/* ---- arena ---------------------------------------------------------------- */
typedef struct ja_chunk ja_chunk;
typedef struct {
    ja_chunk *head;
    size_t total_bytes;
    size_t limit_bytes; /* 0: no limit */
} jarena;

/* 16-byte aligned, zeroed memory; NULL when out of memory or over the limit. */
void *ja_alloc(jarena *a, size_t n);
char *ja_strndup(jarena *a, const char *s, size_t n);
void ja_free(jarena *a);

/* ---- growable byte buffer (malloc'd) --------------------------------------- */
typedef struct {
    char *p;
    size_t n, cap;
} jbuf;

int jb_put(jbuf *b, const char *s, size_t n);
int jb_puts(jbuf *b, const char *s);
int jb_putc(jbuf *b, char c);
int jb_printf(jbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void jb_free(jbuf *b);

/* ---- values ----------------------------------------------------------------- */
typedef enum {
    JV_UNDEF,  /* missing variable/attribute: renders empty, falsy */
    JV_NONE,
    JV_BOOL,
    JV_INT,
    JV_FLOAT,
    JV_STR,
    JV_LIST,   /* also tuples (jlist.is_tuple) */
    JV_DICT,
    JV_NS,     /* namespace(): a dict whose attributes can be set */
    JV_LOOP,   /* the `loop` variable of a for loop */
    JV_MACRO,
    JV_FUNC,   /* a global function (range, namespace, ...) */
    JV_METHOD, /* a method bound to its receiver (str.split, dict.items, ...) */
} jv_type;

typedef struct jlist jlist;
typedef struct jdict jdict;
typedef struct jloop jloop;
typedef struct jmethod jmethod;
struct jstmt;

typedef struct jv {
    jv_type t;
    union {
        int b;
        int64_t i;
        double f;
        struct {
            const char *p; /* not NUL-terminated in general */
            size_t n;
        } s;               /* JV_STR; for JV_UNDEF the name, for errors (p may be NULL) */
        jlist *l;
        jdict *d;          /* JV_DICT, JV_NS */
        jloop *loop;
        const struct jstmt *macro;
        int fn;            /* JV_FUNC: JF_* id */
        jmethod *m;
    } u;
} jv;

struct jlist {
    jv *v;
    size_t n, cap;
    int is_tuple;
};

struct jdict {
    jv *k, *v; /* insertion order is kept */
    size_t n, cap;
};

struct jloop {
    jlist *items;
    size_t index0;
    int depth;
};

struct jmethod {
    jv self;
    int id; /* JM_* id */
};

/* Global functions. */
enum { JF_RANGE, JF_NAMESPACE, JF_DICT, JF_RAISE, JF_STRFTIME, JF_COUNT };

static inline jv jv_undef(const char *name) { jv v = {.t = JV_UNDEF}; v.u.s.p = name; v.u.s.n = name ? strlen(name) : 0; return v; }
static inline jv jv_none(void) { jv v = {.t = JV_NONE}; return v; }
static inline jv jv_bool(int b) { jv v = {.t = JV_BOOL}; v.u.b = !!b; return v; }
static inline jv jv_int(int64_t i) { jv v = {.t = JV_INT}; v.u.i = i; return v; }
static inline jv jv_float(double f) { jv v = {.t = JV_FLOAT}; v.u.f = f; return v; }
static inline jv jv_str(const char *p, size_t n) { jv v = {.t = JV_STR}; v.u.s.p = p; v.u.s.n = n; return v; }
static inline jv jv_list(jlist *l) { jv v = {.t = JV_LIST}; v.u.l = l; return v; }
static inline jv jv_dict(jdict *d) { jv v = {.t = JV_DICT}; v.u.d = d; return v; }

/* ---- tokens ------------------------------------------------------------------ */
typedef enum {
    JT_EOF,
    JT_TEXT,        /* template data, whitespace control already applied */
    JT_BLOCK_BEGIN, /* {% */
    JT_BLOCK_END,   /* %} */
    JT_VAR_BEGIN,   /* {{ */
    JT_VAR_END,     /* }} */
    JT_NAME,
    JT_STRING,      /* escapes decoded */
    JT_INT,
    JT_FLOAT,
    JT_OP,          /* operator or punctuation, text in p/n */
} jtok_type;

typedef struct {
    jtok_type t;
    int line;
    const char *p;
    size_t n;
    int64_t i;
    double f;
} jtok;

typedef struct {
    jtok *v;
    size_t n, cap;
} jtoks;

/* Lexes `src` (newlines already normalized) into tokens allocated in `a`.
 * `what` names the template in errors. */
int jlex(const char *what, const char *src, size_t len, jarena *a, jtoks *out);

/* ---- AST --------------------------------------------------------------------- */
typedef enum {
    JE_CONST,
    JE_NAME,
    JE_LIST,
    JE_TUPLE,
    JE_DICT,   /* items: key, value, key, value... */
    JE_ATTR,   /* a.name */
    JE_ITEM,   /* a[b] */
    JE_SLICE,  /* a[items[0]:items[1]:items[2]] (NULL = omitted) */
    JE_CALL,   /* a(items..., kw...) */
    JE_FILTER, /* a | name(items..., kw...) */
    JE_TEST,   /* a is [not] name(items...) */
    JE_NEG,
    JE_POS,
    JE_NOT,
    JE_BIN,    /* a op b */
    JE_AND,
    JE_OR,
    JE_CMP,    /* items[0] ops[0] items[1] ops[1] items[2]... */
    JE_COND,   /* b if a else c */
    JE_CONCAT, /* items joined with ~ */
} jexpr_kind;

typedef enum {
    JOP_ADD, JOP_SUB, JOP_MUL, JOP_DIV, JOP_FLOORDIV, JOP_MOD, JOP_POW,
    JOP_EQ, JOP_NE, JOP_LT, JOP_LE, JOP_GT, JOP_GE, JOP_IN, JOP_NOTIN,
} jop;

typedef struct jexpr jexpr;
struct jexpr {
    jexpr_kind kind;
    int line;
    jv cval;          /* JE_CONST */
    const char *name; /* JE_NAME, JE_ATTR, JE_FILTER, JE_TEST */
    int id;           /* JE_FILTER / JE_TEST: resolved function id; JE_BIN: jop */
    int negate;       /* JE_TEST */
    jexpr *a, *b, *c;
    jexpr **items;
    int nitems;
    int *ops;         /* JE_CMP: nitems - 1 jop values */
    const char **kwnames;
    jexpr **kwvals;
    int nkw;
};

typedef enum {
    JS_TEXT,
    JS_OUT,      /* {{ expr }} */
    JS_IF,       /* if expr: body else else_body (elif = nested JS_IF in else_body) */
    JS_FOR,
    JS_SET,      /* targets = expr, or ns.attr = expr */
    JS_SETBLOCK, /* {% set x %}body{% endset %} */
    JS_MACRO,
    JS_BREAK,
    JS_CONTINUE,
    JS_FILTERBLOCK, /* {% filter f %}body{% endfilter %}: expr is the filter chain over a NULL leaf */
    JS_SCOPE,    /* body run in place ({% generation %}) */
} jstmt_kind;

typedef struct jstmt jstmt;
struct jstmt {
    jstmt_kind kind;
    int line;
    const char *text; /* JS_TEXT */
    size_t len;
    jexpr *expr;      /* OUT, IF cond, FOR iterable, SET value, FILTERBLOCK chain */
    jexpr *cond;      /* FOR inline filter */
    jstmt *body, *else_body, *next;
    const char **targets; /* FOR/SET/SETBLOCK names; MACRO: targets[0] = name */
    int ntargets;
    const char *attr;     /* SET ns.attr: targets[0] = ns */
    const char **params;  /* MACRO */
    jexpr **defaults;     /* MACRO: NULL entries = no default */
    int nparams;
};

/* Parses tokens into a statement list. */
int jparse(const char *what, const jtoks *toks, jarena *a, jstmt **out);
/* Expression part of the parser (jinja_parse_expr.c), used by jinja_parse.c. */
typedef struct {
    const char *what;
    const jtoks *toks;
    size_t pos;
    jarena *a;
    int depth;
    int loops; /* for loops around the current statement (break/continue) */
} jparser;
int jp_expr(jparser *p, jexpr **out);                   /* conditional expression */
int jp_expr_nocond(jparser *p, jexpr **out);            /* no `x if c else y` */
int jp_tuple(jparser *p, int with_cond, jexpr **out);   /* a, b, ... -> JE_TUPLE */
int jp_error(jparser *p, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
const jtok *jp_peek(jparser *p);
const jtok *jp_next(jparser *p);
int jp_is_op(const jtok *t, const char *op);
int jp_is_name(const jtok *t, const char *name);
jexpr *jp_node(jparser *p, jexpr_kind kind, int line);
const jtok *jp_peek2(jparser *p);                      /* the token after the next */
int jp_unexpected(jparser *p, const char *wanted);      /* "expected W, got T" */
int jp_expect_op(jparser *p, const char *op);
/* Appends e to a growing arena array. */
int jp_push(jparser *p, jexpr ***items, int *n, int *cap, jexpr *e);
const char *jp_tok_str(jparser *p, const jtok *t);     /* arena copy, NULL on OOM */
/* Parses a filter call "name(args)" after '|' into a JE_FILTER over `arg`. */
int jp_filter(jparser *p, jexpr *arg, jexpr **out);

/* ---- render context ------------------------------------------------------------ */
typedef struct jscope jscope;
struct jscope {
    jscope *parent;
    const char **names;
    jv *vals;
    int n, cap;
};

typedef struct {
    const char *what; /* template name for errors */
    jarena *ar;       /* per-render values */
    jbuf *out;
    jscope *globals;  /* the template's top-level scope (builtins, variables) */
    jscope *scope;    /* the innermost scope, where `set` writes */
    int depth;        /* macro/loop nesting, bounded */
    jv filter_input;  /* body of a {% filter %} block: the leaf of its chain */
} jctx;

/* Records "<what> line L: <message>" and returns `status`. */
int jerr(const jctx *c, int line, int status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Internal status for loop control, never returned to callers of the engine. */
enum { JR_BREAK = -1000, JR_CONTINUE = -1001 };

/* jinja_value.c */
int jv_truthy(jv v);
int jv_equal(jv a, jv b);
/* Python ordering: *cmp = -1/0/1; error when the types cannot be ordered. */
int jv_compare(const jctx *c, int line, jv a, jv b, int *cmp);
/* Python str(): appends to buf (undefined -> ""). */
int jv_write_str(jbuf *b, jv v);
int jv_write_repr(jbuf *b, jv v);
/* str(v) as a value (strings returned as is). */
int jv_to_str(const jctx *c, jv v, jv *out);
void jv_float_repr(char *buf, size_t n, double f);
const char *jv_type_name(jv v);
jlist *jl_new(jarena *a, size_t cap);
int jl_push(jarena *a, jlist *l, jv v);
jdict *jd_new(jarena *a, size_t cap);
/* Inserts or replaces. */
int jd_set(jarena *a, jdict *d, jv key, jv val);
/* NULL when absent. */
jv *jd_get(jdict *d, jv key);
jv *jd_get_str(jdict *d, const char *key, size_t n);
/* Iterable -> list (strings by code point, dicts by key, undefined -> empty). */
int jv_iterate(const jctx *c, int line, jv v, jlist **out);
/* len(); error for types without one. */
int jv_length(const jctx *c, int line, jv v, int64_t *out);
struct cJSON;
int jv_from_json(jarena *a, const struct cJSON *j, jv *out);

/* jinja_json.c: json.dumps(v, ensure_ascii, indent, separators, sort_keys). */
typedef struct {
    int ensure_ascii;
    const char *indent; /* NULL: single line */
    size_t indent_n;
    const char *item_sep, *key_sep;
    size_t item_sep_n, key_sep_n;
    int sort_keys;
} jjson_opts;
int jv_tojson(const jctx *c, int line, jv v, const jjson_opts *o, jbuf *b);

/* jinja_str.c: UTF-8 and Python string helpers. */
size_t ju_decode(const char *s, size_t n, size_t i, uint32_t *cp); /* returns bytes used (>=1) */
int ju_encode(uint32_t cp, char *out);
size_t ju_cplen(const char *s, size_t n);
/* byte offset of code point index k (clamped to n). */
size_t ju_offset(const char *s, size_t n, int64_t k);
int ju_isspace(uint32_t cp);
/* Python str.strip/lstrip/rstrip: chars NULL = whitespace. which: 1 left, 2 right, 3 both. */
jv ju_strip(jv s, const char *chars, size_t nchars, int which);
int ju_lower(jarena *a, jv s, int upper, jv *out);
int ju_capitalize(jarena *a, jv s, jv *out);
int ju_title(jarena *a, jv s, jv *out);
int ju_replace(jarena *a, jv s, jv old, jv new_, int64_t count, jv *out);
/* Python str.split(sep, maxsplit); sep NULL = whitespace. from_right = rsplit. */
int ju_split(const jctx *c, int line, jv s, const jv *sep, int64_t maxsplit, int from_right,
             jv *out);
int ju_splitlines(jarena *a, jv s, int keepends, jlist **out);
/* Byte position of needle in s at or after byte `from`, or -1. */
int64_t ju_find(const char *s, size_t n, const char *needle, size_t nn, size_t from);
jv ju_concat(jarena *a, jv x, jv y, int *oom);

/* jinja_eval.c, jinja_access.c */
int jeval(jctx *c, const jexpr *e, jv *out);
int jcall_value(jctx *c, int line, jv callee, jv *args, int nargs, const char **kwn, jv *kwv,
                int nkw, jv *out);
int jget_attr(jctx *c, int line, jv obj, const char *name, size_t n, jv *out);
int jget_item(jctx *c, int line, jv obj, jv key, jv *out);
jv *jscope_lookup(jscope *s, const char *name);
/* "'name' is undefined (what)" or "what of an undefined value". */
int jundefined_error(jctx *c, int line, jv v, const char *what);
int jeval_slice(jctx *c, const jexpr *e, jv *out); /* JE_SLICE */
int jscope_set(jarena *a, jscope *s, const char *name, jv v);

/* jinja_exec.c */
int jexec(jctx *c, jscope *scope, const jstmt *s);
int jcall_macro(jctx *c, int line, const jstmt *m, jv *args, int nargs, const char **kwn, jv *kwv,
                int nkw, jv *out);

/* Arguments of a builtin call: positional then keyword. */
typedef struct {
    jv *pos;
    int npos;
    const char **kwn;
    jv *kwv;
    int nkw;
} jargs;
/* i-th positional or the keyword `name`; NULL when absent. */
const jv *jarg(const jargs *a, int i, const char *name);
/* Error if there are more than `max_pos` positionals or an unknown keyword
 * (`known` is a NULL-terminated list). */
int jargs_check(const jctx *c, int line, const char *fname, const jargs *a, int max_pos,
                const char *const *known);

/* jinja_filters.c */
int jfilter_lookup(const char *name);
int jfilter_apply(jctx *c, int line, int id, jv v, const jargs *a, jv *out);
/* jinja_tests.c */
int jtest_lookup(const char *name);
int jtest_apply(jctx *c, int line, int id, jv v, const jargs *a, int *out);
int jfunc_lookup(const char *name);
int jfunc_call(jctx *c, int line, int fn, const jargs *a, jv *out);
/* jinja_methods.c */
int jmethod_lookup(jv self, const char *name, size_t n);
int jmethod_call(jctx *c, int line, const jmethod *m, const jargs *a, jv *out);

#endif
