#include "args.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collage.h"

#define MAX_GIVEN 64
static const char *given[MAX_GIVEN];
static int ngiven;

/* "1", "-3", "+7": a whole decimal number that fits int64 (no hex, no spaces). */
static int parse_int(const char *s, int64_t *out, int *overflow)
{
    const char *p = s;
    *overflow = 0;
    if (*p == '+' || *p == '-')
        p++;
    if (!*p)
        return -1;
    for (const char *q = p; *q; q++)
        if (*q < '0' || *q > '9')
            return -1;
    errno = 0;
    long long v = strtoll(s, NULL, 10);
    if (errno == ERANGE) {
        *overflow = 1;
        return -1;
    }
    *out = v;
    return 0;
}

int cli_parse_size(const char *s, int64_t *out)
{
    const char *p = s;
    if (*p < '0' || *p > '9')
        return -1;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(p, &end, 10);
    if (errno == ERANGE)
        return -1;
    static const struct {
        const char *suffix;
        uint64_t mul;
    } units[] = {
        {"", 1},         {"B", 1},           {"K", 1ull << 10},  {"KiB", 1ull << 10},
        {"M", 1ull << 20}, {"MiB", 1ull << 20}, {"G", 1ull << 30}, {"GiB", 1ull << 30},
        {"T", 1ull << 40}, {"TiB", 1ull << 40}, {"KB", 1000ull},   {"MB", 1000000ull},
        {"GB", 1000000000ull}, {"TB", 1000000000000ull}, {"k", 1ull << 10},
    };
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (!strcmp(end, units[i].suffix)) {
            if (v > (uint64_t)INT64_MAX / units[i].mul)
                return -1;
            *out = (int64_t)(v * units[i].mul);
            return 0;
        }
    return -1;
}

static int has_range(const cli_opt *o) { return o->hi > o->lo; }

/* The value of a numeric option, checked; 0 or the usage error's exit code. */
static int parse_number(const cli_spec *spec, const cli_opt *o, const char *val)
{
    if (o->type == OPT_FLOAT) {
        char *end;
        errno = 0;
        double v = strtod(val, &end);
        if (end == val || *end || !isfinite(v) || (has_range(o) && (v < o->lo || v > o->hi))) {
            if (has_range(o))
                return cli_usage_error(spec->verb, "--%s: '%s' is not a number in [%g, %g]",
                                       o->name, val, o->lo, o->hi);
            return cli_usage_error(spec->verb, "--%s: '%s' is not a finite number", o->name,
                                   val);
        }
        *(double *)o->dest = v;
        return 0;
    }
    int64_t v = 0;
    int overflow = 0;
    int bad = o->type == OPT_SIZE ? cli_parse_size(val, &v) : parse_int(val, &v, &overflow);
    if (!bad && has_range(o) && ((double)v < o->lo || (double)v > o->hi))
        bad = overflow = 1;
    if (bad) {
        const char *what = o->type == OPT_SIZE ? "a size (bytes, or with K/M/G/T)" : "an integer";
        if (has_range(o) && (overflow || o->type == OPT_SIZE))
            return cli_usage_error(spec->verb, "--%s: '%s' is not %s in [%.0f, %.0f]", o->name,
                                   val, what, o->lo, o->hi);
        if (overflow)
            return cli_usage_error(spec->verb, "--%s: '%s' is out of range", o->name, val);
        return cli_usage_error(spec->verb, "--%s: '%s' is not %s", o->name, val, what);
    }
    *(int64_t *)o->dest = v;
    return 0;
}

static void print_help(const cli_spec *s)
{
    printf("usage: collage %s %s\n\n%s\n", s->verb, s->usage, s->summary);
    if (s->opts && s->opts[0].name)
        printf("\noptions:\n");
    for (const cli_opt *o = s->opts; o && o->name; o++) {
        char left[64];
        snprintf(left, sizeof left, "--%s%s%s", o->name, o->metavar ? " " : "",
                 o->metavar ? o->metavar : "");
        if (has_range(o) && o->type != OPT_FLOAT)
            printf("  %-26s %s [%.0f..%.0f]\n", left, o->help, o->lo, o->hi);
        else
            printf("  %-26s %s\n", left, o->help);
    }
    printf("  %-26s %s\n", "--help", "show this help");
}

int cli_usage_error(const char *verb, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "collage %s: ", verb);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (see 'collage %s --help')\n", verb);
    va_end(ap);
    return 2;
}

int cli_given(const cli_spec *spec, const char *name)
{
    (void)spec;
    for (int i = 0; i < ngiven; i++)
        if (!strcmp(given[i], name))
            return 1;
    return 0;
}

int cli_parse(const cli_spec *spec, int argc, char **argv, int *npos, char ***pos)
{
    char **p = calloc((size_t)argc + 1, sizeof *p);
    int np = 0, rc = 0;
    ngiven = 0;
    if (!p)
        return cli_usage_error(spec->verb, "out of memory");
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            print_help(spec);
            free(p);
            return -1;
        }
        if (strncmp(a, "--", 2) || !a[2]) {
            p[np++] = argv[i];
            continue;
        }
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        const cli_opt *o = NULL;
        for (const cli_opt *q = spec->opts; q && q->name; q++)
            if (strlen(q->name) == nlen && !strncmp(q->name, name, nlen))
                o = q;
        if (!o) {
            rc = cli_usage_error(spec->verb, "unknown option '--%.*s'", (int)nlen, name);
            break;
        }
        if (ngiven < MAX_GIVEN)
            given[ngiven++] = o->name;
        if (o->type == OPT_FLAG) {
            if (eq) {
                rc = cli_usage_error(spec->verb, "option '--%s' takes no value", o->name);
                break;
            }
            *(int *)o->dest = 1;
            continue;
        }
        const char *val = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (!val) {
            rc = cli_usage_error(spec->verb, "option '--%s' needs a value", o->name);
            break;
        }
        switch (o->type) {
        case OPT_STR:
            if (!*val)
                rc = cli_usage_error(spec->verb, "--%s: empty value", o->name);
            else
                *(const char **)o->dest = val;
            break;
        case OPT_INT:
        case OPT_FLOAT:
        case OPT_SIZE: rc = parse_number(spec, o, val); break;
        case OPT_MULTI: {
            cli_multi *m = o->dest;
            const char **nv = realloc(m->v, (size_t)(m->n + 1) * sizeof *nv);
            if (!nv) {
                rc = cli_usage_error(spec->verb, "out of memory");
                break;
            }
            m->v = nv;
            m->v[m->n++] = val;
            break;
        }
        default: break;
        }
        if (rc)
            break;
    }
    if (!rc && np < spec->min_pos)
        rc = cli_usage_error(spec->verb, "missing argument");
    if (!rc && spec->max_pos >= 0 && np > spec->max_pos)
        rc = cli_usage_error(spec->verb, "unexpected argument '%s'", p[spec->max_pos]);
    if (rc) {
        free(p);
        return rc;
    }
    if (pos)
        *pos = p;
    else
        free(p);
    if (npos)
        *npos = np;
    return 0;
}

int cli_fail(int status)
{
    const char *m = cl_errmsg();
    fprintf(stderr, "collage: %s\n", m[0] ? m : cl_status_name(status));
    return status == CL_ERR_ARG ? 2 : 1;
}

void cli_human_bytes(char *buf, size_t n, double b)
{
    const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int i = 0;
    while (b >= 1024 && i < 4) {
        b /= 1024;
        i++;
    }
    snprintf(buf, n, i ? "%.2f %s" : "%.0f %s", b, u[i]);
}
