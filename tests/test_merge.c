/* merge.c: hand-worked and identity cases, the fast routes against a plain
 * dgesdd implementation of the spec, LARV proxies against the naive formula
 * (explicit m x m and n x n commutators), TIES building blocks. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "larv.h"
#include "linalg.h"
#include "merge.h"

static double *randmat(size_t len)
{
    double *a = malloc((len ? len : 1) * sizeof(double));
    for (size_t i = 0; i < len; i++)
        a[i] = check_nrand();
    return a;
}
static double *dup(const double *a, size_t len)
{
    double *b = malloc((len ? len : 1) * sizeof(double));
    memcpy(b, a, len * sizeof(double));
    return b;
}

/* ---- plain reference: every SVD a full dgesdd, exactly as the spec reads ---- */

/* thin SVD with V as columns (n x r) */
static void svd_cols(size_t m, size_t n, const double *A, double *U, double *S, double *V)
{
    size_t r = m < n ? m : n;
    double *Vt = malloc(r * n * sizeof(double));
    larv_svd_plain(m, n, A, U, S, Vt, NULL);
    for (size_t j = 0; j < r; j++)
        for (size_t i = 0; i < n; i++)
            V[i * r + j] = Vt[j * n + i];
    free(Vt);
}

/* M = Ucat_perp diag(S) Vcat_perp^T for stacks m x p, n x p */
static void whiten_product(size_t m, size_t n, size_t p, double *Uc, double *Vc, const double *S,
                           double *M)
{
    larv_polar_plain(m, p, Uc, NULL, NULL);
    larv_polar_plain(n, p, Vc, NULL, NULL);
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++) {
            double v = 0;
            for (size_t l = 0; l < p; l++)
                v += Uc[i * p + l] * S[l] * Vc[j * p + l];
            M[i * n + j] = v;
        }
}

static void ref_tsv(size_t m, size_t n, size_t T, const double *tau, const double *alpha,
                    double *M)
{
    size_t r = m < n ? m : n, k = r / T, p = T * k;
    if (p == 0) {
        memset(M, 0, m * n * sizeof(double));
        return;
    }
    double *Uc = malloc(m * p * sizeof(double)), *Vc = malloc(n * p * sizeof(double));
    double *Sc = malloc(p * sizeof(double));
    double *U = malloc(m * r * sizeof(double)), *V = malloc(n * r * sizeof(double));
    double *S = malloc(r * sizeof(double)), *A = malloc(m * n * sizeof(double));
    for (size_t t = 0; t < T; t++) {
        for (size_t i = 0; i < m * n; i++)
            A[i] = tau[t * m * n + i] * (alpha ? alpha[t] : 1.0);
        svd_cols(m, n, A, U, S, V);
        for (size_t j = 0; j < k; j++) {
            for (size_t i = 0; i < m; i++)
                Uc[i * p + t * k + j] = U[i * r + j];
            for (size_t i = 0; i < n; i++)
                Vc[i * p + t * k + j] = V[i * r + j];
            Sc[t * k + j] = S[j];
        }
    }
    whiten_product(m, n, p, Uc, Vc, Sc, M);
    free(Uc), free(Vc), free(Sc), free(U), free(V), free(S), free(A);
}

static void ref_isoc(size_t m, size_t n, size_t T, const double *tau, double *M)
{
    size_t r = m < n ? m : n;
    double *A = calloc(m * n, sizeof(double)), *U = malloc(m * r * sizeof(double));
    double *V = malloc(n * r * sizeof(double)), *S = malloc(r * sizeof(double));
    for (size_t t = 0; t < T; t++)
        for (size_t i = 0; i < m * n; i++)
            A[i] += tau[t * m * n + i];
    svd_cols(m, n, A, U, S, V);
    double mean = 0;
    for (size_t j = 0; j < r; j++)
        mean += S[j] / (double)r;
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++) {
            double v = 0;
            for (size_t l = 0; l < r; l++)
                v += U[i * r + l] * V[j * r + l];
            M[i * n + j] = mean * v;
        }
    free(A), free(U), free(V), free(S);
}

static void ref_isocts(size_t m, size_t n, size_t T, const double *tau, double f, double *M)
{
    size_t r = m < n ? m : n, c, d;
    larv_iso_cts_sizes(r, T, f, &c, &d);
    double *A = calloc(m * n, sizeof(double)), *U = malloc(m * r * sizeof(double));
    double *V = malloc(n * r * sizeof(double)), *S = malloc(r * sizeof(double));
    double *Ust = calloc(m * r, sizeof(double)), *Vst = calloc(n * r, sizeof(double));
    double *Sst = calloc(r, sizeof(double)), *Uc = malloc(m * (c ? c : 1) * sizeof(double));
    for (size_t t = 0; t < T; t++)
        for (size_t i = 0; i < m * n; i++)
            A[i] += tau[t * m * n + i];
    svd_cols(m, n, A, U, S, V);
    size_t off = T * d;
    for (size_t j = 0; j < c; j++) {
        for (size_t i = 0; i < m; i++)
            Ust[i * r + off + j] = Uc[i * c + j] = U[i * r + j];
        for (size_t i = 0; i < n; i++)
            Vst[i * r + off + j] = V[i * r + j];
        Sst[off + j] = S[j];
    }
    for (size_t t = 0; t < T; t++) {
        /* tau_t - Uc Uc^T tau_t with an explicit m x m projector */
        const double *X = tau + t * m * n;
        for (size_t i = 0; i < m; i++)
            for (size_t j = 0; j < n; j++) {
                double v = X[i * n + j];
                for (size_t a = 0; a < m; a++) {
                    double P = 0;
                    for (size_t l = 0; l < c; l++)
                        P += Uc[i * c + l] * Uc[a * c + l];
                    v -= P * X[a * n + j];
                }
                A[i * n + j] = v;
            }
        svd_cols(m, n, A, U, S, V);
        for (size_t j = 0; j < d; j++) {
            for (size_t i = 0; i < m; i++)
                Ust[i * r + t * d + j] = U[i * r + j];
            for (size_t i = 0; i < n; i++)
                Vst[i * r + t * d + j] = V[i * r + j];
            Sst[t * d + j] = S[j];
        }
    }
    double mean = 0;
    for (size_t j = 0; j < r; j++)
        mean += Sst[j] / (double)r;
    for (size_t j = 0; j < r; j++)
        Sst[j] = mean;
    whiten_product(m, n, r, Ust, Vst, Sst, M);
    free(A), free(U), free(V), free(S), free(Ust), free(Vst), free(Sst), free(Uc);
}

static double naive_reff(size_t m, size_t n, const double *A)
{
    size_t r = m < n ? m : n;
    double *S = malloc(r * sizeof(double));
    larv_svd_plain(m, n, A, NULL, S, NULL, NULL);
    for (size_t j = 0; j < r; j++)
        S[j] *= S[j];
    double v = larv_effective_rank_sq(S, r);
    free(S);
    return v;
}

static double naive_conflict(size_t m, size_t n, const double *W, const double *D)
{
    double l = 0, rr = 0, nw = 0, nd = 0;
    for (size_t i = 0; i < m * n; i++)
        nw += W[i] * W[i], nd += D[i] * D[i];
    for (size_t i = 0; i < m; i++) /* W D^T - D W^T, m x m */
        for (size_t a = 0; a < m; a++) {
            double v = 0;
            for (size_t j = 0; j < n; j++)
                v += W[i * n + j] * D[a * n + j] - D[i * n + j] * W[a * n + j];
            l += v * v;
        }
    for (size_t j = 0; j < n; j++) /* W^T D - D^T W, n x n */
        for (size_t b = 0; b < n; b++) {
            double v = 0;
            for (size_t i = 0; i < m; i++)
                v += W[i * n + j] * D[i * n + b] - D[i * n + j] * W[i * n + b];
            rr += v * v;
        }
    return 0.5 * (sqrt(l) + sqrt(rr)) / (sqrt(nw) * sqrt(nd) + 1e-10);
}

/* ---------------------------------------------------------------------------- */

static int run(larv_method meth, size_t m, size_t n, size_t T, const double *W0,
               const double *tau, double *M, double *e, double *c, const larv_merge_opts *o)
{
    double *work = dup(tau, T * m * n);
    larv_err err = {0};
    int rc = larv_merge_matrix(meth, m, n, T, W0, work, M, e, c, o, &err);
    if (rc)
        fprintf(stderr, "merge failed: %s\n", err.msg);
    free(work);
    return rc;
}

static void test_names(void)
{
    larv_method m;
    CHECK(larv_method_parse("iso-cts", &m) == 0 && m == LARV_ISO_CTS);
    CHECK(larv_method_parse("tsv", &m) == 0 && m == LARV_TSV);
    CHECK(larv_method_parse("nope", &m) == -1);
    CHECK(strcmp(larv_method_name(LARV_ISO_C), "iso-c") == 0);
    CHECK(larv_method_default_lambda(LARV_TA) == 0.3);
    CHECK(larv_method_default_lambda(LARV_TIES) == 0.3);
    CHECK(larv_method_default_lambda(LARV_TSV) == 1.0);
    CHECK(larv_method_default_lambda(LARV_ISO_CTS) == 1.0);
    larv_merge_opts o;
    larv_merge_opts_default(&o);
    CHECK(o.precision == LARV_PREC_DOUBLE && o.iso_common == 0.8 && o.alpha == NULL);
}

static void test_ta_and_vector(void)
{
    const double tau[8] = {1, 2, 3, 4, 0.5, -1, 0, 2};
    const double want[4] = {1.5, 1, 3, 6};
    double M[4];
    CHECK(run(LARV_TA, 2, 2, 2, NULL, tau, M, NULL, NULL, NULL) == 0);
    CHECK(memcmp(M, want, sizeof M) == 0);
    larv_merge_vector(LARV_TA, 4, 2, tau, M);
    CHECK(memcmp(M, want, sizeof M) == 0);
    larv_merge_vector(LARV_ISO_C, 4, 2, tau, M);
    CHECK(M[0] == 0.75 && M[1] == 0.5 && M[2] == 1.5 && M[3] == 3.0);
}

static void test_isoc_single_task(void)
{
    size_t m = 9, n = 5, r = 5;
    double *tau = randmat(m * n), *M = malloc(m * n * sizeof(double));
    double U[45], V[25], S[5], want[45];
    svd_cols(m, n, tau, U, S, V);
    double mean = (S[0] + S[1] + S[2] + S[3] + S[4]) / 5;
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++) {
            double v = 0;
            for (size_t l = 0; l < r; l++)
                v += U[i * r + l] * V[j * r + l];
            want[i * n + j] = mean * v;
        }
    CHECK(run(LARV_ISO_C, m, n, 1, NULL, tau, M, NULL, NULL, NULL) == 0);
    CHECK_REL(M, want, m * n, 1e-12);
    free(tau), free(M);
}

static void test_tsv_orthogonal(void)
{
    /* T = 2 tasks on disjoint row AND column blocks, each of rank exactly k = 3:
     * TSV-M returns their sum. Rotated by random orthogonal matrices too. */
    size_t m = 8, n = 6, T = 2;
    double *tau = calloc(T * m * n, sizeof(double)), want[48], M[48];
    for (size_t t = 0; t < T; t++)
        for (size_t i = 0; i < 3; i++)
            for (size_t j = 0; j < 3; j++)
                tau[t * m * n + (t * 3 + i) * n + (t * 3 + j)] = check_nrand() + (i == j ? 3 : 0);
    for (size_t i = 0; i < m * n; i++)
        want[i] = tau[i] + tau[m * n + i];
    CHECK(run(LARV_TSV, m, n, T, NULL, tau, M, NULL, NULL, NULL) == 0);
    CHECK_REL(M, want, m * n, 1e-12);
    /* rotate: tau_t <- Q1 tau_t Q2^T */
    double *Q1 = randmat(m * m), *Q2 = randmat(n * n);
    larv_polar_plain(m, m, Q1, NULL, NULL);
    larv_polar_plain(n, n, Q2, NULL, NULL);
    double *rot = malloc(T * m * n * sizeof(double));
    for (size_t t = 0; t < T; t++)
        for (size_t i = 0; i < m; i++)
            for (size_t j = 0; j < n; j++) {
                double v = 0;
                for (size_t a = 0; a < m; a++)
                    for (size_t b = 0; b < n; b++)
                        v += Q1[i * m + a] * tau[t * m * n + a * n + b] * Q2[j * n + b];
                rot[t * m * n + i * n + j] = v;
            }
    for (size_t i = 0; i < m * n; i++)
        want[i] = rot[i] + rot[m * n + i];
    CHECK(run(LARV_TSV, m, n, T, NULL, rot, M, NULL, NULL, NULL) == 0);
    CHECK_REL(M, want, m * n, 1e-12);
    /* k = 0 (r < T): M = 0 */
    double M2[6] = {1, 1, 1, 1, 1, 1};
    double *small = randmat(4 * 6);
    CHECK(run(LARV_TSV, 2, 3, 4, NULL, small, M2, NULL, NULL, NULL) == 0);
    CHECK(M2[0] == 0 && M2[5] == 0);
    free(tau), free(Q1), free(Q2), free(rot), free(small);
}

static void test_isocts_sizes(void)
{
    size_t c, d;
    larv_iso_cts_sizes(50, 20, 0.8, &c, &d);
    CHECK(c == 50 && d == 0);
    larv_iso_cts_sizes(257, 8, 0.8, &c, &d);
    CHECK(c == 209 && d == 6);
    larv_iso_cts_sizes(768, 8, 0.8, &c, &d);
    CHECK(c == 616 && d == 19); /* floor(614.4)=614, round(154/8=19.25)=19, s=152 */
    larv_iso_cts_sizes(12, 3, 0.8, &c, &d);
    CHECK(c == 9 && d == 1); /* floor(9.6)=9, round(1)=1 */
    larv_iso_cts_sizes(10, 4, 0.8, &c, &d);
    CHECK(c == 10 && d == 0); /* round(0.5) = 0 (half to even) */
    larv_iso_cts_sizes(22, 4, 0.8, &c, &d);
    CHECK(c == 18 && d == 1); /* floor(17.6)=17, round(5/4=1.25)=1 -> s=4 */
}

static void test_isocts_equals_isoc(void)
{
    size_t m = 60, n = 50, T = 20;
    double *tau = randmat(T * m * n), *M1 = malloc(m * n * sizeof(double));
    double *M2 = malloc(m * n * sizeof(double));
    CHECK(run(LARV_ISO_CTS, m, n, T, NULL, tau, M1, NULL, NULL, NULL) == 0);
    CHECK(run(LARV_ISO_C, m, n, T, NULL, tau, M2, NULL, NULL, NULL) == 0);
    CHECK_REL(M1, M2, m * n, 1e-11);
    free(tau), free(M1), free(M2);
}

static void test_vs_plain(size_t m, size_t n, size_t T, int rank_def)
{
    size_t mn = m * n, r = m < n ? m : n;
    double *tau = randmat(T * mn);
    if (rank_def) { /* rank r/2 per task, still >= k */
        size_t q = r / 2;
        for (size_t t = 0; t < T; t++) {
            double *A = randmat(m * q), *B = randmat(q * n);
            for (size_t i = 0; i < m; i++)
                for (size_t j = 0; j < n; j++) {
                    double v = 0;
                    for (size_t l = 0; l < q; l++)
                        v += A[i * q + l] * B[l * n + j];
                    tau[t * mn + i * n + j] = v;
                }
            free(A), free(B);
        }
    }
    double *M = malloc(mn * sizeof(double)), *R = malloc(mn * sizeof(double));
    double alpha[8] = {1.0, 0.5, 2.0, -1.0, 0.3, 1.5, 0.7, 1.1};
    larv_merge_opts o;
    larv_merge_opts_default(&o);
    CHECK(run(LARV_TSV, m, n, T, NULL, tau, M, NULL, NULL, &o) == 0);
    ref_tsv(m, n, T, tau, NULL, R);
    double d1 = check_rel_diff(M, R, mn);
    CHECK(d1 < 1e-9);
    o.alpha = alpha;
    CHECK(run(LARV_TSV, m, n, T, NULL, tau, M, NULL, NULL, &o) == 0);
    ref_tsv(m, n, T, tau, alpha, R);
    double d2 = check_rel_diff(M, R, mn);
    CHECK(d2 < 1e-9);
    o.alpha = NULL;
    double d3 = 0, d4 = 0;
    if (!rank_def) { /* Iso-C / Iso-CTS are ill-defined for a rank-deficient sum */
        CHECK(run(LARV_ISO_C, m, n, T, NULL, tau, M, NULL, NULL, &o) == 0);
        ref_isoc(m, n, T, tau, R);
        d3 = check_rel_diff(M, R, mn);
        CHECK(d3 < 1e-9);
        CHECK(run(LARV_ISO_CTS, m, n, T, NULL, tau, M, NULL, NULL, &o) == 0);
        ref_isocts(m, n, T, tau, 0.8, R);
        d4 = check_rel_diff(M, R, mn);
        CHECK(d4 < 1e-9);
        o.iso_common = 0.5;
        CHECK(run(LARV_ISO_CTS, m, n, T, NULL, tau, M, NULL, NULL, &o) == 0);
        ref_isocts(m, n, T, tau, 0.5, R);
        double d5 = check_rel_diff(M, R, mn);
        CHECK(d5 < 1e-9);
        d4 = fmax(d4, d5);
    }
    printf("vs plain %3zux%-3zu T=%zu%s: tsv %.1e  tsv(alpha) %.1e  iso-c %.1e  iso-cts %.1e\n", m,
           n, T, rank_def ? " rank-def" : "", d1, d2, d3, d4);
    free(tau), free(M), free(R);
}

static void test_scale_equivariance(void)
{
    size_t m = 14, n = 10, T = 3, mn = m * n;
    double *tau = randmat(T * mn), *ts = malloc(T * mn * sizeof(double));
    double *M1 = malloc(mn * sizeof(double)), *M2 = malloc(mn * sizeof(double));
    const double ss[2] = {2.5, -0.7};
    const larv_method meths[4] = {LARV_TA, LARV_TSV, LARV_ISO_C, LARV_ISO_CTS};
    for (int q = 0; q < 2; q++)
        for (int k = 0; k < 4; k++) {
            for (size_t i = 0; i < T * mn; i++)
                ts[i] = ss[q] * tau[i];
            CHECK(run(meths[k], m, n, T, NULL, tau, M1, NULL, NULL, NULL) == 0);
            CHECK(run(meths[k], m, n, T, NULL, ts, M2, NULL, NULL, NULL) == 0);
            for (size_t i = 0; i < mn; i++)
                M1[i] *= ss[q];
            CHECK_REL(M2, M1, mn, 1e-11);
        }
    free(tau), free(ts), free(M1), free(M2);
}

static void test_proxies(size_t m, size_t n, size_t T)
{
    size_t mn = m * n;
    double *W0 = randmat(mn), *tau = randmat(T * mn);
    for (size_t i = 0; i < T * mn; i++) /* low-rank-ish updates: scale a few columns */
        tau[i] *= 0.01 * (1.0 + 5.0 * ((i % n) < 2));
    double e[8], c[8], e2[8], c2[8], e3[8], c3[8], worst = 0;
    double *M = malloc(mn * sizeof(double));
    double alpha[8] = {2.0, 0.5, 1.0, 3.0, 1, 1, 1, 1};
    larv_merge_opts o;
    larv_merge_opts_default(&o);
    CHECK(run(LARV_TA, m, n, T, W0, tau, NULL, e, c, NULL) == 0);
    CHECK(run(LARV_TSV, m, n, T, W0, tau, M, e2, c2, NULL) == 0); /* shared path */
    o.alpha = alpha;
    CHECK(run(LARV_TSV, m, n, T, W0, tau, M, e3, c3, &o) == 0); /* proxies of unscaled tau */
    double rw = naive_reff(m, n, W0);
    for (size_t t = 0; t < T; t++) {
        double we = rw / (naive_reff(m, n, tau + t * mn) + 1e-8);
        double wc = naive_conflict(m, n, W0, tau + t * mn);
        double d = fmax(fabs(e[t] - we) / we, fabs(c[t] - wc) / wc);
        d = fmax(d, fmax(fabs(e2[t] - we) / we, fabs(c2[t] - wc) / wc));
        d = fmax(d, fmax(fabs(e3[t] - we) / we, fabs(c3[t] - wc) / wc));
        worst = fmax(worst, d);
    }
    printf("proxies %3zux%-3zu T=%zu: worst rel %.1e (e[0] %.4f c[0] %.4f)\n", m, n, T, worst, e[0],
           c[0]);
    CHECK(worst < 1e-10);
    /* a symmetric pair: W0 = D (square) -> commutators vanish */
    if (m == n) {
        double cc, ee;
        CHECK(run(LARV_TA, m, n, 1, W0, W0, NULL, &ee, &cc, NULL) == 0);
        CHECK(cc < 1e-6);
        CHECK(fabs(ee - rw / (rw + 1e-8)) < 1e-12);
    }
    /* an untouched update (task 1 exactly zero): e = c = NaN for it, the
     * others unchanged, with every method's route (spec "Untouched updates") */
    if (T >= 2) {
        memset(tau + mn, 0, mn * sizeof(double));
        larv_method ms[4] = {LARV_TA, LARV_TSV, LARV_ISO_C, LARV_ISO_CTS};
        for (int k = 0; k < 4; k++) {
            CHECK(run(ms[k], m, n, T, W0, tau, ms[k] == LARV_TA ? NULL : M, e2, c2, NULL) == 0);
            CHECK(isnan(e2[1]) && isnan(c2[1]));
            CHECK(fabs(e2[0] - e[0]) <= 1e-10 * e[0] && fabs(c2[0] - c[0]) <= 1e-10 * c[0]);
        }
    }
    free(W0), free(tau), free(M);
}

static void test_ties(void)
{
    float tau[18] = {0.5f, -2.0f, 1.0f, 0.1f, -0.3f, 3.0f,   /* task 1 */
                     -0.5f, 1.0f, 1.0f, -0.2f, 0.3f, -1.0f,  /* task 2 */
                     0.0f, 0.5f, -4.0f, 0.4f, 0.2f, 2.0f};   /* task 3 */
    const float thr[3] = {0.5f, 0.5f, 0.4f};
    larv_ties_trim(tau, 6, 3, thr);
    const float want[18] = {0.5f, -2.0f, 1.0f, 0, 0, 3.0f, -0.5f, 1.0f, 1.0f, 0, 0, -1.0f,
                            0, 0.5f, -4.0f, 0.4f, 0, 2.0f};
    CHECK(memcmp(tau, want, sizeof want) == 0); /* ties at the threshold kept */
    /* coordinate 0 sums to exactly 0 (0.5 - 0.5), coordinate 4 to 0 (all trimmed) */
    CHECK(larv_ties_sign_count(tau, 6, 3) == 0.0); /* -, -, +, + */
    double M[6];
    larv_ties_merge(tau, 6, 3, LARV_TIES_SUM, 1.0, M);
    const double ws[6] = {0.5, -2.0, -4.0, (double)0.4f, 0, 5.0};
    CHECK(memcmp(M, ws, sizeof ws) == 0);
    larv_ties_merge(tau, 6, 3, LARV_TIES_MEAN, 1.0, M);
    const double wm[6] = {0.5, -2.0, -4.0, (double)0.4f, 0, 2.5};
    CHECK(memcmp(M, wm, sizeof wm) == 0);
    larv_ties_merge(tau, 6, 3, LARV_TIES_MAX, 1.0, M);
    const double wx[6] = {0.5, -2.0, -4.0, (double)0.4f, 0, 3.0};
    CHECK(memcmp(M, wx, sizeof wx) == 0);
    /* majority -1: coordinate 0 takes the negative entry */
    larv_ties_merge(tau, 6, 3, LARV_TIES_SUM, -1.0, M);
    CHECK(M[0] == -0.5 && M[4] == 0 && M[5] == 5.0);
    larv_ties_merge(tau, 6, 3, LARV_TIES_MAX, -1.0, M);
    CHECK(M[0] == -0.5 && M[4] == 0.0);

    /* two-round radix select == sorting */
    size_t n = 5000;
    float *x = malloc(n * sizeof(float)), *a = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(check_nrand() * 1e-3), a[i] = fabsf(x[i]);
    x[7] = x[8] = -x[9]; /* ties */
    a[7] = a[8] = a[9] = fabsf(x[9]);
    for (size_t i = 1; i < n; i++) /* insertion sort */
        for (size_t j = i; j > 0 && a[j - 1] > a[j]; j--) {
            float tmp = a[j];
            a[j] = a[j - 1];
            a[j - 1] = tmp;
        }
    size_t kk = n - (size_t)floor((double)n * 0.2);
    uint64_t *h = calloc(65536, sizeof(uint64_t));
    larv_ties_hist(x, n, 16, 0, 0, h);
    uint64_t cum = 0;
    uint32_t hi = 0;
    for (; hi < 65536; hi++) {
        if (cum + h[hi] >= kk)
            break;
        cum += h[hi];
    }
    memset(h, 0, 65536 * sizeof(uint64_t));
    larv_ties_hist(x, n, 0, 0xffff0000u, hi << 16, h);
    uint32_t lo = 0;
    for (; lo < 65536; lo++) {
        if (cum + h[lo] >= kk)
            break;
        cum += h[lo];
    }
    union { uint32_t u; float f; } key = {(hi << 16) | lo};
    CHECK(key.f == a[kk - 1]);
    free(x), free(a), free(h);
}

/* precision single against double: within the spec's 1e-5 */
static void test_single(size_t m, size_t n, size_t T, double decay)
{
    size_t mn = m * n, r = m < n ? m : n;
    double *tau = randmat(T * mn);
    if (decay > 0) { /* graded spectrum per task: scale by random rotations of a decaying diag */
        for (size_t t = 0; t < T; t++) {
            double *A = tau + t * mn;
            double *U = malloc(m * r * sizeof(double)), *S = malloc(r * sizeof(double));
            double *Vt = malloc(r * n * sizeof(double));
            larv_svd_plain(m, n, A, U, S, Vt, NULL);
            for (size_t i = 0; i < m; i++)
                for (size_t j = 0; j < n; j++) {
                    double v = 0;
                    for (size_t l = 0; l < r; l++)
                        v += U[i * r + l] * pow(decay, (double)l) * Vt[l * n + j];
                    A[i * n + j] = v;
                }
            free(U), free(S), free(Vt);
        }
    }
    double *M1 = malloc(mn * sizeof(double)), *M2 = malloc(mn * sizeof(double)), worst = 0;
    const larv_method meths[3] = {LARV_TSV, LARV_ISO_C, LARV_ISO_CTS};
    larv_merge_opts o;
    larv_merge_opts_default(&o);
    for (int q = 0; q < 3; q++) {
        o.precision = LARV_PREC_DOUBLE;
        CHECK(run(meths[q], m, n, T, NULL, tau, M1, NULL, NULL, &o) == 0);
        o.precision = LARV_PREC_SINGLE;
        CHECK(run(meths[q], m, n, T, NULL, tau, M2, NULL, NULL, &o) == 0);
        double d = check_rel_diff(M2, M1, mn);
        CHECK(d < 1e-5);
        if (getenv("LARV_VERBOSE"))
            printf("  %s %.1e\n", larv_method_name(meths[q]), d);
        worst = fmax(worst, d);
    }
    printf("single vs double %3zux%-3zu T=%zu decay %.2f: worst rel %.1e\n", m, n, T, decay, worst);
    free(tau), free(M1), free(M2);
}

static void timing(void)
{
    const char *env = getenv("LARV_BENCH");
    if (!env)
        return;
    size_t m = 3072, n = 768, T = 8, mn = m * n;
    double *tau = randmat(T * mn), *W0 = randmat(mn), *M = malloc(mn * sizeof(double));
    double *R = malloc(mn * sizeof(double)), e[8], c[8];
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CHECK(run(LARV_TSV, m, n, T, NULL, tau, M, NULL, NULL, NULL) == 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double fast = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CHECK(run(LARV_TSV, m, n, T, W0, tau, M, e, c, NULL) == 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double fastp = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    ref_tsv(m, n, T, tau, NULL, R);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double plain = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    double d = check_rel_diff(M, R, mn);
    printf("bench TSV-M 3072x768 T=8: fast %.2f s (with proxies %.2f s), plain dgesdd %.2f s, "
           "rel diff %.1e\n",
           fast, fastp, plain, d);
    CHECK(d < 1e-9);
    larv_merge_opts os;
    larv_merge_opts_default(&os);
    os.precision = LARV_PREC_SINGLE;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CHECK(run(LARV_TSV, m, n, T, NULL, tau, R, NULL, NULL, &os) == 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("bench TSV-M single: %.2f s, rel diff to double %.1e\n",
           (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec),
           check_rel_diff(R, M, mn));
    for (int q = 0; q < 4; q++) {
        larv_method me = q & 1 ? LARV_ISO_CTS : LARV_ISO_C;
        larv_merge_opts_default(&os);
        if (q >= 2)
            os.precision = LARV_PREC_SINGLE;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        CHECK(run(me, m, n, T, NULL, tau, M, NULL, NULL, &os) == 0);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        printf("bench %s%s 3072x768 T=8: %.2f s\n", larv_method_name(me), q >= 2 ? " single" : "",
               (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec));
    }
    free(tau), free(W0), free(M), free(R);
}

int main(void)
{
    check_seed(0x2545f4914f6cdd1dull);
    test_names();
    test_ta_and_vector();
    test_isoc_single_task();
    test_tsv_orthogonal();
    test_isocts_sizes();
    test_isocts_equals_isoc();
    test_vs_plain(12, 7, 2, 0);
    test_vs_plain(7, 12, 3, 0);
    test_vs_plain(9, 9, 4, 0);
    test_vs_plain(40, 24, 3, 0);
    test_vs_plain(24, 40, 5, 0);
    test_vs_plain(30, 16, 4, 1);
    test_vs_plain(16, 30, 2, 1);
    test_scale_equivariance();
    test_proxies(12, 7, 3);
    test_proxies(7, 12, 2);
    test_proxies(10, 10, 4);
    test_ties();
    test_single(200, 64, 4, 0);
    test_single(64, 200, 8, 0);
    test_single(120, 120, 3, 0.98);
    test_single(150, 60, 6, 0.9);
    timing();
    return check_report();
}
