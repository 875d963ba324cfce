/* The fast linear-algebra routes of src/linalg.c against plain LAPACK dgesdd,
 * on random, ill-conditioned and rank-deficient matrices, tall and wide. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "linalg.h"

static double *randmat(size_t m, size_t n)
{
    double *a = malloc(m * n * sizeof(double));
    for (size_t i = 0; i < m * n; i++)
        a[i] = check_nrand();
    return a;
}

/* A = Q1 diag(s) Q2^T with random orthonormal Q1 (m x r), Q2 (n x r). */
static double *with_spectrum(size_t m, size_t n, const double *s)
{
    size_t r = m < n ? m : n;
    double *g1 = randmat(m, r), *g2 = randmat(n, r);
    larv_polar_plain(m, r, g1, NULL, NULL);
    larv_polar_plain(n, r, g2, NULL, NULL);
    double *a = calloc(m * n, sizeof(double));
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++) {
            double v = 0;
            for (size_t l = 0; l < r; l++)
                v += g1[i * r + l] * s[l] * g2[j * r + l];
            a[i * n + j] = v;
        }
    free(g1);
    free(g2);
    return a;
}

/* Rank-k approximation U S V^T (U m x k ld ldu, V n x k ld ldv). */
static void lowrank(size_t m, size_t n, size_t k, const double *U, size_t ldu, const double *S,
                    const double *V, size_t ldv, double *out)
{
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++) {
            double v = 0;
            for (size_t l = 0; l < k; l++)
                v += U[i * ldu + l] * S[l] * V[j * ldv + l];
            out[i * n + j] = v;
        }
}

static double worst_topk = 0, worst_polar = 0;

static void check_topk(size_t m, size_t n, const double *A, size_t k, const char *what)
{
    size_t r = m < n ? m : n;
    double *U = malloc(m * k * sizeof(double)), *V = malloc(n * k * sizeof(double));
    double *S = malloc(k * sizeof(double)), *sig2 = malloc(r * sizeof(double));
    double *Ur = malloc(m * r * sizeof(double)), *Sr = malloc(r * sizeof(double));
    double *Vt = malloc(r * n * sizeof(double));
    double *B1 = malloc(m * n * sizeof(double)), *B2 = malloc(m * n * sizeof(double));
    larv_err err = {0};
    CHECK(larv_svd_topk(m, n, A, NULL, k, U, k, S, V, k, sig2, &err) == 0);
    CHECK(larv_svd_plain(m, n, A, Ur, Sr, Vt, &err) == 0);
    /* reference V as columns */
    double *Vr = calloc(n * r, sizeof(double));
    for (size_t j = 0; j < r; j++)
        for (size_t i = 0; i < n; i++)
            Vr[i * r + j] = Vt[j * n + i];
    double sdiff = 0;
    for (size_t j = 0; j < k; j++)
        sdiff = fmax(sdiff, fabs(S[j] - Sr[j]) / Sr[0]);
    double s2diff = 0;
    for (size_t j = 0; j < r; j++)
        s2diff = fmax(s2diff, fabs(sig2[j] - Sr[j] * Sr[j]) / (Sr[0] * Sr[0]));
    lowrank(m, n, k, U, k, S, V, k, B1);
    lowrank(m, n, k, Ur, r, Sr, Vr, r, B2);
    double rel = check_rel_diff(B1, B2, m * n);
    /* orthonormality of U and V */
    double orth = 0;
    for (size_t a = 0; a < k; a++)
        for (size_t b = 0; b < k; b++) {
            double du = 0, dv = 0;
            for (size_t i = 0; i < m; i++)
                du += U[i * k + a] * U[i * k + b];
            for (size_t i = 0; i < n; i++)
                dv += V[i * k + a] * V[i * k + b];
            orth = fmax(orth, fmax(fabs(du - (a == b)), fabs(dv - (a == b))));
        }
    printf("topk %-28s %3zux%-3zu k=%-3zu lowrank rel %.2e  S %.2e  sig2 %.2e  orth %.2e\n", what,
           m, n, k, rel, sdiff, s2diff, orth);
    if (rel > worst_topk)
        worst_topk = rel;
    CHECK(rel < 1e-9);
    CHECK(sdiff < 1e-12);
    CHECK(s2diff < 1e-13);
    CHECK(orth < 1e-9);
    free(U), free(V), free(S), free(sig2), free(Ur), free(Sr), free(Vt), free(Vr), free(B1),
        free(B2);
}

/* tol: relative Frobenius bound of the polar factor vs dgesdd; stol: of the
 * singular values relative to sigma_1 (the Gram route's sqrt(lambda_j) has an
 * absolute error ~ eps sigma_1^2 / sigma_j on a tiny sigma_j). */
static void check_polar(size_t m, size_t n, const double *A, double tol, double stol,
                        const char *what)
{
    size_t r = m < n ? m : n;
    double *X = malloc(m * n * sizeof(double)), *Y = malloc(m * n * sizeof(double));
    double *S1 = malloc(r * sizeof(double)), *S2 = malloc(r * sizeof(double));
    larv_err err = {0};
    memcpy(X, A, m * n * sizeof(double));
    memcpy(Y, A, m * n * sizeof(double));
    CHECK(larv_polar(m, n, X, S1, &err) == 0);
    CHECK(larv_polar_plain(m, n, Y, S2, &err) == 0);
    double rel = check_rel_diff(X, Y, m * n), sd = 0;
    for (size_t j = 0; j < r; j++)
        sd = fmax(sd, fabs(S1[j] - S2[j]) / S2[0]);
    printf("polar %-27s %3zux%-3zu rel %.2e  S %.2e\n", what, m, n, rel, sd);
    if (rel > worst_polar)
        worst_polar = rel;
    CHECK(rel < tol);
    CHECK(sd < stol);
    free(X), free(Y), free(S1), free(S2);
}

static void check_eig(void)
{
    /* larv_sym_eig vs a known spectrum. */
    size_t r = 30;
    double s[30];
    for (size_t j = 0; j < r; j++)
        s[j] = 30.0 - (double)j;
    double *A = with_spectrum(40, r, s);
    double *G = malloc(r * r * sizeof(double)), w[30], wk[5], Z[30 * 5];
    larv_err err = {0};
    larv_gram(40, r, A, G);
    CHECK(larv_sym_eig(r, G, w, 5, wk, Z, 5, &err) == 0);
    double d = 0;
    for (size_t j = 0; j < r; j++)
        d = fmax(d, fabs(w[j] - s[j] * s[j]));
    for (size_t j = 0; j < 5; j++)
        d = fmax(d, fabs(wk[j] - s[j] * s[j]));
    CHECK(d < 1e-10);
    free(A), free(G);
}

/* float32 polar: accurate to ~1e-6 where it accepts, declines otherwise */
static void check_f32(size_t m, size_t n)
{
    size_t r = m < n ? m : n, k = r / 4;
    double *s = malloc(r * sizeof(double));
    for (size_t j = 0; j < r; j++) /* cond 10 / 0.98: declined */
        s[j] = j < k ? 10.0 - 0.5 * (double)j : 1.0 - 0.001 * (double)j;
    double *A = with_spectrum(m, n, s);
    larv_err err = {0};
    /* polar: well conditioned accepted (~1e-6), ill conditioned declined */
    for (size_t j = 0; j < r; j++)
        s[j] = 1.0 + (double)j / (double)r;
    double *P1 = with_spectrum(m, n, s), *P2 = malloc(m * n * sizeof(double));
    memcpy(P2, P1, m * n * sizeof(double));
    CHECK(larv_polar_f32(m, n, P1, NULL, &err) == 0);
    CHECK(larv_polar_plain(m, n, P2, NULL, &err) == 0);
    double prel = check_rel_diff(P1, P2, m * n);
    CHECK(prel < 2e-6);
    CHECK(larv_polar_f32(m, n, A, NULL, &err) == 1); /* cond 10 / 0.98 */
    printf("f32 %3zux%-3zu: polar rel %.1e\n", m, n, prel);
    free(s), free(A), free(P1), free(P2);
}

int main(void)
{
    check_seed(0x9e3779b97f4a7c15ull);
    const size_t shapes[][2] = {{60, 25}, {25, 60}, {40, 40}, {200, 64}, {64, 200}};
    for (size_t q = 0; q < sizeof shapes / sizeof shapes[0]; q++) {
        size_t m = shapes[q][0], n = shapes[q][1], r = m < n ? m : n;
        double *A = randmat(m, n);
        check_topk(m, n, A, r / 5, "random");
        check_topk(m, n, A, r, "random, k = r");
        check_topk(m, n, A, 1, "random, k = 1");
        check_polar(m, n, A, 1e-9, 1e-12, "random"); /* square: sigma_min small */
        free(A);
        /* graded spectra: 1 .. 1e-3 (Gram route) and 1 .. 1e-12 (fallback) */
        double *s = malloc(r * sizeof(double));
        for (size_t j = 0; j < r; j++)
            s[j] = pow(1e-3, (double)j / (double)(r - 1));
        A = with_spectrum(m, n, s);
        check_topk(m, n, A, r / 4, "graded 1e-3");
        check_topk(m, n, A, r, "graded 1e-3, k = r");
        check_polar(m, n, A, 1e-9, 1e-12, "graded 1e-3");
        free(A);
        for (size_t j = 0; j < r; j++)
            s[j] = pow(1e-12, (double)j / (double)(r - 1));
        A = with_spectrum(m, n, s);
        check_topk(m, n, A, r / 4, "graded 1e-12 (k tail 1e-3)");
        check_topk(m, n, A, r / 2, "graded 1e-12 (fallback)");
        check_polar(m, n, A, 1e-11, 1e-12, "graded 1e-12 (fallback)");
        free(A);
        /* the shape of ViT task-vector sums and TSV-M stacks: 1 .. 1e-2 and a
         * tail of tiny singular values (lambda ratio 1e-10): the Gram route
         * is taken (estimate <= LARV_GRAM_POLAR_MAXERR) and stays within 1e-6 */
        for (size_t j = 0; j < r; j++)
            s[j] = j + 2 < r ? pow(1e-2, (double)j / (double)(r - 3)) : (j + 2 == r ? 2e-5 : 1e-5);
        {
            double *w = malloc(r * sizeof(double));
            for (size_t j = 0; j < r; j++)
                w[j] = s[j] * s[j];
            double est = larv_gram_polar_error_estimate(r, w);
            CHECK(est <= LARV_GRAM_POLAR_MAXERR && est > 1e-8);
            w[r - 1] = 1e-24; /* sigma 1e-12: declined */
            CHECK(larv_gram_polar_error_estimate(r, w) > LARV_GRAM_POLAR_MAXERR);
            w[r - 1] = 0; /* rank-deficient: declined */
            CHECK(isinf(larv_gram_polar_error_estimate(r, w)));
            free(w);
        }
        A = with_spectrum(m, n, s);
        check_polar(m, n, A, 1e-6, 1e-10, "tail 1e-5 (Gram route)");
        free(A);
        /* clustered singular values (near-degenerate pairs) */
        for (size_t j = 0; j < r; j++)
            s[j] = 1.0 + 1e-9 * (double)(j % 2) - 0.01 * (double)(j / 2);
        A = with_spectrum(m, n, s);
        check_topk(m, n, A, r / 4 * 2, "clustered pairs");
        free(A);
        /* rank-deficient: rank r/2, top k = r/4 well defined */
        for (size_t j = 0; j < r; j++)
            s[j] = j < r / 2 ? 2.0 - (double)j / (double)r : 0.0;
        A = with_spectrum(m, n, s);
        check_topk(m, n, A, r / 4, "rank r/2");
        free(A);
        free(s);
    }
    check_eig();
    check_f32(120, 48);
    check_f32(48, 120);
    printf("worst top-k rel %.2e, worst polar rel %.2e\n", worst_topk, worst_polar);
    return check_report();
}
