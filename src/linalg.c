/* Dense linear-algebra helpers (see linalg.h). Row-major throughout: a
 * row-major m x n array is the column-major n x m transpose, which is how it is
 * handed to LAPACK; symmetric matrices are the same in either layout. */
#include "linalg.h"

#include <cblas.h>
#include <float.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define LAPACK_FAIL(err, fn, info) larv_lapack_fail((err), (fn), (int)(info))

int larv_lapack_fail(larv_err *err, const char *fn, int info)
{
    if (info < 0)
        return larv_fail(err, LARV_EXIT_FAIL,
                         "%s failed (LAPACK info %d: its argument %d had an illegal value): an "
                         "internal error of larv, or NaN/Inf reached the factorization; please "
                         "report it with the command line",
                         fn, info, -info);
    return larv_fail(err, LARV_EXIT_DATAERR,
                     "%s failed (LAPACK info %d: the eigen/singular value iteration did not "
                     "converge): the matrix is numerically extreme, e.g. values so large that "
                     "their squares overflow (|x| > 1e154) or spread over too many orders of "
                     "magnitude; check the inputs' magnitudes, --lambda and the LARV scales",
                     fn, info);
}

static int oom(larv_err *err, size_t bytes)
{
    return larv_fail(err, LARV_EXIT_FAIL, "out of memory (%zu bytes for linear algebra)", bytes);
}

static double *dalloc(size_t n, larv_err *err)
{
    double *p = malloc((n ? n : 1) * sizeof(double));
    if (!p)
        oom(err, n * sizeof(double));
    return p;
}

double larv_dot(size_t len, const double *a, const double *b)
{
    double s = 0;
    for (size_t i = 0; i < len; i++)
        s += a[i] * b[i];
    return s;
}

/* Copy the upper triangle of a row-major r x r matrix to its lower triangle. */
static void symmetrize_upper(size_t r, double *G)
{
    for (size_t i = 0; i < r; i++)
        for (size_t j = i + 1; j < r; j++)
            G[j * r + i] = G[i * r + j];
}

int larv_svd_plain(size_t m, size_t n, const double *A, double *U, double *S, double *Vt,
                   larv_err *err)
{
    size_t r = m < n ? m : n;
    if (r == 0)
        return 0;
    int rc = -1;
    double *a = dalloc(m * n, err), *u = NULL, *vt = NULL;
    if (!a)
        return -1;
    memcpy(a, A, m * n * sizeof(double));
    char jobz = (U || Vt) ? 'S' : 'N';
    if (jobz == 'S') {
        u = U ? U : dalloc(m * r, err);
        vt = Vt ? Vt : dalloc(r * n, err);
        if (!u || !vt)
            goto out;
    }
    /* Column-major view: A^T (n x m) = Ut St Vt^T, so A = Vt~ S Ut~^T:
     * LAPACK's "u" (n x r, ld n) is our Vt (r x n row-major) and its "vt"
     * (r x m, ld r) is our U (m x r row-major). */
    double dummy = 0;
    lapack_int info = LAPACKE_dgesdd(LAPACK_COL_MAJOR, jobz, (lapack_int)n, (lapack_int)m, a,
                                     (lapack_int)n, S, vt ? vt : &dummy, (lapack_int)n,
                                     u ? u : &dummy, (lapack_int)r);
    if (info > 0) {
        /* dbdsdc did not converge (rare; seen on a 1024 x 1024 Iso-CTS stack of
         * ViT-L/14 x 20): the QR-iteration SVD (dgesvd) on a fresh copy. */
        memcpy(a, A, m * n * sizeof(double));
        double *superb = dalloc(r, err);
        if (!superb)
            goto out;
        info = LAPACKE_dgesvd(LAPACK_COL_MAJOR, jobz == 'S' ? 'S' : 'N', jobz == 'S' ? 'S' : 'N',
                              (lapack_int)n, (lapack_int)m, a, (lapack_int)n, S, vt ? vt : &dummy,
                              (lapack_int)n, u ? u : &dummy, (lapack_int)r, superb);
        free(superb);
        if (info != 0) {
            LAPACK_FAIL(err, "dgesdd and dgesvd", info);
            goto out;
        }
    } else if (info != 0) {
        LAPACK_FAIL(err, "dgesdd", info);
        goto out;
    }
    rc = 0;
out:
    if (u && u != U)
        free(u);
    if (vt && vt != Vt)
        free(vt);
    free(a);
    return rc;
}

void larv_gram(size_t m, size_t n, const double *A, double *G)
{
    if (m >= n) {
        if (n == 0)
            return;
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)n, (int)m, 1.0, A, (int)n, 0.0, G,
                    (int)n);
        symmetrize_upper(n, G);
    } else {
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, (int)m, (int)n, 1.0, A, (int)n, 0.0,
                    G, (int)m);
        symmetrize_upper(m, G);
    }
}

static larv_eig_provider eig_provider;
static void *eig_provider_ctx;
static size_t eig_provider_min;

void larv_linalg_set_eig_provider(larv_eig_provider fn, void *ctx, size_t min_order)
{
    eig_provider = fn;
    eig_provider_ctx = ctx;
    eig_provider_min = min_order;
}

int larv_sym_eig(size_t r, double *G, double *w_all, size_t k, double *wk, double *Z, size_t ldz,
                 larv_err *err)
{
    if (r == 0)
        return 0;
    if (eig_provider && r >= eig_provider_min)
        return eig_provider(eig_provider_ctx, r, G, w_all, k, wk, Z, ldz, err);
    if (k > r)
        k = r;
    int rc = -1;
    lapack_int info;
    double *d = dalloc(r, err), *e = dalloc(r, err), *tau = dalloc(r, err);
    double *d2 = NULL, *e2 = NULL, *w = NULL, *zc = NULL;
    lapack_int *isuppz = NULL, *iblock = NULL, *isplit = NULL, *ifail = NULL;
    if (!d || !e || !tau)
        goto out;
    e[r - 1] = 0;
    info = LAPACKE_dsytrd(LAPACK_COL_MAJOR, 'L', (lapack_int)r, G, (lapack_int)r, d, e, tau);
    if (info != 0) {
        LAPACK_FAIL(err, "dsytrd", info);
        goto out;
    }
    if (w_all) {
        memcpy(w_all, d, r * sizeof(double));
        double *ee = dalloc(r, err);
        if (!ee)
            goto out;
        memcpy(ee, e, r * sizeof(double));
        info = LAPACKE_dsterf((lapack_int)r, w_all, ee);
        free(ee);
        if (info != 0) {
            LAPACK_FAIL(err, "dsterf", info);
            goto out;
        }
        for (size_t i = 0; i < r / 2; i++) { /* ascending -> descending */
            double t = w_all[i];
            w_all[i] = w_all[r - 1 - i];
            w_all[r - 1 - i] = t;
        }
    }
    if (k > 0) {
        d2 = dalloc(r, err);
        e2 = dalloc(r, err);
        w = dalloc(r, err);
        zc = dalloc(r * k, err);
        isuppz = malloc(2 * r * sizeof(lapack_int));
        if (!d2 || !e2 || !w || !zc || !isuppz) {
            if (isuppz)
                oom(err, r * k * sizeof(double));
            goto out;
        }
        memcpy(d2, d, r * sizeof(double));
        memcpy(e2, e, r * sizeof(double));
        lapack_int found = 0;
        lapack_logical tryrac = 1;
        info = LAPACKE_dstemr(LAPACK_COL_MAJOR, 'V', 'I', (lapack_int)r, d2, e2, 0.0, 0.0,
                              (lapack_int)(r - k + 1), (lapack_int)r, &found, w, zc,
                              (lapack_int)r, (lapack_int)k, isuppz, &tryrac);
        if (info != 0 || (size_t)found != k) {
            /* MRRR failed: bisection and inverse iteration, as dsyevr does. */
            iblock = malloc(r * sizeof(lapack_int));
            isplit = malloc(r * sizeof(lapack_int));
            ifail = malloc(r * sizeof(lapack_int));
            if (!iblock || !isplit || !ifail) {
                oom(err, r * sizeof(lapack_int));
                goto out;
            }
            lapack_int nsplit = 0;
            info = LAPACKE_dstebz('I', 'B', (lapack_int)r, 0.0, 0.0, (lapack_int)(r - k + 1),
                                  (lapack_int)r, 0.0, d, e, &found, &nsplit, w, iblock, isplit);
            if (info != 0 || (size_t)found != k) {
                LAPACK_FAIL(err, "dstebz", info);
                goto out;
            }
            info = LAPACKE_dstein(LAPACK_COL_MAJOR, (lapack_int)r, d, e, found, w, iblock, isplit,
                                  zc, (lapack_int)r, ifail);
            if (info != 0) {
                LAPACK_FAIL(err, "dstein", info);
                goto out;
            }
        }
        info = LAPACKE_dormtr(LAPACK_COL_MAJOR, 'L', 'L', 'N', (lapack_int)r, (lapack_int)k, G,
                              (lapack_int)r, tau, zc, (lapack_int)r);
        if (info != 0) {
            LAPACK_FAIL(err, "dormtr", info);
            goto out;
        }
        /* zc column c (ascending) -> Z column k-1-c (descending). */
        for (size_t j = 0; j < k; j++) {
            const double *col = zc + (k - 1 - j) * r;
            for (size_t i = 0; i < r; i++)
                Z[i * ldz + j] = col[i];
            if (wk)
                wk[j] = w[k - 1 - j];
        }
    }
    rc = 0;
out:
    free(d);
    free(e);
    free(tau);
    free(d2);
    free(e2);
    free(w);
    free(zc);
    free(isuppz);
    free(iblock);
    free(isplit);
    free(ifail);
    return rc;
}

static int topk_plain(size_t m, size_t n, const double *A, size_t k, double *U, size_t ldu,
                      double *S, double *V, size_t ldv, double *sig2_all, larv_err *err)
{
    size_t r = m < n ? m : n;
    double *u = dalloc(m * r, err), *s = dalloc(r, err), *vt = dalloc(r * n, err);
    int rc = -1;
    if (!u || !s || !vt)
        goto out;
    if (larv_svd_plain(m, n, A, u, s, vt, err))
        goto out;
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < k; j++)
            U[i * ldu + j] = u[i * r + j];
    for (size_t j = 0; j < k; j++)
        for (size_t i = 0; i < n; i++)
            V[i * ldv + j] = vt[j * n + i];
    for (size_t j = 0; j < k; j++)
        S[j] = s[j];
    if (sig2_all)
        for (size_t j = 0; j < r; j++)
            sig2_all[j] = s[j] * s[j];
    rc = 0;
out:
    free(u);
    free(s);
    free(vt);
    return rc;
}

int larv_svd_topk(size_t m, size_t n, const double *A, double *G, size_t k, double *U, size_t ldu,
                  double *S, double *V, size_t ldv, double *sig2_all, larv_err *err)
{
    size_t r = m < n ? m : n;
    if (r == 0)
        return 0;
    if (k > r)
        k = r;
    int rc = -1;
    double *own = NULL, *wk = NULL;
    if (!G) {
        own = G = dalloc(r * r, err);
        if (!G)
            return -1;
        larv_gram(m, n, A, G);
    }
    if (k == 0) {
        if (sig2_all)
            rc = larv_sym_eig(r, G, sig2_all, 0, NULL, NULL, 0, err);
        else
            rc = 0;
        free(own);
        return rc;
    }
    wk = dalloc(k, err);
    if (!wk)
        goto out;
    int tall = m >= n;
    double *Z = tall ? V : U;
    size_t ldz = tall ? ldv : ldu;
    if (larv_sym_eig(r, G, sig2_all, k, wk, Z, ldz, err))
        goto out;
    if (!(wk[0] > 0) || !(wk[k - 1] >= LARV_GRAM_TOPK_RTOL * wk[0])) {
        rc = topk_plain(m, n, A, k, U, ldu, S, V, ldv, sig2_all, err);
        goto out;
    }
    for (size_t j = 0; j < k; j++)
        S[j] = sqrt(wk[j]);
    if (tall) /* U = A V */
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m, (int)k, (int)n, 1.0, A,
                    (int)n, V, (int)ldv, 0.0, U, (int)ldu);
    else /* V = A^T U */
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)n, (int)k, (int)m, 1.0, A,
                    (int)n, U, (int)ldu, 0.0, V, (int)ldv);
    double *O = tall ? U : V;
    size_t ldo = tall ? ldu : ldv, no = tall ? m : n;
    for (size_t i = 0; i < no; i++)
        for (size_t j = 0; j < k; j++)
            O[i * ldo + j] /= S[j];
    rc = 0;
out:
    free(wk);
    free(own);
    return rc;
}

int larv_polar_plain(size_t m, size_t n, double *A, double *S, larv_err *err)
{
    size_t r = m < n ? m : n;
    if (r == 0)
        return 0;
    double *u = dalloc(m * r, err), *s = dalloc(r, err), *vt = dalloc(r * n, err);
    int rc = -1;
    if (!u || !s || !vt)
        goto out;
    if (larv_svd_plain(m, n, A, u, s, vt, err))
        goto out;
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m, (int)n, (int)r, 1.0, u, (int)r,
                vt, (int)n, 0.0, A, (int)n);
    if (S)
        memcpy(S, s, r * sizeof(double));
    rc = 0;
out:
    free(u);
    free(s);
    free(vt);
    return rc;
}

double larv_gram_polar_error_estimate(size_t r, const double *w)
{
    double wmax = 0;
    for (size_t j = 0; j < r; j++)
        wmax = fmax(wmax, w[j]);
    if (!(wmax > 0) || !isfinite(wmax))
        return INFINITY;
    double sum = 0;
    for (size_t j = 0; j < r; j++) {
        if (!(w[j] > 0))
            return INFINITY;
        double q = wmax / w[j];
        sum += q * q;
    }
    return DBL_EPSILON * sqrt(sum / (double)r);
}

int larv_polar(size_t m, size_t n, double *A, double *S, larv_err *err)
{
    size_t r = m < n ? m : n;
    if (r == 0)
        return 0;
    int rc = -1;
    double *G = dalloc(r * r, err), *w = dalloc(r, err), *H = dalloc(r * r, err), *X = NULL;
    double *e = dalloc(r, err), *tq = dalloc(r, err), *ee = dalloc(r, err);
    if (!G || !w || !H || !e || !tq || !ee)
        goto out;
    larv_gram(m, n, A, G);
    /* dsyevd in two steps: the tridiagonal form's eigenvalues first (dsterf,
     * O(r^2)), so that a rank-deficient matrix (the usual case for TSV-M's
     * square stacks) goes to the SVD before the eigenvectors are paid for. */
    e[r - 1] = 0;
    lapack_int info = LAPACKE_dsytrd(LAPACK_COL_MAJOR, 'L', (lapack_int)r, G, (lapack_int)r, w, e, tq);
    if (info != 0) {
        LAPACK_FAIL(err, "dsytrd", info);
        goto out;
    }
    memcpy(H, w, r * sizeof(double)); /* d, kept for dstedc */
    memcpy(ee, e, r * sizeof(double));
    info = LAPACKE_dsterf((lapack_int)r, w, ee);
    if (info != 0) {
        LAPACK_FAIL(err, "dsterf", info);
        goto out;
    }
    if (!(larv_gram_polar_error_estimate(r, w) <= LARV_GRAM_POLAR_MAXERR)) {
        rc = larv_polar_plain(m, n, A, S, err);
        goto out;
    }
    /* eigenvectors: dstedc on the tridiagonal matrix, dormtr back (as dsyevd) */
    memcpy(w, H, r * sizeof(double));
    info = LAPACKE_dstedc(LAPACK_COL_MAJOR, 'I', (lapack_int)r, w, e, H, (lapack_int)r);
    if (info != 0) {
        LAPACK_FAIL(err, "dstedc", info);
        goto out;
    }
    info = LAPACKE_dormtr(LAPACK_COL_MAJOR, 'L', 'L', 'N', (lapack_int)r, (lapack_int)r, G,
                          (lapack_int)r, tq, H, (lapack_int)r);
    if (info != 0) {
        LAPACK_FAIL(err, "dormtr", info);
        goto out;
    }
    if (!(larv_gram_polar_error_estimate(r, w) <= LARV_GRAM_POLAR_MAXERR)) {
        rc = larv_polar_plain(m, n, A, S, err);
        goto out;
    }
    /* H (column-major eigenvectors) read row-major is W^T: row j = w_j's vector. */
    for (size_t j = 0; j < r; j++) {
        double f = pow(w[j], -0.25);
        for (size_t i = 0; i < r; i++)
            H[j * r + i] *= f;
    }
    /* G = W diag(w^-1/2) W^T = B^T B with B = diag(w^-1/4) W^T (= scaled H, row-major). */
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)r, (int)r, 1.0, H, (int)r, 0.0, G,
                (int)r);
    X = dalloc(m * n, err);
    if (!X)
        goto out;
    if (m >= n)
        cblas_dsymm(CblasRowMajor, CblasRight, CblasUpper, (int)m, (int)n, 1.0, G, (int)r, A,
                    (int)n, 0.0, X, (int)n);
    else
        cblas_dsymm(CblasRowMajor, CblasLeft, CblasUpper, (int)m, (int)n, 1.0, G, (int)r, A,
                    (int)n, 0.0, X, (int)n);
    memcpy(A, X, m * n * sizeof(double));
    if (S)
        for (size_t j = 0; j < r; j++)
            S[j] = sqrt(w[r - 1 - j]);
    rc = 0;
out:
    free(G);
    free(w);
    free(H);
    free(X);
    free(e);
    free(tq);
    free(ee);
    return rc;
}

/* ---- float32 routes ------------------------------------------------------------- */

static float *falloc(size_t n, larv_err *err)
{
    float *p = malloc((n ? n : 1) * sizeof(float));
    if (!p)
        oom(err, n * sizeof(float));
    return p;
}

static float *to_f32(const double *a, size_t len, larv_err *err)
{
    float *f = falloc(len, err);
    if (f)
        for (size_t i = 0; i < len; i++)
            f[i] = (float)a[i];
    return f;
}

/* float32 small-side Gram, full storage */
void larv_gram_f32(size_t m, size_t n, const float *A, float *G)
{
    size_t r = m < n ? m : n;
    if (m >= n)
        cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)n, (int)m, 1.0f, A, (int)n, 0.0f,
                    G, (int)n);
    else
        cblas_ssyrk(CblasRowMajor, CblasUpper, CblasNoTrans, (int)m, (int)n, 1.0f, A, (int)n,
                    0.0f, G, (int)m);
    for (size_t i = 0; i < r; i++)
        for (size_t j = i + 1; j < r; j++)
            G[j * r + i] = G[i * r + j];
}

int larv_polar_f32(size_t m, size_t n, double *A, double *S, larv_err *err)
{
    size_t r = m < n ? m : n;
    if (r == 0)
        return 1;
    int rc = -1;
    float *Af = to_f32(A, m * n, err), *G = falloc(r * r, err), *w = falloc(r, err);
    float *H = falloc(r * r, err), *X = falloc(m * n, err);
    if (!Af || !G || !w || !H || !X)
        goto out;
    larv_gram_f32(m, n, Af, G);
    /* as larv_polar: eigenvalues first (ssytrd + ssterf), decline before the
     * eigenvectors are paid for (most TSV-M / Iso stacks are not this well
     * conditioned), then sstedc + sormtr */
    float *e = falloc(r, err), *tq = falloc(r, err), *ee = falloc(r, err);
    if (!e || !tq || !ee) {
        free(e), free(tq), free(ee);
        goto out;
    }
    e[r - 1] = 0;
    lapack_int info = LAPACKE_ssytrd(LAPACK_COL_MAJOR, 'L', (lapack_int)r, G, (lapack_int)r, w, e, tq);
    if (info == 0) {
        memcpy(H, w, r * sizeof(float));
        memcpy(ee, e, r * sizeof(float));
        info = LAPACKE_ssterf((lapack_int)r, w, ee);
    }
    if (info == 0 && (!(w[r - 1] > 0) || !(w[0] >= LARV_F32_POLAR_RTOL * w[r - 1]))) {
        free(e), free(tq), free(ee);
        rc = 1;
        goto out;
    }
    if (info == 0) {
        memcpy(w, H, r * sizeof(float));
        info = LAPACKE_sstedc(LAPACK_COL_MAJOR, 'I', (lapack_int)r, w, e, H, (lapack_int)r);
    }
    if (info == 0)
        info = LAPACKE_sormtr(LAPACK_COL_MAJOR, 'L', 'L', 'N', (lapack_int)r, (lapack_int)r, G,
                              (lapack_int)r, tq, H, (lapack_int)r);
    free(e), free(tq), free(ee);
    if (info != 0) {
        LAPACK_FAIL(err, "ssytrd/ssterf/sstedc/sormtr", info);
        goto out;
    }
    if (!(w[r - 1] > 0) || !(w[0] >= LARV_F32_POLAR_RTOL * w[r - 1])) {
        rc = 1;
        goto out;
    }
    for (size_t j = 0; j < r; j++) { /* H read row-major: row j = w_j's vector */
        float f = (float)pow((double)w[j], -0.25);
        for (size_t i = 0; i < r; i++)
            H[j * r + i] *= f;
    }
    cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)r, (int)r, 1.0f, H, (int)r, 0.0f, G,
                (int)r);
    if (m >= n)
        cblas_ssymm(CblasRowMajor, CblasRight, CblasUpper, (int)m, (int)n, 1.0f, G, (int)r, Af,
                    (int)n, 0.0f, X, (int)n);
    else
        cblas_ssymm(CblasRowMajor, CblasLeft, CblasUpper, (int)m, (int)n, 1.0f, G, (int)r, Af,
                    (int)n, 0.0f, X, (int)n);
    for (size_t i = 0; i < m * n; i++)
        A[i] = (double)X[i];
    if (S)
        for (size_t j = 0; j < r; j++)
            S[j] = sqrt((double)w[r - 1 - j]);
    rc = 0;
out:
    free(Af), free(G), free(w), free(H), free(X);
    return rc;
}

int larv_sym_eigvals_f32(size_t r, float *G, double *w, larv_err *err)
{
    if (r == 0)
        return 0;
    int rc = -1;
    float *d = falloc(r, err), *e = falloc(r, err), *tau = falloc(r, err);
    if (!d || !e || !tau)
        goto out;
    e[r - 1] = 0;
    lapack_int info = LAPACKE_ssytrd(LAPACK_COL_MAJOR, 'L', (lapack_int)r, G, (lapack_int)r, d, e, tau);
    if (info == 0)
        info = LAPACKE_ssterf((lapack_int)r, d, e);
    if (info != 0) {
        LAPACK_FAIL(err, "ssytrd/ssterf", info);
        goto out;
    }
    for (size_t j = 0; j < r; j++)
        w[j] = (double)d[r - 1 - j];
    rc = 0;
out:
    free(d), free(e), free(tau);
    return rc;
}
