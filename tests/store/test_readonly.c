/* test_readonly - a store the user may read but not write opens read-only instead of
 * failing: lookups, stream, list, stat and verify (reporting only) work through the API
 * and `collage store ls|stat|verify`; writes fail with one line naming the store dir;
 * the data file is left byte for byte as it was (no use records, no deletions).
 * Variants: lock file writable (MDB_RDONLY with LMDB's reader table), lock file not
 * writable or absent (MDB_NOLOCK). Permissions do not bind root, so as root the checks
 * run in a child that drops to uid/gid 65534; without that privilege they are skipped
 * and only the explicit read-only flag is tested. A read-only mount (EROFS): a
 * read-only bind mount in a private mount namespace of a child, where the process may
 * create one (root, or user namespaces); skipped elsewhere. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <cmocka.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xxhash.h>

#include "testutil.h"
#include "storetest.h"
#include "store/internal.h"

#define NVALS 4

static uint64_t file_hash(const char *dir, const char *name)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *buf;
    size_t len;
    assert_int_equal(cl_read_file(path, &buf, &len), CL_OK);
    uint64_t h = XXH3_64bits(buf, len);
    free(buf);
    return h;
}

/* A store with values 1..NVALS, value NVALS damaged (verify finds it). */
static const char *make_store(const char *name)
{
    const char *dir = tu_tmpdir(name);
    cl_store *st = st_open(dir, 0, 0, 0);
    for (uint64_t i = 1; i <= NVALS; i++)
        assert_int_equal(st_put(st, (cl_store_kind)(1 + i % 3), i, 100000 * i, 0), CL_OK);
    cl_store_close(st);
    uint8_t *p = malloc(100000 * NVALS);
    st_fill(p, 100000 * NVALS, NVALS);
    assert_int_equal(st_flip_in_file(dir, p + 5000, 64), 1);
    free(p);
    return dir;
}

static int json_ok(int rc, char *out, const char *key, int want)
{
    cJSON *j = out ? cJSON_Parse(out) : NULL;
    int v = j && cJSON_GetObjectItem(j, key) ? cJSON_GetObjectItem(j, key)->valueint : -1;
    cJSON_Delete(j);
    free(out);
    return rc >= 0 && v == want;
}

/* Everything a reader needs, on a store this process may not write. Returns 0 when
 * all held, else the number of the failed check. want_nolock: -1 any. */
static int ro_checks(const char *dir, unsigned flags, const char *why, int want_nolock)
{
    cl_store_opts o = {0};
    o.flags = flags;
    cl_store *st;
    if (cl_store_open(dir, &o, &st) != CL_OK) {
        print_message("open: %s\n", cl_errmsg());
        return 1;
    }
    if (!cl_store_readonly(st) || !strstr(cl_store_readonly(st), why))
        return 2;
    if (want_nolock >= 0 && st->e->nolock != want_nolock)
        return 3;
    for (uint64_t i = 1; i < NVALS; i++)
        if (st_check(st, (cl_store_kind)(1 + i % 3), i) != CL_OK)
            return 4;
    if (st_check(st, (cl_store_kind)(1 + NVALS % 3), NVALS) != CL_ERR_CORRUPT)
        return 5;
    uint8_t *dst = malloc(100000 * NVALS);
    cl_store_txn *t;
    cl_key k2 = st_key(2);
    cl_store_stream_opts so = {0};
    so.threads = 2;
    so.dst = dst;
    so.dst_bytes = 100000 * NVALS;
    cl_store_value v;
    if (cl_store_txn_begin(st, &t) || cl_store_stream(t, (cl_store_kind)3, &k2, &so, &v))
        return 6;
    cl_store_txn_end(t);
    free(dst);
    /* writes: one line naming the store, nothing done */
    if (st_put(st, CL_STORE_KV, 99, 1000, 0) != CL_ERR_ARG)
        return 7;
    print_message("expected: %s\n", cl_errmsg());
    if (!strstr(cl_errmsg(), dir) || !strstr(cl_errmsg(), "read-only") ||
        !strstr(cl_errmsg(), why) || strchr(cl_errmsg(), '\n'))
        return 8;
    cl_key k1 = st_key(1);
    cl_store_writer *w;
    if (cl_store_del(st, (cl_store_kind)2, &k1) != CL_ERR_ARG ||
        cl_store_pin(st, (cl_store_kind)2, &k1, 1) != CL_ERR_ARG ||
        cl_store_writer_open(st, NULL, &w) != CL_ERR_ARG || cl_store_set_max_bytes(st, 5) == CL_OK)
        return 9;
    cl_store_stats s;
    if (cl_store_stat(st, &s) || s.total_count != NVALS)
        return 10;
    cl_store_verify_result r;
    if (cl_store_verify(st, NULL, NULL, NULL, &r) || r.checked != NVALS || r.bad != 1 ||
        r.removed != 0)
        return 11;
    cl_store_close(st);
    if (flags)
        return 0;
    /* the CLI */
    char *out = NULL;
    int rc = tu_runf(&out, "'%s' store ls --store '%s' --json", tu_bin(), dir);
    if (rc != 0 || !json_ok(rc, out, "count", NVALS))
        return 12;
    rc = tu_runf(&out, "'%s' store stat --store '%s' --json", tu_bin(), dir);
    if (rc != 0 || !json_ok(rc, out, "total_count", NVALS))
        return 13;
    rc = tu_runf(&out, "'%s' store verify --store '%s' --json 2>/dev/null", tu_bin(), dir);
    if (rc != 1 || !json_ok(rc, out, "removed", 0)) /* reports the bad value, keeps it */
        return 14;
    char hex[33];
    rc = tu_runf(&out, "'%s' store rm --store '%s' %s 2>&1", tu_bin(), dir, cl_key_hex(&k1, hex));
    int one_line = out && strstr(out, dir) && strstr(out, "read-only") &&
                   strchr(out, '\n') == out + strlen(out) - 1;
    free(out);
    if (rc != 1 || !one_line)
        return 15;
    return 0;
}

/* Runs ro_checks as uid/gid 65534 (root) or as ourselves; 77 = cannot drop privileges. */
static int run_unprivileged(const char *dir, const char *why, int want_nolock)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (geteuid() == 0 && (setgid(65534) || setuid(65534)))
            _exit(77);
        _exit(ro_checks(dir, 0, why, want_nolock));
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

static void set_mode(const char *dir, const char *name, mode_t mode)
{
    char path[4200];
    snprintf(path, sizeof path, "%s%s%s", dir, name ? "/" : "", name ? name : "");
    assert_int_equal(chmod(path, mode), 0);
}

/* Permissions: the other user (root) or we (not root) may read, not write. */
static void test_not_writable(void **state)
{
    (void)state;
    int root = geteuid() == 0;
    mode_t dmode = root ? 0755 : 0555, fmode = root ? 0644 : 0444;
    for (int variant = 0; variant < 3; variant++) {
        /* 0: lock file writable -> MDB_RDONLY with locks; 1: lock file read-only, 2: no
         * lock file and none can be created -> MDB_NOLOCK */
        const char *dir = make_store(variant == 0 ? "ro_lock" : variant == 1 ? "ro_nolock"
                                                                             : "ro_nolockfile");
        char lock[4200];
        snprintf(lock, sizeof lock, "%s/lock.mdb", dir);
        if (variant == 2)
            assert_int_equal(unlink(lock), 0);
        uint64_t before = file_hash(dir, "data.mdb");
        set_mode(dir, "data.mdb", fmode);
        if (variant == 0)
            set_mode(dir, "lock.mdb", 0666);
        if (variant == 1)
            set_mode(dir, "lock.mdb", fmode);
        set_mode(dir, NULL, dmode);
        int rc = run_unprivileged(dir, "not writable by this user", variant > 0);
        set_mode(dir, NULL, 0755);
        set_mode(dir, "data.mdb", 0600);
        if (rc == 77) {
            print_message("cannot drop privileges: permission variants skipped\n");
            return;
        }
        if (rc)
            fail_msg("variant %d: check %d failed", variant, rc);
        assert_true(file_hash(dir, "data.mdb") == before); /* not one byte written */
    }
}

/* The explicit flag: MDB_RDONLY, what root gets on any store. */
static void test_rdonly_flag(void **state)
{
    (void)state;
    const char *dir = make_store("ro_flag");
    uint64_t before = file_hash(dir, "data.mdb");
    int rc = ro_checks(dir, CL_STORE_RDONLY, "opened read-only", 0);
    if (rc)
        fail_msg("check %d failed", rc);
    assert_true(file_hash(dir, "data.mdb") == before);
    /* and the store is still writable by a normal handle */
    cl_store *st = st_open(dir, 0, 0, 0);
    assert_null(cl_store_readonly(st));
    assert_int_equal(st_put(st, CL_STORE_KV, 99, 1000, 0), CL_OK);
    cl_store_close(st);
}

/* A read-only bind mount of the store dir (private mount namespace of a child). */
static void test_readonly_mount(void **state)
{
    (void)state;
    const char *dir = make_store("ro_mount");
    uint64_t before = file_hash(dir, "data.mdb");
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) ||
            mount(dir, dir, NULL, MS_BIND, NULL) ||
            mount(NULL, dir, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL))
            _exit(77);
        _exit(ro_checks(dir, 0, "read-only file system", -1));
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    if (WEXITSTATUS(status) == 77) {
        print_message("no private mount namespace here: read-only mount not tested\n");
        return;
    }
    if (WEXITSTATUS(status))
        fail_msg("check %d failed", WEXITSTATUS(status));
    assert_true(file_hash(dir, "data.mdb") == before);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_not_writable),
        cmocka_unit_test(test_rdonly_flag),
        cmocka_unit_test(test_readonly_mount),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
