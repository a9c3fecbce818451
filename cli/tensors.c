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
#include "common/status.h"
#include "model/safetensors.h"
#include "verbs.h"

static int open_named(const char *arg, cl_safetensors **st, const cl_st_tensor **t)
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
    int rc = cl_st_open_file(path, st);
    if (rc != CL_OK)
        return rc;
    *t = cl_st_find(*st, name);
    if (!*t) {
        cl_st_close(*st);
        return cl_err(CL_ERR_NOTFOUND, "%s: no tensor '%s'", path, name);
    }
    return CL_OK;
}

static int cmd_ls(const char *path)
{
    cl_safetensors *st;
    int rc = cl_st_open_file(path, &st);
    if (rc != CL_OK)
        return cli_fail(rc);
    for (size_t i = 0; i < cl_st_count(st); i++) {
        const cl_st_tensor *t = cl_st_at(st, i);
        printf("%-48s %-5s [", t->name, cl_dtype_name(t->dtype));
        for (int d = 0; d < t->ndim; d++)
            printf("%s%lld", d ? ", " : "", (long long)t->shape[d]);
        printf("]\n");
    }
    cl_st_close(st);
    return 0;
}

static int cmd_ids(const char *path, const char *name)
{
    cl_safetensors *st;
    int rc = cl_st_open_file(path, &st);
    if (rc != CL_OK)
        return cli_fail(rc);
    const cl_st_tensor *t = cl_st_find(st, name);
    if (!t || (t->dtype != CL_I64 && t->dtype != CL_I32)) {
        cl_st_close(st);
        cl_err(CL_ERR_NOTFOUND, "%s: no integer tensor '%s'", path, name);
        return cli_fail(CL_ERR_NOTFOUND);
    }
    int64_t n = cl_st_numel(t);
    for (int64_t i = 0; i < n; i++) {
        long long v;
        if (t->dtype == CL_I64) {
            int64_t x;
            memcpy(&x, (const char *)t->data + 8 * i, 8);
            v = x;
        } else {
            int32_t x;
            memcpy(&x, (const char *)t->data + 4 * i, 4);
            v = x;
        }
        printf("%s%lld", i ? "," : "", v);
    }
    printf("\n");
    cl_st_close(st);
    return 0;
}

int cmd_tensors(int argc, char **argv)
{
    double tol = -1;
    const char *rows = NULL;
    int json = 0;
    cli_opt opts[] = {
        {"tol", OPT_FLOAT, &tol, "X", "diff: fail (exit 1) when the relative error exceeds X"},
        {"rows", OPT_STR, &rows, "R0:R1", "diff: compare rows [R0, R1) of the first dimension"},
        {"json", OPT_FLAG, &json, NULL, "diff: one JSON object on stdout"},
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
    if (!strcmp(sub, "ls") && npos == 2) {
        rc = cmd_ls(pos[1]);
    } else if (!strcmp(sub, "ids") && npos == 3) {
        rc = cmd_ids(pos[1], pos[2]);
    } else if (!strcmp(sub, "diff") && npos == 3) {
        cl_safetensors *sa = NULL, *sb = NULL;
        const cl_st_tensor *ta, *tb;
        int e = open_named(pos[1], &sa, &ta);
        if (e == CL_OK)
            e = open_named(pos[2], &sb, &tb);
        if (e == CL_OK && (!cl_dtype_is_float(ta->dtype) || !cl_dtype_is_float(tb->dtype)))
            e = cl_err(CL_ERR_FORMAT, "diff: both tensors must be float");
        int64_t na = e == CL_OK ? cl_st_numel(ta) : 0, nb = e == CL_OK ? cl_st_numel(tb) : 0;
        int64_t r0 = 0, r1 = -1;
        if (e == CL_OK && rows && sscanf(rows, "%lld:%lld", (long long *)&r0, (long long *)&r1) != 2)
            e = cl_err(CL_ERR_ARG, "--rows: expected R0:R1");
        float *a = NULL, *b = NULL;
        if (e == CL_OK) {
            a = malloc((size_t)(na ? na : 1) * 4);
            b = malloc((size_t)(nb ? nb : 1) * 4);
            cl_st_read_f32(ta, a);
            cl_st_read_f32(tb, b);
        }
        int64_t off = 0, n = na;
        if (e == CL_OK && rows) {
            int64_t ra = ta->ndim ? ta->shape[0] : 1, rb = tb->ndim ? tb->shape[0] : 1;
            int64_t wa = ra ? na / ra : 0, wb = rb ? nb / rb : 0;
            if (wa != wb || r0 < 0 || r1 > ra || r1 > rb || r0 > r1)
                e = cl_err(CL_ERR_ARG, "--rows %s: out of range or row widths differ", rows);
            off = r0 * wa;
            n = (r1 - r0) * wa;
        } else if (e == CL_OK && na != nb) {
            e = cl_err(CL_ERR_FORMAT, "diff: element counts differ (%lld vs %lld)",
                       (long long)na, (long long)nb);
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
        cl_st_close(sa);
        cl_st_close(sb);
    } else {
        rc = cli_usage_error("tensors", "expected: ls F | ids F NAME | diff A B");
    }
    free(pos);
    return rc;
}
