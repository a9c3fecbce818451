/* test_fsize - every file writer survives a file-size limit (RLIMIT_FSIZE, SIGXFSZ
 * left at its default, fatal action): the write fails with CL_ERR_FULL and a
 * one-line message naming the file, no temp file is left, an earlier version of
 * the file is untouched, and SIGXFSZ is neither pending nor blocked afterwards;
 * `collage mkmodel` and `collage logits` exit 1 under `ulimit -f`. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <dirent.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/fileio.h"
#include "common/status.h"
#include "mkmodel/mkmodel.h"
#include "model/safetensors.h"
#include "testutil.h"

#define LIMIT_BYTES (64 * 1024)

/* 1 if dir holds a file whose name contains ".tmp." */
static int has_tmp_file(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int found = 0;
    for (struct dirent *e; (e = readdir(d));)
        found |= strstr(e->d_name, ".tmp.") != NULL;
    closedir(d);
    return found;
}

/* 0 if the failure was the clean kind for `path`, else a code naming the problem. */
static int check_failure(int rc, const char *path)
{
    const char *m = cl_errmsg();
    print_message("    expected failure: %s\n", m);
    if (rc != CL_ERR_FULL)
        return 20;
    if (!strstr(m, path) || strchr(m, '\n'))
        return 21;
    sigset_t pending, mask;
    if (sigpending(&pending) || sigismember(&pending, SIGXFSZ))
        return 22; /* a SIGXFSZ left pending would kill us once unblocked */
    if (pthread_sigmask(SIG_BLOCK, NULL, &mask) || sigismember(&mask, SIGXFSZ))
        return 23; /* the signal mask must be as it was */
    return 0;
}

/* Child: the writers under a 64 KiB limit; exit code 0 if all failed cleanly. */
static int child(const char *dir)
{
    signal(SIGXFSZ, SIG_DFL); /* the default action: the process dies */
    struct rlimit rl = {LIMIT_BYTES, LIMIT_BYTES};
    if (setrlimit(RLIMIT_FSIZE, &rl))
        return 2;
    size_t big = 4 * LIMIT_BYTES;
    char *data = calloc(1, big);
    if (!data)
        return 3;
    char path[4200];

    /* whole-file write over an existing file: fails, the old file stays */
    snprintf(path, sizeof path, "%s/old.txt", dir);
    int r = check_failure(cl_write_file_atomic(path, data, big), path);
    if (r)
        return r;
    char *text;
    size_t len;
    if (cl_read_file(path, &text, &len) || len != 4 || memcmp(text, "old\n", 4))
        return 4;
    free(text);
    /* a small write still works under the limit */
    if (cl_write_file_atomic(path, "new\n", 4))
        return 5;

    /* the pieces API: a failed write keeps failing; abort removes the temp file */
    snprintf(path, sizeof path, "%s/pieces.bin", dir);
    cl_afile *f;
    if (cl_afile_open(path, &f))
        return 6;
    if ((r = check_failure(cl_afile_write(f, data, big), path)))
        return r;
    if (cl_afile_write(f, "x", 1) != CL_ERR_FULL || cl_afile_commit(f) != CL_ERR_FULL)
        return 7;

    /* the safetensors writer */
    snprintf(path, sizeof path, "%s/big.safetensors", dir);
    cl_st_writer *w;
    int64_t shape[1] = {(int64_t)(big / 4)};
    if (cl_st_writer_create(&w) || cl_st_writer_add(w, "x", CL_F32, 1, shape, data))
        return 8;
    r = check_failure(cl_st_writer_write(w, path), path);
    cl_st_writer_free(w);
    if (r)
        return r;

    /* mkmodel: its first file over the limit stops it */
    snprintf(path, sizeof path, "%s/model", dir);
    cl_mkmodel_opts o = {"tiny-gka", path, 1, NULL, NULL, 0, 0};
    if ((r = check_failure(cl_mkmodel(&o), path)))
        return r;
    free(data);
    return has_tmp_file(dir) || has_tmp_file(path) ? 9 : 0;
}

static void test_writers_over_limit(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("fsize_writers");
    char path[4200];
    snprintf(path, sizeof path, "%s/old.txt", dir);
    assert_int_equal(cl_write_file_atomic(path, "old\n", 4), CL_OK);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(child(dir));
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (WIFSIGNALED(status))
        fail_msg("child killed by signal %d (SIGXFSZ is %d)", WTERMSIG(status), SIGXFSZ);
    if (WEXITSTATUS(status))
        fail_msg("child failed with code %d", WEXITSTATUS(status));
    char *text;
    size_t len;
    assert_int_equal(cl_read_file(path, &text, &len), CL_OK);
    assert_memory_equal(text, "new\n", 4);
    free(text);
}

/* The audit's repro: the CLI under `ulimit -f` (in 512-byte blocks) exits 1 with one
 * line naming the file, instead of dying of SIGXFSZ (exit 153). */
static void test_cli_over_limit(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("fsize_cli");
    char *err = NULL;
    int rc = tu_runf(&err, "ulimit -f 100; '%s' mkmodel --preset tiny-gka --out '%s/m' 2>&1 >/dev/null",
                     tu_bin(), dir);
    print_message("    mkmodel: %s", err ? err : "");
    assert_int_equal(rc, 1);
    assert_non_null(strstr(err, "collage: "));
    assert_non_null(strstr(err, "/m/model.safetensors: write failed"));
    free(err);
    char m[4200];
    snprintf(m, sizeof m, "%s/m", dir);
    assert_false(has_tmp_file(m));

    /* a model written without the limit; logits of 8 tokens are 16 KiB, over 5 KiB */
    assert_int_equal(tu_runf(NULL, "'%s' mkmodel --preset tiny-gka --out '%s/m' >/dev/null 2>&1",
                             tu_bin(), dir),
                     0);
    rc = tu_runf(&err, "ulimit -f 10; '%s' logits --model '%s/m' --input-ids 1,2,3,4,5,6,7,8 "
                       "--out '%s/l.safetensors' 2>&1 >/dev/null",
                 tu_bin(), dir, dir);
    print_message("    logits: %s", err ? err : "");
    assert_int_equal(rc, 1);
    assert_non_null(strstr(err, "/l.safetensors: write failed: File too large"));
    assert_ptr_equal(strchr(err, '\n'), err + strlen(err) - 1); /* one line */
    free(err);
    assert_false(has_tmp_file(dir));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_writers_over_limit),
        cmocka_unit_test(test_cli_over_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
