/* test_fsize - a write that fails for lack of space (RLIMIT_FSIZE in a child process,
 * SIGXFSZ ignored, so write() fails with EFBIG) aborts its transaction: the error is
 * clean, earlier data stays intact and readable, verify is clean. The same through the
 * write-behind thread: the failure is reported for that put, the next put is stored. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"
#include "storetest.h"

/* Child: exit 0 if the big put failed with FULL/IO, earlier data read fine and a
 * put that fits still works; else a code saying what went wrong. */
static int child(const char *dir)
{
    cl_store *st = st_open(dir, 0, 0, 0);
    char path[4200];
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    struct stat sb;
    if (stat(path, &sb))
        return 10;
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit rl = {(rlim_t)sb.st_size + 64 * 1024, (rlim_t)sb.st_size + 64 * 1024};
    if (setrlimit(RLIMIT_FSIZE, &rl))
        return 11;
    int rc = st_put(st, CL_STORE_SNAP, 100, 8 * MIB, 0);
    print_message("expected failure: %s\n", cl_errmsg());
    if (rc != CL_ERR_FULL)
        return 12;
    if (!strstr(cl_errmsg(), dir) || !strstr(cl_errmsg(), "nothing was changed"))
        return 13;
    for (uint64_t i = 0; i < 4; i++)
        if (st_check(st, CL_STORE_KV, i) != CL_OK)
            return 14;
    if (st_has(st, CL_STORE_SNAP, 100))
        return 15;
    /* the environment is still usable: a small write fits under the limit */
    if (st_put(st, CL_STORE_KV, 50, 1000, 0) != CL_OK)
        return 16;
    if (st_check(st, CL_STORE_KV, 50) != CL_OK)
        return 17;
    /* write-behind: the same failure, reported for that put only */
    cl_store_writer *w;
    if (cl_store_writer_open(st, NULL, &w))
        return 18;
    uint8_t *big = malloc(8 * MIB);
    st_fill(big, 8 * MIB, 101);
    uint64_t small_i = 51;
    cl_store_info info = {0};
    info.tokens = 51;
    info.meta = &small_i;
    info.meta_bytes = 8;
    uint8_t small[1000];
    st_fill(small, sizeof small, 51);
    cl_key kb = st_key(101), ks = st_key(51);
    cl_store_piece pb = {big, 8 * MIB}, ps = {small, sizeof small};
    uint64_t tb, ts;
    if (cl_store_writer_put(w, CL_STORE_SNAP, &kb, NULL, &pb, 1, 0, NULL, NULL, &tb) ||
        cl_store_writer_put(w, CL_STORE_KV, &ks, &info, &ps, 1, CL_STORE_PUT_COPY, NULL, NULL,
                            &ts))
        return 19;
    rc = cl_store_writer_wait(w, tb);
    print_message("expected failure: %s\n", cl_errmsg());
    if (rc != CL_ERR_FULL || !strstr(cl_errmsg(), dir) || !strstr(cl_errmsg(), "not stored"))
        return 20;
    if (cl_store_writer_wait(w, ts) != CL_OK)
        return 21;
    if (cl_store_writer_close(w) != CL_ERR_FULL) /* the flush reports it too */
        return 22;
    free(big);
    if (st_check(st, CL_STORE_KV, 51) != CL_OK || st_has(st, CL_STORE_SNAP, 101))
        return 23;
    cl_store_close(st);
    return 0;
}

static void test_write_over_file_size_limit(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("fsize");
    cl_store *st = st_open(dir, 0, 0, 0);
    for (uint64_t i = 0; i < 4; i++)
        assert_int_equal(st_put(st, CL_STORE_KV, i, 256 * 1024, 0), CL_OK);
    cl_store_close(st);

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(child(dir));
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    if (WEXITSTATUS(status))
        fail_msg("child failed with code %d", WEXITSTATUS(status));

    st = st_open(dir, 0, 0, 0);
    for (uint64_t i = 0; i < 4; i++)
        assert_int_equal(st_check(st, CL_STORE_KV, i), CL_OK);
    assert_int_equal(st_check(st, CL_STORE_KV, 50), CL_OK);
    assert_int_equal(st_check(st, CL_STORE_KV, 51), CL_OK);
    assert_int_equal(st_has(st, CL_STORE_SNAP, 100), 0);
    assert_int_equal(st_has(st, CL_STORE_SNAP, 101), 0);
    cl_store_verify_result r;
    assert_int_equal(cl_store_verify(st, NULL, NULL, NULL, &r), CL_OK);
    assert_int_equal(r.checked, 6);
    assert_int_equal(r.bad + r.index_fixed, 0);
    /* without the limit the same write works */
    assert_int_equal(st_put(st, CL_STORE_SNAP, 100, 8 * MIB, 0), CL_OK);
    assert_int_equal(st_check(st, CL_STORE_SNAP, 100), CL_OK);
    cl_store_close(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_write_over_file_size_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
