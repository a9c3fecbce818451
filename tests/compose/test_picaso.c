/* test_picaso - the composition coefficients against their definitions: scalar
 * PICASO equals the brute-force average over all N! orders (N <= 6, random
 * decays) and stays finite for extreme log decays; the matrix version equals its
 * subset-sum definition and, for commuting (diagonal) transitions, the
 * permutation average; CASO equals the sequential recurrence. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/rng.h"
#include "compose/picaso.h"
#include "testutil.h"

#define MAXN 6

static double urand(uint64_t key, uint64_t i) { return (double)cl_rng_uniform(key, i); }

/* Average over all orders of prod_{j after i} a_j, by enumerating permutations. */
static void perm_average(const double *a, int n, double *c)
{
    int perm[MAXN], count = 0;
    for (int i = 0; i < n; i++) {
        perm[i] = i;
        c[i] = 0;
    }
    /* Heap's algorithm, iterative */
    int idx[MAXN] = {0};
    for (;;) {
        count++;
        for (int p = 0; p < n; p++) {
            double prod = 1;
            for (int q = p + 1; q < n; q++)
                prod *= a[perm[q]];
            c[perm[p]] += prod;
        }
        int i = 1;
        while (i < n && idx[i] >= i) {
            idx[i] = 0;
            i++;
        }
        if (i >= n)
            break;
        int j = i % 2 ? idx[i] : 0, t = perm[j];
        perm[j] = perm[i];
        perm[i] = t;
        idx[i]++;
    }
    for (int i = 0; i < n; i++)
        c[i] /= count;
}

static void test_scalar_vs_permutations(void **st)
{
    (void)st;
    double worst = 0;
    for (int n = 1; n <= MAXN; n++)
        for (int trial = 0; trial < 20; trial++) {
            double l[MAXN], a[MAXN], logc[MAXN], c[MAXN];
            uint64_t key = cl_rng_key((uint64_t)(n * 100 + trial), "picaso");
            for (int i = 0; i < n; i++) {
                l[i] = -6.0 * urand(key, (uint64_t)i); /* decays in [e^-6, 1] */
                a[i] = exp(l[i]);
            }
            assert_int_equal(cl_picaso_log_coeffs(l, n, logc), 0);
            perm_average(a, n, c);
            for (int i = 0; i < n; i++) {
                double e = fabs(exp(logc[i]) - c[i]) / c[i];
                if (e > worst)
                    worst = e;
            }
        }
    print_message("  scalar PICASO vs N! average (N<=6): worst rel err %.3g\n", worst);
    assert_true(worst < 1e-12);
    /* closed forms: N=1 -> 1; N=2 -> (1 + a_other)/2 */
    double l1 = -0.7, c1;
    cl_picaso_log_coeffs(&l1, 1, &c1);
    assert_true(fabs(exp(c1) - 1.0) < 1e-15);
    double l2[2] = {-0.3, -2.0}, c2[2];
    cl_picaso_log_coeffs(l2, 2, c2);
    assert_true(fabs(exp(c2[0]) - (1 + exp(-2.0)) / 2) < 1e-15);
    assert_true(fabs(exp(c2[1]) - (1 + exp(-0.3)) / 2) < 1e-15);
}

static void test_scalar_extreme(void **st)
{
    (void)st;
    const double cases[][MAXN] = {
        {-1e4, -1e4, -1e4, -1e4, -1e4, -1e4},
        {0, 0, 0, 0, 0, 0},
        {-1e4, 0, -1e4, 0, -1e4, 0},
        {-INFINITY, 0, -1e30, -1e-30, -745, -1e4},
    };
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++)
        for (int n = 1; n <= MAXN; n++) {
            double logc[MAXN], a[MAXN], c[MAXN];
            assert_int_equal(cl_picaso_log_coeffs(cases[t], n, logc), 0);
            for (int i = 0; i < n; i++)
                a[i] = exp(cases[t][i]);
            perm_average(a, n, c);
            for (int i = 0; i < n; i++) {
                assert_true(isfinite(logc[i]));
                /* c_i in [1/N, 1]: the k = 0 term alone gives 1/N */
                assert_true(logc[i] >= -log((double)n) - 1e-12 && logc[i] <= 1e-12);
                assert_true(fabs(exp(logc[i]) - c[i]) <= 1e-12 * c[i]);
            }
        }
    /* all decays 1 -> every coefficient 1 (CASO of any order keeps everything) */
    double z[MAXN] = {0}, lz[MAXN];
    cl_picaso_log_coeffs(z, MAXN, lz);
    for (int i = 0; i < MAXN; i++)
        assert_true(fabs(lz[i]) < 1e-12);
    /* long lists stay finite too */
    enum { BIG = 200 };
    double lb[BIG], cb[BIG];
    for (int i = 0; i < BIG; i++)
        lb[i] = i % 3 ? -1e4 : -1e-3 * i;
    assert_int_equal(cl_picaso_log_coeffs(lb, BIG, cb), 0);
    for (int i = 0; i < BIG; i++)
        assert_true(isfinite(cb[i]) && cb[i] <= 1e-12 && cb[i] >= -log((double)BIG) - 1e-9);
}

/* ---- matrices (row-major, double references) ---- */

static void dmm(const double *A, const double *B, double *C, int r, int k, int c)
{
    for (int i = 0; i < r; i++)
        for (int j = 0; j < c; j++) {
            double s = 0;
            for (int t = 0; t < k; t++)
                s += A[i * k + t] * B[t * c + j];
            C[i * c + j] = s;
        }
}

static double binom(int n, int k)
{
    double r = 1;
    for (int i = 1; i <= k; i++)
        r = r * (n - k + i) / i;
    return r;
}

/* sum_i (1/n) sum_{T subset of others} binom(n-1,|T|)^-1 (prod_{j in T, descending} P_j) S_i */
static void matrix_definition(int n, int D, int V, const double *P, const double *S, double *out)
{
    memset(out, 0, (size_t)(D * V) * sizeof *out);
    double *prod = malloc((size_t)(D * V) * sizeof *prod), *tmp = malloc((size_t)(D * V) * sizeof *tmp);
    for (int i = 0; i < n; i++)
        for (unsigned mask = 0; mask < (1u << n); mask++) {
            if (mask & (1u << i))
                continue;
            int k = 0;
            memcpy(prod, S + i * D * V, (size_t)(D * V) * sizeof *prod);
            for (int j = 0; j < n; j++) /* ascending j multiplied on the left: latest leftmost */
                if (mask & (1u << j)) {
                    dmm(P + j * D * D, prod, tmp, D, D, V);
                    memcpy(prod, tmp, (size_t)(D * V) * sizeof *prod);
                    k++;
                }
            double w = 1.0 / (n * binom(n - 1, k));
            for (int t = 0; t < D * V; t++)
                out[t] += w * prod[t];
        }
    free(prod);
    free(tmp);
}

static void random_mats(uint64_t seed, int n, int D, int V, float *Pf, float *Sf, double *P,
                        double *S, int diagonal)
{
    uint64_t key = cl_rng_key(seed, "mats");
    for (int i = 0; i < n * D * D; i++) {
        int r = (i / D) % D, c = i % D;
        double v = diagonal ? (r == c ? 0.2 + 0.8 * urand(key, (uint64_t)i) : 0.0)
                            : (r == c ? 0.6 : 0.0) + 0.4 * (urand(key, (uint64_t)i) - 0.5);
        P[i] = (float)v;
        Pf[i] = (float)v;
    }
    for (int i = 0; i < n * D * V; i++) {
        double v = urand(key, (uint64_t)(1000000 + i)) - 0.5;
        S[i] = (float)v;
        Sf[i] = (float)v;
    }
}

static double max_rel(const float *got, const double *ref, int n)
{
    double md = 0, mr = 0;
    for (int i = 0; i < n; i++) {
        if (fabs(got[i] - ref[i]) > md)
            md = fabs(got[i] - ref[i]);
        if (fabs(ref[i]) > mr)
            mr = fabs(ref[i]);
    }
    return md / mr;
}

static void test_matrix_vs_definition(void **st)
{
    (void)st;
    enum { D = 5, V = 3 };
    double worst = 0, worst_diag = 0;
    for (int n = 1; n <= MAXN; n++)
        for (int diag = 0; diag < 2; diag++) {
            float Pf[MAXN * D * D], Sf[MAXN * D * V], out[D * V];
            double P[MAXN * D * D], S[MAXN * D * V], ref[D * V];
            random_mats((uint64_t)(n * 10 + diag), n, D, V, Pf, Sf, P, S, diag);
            const float *pp[MAXN], *sp[MAXN];
            for (int i = 0; i < n; i++) {
                pp[i] = Pf + i * D * D;
                sp[i] = Sf + i * D * V;
            }
            assert_int_equal(cl_picaso_matrix_combine(n, D, V, pp, sp, out), 0);
            matrix_definition(n, D, V, P, S, ref);
            double e = max_rel(out, ref, D * V);
            if (e > worst)
                worst = e;
            if (!diag)
                continue;
            /* commuting transitions: each row r is scalar PICASO with decays P_j[r][r] */
            double perm_ref[D * V] = {0};
            for (int r = 0; r < D; r++) {
                double a[MAXN], c[MAXN];
                for (int i = 0; i < n; i++)
                    a[i] = P[i * D * D + r * D + r];
                perm_average(a, n, c);
                for (int i = 0; i < n; i++)
                    for (int v = 0; v < V; v++)
                        perm_ref[r * V + v] += c[i] * S[i * D * V + r * V + v];
            }
            e = max_rel(out, perm_ref, D * V);
            if (e > worst_diag)
                worst_diag = e;
        }
    print_message("  matrix PICASO vs subset definition: %.3g; diagonal vs N! average: %.3g\n",
                  worst, worst_diag);
    assert_true(worst < 1e-5);
    assert_true(worst_diag < 1e-5);
}

static void test_caso(void **st)
{
    (void)st;
    enum { D = 4, V = 3, N = 5 };
    float Pf[N * D * D], Sf[N * D * V], out[D * V], prod[D * D];
    double P[N * D * D], S[N * D * V];
    random_mats(99, N, D, V, Pf, Sf, P, S, 0);
    const float *pp[N], *sp[N];
    for (int i = 0; i < N; i++) {
        pp[i] = Pf + i * D * D;
        sp[i] = Sf + i * D * V;
    }
    /* sequential recurrence x <- P_i x + S_i, and the product P_N..P_1 */
    double x[D * V] = {0}, tmp[D * V], T[D * D] = {0}, tmp2[D * D];
    for (int d = 0; d < D; d++)
        T[d * D + d] = 1;
    for (int i = 0; i < N; i++) {
        dmm(P + i * D * D, x, tmp, D, D, V);
        for (int t = 0; t < D * V; t++)
            x[t] = tmp[t] + S[i * D * V + t];
        dmm(P + i * D * D, T, tmp2, D, D, D);
        memcpy(T, tmp2, sizeof T);
    }
    assert_int_equal(cl_caso_matrix_combine(N, D, V, pp, sp, out), 0);
    assert_int_equal(cl_caso_matrix_product(N, D, pp, prod), 0);
    double e1 = max_rel(out, x, D * V), e2 = max_rel(prod, T, D * D);
    /* scalar: decays e^l */
    double l[N] = {-0.1, -2, 0, -1e4, -0.5}, xs[D * V] = {0};
    for (int i = 0; i < N; i++)
        for (int t = 0; t < D * V; t++)
            xs[t] = exp(l[i]) * xs[t] + S[i * D * V + t];
    cl_caso_scalar_combine(N, D * V, l, sp, out);
    double e3 = max_rel(out, xs, D * V);
    print_message("  CASO matrix %.3g, product %.3g, scalar %.3g\n", e1, e2, e3);
    assert_true(e1 < 1e-5 && e2 < 1e-5 && e3 < 1e-6);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scalar_vs_permutations),
        cmocka_unit_test(test_scalar_extreme),
        cmocka_unit_test(test_matrix_vs_definition),
        cmocka_unit_test(test_caso),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
