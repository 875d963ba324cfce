/* Per-tensor merge kernels (spec: ../shared/spec/ALGORITHMS.md; API: merge.h).
 *
 * Shortcuts, and why they compute the spec's definitions (tests/test_linalg.c,
 * tests/test_merge.c and tests/test_reference.c check each one against the
 * plain SVD / naive formula):
 *
 *  1. Singular values only (r_eff): the squared singular values of an m x n
 *     matrix are the eigenvalues of its min(m,n)-sized Gram matrix (A^T A or
 *     A A^T, one DSYRK). Eigenvalues of a symmetric matrix are perfectly
 *     conditioned: each has an absolute error ~ eps * sigma_1^2, so every
 *     p_j = sigma_j^2 / ||A||^2 is exact to ~1e-16 absolutely and r_eff to
 *     ~1e-13 relatively, whatever the spectrum.
 *
 *  2. Top-k singular triplets (TSV-M's per-task k = floor(r/T), Iso-CTS's c
 *     and d): eigenvectors of the k largest eigenvalues of the small-side Gram
 *     matrix (one dsytrd, then dstemr for k vectors only, dormtr back), the
 *     other side as A v_j / sigma_j by one GEMM. The same tridiagonalisation
 *     gives all eigenvalues (dsterf) for r_eff, so TSV-M's proxies cost nothing
 *     extra. Squaring the matrix squares the condition number of the vectors
 *     it affects; the route is used only when sigma_k^2 >= 1e-8 sigma_1^2,
 *     otherwise plain dgesdd (linalg.h LARV_GRAM_TOPK_RTOL). Sign and
 *     rotation ambiguities of singular vectors do not reach M: polar factors
 *     are equivariant under U -> U D (D block-orthogonal acting on equal
 *     singular values), and U S V^T is invariant under joint changes.
 *
 *  3. Whitening U_perp = P Q^T (thin SVD U = P Sigma Q^T of a tall m x p
 *     matrix) is the orthogonal polar factor, equal to U (U^T U)^{-1/2} when U
 *     has full column rank: one DSYRK, one p x p eigen-decomposition, one
 *     DSYMM. Used when its error estimate eps sqrt(mean_j (lambda_max /
 *     lambda_j)^2) is <= 1e-6 (linalg.h LARV_GRAM_POLAR_MAXERR); otherwise a
 *     real SVD (rank-deficient stacks, where P Q^T depends on LAPACK's choice
 *     of null-space vectors anyway). Iso-C's U V^T is the polar factor of
 *     sum_t tau_t, computed the same way (and its singular values come from the
 *     same eigenvalues).
 *
 *  4. Conflict proxy without m x m or n x n products of the LARGE side. With
 *     X = W0, Y = Delta and, say, m >= n (n the small side), C = X^T Y (n x n):
 *       ||X^T Y - Y^T X||_F = ||C - C^T||_F                 (computed exactly),
 *       ||X Y^T - Y X^T||_F^2 = 2 ||X Y^T||^2 - 2 tr((X Y^T)^2)
 *                             = 2 <X^T X, Y^T Y>_F - 2 tr(C^2)
 *     since ||A - A^T||^2 = 2||A||^2 - 2 tr(A^2), ||X Y^T||^2 = tr(X^T X Y^T Y)
 *     and tr((X Y^T)^2) = tr((Y^T X)^2) = tr(C^2). X^T X is computed once per
 *     call and Y^T Y is the Gram matrix already used for r_eff. m < n is the
 *     mirror image (C = X Y^T, m x m). The second form has a cancellation: its
 *     absolute error is ~ sqrt(n eps) ||X|| ||Y||, i.e. c is exact to ~1e-7
 *     ABSOLUTE when the large-side commutator is nearly zero, and to ~1e-13
 *     relative in the usual case c = O(0.1..1).
 *
 *  5. Iso-CTS: tau_t - Uc (Uc^T tau_t) by two GEMMs (never the m x m
 *     projector).
 *
 * Precision: opts->precision == LARV_PREC_SINGLE runs the whitening steps
 * (TSV-M's and Iso-CTS's U/V stacks) and Iso-C's polar factor in float32
 * (linalg.c larv_polar_f32: SSYRK, SSYEVD, SSYMM) when the matrix is well
 * conditioned (cond <= ~3.2, LARV_F32_POLAR_RTOL), measured <= 1e-6 relative
 * to float64; otherwise float64. The top-k factorisations stay float64: a
 * float32 top-k (Gram or sgesdd alike) has a subspace error ~ eps32 *
 * sigma_1 / (sigma_k - sigma_{k+1}), which exceeded the spec's 1e-5 on
 * test spectra (flat random: ~1e-5; geometric 0.98^l: 1.2e-5), and a gate
 * that keeps it under 1e-5 (lambda_k - lambda_{k+1} >= 0.05 lambda_1) rejects
 * typical task vectors after the float32 work is done, making it slower
 * (so there is no float32 top-k; it was removed unused). Sums and final
 * products are always float64. LARV's proxies under single: the conflict's
 * product W0^T Delta by SGEMM (2.4x faster than DGEMM; c within 1e-8 relative
 * of float64 on the ViT-B/32 pool) and, outside TSV-M (whose Gram matrix feeds
 * its float64 top-k), the Gram matrix and its eigenvalues in float32 (r_eff
 * within 4e-7); every reduction in float64. Under double they stay float64,
 * exact to ~1e-13 (tests/test_reference.c checks them to 1e-9). */
#include "merge.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "larv.h"
#include "linalg.h"

const char *const larv_method_names[] = {"ta", "ties", "tsv", "iso-c", "iso-cts", NULL};
const char *const larv_ties_mode_names[] = {"sum", "mean", "max", NULL};
const char *const larv_precision_names[] = {"double", "single", NULL};

const char *larv_method_name(larv_method m)
{
    if ((unsigned)m < sizeof larv_method_names / sizeof larv_method_names[0] - 1)
        return larv_method_names[m];
    return "?";
}

int larv_method_parse(const char *s, larv_method *m)
{
    if (!s)
        return -1;
    for (unsigned i = 0; i < sizeof larv_method_names / sizeof larv_method_names[0] - 1; i++)
        if (strcmp(s, larv_method_names[i]) == 0) {
            *m = (larv_method)i;
            return 0;
        }
    return -1;
}

double larv_method_default_lambda(larv_method m)
{
    switch (m) {
    case LARV_TA:
    case LARV_TIES:
        return 0.3;
    case LARV_TSV:
    case LARV_ISO_C:
    case LARV_ISO_CTS:
        return 1.0;
    }
    return 1.0;
}

void larv_merge_opts_default(larv_merge_opts *o)
{
    o->precision = LARV_PREC_DOUBLE;
    o->iso_common = 0.8;
    o->alpha = NULL;
}

void larv_merge_vector(larv_method method, size_t n, size_t T, const double *tau, double *M)
{
    for (size_t i = 0; i < n; i++) {
        double s = 0;
        for (size_t t = 0; t < T; t++)
            s += tau[t * n + i];
        M[i] = (method == LARV_TA || T == 0) ? s : s / (double)T;
    }
}

void larv_iso_cts_sizes(size_t r, size_t T, double f, size_t *c_out, size_t *d_out)
{
    if (T == 0 || r == 0) {
        *c_out = r;
        *d_out = 0;
        return;
    }
    double cf = floor((double)r * f);
    size_t c0 = cf < 0 ? 0 : cf > (double)r ? r : (size_t)cf;
    double sr = nearbyint((double)(r - c0) / (double)T); /* round half to even */
    size_t s = (size_t)sr * T;
    if (s > r) /* choice: the reference would go negative; keep d = floor(r/T) */
        s = (r / T) * T;
    size_t c = r - s;
    *c_out = c;
    *d_out = (r - c) / T;
}

/* ---- proxies ---------------------------------------------------------------- */

typedef struct {
    size_t m, n, r;
    const double *W0;
    double *Gw;     /* r x r Gram of W0 (intact) */
    double w0_sq;   /* ||W0||_F^2 */
    double reff_w0;
    double *C;      /* r x r workspace */
    /* --precision single: the conflict's product W0^T Delta by SGEMM */
    int f32;
    float *X32, *Y32, *C32; /* W0 (m x n), Delta (m x n), C (r x r) in float32 */
} proxy_ctx;

static int proxy_init(proxy_ctx *p, size_t m, size_t n, const double *W0, int f32, larv_err *err)
{
    memset(p, 0, sizeof *p);
    p->m = m;
    p->n = n;
    p->r = m < n ? m : n;
    p->W0 = W0;
    size_t r = p->r;
    p->Gw = malloc((r * r > 0 ? r * r : 1) * sizeof(double));
    p->C = malloc((r * r > 0 ? r * r : 1) * sizeof(double));
    double *G2 = malloc((r * r > 0 ? r * r : 1) * sizeof(double));
    double *w = malloc((r ? r : 1) * sizeof(double));
    int rc = -1;
    if (f32 && r > 0) {
        p->f32 = 1;
        p->X32 = malloc(m * n * sizeof(float));
        p->Y32 = malloc(m * n * sizeof(float));
        p->C32 = malloc(r * r * sizeof(float));
        if (!p->X32 || !p->Y32 || !p->C32) {
            larv_fail(err, LARV_EXIT_FAIL, "out of memory (proxies, %zu x %zu)", m, n);
            goto out;
        }
        for (size_t i = 0; i < m * n; i++)
            p->X32[i] = (float)W0[i];
    }
    if (!p->Gw || !p->C || !G2 || !w) {
        larv_fail(err, LARV_EXIT_FAIL, "out of memory (proxies, %zu x %zu)", m, n);
        goto out;
    }
    larv_gram(m, n, W0, p->Gw);
    for (size_t i = 0; i < r; i++)
        p->w0_sq += p->Gw[i * r + i];
    memcpy(G2, p->Gw, r * r * sizeof(double));
    if (larv_sym_eig(r, G2, w, 0, NULL, NULL, 0, err))
        goto out;
    p->reff_w0 = larv_effective_rank_sq(w, r);
    rc = 0;
out:
    free(G2);
    free(w);
    return rc;
}

static void proxy_free(proxy_ctx *p)
{
    free(p->Gw);
    free(p->C);
    free(p->X32);
    free(p->Y32);
    free(p->C32);
}

/* Delta in float32 into p->Y32 (for the single-precision conflict / Gram). */
static void proxy_load_y32(proxy_ctx *p, const double *D)
{
    for (size_t i = 0; i < p->m * p->n; i++)
        p->Y32[i] = (float)D[i];
}

/* Conflict c for Delta (m x n) whose small-side Gram is G (intact). With
 * p->f32 the product C is an SGEMM of float32 copies (y32_ready: p->Y32
 * already holds Delta) and every reduction stays float64: measured <= 2e-9
 * relative to the float64 route on the ViT-B/32 pool (c ~ 0.1), at 2.4x less
 * time for the product; the absolute error grows like eps32 sqrt(r) ||W0|| ||Delta||,
 * which is why the default (double) keeps DGEMM. */
static double proxy_conflict(proxy_ctx *p, const double *D, const double *G, int y32_ready)
{
    size_t m = p->m, n = p->n, r = p->r;
    if (r == 0)
        return 0;
    double *C = p->C;
    if (p->f32) {
        if (!y32_ready)
            proxy_load_y32(p, D);
        if (m >= n)
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)n, (int)n, (int)m, 1.0f,
                        p->X32, (int)n, p->Y32, (int)n, 0.0f, p->C32, (int)n);
        else
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)m, (int)n, 1.0f,
                        p->X32, (int)n, p->Y32, (int)n, 0.0f, p->C32, (int)m);
        for (size_t i = 0; i < r * r; i++)
            C[i] = (double)p->C32[i];
    } else if (m >= n) /* C = W0^T D (n x n) */
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)n, (int)n, (int)m, 1.0, p->W0,
                    (int)n, D, (int)n, 0.0, C, (int)n);
    else /* C = W0 D^T (m x m) */
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)m, (int)n, 1.0, p->W0,
                    (int)n, D, (int)n, 0.0, C, (int)m);
    double exact = 0, trc2 = 0, d_sq = 0;
    for (size_t i = 0; i < r; i++) {
        d_sq += G[i * r + i];
        for (size_t j = 0; j < r; j++) {
            double a = C[i * r + j], b = C[j * r + i];
            exact += (a - b) * (a - b);
            trc2 += a * b;
        }
    }
    double other = 2.0 * larv_dot(r * r, p->Gw, G) - 2.0 * trc2;
    if (other < 0)
        other = 0;
    double num = 0.5 * (sqrt(exact) + sqrt(other));
    return num / (sqrt(p->w0_sq) * sqrt(d_sq) + 1e-10);
}

static double proxy_e(const proxy_ctx *p, const double *sig2, size_t r)
{
    return p->reff_w0 / (larv_effective_rank_sq(sig2, r) + 1e-8);
}

/* ---- the matrix kernel -------------------------------------------------------- */

/* Precision dispatch. Top-k: float64 always (see the header comment: a
 * float32 top-k is accurate only for well separated boundary gaps and
 * declining after the fact wastes its work). Whitening and
 * Iso-C's polar factor: float32 where asked and accurate enough. */
static int topk(const larv_merge_opts *o, size_t m, size_t n, const double *A, double *G,
                size_t k, double *U, size_t ldu, double *S, double *V, size_t ldv, double *sig2,
                larv_err *err)
{
    (void)o;
    return larv_svd_topk(m, n, A, G, k, U, ldu, S, V, ldv, sig2, err);
}

static int polar(const larv_merge_opts *o, size_t m, size_t n, double *A, double *S,
                 larv_err *err)
{
    if (o->precision == LARV_PREC_SINGLE) {
        int rc = larv_polar_f32(m, n, A, S, err);
        if (rc <= 0)
            return rc;
    }
    return larv_polar(m, n, A, S, err);
}

/* Iso-CTS when the left side is the small one (m <= n): the Gram matrix of the
 * sum (m x m) gives ALL left singular vectors at once, Uc (common, cc) and its
 * orthogonal complement Up (m x q, q = m - cc). Then tau_t - Uc Uc^T tau_t =
 * Up (Up^T tau_t) = Up Y_t, and the top-d SVD of that m x n matrix is Up times
 * the top-d SVD of the q x n matrix Y_t: one GEMM of 2 q m n per task instead of
 * two of 2 cc m n plus the m x m Gram of the projected matrix (q = 0.2 m by
 * default). Exact in exact arithmetic; [Uc Up] is orthogonal to ~1e-15
 * (MRRR eigenvectors). Returns 1 (nothing written, caller runs the general
 * route) when the Gram route is not accurate for the common split
 * (lambda_cc < LARV_GRAM_TOPK_RTOL lambda_1), 0 done, -1 error. */
static int iso_cts_wide(size_t m, size_t n, size_t T, const double *tau, const double *Sum,
                        size_t cc, size_t d, double *Ucat, double *Vcat, double *Scat,
                        const larv_merge_opts *o, larv_err *err)
{
    const size_t r = m, q = m - cc, off = T * d;
    int rc = -1;
    double *G = malloc(m * m * sizeof(double)), *Z = malloc(m * m * sizeof(double));
    double *w = malloc(m * sizeof(double)), *Y = malloc((q * n > 0 ? q * n : 1) * sizeof(double));
    double *Uy = malloc((q * d > 0 ? q * d : 1) * sizeof(double));
    if (!G || !Z || !w || !Y || !Uy) {
        larv_fail(err, LARV_EXIT_FAIL, "out of memory (Iso-CTS of a %zu x %zu matrix)", m, n);
        goto out;
    }
    /* G = Sum Sum^T (m x m; larv_gram would take Sum^T Sum when m == n) */
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, (int)m, (int)n, 1.0, Sum, (int)n, 0.0, G,
                (int)m);
    for (size_t i = 0; i < m; i++)
        for (size_t j = i + 1; j < m; j++)
            G[j * m + i] = G[i * m + j];
    if (larv_sym_eig(m, G, NULL, m, w, Z, m, err))
        goto out;
    if (cc > 0 && (!(w[0] > 0) || !(w[cc - 1] >= LARV_GRAM_TOPK_RTOL * w[0]))) {
        rc = 1;
        goto out;
    }
    /* common block: Uc = Z[:, :cc], Sc = sqrt(w), Vc = Sum^T Uc / Sc */
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < cc; j++)
            Ucat[i * r + off + j] = Z[i * m + j];
    for (size_t j = 0; j < cc; j++)
        Scat[off + j] = sqrt(w[j]);
    if (cc > 0) {
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)n, (int)cc, (int)m, 1.0, Sum,
                    (int)n, Ucat + off, (int)r, 0.0, Vcat + off, (int)r);
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < cc; j++)
                Vcat[i * r + off + j] /= Scat[off + j];
    }
    if (d > 0 && q > 0) {
        const double *Up = Z + cc; /* m x q, ld m */
        for (size_t t = 0; t < T; t++) {
            const double *A = tau + t * m * n;
            /* Y = Up^T A (q x n) */
            cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)q, (int)n, (int)m, 1.0, Up,
                        (int)m, A, (int)n, 0.0, Y, (int)n);
            if (topk(o, q, n, Y, NULL, d, Uy, d, Scat + t * d, Vcat + t * d, r, NULL, err))
                goto out;
            /* U_t = Up Uy (m x d) */
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m, (int)d, (int)q, 1.0, Up,
                        (int)m, Uy, (int)d, 0.0, Ucat + t * d, (int)r);
        }
    }
    rc = 0;
out:
    free(G), free(Z), free(w), free(Y), free(Uy);
    return rc;
}

#define MERGE_OOM(m, n, T)                                                                        \
    larv_fail(err, LARV_EXIT_FAIL, "out of memory (merge of a %zu x %zu matrix, %zu tasks)", (m),   \
              (n), (T))

/* TSV-M, with LARV's proxies (px != NULL) from the same per-task Gram matrices.
 * M may be NULL (proxies only). G: r x r, sig2: r scratch. */
static int merge_tsv(size_t m, size_t n, size_t T, double *tau, double *M, double *e, double *c,
                     proxy_ctx *px, const larv_merge_opts *o, double *G, double *sig2,
                     larv_err *err)
{
    const size_t r = m < n ? m : n, mn = m * n, rr = r * r > 0 ? r * r : 1;
    size_t k = T ? r / T : 0, p = T * k;
    double *Ucat = NULL, *Vcat = NULL, *Scat = NULL;
    int rc = -1;
    if (M && p > 0) {
        Ucat = malloc(m * p * sizeof(double));
        Vcat = malloc(n * p * sizeof(double));
        Scat = malloc(p * sizeof(double));
        if (!Ucat || !Vcat || !Scat) {
            MERGE_OOM(m, n, T);
            goto out;
        }
    }
    for (size_t t = 0; t < T; t++) {
        double *A = tau + t * mn;
        double alpha = o->alpha ? o->alpha[t] : 1.0;
        larv_gram(m, n, A, G);
        int share = px && alpha != 0;
        if (px) {
            c[t] = proxy_conflict(px, A, G, 0);
            if (!share) {
                double *G2 = malloc(rr * sizeof(double));
                if (!G2) {
                    MERGE_OOM(m, n, T);
                    goto out;
                }
                memcpy(G2, G, r * r * sizeof(double));
                int f = larv_sym_eig(r, G2, sig2, 0, NULL, NULL, 0, err);
                free(G2);
                if (f)
                    goto out;
                e[t] = proxy_e(px, sig2, r);
            }
        }
        if (!M || p == 0) {
            if (share) {
                if (larv_sym_eig(r, G, sig2, 0, NULL, NULL, 0, err))
                    goto out;
                e[t] = proxy_e(px, sig2, r);
            }
            continue;
        }
        if (alpha != 1.0) {
            for (size_t i = 0; i < mn; i++)
                A[i] *= alpha;
            for (size_t i = 0; i < r * r; i++)
                G[i] *= alpha * alpha;
        }
        if (topk(o, m, n, A, G, k, Ucat + t * k, p, Scat + t * k, Vcat + t * k, p,
                 share ? sig2 : NULL, err))
            goto out;
        if (share)
            e[t] = proxy_e(px, sig2, r);
    }
    if (M) {
        if (p == 0) {
            memset(M, 0, mn * sizeof(double));
        } else {
            if (polar(o, m, p, Ucat, NULL, err) || polar(o, n, p, Vcat, NULL, err))
                goto out;
            for (size_t i = 0; i < m; i++)
                for (size_t j = 0; j < p; j++)
                    Ucat[i * p + j] *= Scat[j];
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)n, (int)p, 1.0, Ucat,
                        (int)p, Vcat, (int)p, 0.0, M, (int)n);
        }
    }
    rc = 0;
out:
    free(Ucat);
    free(Vcat);
    free(Scat);
    return rc;
}

/* LARV's proxies of every task (the other methods: before tau is used as
 * workspace). G: r x r, sig2: r scratch. */
static int task_proxies(size_t m, size_t n, size_t T, const double *tau, double *e, double *c,
                        proxy_ctx *px, double *G, double *sig2, larv_err *err)
{
    const size_t r = m < n ? m : n, mn = m * n, rr = r * r > 0 ? r * r : 1;
    float *G32 = NULL;
    if (px->f32 && !(G32 = malloc(rr * sizeof(float))))
        return MERGE_OOM(m, n, T);
    for (size_t t = 0; t < T; t++) {
        const double *A = tau + t * mn;
        int f;
        if (G32) { /* single: Gram and its eigenvalues in float32, sums in float64 */
            proxy_load_y32(px, A);
            larv_gram_f32(m, n, px->Y32, G32);
            for (size_t i = 0; i < r * r; i++)
                G[i] = (double)G32[i];
            c[t] = proxy_conflict(px, A, G, 1);
            f = larv_sym_eigvals_f32(r, G32, sig2, err);
        } else {
            larv_gram(m, n, A, G);
            c[t] = proxy_conflict(px, A, G, 0);
            f = larv_sym_eig(r, G, sig2, 0, NULL, NULL, 0, err);
        }
        if (f) {
            free(G32);
            return -1;
        }
        e[t] = proxy_e(px, sig2, r);
    }
    free(G32);
    return 0;
}

/* Iso-C: the sum's spectrum flattened to its mean. sig2: r scratch. */
static int merge_iso_c(size_t m, size_t n, size_t T, const double *tau, double *M, double *sig2,
                       const larv_merge_opts *o, larv_err *err)
{
    const size_t r = m < n ? m : n, mn = m * n;
    larv_merge_vector(LARV_TA, mn, T, tau, M);
    if (r == 0)
        return 0;
    if (polar(o, m, n, M, sig2, err))
        return -1;
    double mean = 0;
    for (size_t j = 0; j < r; j++)
        mean += sig2[j];
    mean /= (double)r;
    for (size_t i = 0; i < mn; i++)
        M[i] *= mean;
    return 0;
}

/* Iso-CTS: common subspace of the sum plus task-specific ones, isotropic. */
static int merge_iso_cts(size_t m, size_t n, size_t T, double *tau, double *M,
                         const larv_merge_opts *o, larv_err *err)
{
    const size_t r = m < n ? m : n, mn = m * n;
    if (r == 0)
        return 0;
    size_t cc, d;
    larv_iso_cts_sizes(r, T, o->iso_common, &cc, &d);
    int rc = -1;
    double *Sum = malloc(mn * sizeof(double));
    double *Ucat = malloc(m * r * sizeof(double));
    double *Vcat = malloc(n * r * sizeof(double));
    double *Scat = malloc(r * sizeof(double));
    double *tmp = malloc((cc * n > 0 ? cc * n : 1) * sizeof(double));
    if (!Sum || !Ucat || !Vcat || !Scat || !tmp) {
        MERGE_OOM(m, n, T);
        goto out;
    }
    larv_merge_vector(LARV_TA, mn, T, tau, Sum);
    const size_t off = T * d; /* common block at columns off .. r-1 */
    /* wide matrices: one route for the whole basis (0 done, 1 not taken) */
    int wide = m <= n ? iso_cts_wide(m, n, T, tau, Sum, cc, d, Ucat, Vcat, Scat, o, err) : 1;
    if (wide < 0)
        goto out;
    if (wide == 1) {
        if (cc > 0 && topk(o, m, n, Sum, NULL, cc, Ucat + off, r, Scat + off, Vcat + off, r, NULL,
                           err))
            goto out;
        for (size_t t = 0; d > 0 && t < T; t++) {
            double *A = tau + t * mn;
            if (cc > 0) {
                /* A -= Uc (Uc^T A) */
                cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)cc, (int)n, (int)m, 1.0,
                            Ucat + off, (int)r, A, (int)n, 0.0, tmp, (int)n);
                cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m, (int)n, (int)cc,
                            -1.0, Ucat + off, (int)r, tmp, (int)n, 1.0, A, (int)n);
            }
            if (topk(o, m, n, A, NULL, d, Ucat + t * d, r, Scat + t * d, Vcat + t * d, r, NULL,
                     err))
                goto out;
        }
    }
    double mean = 0;
    for (size_t j = 0; j < r; j++)
        mean += Scat[j];
    mean /= (double)r;
    if (polar(o, m, r, Ucat, NULL, err) || polar(o, n, r, Vcat, NULL, err))
        goto out;
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)n, (int)r, mean, Ucat,
                (int)r, Vcat, (int)r, 0.0, M, (int)n);
    rc = 0;
out:
    free(Sum);
    free(Ucat);
    free(Vcat);
    free(Scat);
    free(tmp);
    return rc;
}

int larv_merge_matrix(larv_method method, size_t m, size_t n, size_t T, const double *W0,
                      double *tau, double *M, double *e, double *c, const larv_merge_opts *o,
                      larv_err *err)
{
    larv_merge_opts defo;
    if (!o) {
        larv_merge_opts_default(&defo);
        o = &defo;
    }
    const size_t r = m < n ? m : n, mn = m * n, rr = r * r > 0 ? r * r : 1;
    const int want_proxy = e && c && W0;
    if (M && method == LARV_TIES)
        return larv_fail(err, LARV_EXIT_USAGE,
                         "larv_merge_matrix: TIES is merged with the larv_ties_* kernels");
    double *G = malloc(rr * sizeof(double)), *sig2 = malloc((r ? r : 1) * sizeof(double));
    proxy_ctx px;
    int px_ok = 0, rc = -1;
    unsigned char *untouched = NULL;
    if (!G || !sig2) {
        MERGE_OOM(m, n, T);
        goto out;
    }
    if (want_proxy) {
        if (proxy_init(&px, m, n, W0, o->precision == LARV_PREC_SINGLE, err))
            goto out;
        px_ok = 1;
        /* untouched updates (tau_t exactly zero): marked before tau is workspace */
        if (!(untouched = calloc(T ? T : 1, 1))) {
            MERGE_OOM(m, n, T);
            goto out;
        }
        for (size_t t = 0; t < T; t++) {
            const double *A = tau + t * mn;
            size_t i = 0;
            while (i < mn && A[i] == 0)
                i++;
            untouched[t] = i == mn;
        }
    }
    if (method == LARV_TSV) { /* the proxies share the per-task factorisations */
        rc = (M || want_proxy) ? merge_tsv(m, n, T, tau, M, e, c, want_proxy ? &px : NULL, o, G,
                                           sig2, err)
                               : 0;
        goto out;
    }
    if (want_proxy && task_proxies(m, n, T, tau, e, c, &px, G, sig2, err))
        goto out;
    rc = 0;
    if (!M)
        goto out;
    if (method == LARV_TA || method == LARV_TIES)
        larv_merge_vector(LARV_TA, mn, T, tau, M);
    else if (method == LARV_ISO_C)
        rc = merge_iso_c(m, n, T, tau, M, sig2, o, err);
    else if (method == LARV_ISO_CTS)
        rc = merge_iso_cts(m, n, T, tau, M, o, err);
out:
    if (rc == 0 && untouched)
        for (size_t t = 0; t < T; t++)
            if (untouched[t])
                e[t] = c[t] = NAN;
    free(untouched);
    if (px_ok)
        proxy_free(&px);
    free(G);
    free(sig2);
    return rc;
}

/* ---- TIES ------------------------------------------------------------------------ */

void larv_ties_hist(const float *tau, size_t n, int shift, uint32_t mask, uint32_t want,
                    uint64_t *hist)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t key = larv_abs_key(tau[i]);
        if ((key & mask) == want)
            hist[(key >> shift) & 0xffffu]++;
    }
}

void larv_ties_trim(float *tau, size_t n, size_t T, const float *thr)
{
    for (size_t t = 0; t < T; t++) {
        float *x = tau + t * n;
        float h = thr[t];
        for (size_t i = 0; i < n; i++)
            if (!(fabsf(x[i]) >= h))
                x[i] = 0.0f;
    }
}

double larv_ties_sign_count(const float *tau, size_t n, size_t T)
{
    double cnt = 0;
    for (size_t i = 0; i < n; i++) {
        double s = 0;
        for (size_t t = 0; t < T; t++)
            s += (double)tau[t * n + i];
        cnt += (s > 0) - (s < 0);
    }
    return cnt;
}

void larv_ties_merge(const float *tau, size_t n, size_t T, larv_ties_mode mode,
                     double majority_sign, double *M)
{
    for (size_t i = 0; i < n; i++) {
        double s = 0;
        for (size_t t = 0; t < T; t++)
            s += (double)tau[t * n + i];
        double g = s > 0 ? 1.0 : s < 0 ? -1.0 : majority_sign;
        double acc = 0, best = 0;
        size_t cnt = 0;
        for (size_t t = 0; t < T; t++) {
            double x = (double)tau[t * n + i];
            /* FusionBench: where(sign > 0, x > 0, x < 0) */
            int keep = g > 0 ? x > 0 : x < 0;
            if (!keep)
                continue;
            acc += x;
            cnt++;
            if (fabs(x) > best)
                best = fabs(x);
        }
        switch (mode) {
        case LARV_TIES_SUM:
            M[i] = acc;
            break;
        case LARV_TIES_MEAN:
            M[i] = acc / (double)(cnt ? cnt : 1);
            break;
        case LARV_TIES_MAX:
            M[i] = best * g;
            break;
        }
    }
}
