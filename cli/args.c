#include "args.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/status.h"

#define MAX_GIVEN 64
static const char *given[MAX_GIVEN];
static int ngiven;

static void print_help(const cli_spec *s)
{
    printf("usage: collage %s %s\n\n%s\n", s->verb, s->usage, s->summary);
    if (s->opts && s->opts[0].name)
        printf("\noptions:\n");
    for (const cli_opt *o = s->opts; o && o->name; o++) {
        char left[64];
        snprintf(left, sizeof left, "--%s%s%s", o->name, o->metavar ? " " : "",
                 o->metavar ? o->metavar : "");
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
        char *end;
        errno = 0;
        switch (o->type) {
        case OPT_STR: *(const char **)o->dest = val; break;
        case OPT_INT: {
            long long v = strtoll(val, &end, 0);
            if (end == val || *end || errno) {
                rc = cli_usage_error(spec->verb, "option '--%s': '%s' is not an integer",
                                     o->name, val);
                break;
            }
            *(int64_t *)o->dest = v;
            break;
        }
        case OPT_FLOAT: {
            double v = strtod(val, &end);
            if (end == val || *end || errno) {
                rc = cli_usage_error(spec->verb, "option '--%s': '%s' is not a number", o->name,
                                     val);
                break;
            }
            *(double *)o->dest = v;
            break;
        }
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
