/* picaso.h - combination coefficients of state composition (spec COMPOSITION.md
 * §5.3, §5.4, §10), on plain arrays.
 *
 * PICASO (scalar, Mamba2): c_i = the average over all N! orders of the product
 * of the decays a_j of the documents placed after i
 *     = (1/N) sum_k e_k({a_j}_{j!=i}) / binom(N-1, k),
 * e_k the elementary symmetric polynomials, evaluated in log space (logsumexp
 * DP, O(N^2) per leave-one-out set, in double) so that it stays finite for any
 * log decays in [-inf, 0].
 *
 * Matrix PICASO (GDN): the same DP with the transition matrices P_j (later
 * index on the left): C_i = (1/N) sum_k E_k^{(-i)} / binom(N-1, k), E_k^{(-i)} =
 * the sum over k-subsets T of the others of prod_{j in T, descending} P_j; the
 * composed state sum_i C_i S_i. Equals the permutation average when the P's
 * commute; otherwise it averages one order per subset (the reference's choice).
 *
 * CASO (exact order): S = sum_i (prod_{j>i} A_j) S_i, scalar or matrix.
 */
#ifndef CL_COMPOSE_PICASO_H
#define CL_COMPOSE_PICASO_H

#include <stdint.h>

/* log c_i for n >= 1 log decays (each in [-inf, 0]); logc[n]. O(n^3) in all. */
int cl_picaso_log_coeffs(const double *log_decay, int n, double *logc);

/* Weight of the k-document term of the matrix PICASO (k = 0..n-1):
 * 1 / (n binom(n-1, k)); the same weights serve a backend's gdn_fuse. */
float cl_picaso_matrix_weight(int n, int k);

/* out[D x V] = sum_i C_i S_i (matrix PICASO, row-major): P[i] D x D, S[i] D x V.
 * O(n^2) matrix products in all (one scan over the documents). */
int cl_picaso_matrix_combine(int n, int64_t D, int64_t V, const float *const *P,
                             const float *const *S, float *out);

/* log of document i's CASO weight: sum_{j>i} log_decay[j] (summed from the last). */
double cl_caso_scalar_log_weight(const double *log_decay, int n, int i);
/* CASO, scalar decays: out[len] = sum_i exp(sum_{j>i} log_decay[j]) S[i][..len]. */
void cl_caso_scalar_combine(int n, int64_t len, const double *log_decay, const float *const *S,
                            float *out);
/* CASO, matrices: out[D x V] = sum_i (P_n ... P_{i+1}) S_i (Horner: S <- P_i S + S_i). */
int cl_caso_matrix_combine(int n, int64_t D, int64_t V, const float *const *P,
                           const float *const *S, float *out);
/* Total transition P_n ... P_1 (D x D) into out. */
int cl_caso_matrix_product(int n, int64_t D, const float *const *P, float *out);

#endif
