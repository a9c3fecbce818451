/* test_cli - `collage compose` on golden cases: teacher-forced --logits-out rows
 * equal the reference's step_logits, the printed ids are the reference's greedy
 * ids (m2, where every step is confident), --json gives one object with the
 * composition's figures. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "compose_util.h"
#include "testutil.h"

static char *join_ids(const int32_t *v, int64_t n)
{
    char *s = malloc((size_t)(n * 12 + 2));
    size_t o = 0;
    s[0] = 0;
    for (int64_t i = 0; i < n; i++)
        o += (size_t)sprintf(s + o, "%s%d", i ? "," : "", v[i]);
    return s;
}

static void run_cli(const char *name, const char *type, int n_chunks, double tol, int check_free)
{
    char fname[128];
    snprintf(fname, sizeof fname, "compose_%s_%d.safetensors", type, n_chunks);
    char file[1024], dir[1024];
    snprintf(file, sizeof file, "%s", cu_golden_file(name, fname));
    snprintf(dir, sizeof dir, "%s", cu_golden_file(name, ""));
    int64_t n_in, n_pre, n_suf, n_gen;
    int32_t *in = cu_ids(file, "input_ids", &n_in), *pre = cu_ids(file, "prefix_input_ids", &n_pre),
            *suf = cu_ids(file, "suffix_input_ids", &n_suf), *gen = cu_ids(file, "generated_ids", &n_gen);
    char *s_in = join_ids(in, n_in), *s_pre = join_ids(pre, n_pre), *s_suf = join_ids(suf, n_suf),
         *s_gen = join_ids(gen, n_gen);
    char out_file[1100];
    snprintf(out_file, sizeof out_file, "%s/logits.safetensors", tu_tmpdir("compose-cli"));
    char *out = NULL;
    int rc = tu_runf(&out, "%s compose --model %s --backend cpu --input-ids %s --prefix-ids %s "
                     "--suffix-ids %s --compose-type %s --num-chunks %d --newline-id 198 "
                     "--max-new-tokens %lld --greedy --print-ids --force-ids %s --logits-out %s",
                     tu_bin(), dir, s_in, s_pre, s_suf, type, n_chunks, (long long)n_gen, s_gen,
                     out_file);
    assert_int_equal(rc, 0);
    free(out);
    float *got, *ref;
    int64_t shape[8];
    int nd;
    int64_t n = tu_load_f32(out_file, "logits", &got, shape, &nd);
    assert_int_equal(tu_load_f32(file, "step_logits", &ref, shape, &nd), n);
    int64_t V = n / n_gen;
    double worst = 0;
    for (int64_t k = 0; k < n_gen; k++) {
        double e = tu_rel_err(got + k * V, ref + k * V, (size_t)V);
        worst = e > worst ? e : worst;
    }
    print_message("  CLI %s %s n=%d: step_logits worst row rel err %.3g (tol %.1g)\n", name, type,
                  n_chunks, worst, tol);
    assert_true(worst <= tol);
    free(got);
    free(ref);
    if (check_free) {
        rc = tu_runf(&out, "%s compose --model %s --input-ids %s --prefix-ids %s --suffix-ids %s "
                     "--compose-type %s --num-chunks %d --max-new-tokens %lld --greedy "
                     "--print-ids", tu_bin(), dir, s_in, s_pre, s_suf, type, n_chunks,
                     (long long)n_gen);
        assert_int_equal(rc, 0);
        char want[1024] = "";
        for (int64_t i = 0; i < n_gen; i++)
            snprintf(want + strlen(want), sizeof want - strlen(want), "%s%d", i ? " " : "", gen[i]);
        strcat(want, "\n");
        assert_string_equal(out, want);
        free(out);
        rc = tu_runf(&out, "%s compose --model %s --input-ids %s --prefix-ids %s --suffix-ids %s "
                     "--compose-type %s --num-chunks %d --max-new-tokens 3 --greedy --json",
                     tu_bin(), dir, s_in, s_pre, s_suf, type, n_chunks);
        assert_int_equal(rc, 0);
        assert_true(out[0] == '{' && strchr(out, '\n') == out + strlen(out) - 1);
        assert_non_null(strstr(out, "\"kept_tokens\":48"));
        assert_non_null(strstr(out, "\"position\":"));
        free(out);
    }
    free(s_in);
    free(s_pre);
    free(s_suf);
    free(s_gen);
    free(in);
    free(pre);
    free(suf);
    free(gen);
}

static void test_cli_m2(void **st)
{
    (void)st;
    run_cli("m2", "concat_kv_fuse_ssm", 4, 1e-4, 1);
}

static void test_cli_gka(void **st)
{
    (void)st;
    run_cli("gka", "concat_kv_soup_ssm", 2, 2e-2, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cli_m2),
        cmocka_unit_test(test_cli_gka),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
