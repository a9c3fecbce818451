/* test_cli - `collage store ls|stat|verify|rm|gc|pin|unpin`: output (text and --json,
 * parsed with cJSON), filters, exit codes, and the errors for missing, damaged and
 * misaddressed stores. The store is filled through the API. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <cmocka.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/fileio.h"
#include "testutil.h"
#include "storetest.h"

static const char *fill_store(const char *name)
{
    const char *dir = tu_tmpdir(name);
    cl_store *st = st_open(dir, 0, 0, 0);
    for (uint64_t i = 1; i <= 4; i++) {
        assert_int_equal(st_put(st, CL_STORE_KV, i, 10000, 0), CL_OK);
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL);
    }
    assert_int_equal(st_put(st, CL_STORE_SNAP, 5, 50000, 0), CL_OK);
    assert_int_equal(st_put(st, CL_STORE_DOC, 6, 3000, CL_STORE_PUT_PIN), CL_OK);
    cl_store_close(st);
    return dir;
}

/* Runs a store verb; parses its stdout as exactly one JSON object. */
static cJSON *run_json(int want_rc, const char *fmt, ...)
{
    char cmd[8192], full[8400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    snprintf(full, sizeof full, "'%s' store %s --json 2>/dev/null", tu_bin(), cmd);
    char *out = NULL;
    int rc = tu_run(full, &out);
    if (rc != want_rc)
        fail_msg("%s: exit %d (want %d): %s", full, rc, want_rc, out ? out : "");
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithOpts(out ? out : "", &end, 0);
    if (!j)
        fail_msg("%s: not JSON: %s", full, out ? out : "");
    while (end && (*end == '\n' || *end == ' '))
        end++;
    if (end && *end)
        fail_msg("%s: more than one JSON object: %s", full, out);
    free(out);
    return j;
}

static int64_t jint(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItem(o, k);
    if (!cJSON_IsNumber(v))
        fail_msg("no number '%s'", k);
    return (int64_t)v->valuedouble;
}

static void hex_of(uint64_t i, char hex[33])
{
    cl_key k = st_key(i);
    cl_key_hex(&k, hex);
}

/* ls: every entry with its fields; --kind and --pinned filter; text has a header. */
static void test_ls(void **state)
{
    (void)state;
    const char *dir = fill_store("cli_ls");
    cJSON *j = run_json(0, "ls --store '%s'", dir);
    assert_int_equal(jint(j, "count"), 6);
    cJSON *es = cJSON_GetObjectItem(j, "entries");
    assert_int_equal(cJSON_GetArraySize(es), 6);
    char hex5[33];
    hex_of(5, hex5);
    int seen5 = 0;
    cJSON *e;
    cJSON_ArrayForEach(e, es)
    {
        const char *key = cJSON_GetObjectItem(e, "key")->valuestring;
        assert_int_equal(strlen(key), 32);
        if (!strcmp(key, hex5)) {
            seen5 = 1;
            assert_string_equal(cJSON_GetObjectItem(e, "table")->valuestring, "snaps");
            assert_int_equal(jint(e, "payload_bytes"), 50000);
            assert_int_equal(jint(e, "bytes"), 128 + 64 + 64 + 50000);
            assert_int_equal(jint(e, "tokens"), 5);
            assert_false(cJSON_IsTrue(cJSON_GetObjectItem(e, "pinned")));
            assert_true(jint(e, "last_use") > 1600000000);
        }
    }
    assert_true(seen5);
    cJSON_Delete(j);
    j = run_json(0, "ls --store '%s' --kind blocks", dir);
    assert_int_equal(jint(j, "count"), 4);
    cJSON_Delete(j);
    j = run_json(0, "ls --store '%s' --pinned", dir);
    assert_int_equal(jint(j, "count"), 1);
    assert_string_equal(
        cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "entries"), 0), "table")
            ->valuestring,
        "docs");
    cJSON_Delete(j);
    j = run_json(0, "ls --store '%s' --limit 2", dir);
    assert_int_equal(jint(j, "count"), 2);
    cJSON_Delete(j);
    char *out = NULL;
    assert_int_equal(tu_runf(&out, "'%s' store ls --store '%s'", tu_bin(), dir), 0);
    assert_non_null(strstr(out, "TABLE"));
    assert_non_null(strstr(out, hex5));
    assert_non_null(strstr(out, "6 entries"));
    free(out);
    /* COLLAGE_STORE names the store when --store is absent */
    assert_int_equal(tu_runf(&out, "COLLAGE_STORE='%s' '%s' store ls --json", dir, tu_bin()), 0);
    cJSON *k = cJSON_Parse(out);
    assert_int_equal(jint(k, "count"), 6);
    cJSON_Delete(k);
    free(out);
}

/* stat: totals per table, pinned, map and file size. */
static void test_stat(void **state)
{
    (void)state;
    const char *dir = fill_store("cli_stat");
    cJSON *j = run_json(0, "stat --store '%s'", dir);
    assert_int_equal(jint(j, "total_count"), 6);
    cJSON *t = cJSON_GetObjectItem(j, "tables");
    assert_int_equal(jint(cJSON_GetObjectItem(t, "blocks"), "count"), 4);
    assert_int_equal(jint(cJSON_GetObjectItem(t, "snaps"), "bytes"), 128 + 64 + 64 + 50000);
    assert_int_equal(jint(cJSON_GetObjectItem(t, "misc"), "count"), 0);
    assert_int_equal(jint(j, "pinned_count"), 1);
    assert_true(jint(j, "map_bytes") > 0);
    assert_true(jint(j, "file_bytes") > 0);
    assert_int_equal(jint(j, "max_bytes"), 0);
    cJSON_Delete(j);
    char *out = NULL;
    assert_int_equal(tu_runf(&out, "'%s' store stat --store '%s'", tu_bin(), dir), 0);
    assert_non_null(strstr(out, "entries   6"));
    free(out);
}

/* pin / unpin / rm by key, across tables or one (--kind); unknown keys exit 1, bad
 * hex exits 2. */
static void test_pin_unpin_rm(void **state)
{
    (void)state;
    const char *dir = fill_store("cli_keys");
    char h1[33], h5[33], h9[33];
    hex_of(1, h1);
    hex_of(5, h5);
    hex_of(9, h9);
    cJSON *j = run_json(0, "pin --store '%s' %s %s", dir, h1, h5);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "pinned")), 2);
    cJSON_Delete(j);
    j = run_json(0, "ls --store '%s' --pinned", dir);
    assert_int_equal(jint(j, "count"), 3);
    cJSON_Delete(j);
    j = run_json(0, "unpin --store '%s' %s", dir, h1);
    cJSON_Delete(j);
    j = run_json(0, "ls --store '%s' --pinned", dir);
    assert_int_equal(jint(j, "count"), 2);
    cJSON_Delete(j);
    /* --kind that does not hold the key: not found */
    j = run_json(1, "rm --store '%s' --kind blocks %s", dir, h5);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "not_found")), 1);
    cJSON_Delete(j);
    j = run_json(1, "rm --store '%s' %s %s", dir, h5, h9);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "removed")), 1);
    assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "not_found"), 0)->valuestring,
                        h9);
    cJSON_Delete(j);
    j = run_json(0, "stat --store '%s'", dir);
    assert_int_equal(jint(j, "total_count"), 5);
    cJSON_Delete(j);
    char *out = NULL;
    assert_int_equal(tu_runf(&out, "'%s' store rm --store '%s' %s 2>&1", tu_bin(), dir, h9), 1);
    assert_non_null(strstr(out, "not found"));
    assert_non_null(strstr(out, dir));
    free(out);
    assert_int_equal(tu_runf(NULL, "'%s' store rm --store '%s' nothex 2>/dev/null", tu_bin(), dir),
                     2);
    assert_int_equal(tu_runf(NULL, "'%s' store pin --store '%s' 2>/dev/null", tu_bin(), dir), 2);
}

/* gc: evicts LRU down to --max-bytes, keeps pins; without a cap it is a usage error;
 * --save stores the cap (stat shows it, a later gc uses it). */
static void test_gc(void **state)
{
    (void)state;
    const char *dir = fill_store("cli_gc");
    assert_int_equal(tu_runf(NULL, "'%s' store gc --store '%s' 2>/dev/null", tu_bin(), dir), 2);
    assert_int_equal(
        tu_runf(NULL, "'%s' store gc --store '%s' --max-bytes lots 2>/dev/null", tu_bin(), dir), 2);
    /* 4 x 10192 (blocks) + 50192 (snap) + 3192 (pinned doc) = 94152 -> 63576 */
    cJSON *j = run_json(0, "gc --store '%s' --max-bytes 64K", dir);
    assert_int_equal(jint(j, "max_bytes"), 64 * 1024);
    assert_true(jint(j, "total_bytes") <= 64 * 1024);
    assert_int_equal(jint(j, "evicted"), 3); /* blocks 1, 2, 3: the oldest */
    cJSON_Delete(j);
    char h4[33], h6[33];
    hex_of(4, h4);
    hex_of(6, h6);
    j = run_json(0, "ls --store '%s'", dir);
    assert_int_equal(jint(j, "count"), 3);
    cJSON_Delete(j);
    j = run_json(0, "gc --store '%s' --max-bytes 1 --save", dir);
    assert_int_equal(jint(j, "total_count"), 1); /* only the pinned doc is left */
    cJSON_Delete(j);
    j = run_json(0, "stat --store '%s'", dir);
    assert_int_equal(jint(j, "saved_max_bytes"), 1);
    cJSON_Delete(j);
    j = run_json(0, "gc --store '%s'", dir); /* uses the saved cap */
    assert_int_equal(jint(j, "evicted"), 0);
    cJSON_Delete(j);
    char *out = NULL;
    assert_int_equal(tu_runf(&out, "'%s' store ls --store '%s'", tu_bin(), dir), 0);
    assert_non_null(strstr(out, h6));
    assert_null(strstr(out, h4));
    free(out);
}

/* Errors: one line naming the store dir, exit 1 (runtime) or 2 (usage). */
static void test_errors(void **state)
{
    (void)state;
    const char *base = tu_tmpdir("cli_errors");
    char *out = NULL;
    char missing[4200];
    snprintf(missing, sizeof missing, "%s/nope", base);
    const char *verbs[] = {"ls", "stat", "verify", "gc --max-bytes 1"};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(
            tu_runf(&out, "'%s' store %s --store '%s' 2>&1 >/dev/null", tu_bin(), verbs[i], missing),
            1);
        assert_non_null(strstr(out, missing));
        assert_non_null(strstr(out, "no store"));
        assert_non_null(strchr(out, '\n'));
        assert_int_equal(strchr(out, '\n')[1], 0); /* one line */
        free(out);
    }
    assert_false(cl_is_dir(missing));
    /* no permission (root reads everything: only checked as another user) */
    if (geteuid() != 0) {
        char locked[4200];
        snprintf(locked, sizeof locked, "%s/locked", base);
        cl_store *st = st_open(locked, 0, 0, 0);
        cl_store_close(st);
        assert_int_equal(chmod(locked, 0), 0);
        assert_int_equal(
            tu_runf(&out, "'%s' store ls --store '%s' 2>&1 >/dev/null", tu_bin(), locked), 1);
        assert_non_null(strstr(out, locked));
        assert_int_equal(strchr(out, '\n')[1], 0);
        free(out);
        assert_int_equal(chmod(locked, 0700), 0);
    }
    /* a damaged LMDB file */
    char damaged[4200], cmd[9000];
    snprintf(damaged, sizeof damaged, "%s/damaged", base);
    snprintf(cmd, sizeof cmd,
             "mkdir -p '%s' && head -c 65536 /dev/urandom > '%s/data.mdb'", damaged, damaged);
    assert_int_equal(tu_run(cmd, NULL), 0);
    assert_int_equal(tu_runf(&out, "'%s' store stat --store '%s' 2>&1 >/dev/null", tu_bin(), damaged),
                     1);
    assert_non_null(strstr(out, damaged));
    assert_int_equal(strchr(out, '\n')[1], 0);
    free(out);
    /* usage */
    assert_int_equal(tu_runf(NULL, "'%s' store 2>/dev/null", tu_bin()), 2);
    assert_int_equal(tu_runf(NULL, "'%s' store frobnicate 2>/dev/null", tu_bin()), 2);
    assert_int_equal(tu_runf(NULL, "'%s' store ls --bogus 2>/dev/null", tu_bin()), 2);
    assert_int_equal(tu_runf(NULL, "'%s' store ls --kind tables 2>/dev/null", tu_bin()), 2);
    assert_int_equal(tu_runf(&out, "'%s' store --help", tu_bin()), 0);
    assert_non_null(strstr(out, "verify"));
    free(out);
    assert_int_equal(tu_runf(&out, "'%s' store gc --help", tu_bin()), 0);
    assert_non_null(strstr(out, "--max-bytes"));
    free(out);
}

/* bench store: a tiny run prints one JSON object with positive figures and removes
 * its temporary store; on a given store it leaves no entries behind. */
static void test_bench_smoke(void **state)
{
    (void)state;
    const char *tmp = tu_tmpdir("cli_bench");
    char *out = NULL;
    const char *small = "--kv-kib 64 --kv-count 4 --batch 2 --snap-mib 1 --snap-count 1 "
                        "--entries 200 --lookups 200 --stream-mib 3 --stream-threads 1,3 --json";
    assert_int_equal(tu_runf(&out, "TMPDIR='%s' '%s' bench store %s", tmp, tu_bin(), small), 0);
    cJSON *j = cJSON_Parse(out);
    assert_non_null(j);
    cJSON *kv = cJSON_GetObjectItem(j, "kv");
    assert_true(jint(kv, "value_bytes") == 64 * 1024);
    assert_true(cJSON_GetObjectItem(kv, "put_gbps")->valuedouble > 0);
    assert_true(cJSON_GetObjectItem(kv, "get_verified_gbps")->valuedouble > 0);
    assert_true(cJSON_GetObjectItem(kv, "put_vs_write_fsync")->valuedouble > 0);
    assert_true(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "snap"), "get_vs_memcpy")->valuedouble >
                0);
    assert_true(cJSON_GetObjectItem(kv, "writeback_put_gbps")->valuedouble > 0);
    cJSON *sm = cJSON_GetObjectItem(j, "stream");
    assert_int_equal(cJSON_GetArraySize(sm), 2);
    assert_int_equal(jint(cJSON_GetArrayItem(sm, 1), "threads"), 3);
    assert_true(cJSON_GetObjectItem(cJSON_GetArrayItem(sm, 1), "stream_copy_gbps")->valuedouble > 0);
    assert_true(cJSON_GetObjectItem(cJSON_GetArrayItem(sm, 1), "baseline_memcpy_gbps")->valuedouble >
                0);
    cJSON *lk = cJSON_GetObjectItem(j, "lookup");
    assert_true(cJSON_GetObjectItem(lk, "hit_us")->valuedouble > 0);
    assert_true(cJSON_GetObjectItem(lk, "miss_us")->valuedouble > 0);
    cJSON_Delete(j);
    free(out);
    assert_int_equal(tu_runf(&out, "ls -A '%s'", tmp), 0);
    assert_string_equal(out ? out : "", ""); /* the temporary store is gone */
    free(out);
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/given", tmp);
    assert_int_equal(tu_runf(NULL, "'%s' bench store --store '%s' %s >/dev/null", tu_bin(), dir,
                             small),
                     0);
    j = run_json(0, "stat --store '%s'", dir);
    assert_int_equal(jint(j, "total_count"), 0);
    cJSON_Delete(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ls),
        cmocka_unit_test(test_stat),
        cmocka_unit_test(test_pin_unpin_rm),
        cmocka_unit_test(test_gc),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_bench_smoke),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
