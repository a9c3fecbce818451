/* test_vmath - the sampler's vector passes (common/vmath.h): e^x within 3e-7 of libm's
 * double exp over the whole float range it covers, exactly 0 below CL_VEXP_MIN and for
 * -inf, exactly 1 at 0, NaN kept; block sums and the total add up the outputs, also for
 * lengths that end inside a block; cl_vdiv_max divides exactly as x / d and returns the
 * largest value, ignoring NaN. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "common/rng.h"
#include "common/vmath.h"

static void test_exp_accuracy(void **st)
{
    (void)st;
    enum { N = 1 << 20 };
    float *x = malloc(N * sizeof *x), *y = malloc(N * sizeof *y);
    assert_non_null(x);
    assert_non_null(y);
    /* an even sweep of [CL_VEXP_MIN, 88], the ends included */
    for (int i = 0; i < N; i++)
        x[i] = CL_VEXP_MIN + (88.0f - CL_VEXP_MIN) * (float)i / (float)(N - 1);
    x[N - 1] = 88.0f;
    cl_vexp_shifted(x, 0.0f, y, N, NULL);
    double worst = 0;
    for (int i = 0; i < N; i++) {
        double want = exp((double)x[i]);
        double rel = fabs((double)y[i] - want) / want;
        worst = rel > worst ? rel : worst;
    }
    print_message("max relative error %.3g over %d points\n", worst, N);
    assert_true(worst < 3e-7);
    free(x);
    free(y);
}

static void test_exp_special(void **st)
{
    (void)st;
    float x[] = {-INFINITY, -1000.0f, CL_VEXP_MIN - 0.01f, 0.0f, NAN, -0.0f, 1.0f};
    float y[7];
    double total = cl_vexp_shifted(x, 0.0f, y, 4, NULL); /* (NaN left out of the total) */
    cl_vexp_shifted(x + 4, 0.0f, y + 4, 3, NULL);
    assert_true(y[0] == 0.0f && y[1] == 0.0f && y[2] == 0.0f);
    assert_true(y[3] == 1.0f && y[5] == 1.0f);
    assert_true(isnan(y[4]));
    assert_true(fabs((double)y[6] - M_E) < 3e-7 * M_E);
    assert_true(total == 1.0);
    /* the shift: e^(x - shift) */
    float a = 5.0f, b;
    cl_vexp_shifted(&a, 5.0f, &b, 1, NULL);
    assert_true(b == 1.0f);
}

static void test_block_sums(void **st)
{
    (void)st;
    const int64_t lens[] = {
        1, 7, 8, 9, CL_VEXP_BLOCK - 1, CL_VEXP_BLOCK, CL_VEXP_BLOCK + 5, 3 * CL_VEXP_BLOCK + 77};
    for (size_t c = 0; c < sizeof lens / sizeof *lens; c++) {
        int64_t n = lens[c], nb = (n + CL_VEXP_BLOCK - 1) / CL_VEXP_BLOCK;
        float *x = malloc((size_t)n * sizeof *x), *y = malloc((size_t)n * sizeof *y);
        double *bs = malloc((size_t)nb * sizeof *bs);
        assert_non_null(x);
        assert_non_null(y);
        assert_non_null(bs);
        for (int64_t i = 0; i < n; i++)
            x[i] = 3.0f * cl_rng_normal(77 + (uint64_t)c, (uint64_t)i);
        double total = cl_vexp_shifted(x, 2.0f, y, n, bs), all = 0, sum_bs = 0;
        for (int64_t b = 0; b < nb; b++) {
            double s = 0;
            for (int64_t i = b * CL_VEXP_BLOCK; i < n && i < (b + 1) * CL_VEXP_BLOCK; i++)
                s += (double)y[i];
            assert_true(fabs(bs[b] - s) <= 1e-5 * s);
            sum_bs += bs[b];
            all += s;
        }
        assert_true(total == sum_bs);
        assert_true(fabs(total - all) <= 1e-5 * all);
        free(x);
        free(y);
        free(bs);
    }
}

static void test_div_max(void **st)
{
    (void)st;
    enum { N = 1000 };
    float x[N], orig[N];
    for (int i = 0; i < N; i++)
        x[i] = orig[i] = 2.0f * cl_rng_normal(5, (uint64_t)i);
    x[N - 3] = orig[N - 3] = 40.0f; /* the largest, in the tail after the last 8 */
    x[10] = orig[10] = NAN;
    float mx = cl_vdiv_max(x, 0.7f, N);
    for (int i = 0; i < N; i++)
        if (i != 10)
            assert_true(x[i] == orig[i] / 0.7f);
    assert_true(mx == 40.0f / 0.7f);
    x[5] = 1e30f; /* the largest, among the first eight */
    assert_true(cl_vdiv_max(x, 1.0f, N) == 1e30f);
    assert_true(cl_vdiv_max(x, 1.0f, 0) == -INFINITY);
    float nan3[3] = {NAN, NAN, NAN};
    assert_true(cl_vdiv_max(nan3, 1.0f, 3) == -INFINITY);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exp_accuracy),
        cmocka_unit_test(test_exp_special),
        cmocka_unit_test(test_block_sums),
        cmocka_unit_test(test_div_max),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
