/* testutil.h - shared helpers for the cmocka tests: locating ../shared (skip or
 * fail under COLLAGE_REQUIRE_SHARED=1), scratch dirs, running the CLI, loading
 * reference tensors and comparing them. Include after the cmocka headers.
 *
 * Skips show in ctest: including this header makes cmocka_run_group_tests return
 * 77 (the tests' SKIP_RETURN_CODE) when some case skipped and none failed, so
 * ctest reports the test as "Skipped" rather than "Passed". */
#ifndef TESTUTIL_H
#define TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

/* Path of ../shared/<rel> (rel may be ""). When ../shared is absent the calling
 * test is skipped, or fails if COLLAGE_REQUIRE_SHARED=1. Returned buffer is static
 * per call slot (up to 8 live results). */
const char *tu_shared(const char *rel);
/* 1 if ../shared is available (no skip). */
int tu_have_shared(void);
/* A fresh empty scratch directory under COLLAGE_TMP (static buffer slot). */
const char *tu_tmpdir(const char *name);
/* Path of the collage binary. */
const char *tu_bin(void);
/* Runs `cmd` through sh; captures stdout (malloc'd, may be NULL) and returns the exit code. */
int tu_run(const char *cmd, char **out);
/* Formats and runs a command; returns exit code, stdout in *out if out != NULL. */
int tu_runf(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Loads a float tensor from a safetensors file as float32 (malloc'd). Shape into
 * shape[] (up to 8), returns numel; fails the test if absent. */
int64_t tu_load_f32(const char *path, const char *name, float **data, int64_t *shape, int *ndim);
/* Loads an integer tensor as int64 (malloc'd). */
int64_t tu_load_i64(const char *path, const char *name, int64_t **data);
/* 1 if the file holds the tensor. */
int tu_has_tensor(const char *path, const char *name);
/* max|a-b| / max|b| over n values (NaN -> +inf). */
double tu_rel_err(const float *a, const float *b, size_t n);

/* Counts a skipped case (the skip() below does it). */
void tu_note_skip(void);
/* Runs the group; returns the number of failed cases, or 77 if none failed but some
 * were skipped (printing how many). */
int tu_run_group_tests(const char *name, const struct CMUnitTest *tests, size_t n,
                       CMFixtureFunction setup, CMFixtureFunction teardown);

#undef skip
#define skip() (tu_note_skip(), _skip(__FILE__, __LINE__))
#undef cmocka_run_group_tests
#define cmocka_run_group_tests(group, setup, teardown) \
    tu_run_group_tests(#group, group, sizeof(group) / sizeof((group)[0]), setup, teardown)
#undef cmocka_run_group_tests_name
#define cmocka_run_group_tests_name(name, group, setup, teardown) \
    tu_run_group_tests(name, group, sizeof(group) / sizeof((group)[0]), setup, teardown)

#endif
