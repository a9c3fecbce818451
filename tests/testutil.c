#include "testutil.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/fileio.h"
#include "model/safetensors.h"

static char slots[8][4096];
static int slot_i;
static int n_skipped;

void tu_note_skip(void) { n_skipped++; }

int tu_run_group_tests(const char *name, const struct CMUnitTest *tests, size_t n,
                       CMFixtureFunction setup, CMFixtureFunction teardown)
{
    int failed = _cmocka_run_group_tests(name, tests, n, setup, teardown);
    if (failed || !n_skipped)
        return failed;
    print_message("SKIP: %d of %zu case(s) skipped, none failed: exit 77 (ctest: Skipped)\n",
                  n_skipped, n);
    return 77;
}

static char *next_slot(void) { return slots[slot_i++ % 8]; }

int tu_have_shared(void)
{
    const char *s = getenv("COLLAGE_SHARED");
    char p[4200];
    if (!s)
        return 0;
    snprintf(p, sizeof p, "%s/golden", s);
    return cl_is_dir(p);
}

const char *tu_shared(const char *rel)
{
    if (!tu_have_shared()) {
        const char *req = getenv("COLLAGE_REQUIRE_SHARED");
        if (req && atoi(req))
            fail_msg("../shared is missing (COLLAGE_SHARED=%s) and COLLAGE_REQUIRE_SHARED=1",
                     getenv("COLLAGE_SHARED") ? getenv("COLLAGE_SHARED") : "(unset)");
        print_message("SKIP: ../shared not found (set COLLAGE_SHARED); skipping %s\n", rel);
        skip();
    }
    char *b = next_slot();
    snprintf(b, 4096, "%s/%s", getenv("COLLAGE_SHARED"), rel);
    return b;
}

const char *tu_bin(void)
{
    const char *b = getenv("COLLAGE_BIN");
    return b ? b : "collage";
}

const char *tu_tmpdir(const char *name)
{
    const char *t = getenv("COLLAGE_TMP");
    char *b = next_slot();
    snprintf(b, 4096, "%s/%s.%ld", t ? t : "/tmp", name, (long)getpid());
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", b, b);
    if (system(cmd) != 0)
        fail_msg("cannot create %s", b);
    return b;
}

int tu_run(const char *cmd, char **out)
{
    FILE *p = popen(cmd, "r");
    if (!p)
        fail_msg("popen failed: %s", cmd);
    char *buf = NULL;
    size_t len = 0;
    if (cl_read_stream(p, &buf, &len) != 0)
        buf = NULL;
    int st = pclose(p);
    if (out)
        *out = buf;
    else
        free(buf);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

int tu_runf(char **out, const char *fmt, ...)
{
    char cmd[16384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    return tu_run(cmd, out);
}

static cl_safetensors *open_st(const char *path)
{
    cl_safetensors *st;
    if (cl_st_open_file(path, &st) != 0)
        fail_msg("cannot open %s", path);
    return st;
}

int tu_has_tensor(const char *path, const char *name)
{
    cl_safetensors *st = open_st(path);
    int r = cl_st_find(st, name) != NULL;
    cl_st_close(st);
    return r;
}

int64_t tu_load_f32(const char *path, const char *name, float **data, int64_t *shape, int *ndim)
{
    cl_safetensors *st = open_st(path);
    const cl_st_tensor *t = cl_st_find(st, name);
    if (!t)
        fail_msg("%s: no tensor '%s'", path, name);
    int64_t n = cl_st_numel(t);
    *data = malloc((size_t)(n ? n : 1) * sizeof(float));
    if (cl_st_read_f32(t, *data) != 0)
        fail_msg("%s: tensor '%s' is not float", path, name);
    if (shape)
        for (int i = 0; i < t->ndim; i++)
            shape[i] = t->shape[i];
    if (ndim)
        *ndim = t->ndim;
    cl_st_close(st);
    return n;
}

int64_t tu_load_i64(const char *path, const char *name, int64_t **data)
{
    cl_safetensors *st = open_st(path);
    const cl_st_tensor *t = cl_st_find(st, name);
    if (!t)
        fail_msg("%s: no tensor '%s'", path, name);
    int64_t n = cl_st_numel(t);
    *data = malloc((size_t)(n ? n : 1) * sizeof(int64_t));
    for (int64_t i = 0; i < n; i++) {
        if (t->dtype == CL_I64)
            memcpy(&(*data)[i], (const char *)t->data + 8 * i, 8);
        else if (t->dtype == CL_I32) {
            int32_t v;
            memcpy(&v, (const char *)t->data + 4 * i, 4);
            (*data)[i] = v;
        } else if (t->dtype == CL_U8)
            (*data)[i] = ((const uint8_t *)t->data)[i];
        else
            fail_msg("%s: tensor '%s' is not integer", path, name);
    }
    cl_st_close(st);
    return n;
}

double tu_rel_err(const float *a, const float *b, size_t n)
{
    double md = 0, mr = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (isnan(d))
            return INFINITY;
        if (d > md)
            md = d;
        if (fabs((double)b[i]) > mr)
            mr = fabs((double)b[i]);
    }
    return mr > 0 ? md / mr : md;
}
