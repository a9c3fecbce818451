#include "compose/picaso.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/status.h"

/* log(e^a + e^b), exact for -inf operands. */
static double lse2(double a, double b)
{
    double m = a > b ? a : b;
    if (m == -INFINITY)
        return -INFINITY;
    return m + log(exp(a - m) + exp(b - m));
}

static double log_binom(int n, int k) { return lgamma(n + 1.0) - lgamma(k + 1.0) - lgamma(n - k + 1.0); }

int cl_picaso_log_coeffs(const double *log_decay, int n, double *logc)
{
    /* E[k] = log e_k of the others seen so far; updated in place for descending k
     * (the 1-D form of the table DP of COMPOSITION.md §5.3). */
    double *E = malloc((size_t)(n > 0 ? n : 1) * sizeof *E);
    if (!E)
        return cl_err(CL_ERR_NOMEM, "out of memory for PICASO coefficients");
    for (int i = 0; i < n; i++) {
        E[0] = 0.0;
        for (int k = 1; k < n; k++)
            E[k] = -INFINITY;
        int m = 0; /* others seen */
        for (int j = 0; j < n; j++) {
            if (j == i)
                continue;
            m++;
            for (int k = m; k >= 1; k--)
                E[k] = lse2(E[k], log_decay[j] + E[k - 1]);
        }
        double acc = -INFINITY;
        for (int k = 0; k < n; k++)
            acc = lse2(acc, E[k] - log_binom(n - 1, k));
        logc[i] = acc - log((double)n);
    }
    free(E);
    return CL_OK;
}

/* C (+)= A B, row-major, A r x inner, B inner x c. */
static void mm(const float *A, const float *B, float *C, int64_t r, int64_t inner, int64_t c,
               float beta)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)r, (int)c, (int)inner, 1.0f, A,
                (int)inner, B, (int)c, beta, C, (int)c);
}

float cl_picaso_matrix_weight(int n, int k) { return (float)(exp(-log_binom(n - 1, k)) / n); }

int cl_picaso_matrix_combine(int n, int64_t D, int64_t V, const float *const *P,
                             const float *const *S, float *out)
{
    size_t dd = (size_t)(D * D), dv = (size_t)(D * V);
    /* Pre[k] = sum over k-subsets of the documents seen of their ordered product;
     * X[k]  = sum over documents i seen and k-subsets T of the others seen of
     *         (ordered product of T) S_i. One scan adds document m:
     *   X[k] += P_m X[k-1] (m joins T) + Pre[k] S_m (m is i),  Pre[k] += P_m Pre[k-1]. */
    float *pre = calloc((size_t)n * dd, sizeof *pre), *X = calloc((size_t)n * dv, sizeof *X);
    if (!pre || !X) {
        free(pre);
        free(X);
        return cl_err(CL_ERR_NOMEM, "out of memory for matrix PICASO (%d documents)", n);
    }
    for (int64_t d = 0; d < D; d++)
        pre[d * D + d] = 1.0f;
    for (int m = 0; m < n; m++) {
        int top = m < n - 1 ? m : n - 1;
        for (int k = top; k >= 1; k--)
            mm(P[m], X + (size_t)(k - 1) * dv, X + (size_t)k * dv, D, D, V, 1.0f);
        for (int k = 0; k <= top; k++)
            mm(pre + (size_t)k * dd, S[m], X + (size_t)k * dv, D, D, V, 1.0f);
        if (m == n - 1)
            break;
        int ptop = m + 1 < n - 1 ? m + 1 : n - 1;
        for (int k = ptop; k >= 1; k--)
            mm(P[m], pre + (size_t)(k - 1) * dd, pre + (size_t)k * dd, D, D, D, 1.0f);
    }
    memset(out, 0, dv * sizeof *out);
    for (int k = 0; k < n; k++) {
        float w = cl_picaso_matrix_weight(n, k);
        const float *x = X + (size_t)k * dv;
        for (size_t t = 0; t < dv; t++)
            out[t] += w * x[t];
    }
    free(pre);
    free(X);
    return CL_OK;
}

double cl_caso_scalar_log_weight(const double *log_decay, int n, int i)
{
    double after = 0.0;
    for (int j = n - 1; j > i; j--)
        after += log_decay[j];
    return after;
}

void cl_caso_scalar_combine(int n, int64_t len, const double *log_decay, const float *const *S,
                            float *out)
{
    memset(out, 0, (size_t)len * sizeof *out);
    for (int i = n - 1; i >= 0; i--) {
        float w = (float)exp(cl_caso_scalar_log_weight(log_decay, n, i));
        for (int64_t t = 0; t < len; t++)
            out[t] += w * S[i][t];
    }
}

int cl_caso_matrix_combine(int n, int64_t D, int64_t V, const float *const *P,
                           const float *const *S, float *out)
{
    size_t dv = (size_t)(D * V);
    float *tmp = malloc(dv * sizeof *tmp);
    if (!tmp)
        return cl_err(CL_ERR_NOMEM, "out of memory for CASO");
    memcpy(out, S[0], dv * sizeof *out);
    for (int i = 1; i < n; i++) {
        memcpy(tmp, S[i], dv * sizeof *tmp);
        mm(P[i], out, tmp, D, D, V, 1.0f);
        memcpy(out, tmp, dv * sizeof *out);
    }
    free(tmp);
    return CL_OK;
}

int cl_caso_matrix_product(int n, int64_t D, const float *const *P, float *out)
{
    size_t dd = (size_t)(D * D);
    float *tmp = malloc(dd * sizeof *tmp);
    if (!tmp)
        return cl_err(CL_ERR_NOMEM, "out of memory for CASO");
    memset(out, 0, dd * sizeof *out);
    for (int64_t d = 0; d < D; d++)
        out[d * D + d] = 1.0f;
    for (int i = 0; i < n; i++) {
        mm(P[i], out, tmp, D, D, D, 0.0f);
        memcpy(out, tmp, dd * sizeof *out);
    }
    free(tmp);
    return CL_OK;
}
