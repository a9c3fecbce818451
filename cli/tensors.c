/* collage tensors - inspect and compare safetensors files (used by the shell
 * tests and the GPU parity script; no Python needed):
 *   collage tensors ls F
 *   collage tensors ids F NAME            integer tensor -> "1,2,3" (all elements)
 *   collage tensors diff A[:NAME] B[:NAME] [--tol X] [--rows R0:R1] [--json]
 * diff prints max|a-b| / max|b| over the (selected rows of) float tensors and exits
 * 1 when it exceeds --tol. NAME defaults to "logits". */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "cli_ctx.h"
#include "collage.h"
#include "verbs.h"

/* "path" or "path:NAME" (a colon inside a .safetensors path is part of the path). */
static int open_named(const char *arg, cl_tensor_file **f, size_t *index, cl_tensor_desc *d)
{
    char path[4096];
    const char *colon = strrchr(arg, ':');
    const char *name = "logits";
    if (colon && colon != arg && strstr(colon, ".safetensors") == NULL) {
        snprintf(path, sizeof path, "%.*s", (int)(colon - arg), arg);
        name = colon + 1;
    } else {
        snprintf(path, sizeof path, "%s", arg);
    }
    CL_TRY(cl_tensor_file_open(path, f));
    long i = cl_tensor_file_find(*f, name);
    if (i < 0) {
        cl_tensor_file_close(*f);
        *f = NULL;
        return cl_err(CL_ERR_NOTFOUND, "%s: no tensor '%s'", path, name);
    }
    *index = (size_t)i;
    return cl_tensor_file_at(*f, *index, d);
}

static int cmd_ls(const char *path)
{
    cl_tensor_file *f;
    int rc = cl_tensor_file_open(path, &f);
    if (rc != CL_OK)
        return cli_fail(rc);
    for (size_t i = 0; i < cl_tensor_file_count(f); i++) {
        cl_tensor_desc d;
        cl_tensor_file_at(f, i, &d);
        printf("%-48s %-5s [", d.name, d.dtype);
        for (int k = 0; k < d.ndim; k++)
            printf("%s%lld", k ? ", " : "", (long long)d.shape[k]);
        printf("]\n");
    }
    cl_tensor_file_close(f);
    return 0;
}

static int cmd_ids(const char *path, const char *name)
{
    cl_tensor_file *f;
    int rc = cl_tensor_file_open(path, &f);
    if (rc != CL_OK)
        return cli_fail(rc);
    long i = cl_tensor_file_find(f, name);
    cl_tensor_desc d;
    int64_t *v = NULL;
    if (i < 0 || cl_tensor_file_at(f, (size_t)i, &d) != CL_OK || !d.is_int) {
        rc = cl_err(CL_ERR_NOTFOUND, "%s: no integer tensor '%s'", path, name);
    } else if (!(v = malloc((size_t)(d.numel ? d.numel : 1) * sizeof *v))) {
        rc = cl_err(CL_ERR_NOMEM, "out of memory");
    } else {
        rc = cl_tensor_file_read_i64(f, (size_t)i, v);
        for (int64_t k = 0; rc == CL_OK && k < d.numel; k++)
            printf("%s%lld", k ? "," : "", (long long)v[k]);
        if (rc == CL_OK)
            printf("\n");
    }
    free(v);
    cl_tensor_file_close(f);
    return rc == CL_OK ? 0 : cli_fail(rc);
}

/* Rows [r0, r1) of the first dimension ("R0:R1"). */
static int parse_rows(const char *s, int64_t *r0, int64_t *r1)
{
    char *end;
    long long a = strtoll(s, &end, 10);
    if (end == s || *end != ':')
        return -1;
    const char *b_s = end + 1;
    long long b = strtoll(b_s, &end, 10);
    if (end == b_s || *end)
        return -1;
    *r0 = a;
    *r1 = b;
    return 0;
}

static int cmd_diff(const char *a_arg, const char *b_arg, const char *rows, double tol, int json)
{
    cl_tensor_file *fa = NULL, *fb = NULL;
    size_t ia = 0, ib = 0;
    cl_tensor_desc ta, tb;
    int e = open_named(a_arg, &fa, &ia, &ta);
    if (e == CL_OK)
        e = open_named(b_arg, &fb, &ib, &tb);
    if (e == CL_OK && (!ta.is_float || !tb.is_float))
        e = cl_err(CL_ERR_FORMAT, "diff: both tensors must be float");
    int64_t na = e == CL_OK ? ta.numel : 0, nb = e == CL_OK ? tb.numel : 0;
    int64_t r0 = 0, r1 = -1;
    if (e == CL_OK && rows && parse_rows(rows, &r0, &r1) != 0)
        e = cl_err(CL_ERR_ARG, "--rows: expected R0:R1");
    float *a = NULL, *b = NULL;
    if (e == CL_OK) {
        a = malloc((size_t)(na ? na : 1) * 4);
        b = malloc((size_t)(nb ? nb : 1) * 4);
        if (!a || !b)
            e = cl_err(CL_ERR_NOMEM, "out of memory");
    }
    if (e == CL_OK)
        e = cl_tensor_file_read_f32(fa, ia, a);
    if (e == CL_OK)
        e = cl_tensor_file_read_f32(fb, ib, b);
    int64_t off = 0, n = na;
    if (e == CL_OK && rows) {
        int64_t ra = ta.ndim ? ta.shape[0] : 1, rb = tb.ndim ? tb.shape[0] : 1;
        int64_t wa = ra ? na / ra : 0, wb = rb ? nb / rb : 0;
        if (wa != wb || r0 < 0 || r1 > ra || r1 > rb || r0 > r1)
            e = cl_err(CL_ERR_ARG, "--rows %s: out of range or row widths differ", rows);
        off = r0 * wa;
        n = (r1 - r0) * wa;
    } else if (e == CL_OK && na != nb) {
        e = cl_err(CL_ERR_FORMAT, "diff: element counts differ (%lld vs %lld)", (long long)na,
                   (long long)nb);
    }
    double md = 0, mr = 0;
    for (int64_t i = 0; e == CL_OK && i < n; i++) {
        double d = fabs((double)a[off + i] - b[off + i]);
        if (isnan(d))
            d = INFINITY;
        md = d > md ? d : md;
        mr = fabs((double)b[off + i]) > mr ? fabs((double)b[off + i]) : mr;
    }
    double rel = mr > 0 ? md / mr : md;
    int rc;
    if (e == CL_OK) {
        if (json)
            printf("{\"max_abs_diff\":%.9g,\"max_abs_ref\":%.9g,\"rel_err\":%.9g,\"pass\":%s}\n",
                   md, mr, rel, tol < 0 || rel <= tol ? "true" : "false");
        else
            printf("rel_err %.6g (max|a-b| %.6g, max|b| %.6g)%s\n", rel, md, mr,
                   tol < 0 ? "" : rel <= tol ? " ok" : " FAIL");
        rc = tol >= 0 && !(rel <= tol) ? 1 : 0;
    } else {
        rc = cli_fail(e);
    }
    free(a);
    free(b);
    cl_tensor_file_close(fa);
    cl_tensor_file_close(fb);
    return rc;
}

int cmd_tensors(int argc, char **argv)
{
    double tol = -1;
    const char *rows = NULL;
    int json = 0;
    cli_opt opts[] = {
        {"tol", OPT_FLOAT, &tol, "X", "diff: fail (exit 1) when the relative error exceeds X", 0,
         1e300},
        {"rows", OPT_STR, &rows, "R0:R1", "diff: compare rows [R0, R1) of the first dimension", 0,
         0},
        {"json", OPT_FLAG, &json, NULL, "diff: one JSON object on stdout", 0, 0},
        {0},
    };
    cli_spec spec = {"tensors", "ls F | ids F NAME | diff A[:NAME] B[:NAME] [--tol X]",
                     "Inspects and compares safetensors files.", opts, 2, 3};
    int npos;
    char **pos;
    int rc = cli_parse(&spec, argc, argv, &npos, &pos);
    if (rc)
        return rc < 0 ? 0 : rc;
    const char *sub = pos[0];
    if (!strcmp(sub, "ls") && npos == 2)
        rc = cmd_ls(pos[1]);
    else if (!strcmp(sub, "ids") && npos == 3)
        rc = cmd_ids(pos[1], pos[2]);
    else if (!strcmp(sub, "diff") && npos == 3)
        rc = cmd_diff(pos[1], pos[2], rows, tol, json);
    else
        rc = cli_usage_error("tensors", "expected: ls F | ids F NAME | diff A B");
    free(pos);
    return rc;
}
