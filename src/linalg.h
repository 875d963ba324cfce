/* Dense linear-algebra helpers on ROW-MAJOR matrices (OpenBLAS + LAPACKE), no MPI.
 *
 * Every routine takes row-major data (element (i, j) of an m x n matrix at
 * [i*ld + j]) and returns 0, or -1 with a message in err on a LAPACK failure or
 * an allocation failure. The "fast" routes work on the min(m, n)-sized Gram
 * matrix and fall back to a real SVD (dgesdd) when the Gram matrix is too
 * ill-conditioned for them to be accurate (see LARV_GRAM_* below); tests
 * (tests/test_linalg.c) compare them with plain dgesdd. */
#ifndef LARV_LINALG_H
#define LARV_LINALG_H

#include <stddef.h>

#include "err.h"

/* Fallback thresholds. Top-k: the Gram route is used only when the smallest
 * eigenvalue it depends on is >= this fraction of the largest (the singular
 * values involved within a factor 1e4 of the largest one), so the squaring of
 * the condition number costs at most ~1e8 * eps ~ 2e-8 of accuracy. */
#define LARV_GRAM_TOPK_RTOL 1e-8
/* Polar factor: the Gram route's error comes from the small eigenvalues, each
 * column j carrying ~ eps * lambda_max / lambda_j (non-orthogonality of A v_j
 * and the error of sqrt(lambda_j)), so its relative Frobenius error is about
 * larv_gram_polar_error_estimate(w) = eps sqrt(sum_j (lambda_max/lambda_j)^2 / r).
 * Measured against dgesdd on the ViT-B/32 x 8 Iso-C sums and TSV-M stacks
 * (lambda ratios 3e-14 .. 1e-4): the actual error was 1e-3 .. 0.25 times the
 * estimate. The route is taken when the estimate is <= LARV_GRAM_POLAR_MAXERR,
 * 10x below the spec's 1e-5 even if the estimate were reached. */
#define LARV_GRAM_POLAR_MAXERR 1e-6
double larv_gram_polar_error_estimate(size_t r, const double *w);

/* Plain thin SVD by dgesdd: A (m x n, row-major, not modified) = U S Vt with
 * U m x r, S r (descending), Vt r x n, r = min(m, n). U or Vt may be NULL (then
 * only singular values are computed if both are NULL). */
int larv_svd_plain(size_t m, size_t n, const double *A, double *U, double *S, double *Vt,
                   larv_err *err);

/* The Gram matrix of A on its small side: r x r, r = min(m, n): A^T A if
 * m >= n, else A A^T. Full (both triangles) row-major = column-major. */
void larv_gram(size_t m, size_t n, const double *A, double *G);

/* Symmetric eigen-decomposition of G (r x r, full storage, destroyed):
 * if w_all != NULL all eigenvalues, DESCENDING; if k > 0, the eigenvectors of
 * the k largest eigenvalues into Z (r x k, row-major, ld ldz; column j belongs
 * to the j-th largest) and their eigenvalues into wk (k, descending).
 * One tridiagonal reduction serves both (dsytrd + dsterf + dstemr + dormtr). */
int larv_sym_eig(size_t r, double *G, double *w_all, size_t k, double *wk, double *Z, size_t ldz,
                 larv_err *err);

/* An external eigensolver for larv_sym_eig (same contract), e.g. ScaLAPACK on
 * a group of MPI ranks that share one matrix (mpi/team.c). When installed,
 * larv_sym_eig hands it every problem of order >= min_order. NULL removes it.
 * Process-wide; src/ stays free of MPI. */
typedef int (*larv_eig_provider)(void *ctx, size_t r, double *G, double *w_all, size_t k,
                                 double *wk, double *Z, size_t ldz, larv_err *err);
void larv_linalg_set_eig_provider(larv_eig_provider fn, void *ctx, size_t min_order);

/* Top-k singular triplets of A (m x n, row-major, not modified), k <= min(m,n):
 * U (m x k, ld ldu), S (k, descending), V (n x k, ld ldv; the right singular
 * vectors as COLUMNS). If sig2_all != NULL, all min(m,n) squared singular
 * values, descending. G: the Gram matrix from larv_gram (destroyed) or NULL
 * (then computed here). Route: eigen-decomposition of the small-side Gram
 * matrix, the other side by one GEMM divided by sigma; falls back to dgesdd
 * when sigma_k^2 < LARV_GRAM_TOPK_RTOL * sigma_1^2. */
int larv_svd_topk(size_t m, size_t n, const double *A, double *G, size_t k, double *U, size_t ldu,
                  double *S, double *V, size_t ldv, double *sig2_all, larv_err *err);

/* Polar factor: A (m x n, row-major) is replaced by P Q^T where A = P Sigma Q^T
 * is its thin SVD; S (min(m,n), descending) receives Sigma if non-NULL.
 * Route: A (A^T A)^{-1/2} (tall) or (A A^T)^{-1/2} A (wide) through the Gram
 * eigen-decomposition; a real SVD when the estimated error of that route
 * exceeds LARV_GRAM_POLAR_MAXERR (or A is rank-deficient). */
int larv_polar(size_t m, size_t n, double *A, double *S, larv_err *err);

/* Reference polar factor through dgesdd only (for tests and fallbacks). */
int larv_polar_plain(size_t m, size_t n, double *A, double *S, larv_err *err);

/* float32 polar factor for --precision single: the Gram matrix, its
 * eigen-decomposition and the GEMMs run in float32 (ssyrk, ssyevd,
 * sgemm/ssymm); inputs and outputs stay float64. Returns 1 (not an error,
 * nothing written) when float32 would not be accurate enough for the spec's
 * 1e-5 bound (threshold below), so that the caller runs the float64 routine
 * instead; 0 on success; -1 on failure. */
#define LARV_F32_POLAR_RTOL 1e-1 /* cond(U) <= ~3.2 */
int larv_polar_f32(size_t m, size_t n, double *A, double *S, larv_err *err);

/* float32 small-side Gram of a float32 matrix (r x r full storage, r = min(m, n)). */
void larv_gram_f32(size_t m, size_t n, const float *A, float *G);
/* All eigenvalues of a float32 symmetric r x r matrix G (destroyed), descending,
 * into w (float64): ssytrd + ssterf. Used for LARV's effective ranks under
 * --precision single (measured <= 3e-7 relative on r_eff). */
int larv_sym_eigvals_f32(size_t r, float *G, double *w, larv_err *err);

/* Frobenius inner product of two r x r full matrices. */
double larv_dot(size_t len, const double *a, const double *b);

/* A LAPACK/ScaLAPACK routine `fn` returned info != 0: a message that says what
 * it means (info < 0: an argument was illegal, an internal error, exit 1;
 * info > 0: no convergence on extreme values, exit 65), never the bare code.
 * Returns -1. */
int larv_lapack_fail(larv_err *err, const char *fn, int info);

#endif
