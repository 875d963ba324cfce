/* grid.c: ScaLAPACK SVD and symmetric eigensolver over a BLACS grid built on the
 * communicator (run at 1, 2, 4 ranks), against LAPACKE on one rank. */
#include <lapacke.h>
#include <math.h>
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../mpi/grid.h"
#include "../mpi/threads.h"
#include "check.h"

static int rank, size;

static uint64_t st = 88172645463325252ull;
static double urand(void) /* [-1, 1) */
{
    st ^= st << 13;
    st ^= st >> 7;
    st ^= st << 17;
    return (double)(st >> 11) / 4503599627370496.0 - 1.0;
}

static double *rand_matrix(size_t m, size_t n)
{
    double *a = malloc((m * n > 0 ? m * n : 1) * sizeof *a);
    for (size_t i = 0; i < m * n; i++)
        a[i] = urand();
    return a;
}

/* max |X^T X - I| for the row-major r x c matrix X with orthonormal columns
 * (cols_are_vectors) or rows. */
static double orth_err(const double *X, size_t r, size_t c, int cols_are_vectors)
{
    size_t k = cols_are_vectors ? c : r, len = cols_are_vectors ? r : c;
    double worst = 0;
    for (size_t p = 0; p < k; p++)
        for (size_t q = 0; q < k; q++) {
            double s = 0;
            for (size_t i = 0; i < len; i++)
                s += cols_are_vectors ? X[i * c + p] * X[i * c + q] : X[p * c + i] * X[q * c + i];
            double d = fabs(s - (p == q ? 1.0 : 0.0));
            if (d > worst)
                worst = d;
        }
    return worst;
}

/* One SVD case, the matrix on root. */
static void svd_case(size_t m, size_t n, int root, const larv_grid_shape *shape, int want_uv)
{
    size_t k = m < n ? m : n;
    double *A = rand_matrix(m, n); /* same on every rank; only root's copy is read */
    double *S = NULL, *U = NULL, *VT = NULL;
    if (rank == root) {
        S = malloc(k * sizeof *S);
        if (want_uv) {
            U = malloc(m * k * sizeof *U);
            VT = malloc(k * n * sizeof *VT);
        }
    }
    larv_err e;
    double t0 = MPI_Wtime();
    int rc = larv_pdgesvd(MPI_COMM_WORLD, m, n, rank == root ? A : NULL, root, S, U, VT, shape, &e);
    double t1 = MPI_Wtime();
    if (rc)
        fprintf(stderr, "rank %d: %zu x %zu: %s\n", rank, m, n, e.msg);
    CHECK(rc == 0);
    if (rank == root && rc == 0 && k > 0) {
        /* reference: LAPACKE_dgesdd on a copy */
        double *B = malloc(m * n * sizeof *B), *Sr = malloc(k * sizeof *Sr);
        memcpy(B, A, m * n * sizeof *B);
        CHECK(LAPACKE_dgesdd(LAPACK_ROW_MAJOR, 'N', (lapack_int)m, (lapack_int)n, B, (lapack_int)n,
                             Sr, NULL, (lapack_int)m, NULL, (lapack_int)n) == 0);
        double serr = 0;
        for (size_t i = 0; i < k; i++)
            serr = fmax(serr, fabs(S[i] - Sr[i]) / Sr[0]);
        CHECK(serr <= 1e-10);
        int desc = 1;
        for (size_t i = 1; i < k; i++)
            desc &= S[i] <= S[i - 1];
        CHECK(desc);
        if (want_uv) {
            double *R = calloc(m * n, sizeof *R);
            for (size_t i = 0; i < m; i++)
                for (size_t p = 0; p < k; p++) {
                    double us = U[i * k + p] * S[p];
                    for (size_t j = 0; j < n; j++)
                        R[i * n + j] += us * VT[p * n + j];
                }
            double rel = check_rel_diff(R, A, m * n);
            CHECK(rel <= 1e-12);
            double ou = orth_err(U, m, k, 1), ov = orth_err(VT, k, n, 0);
            CHECK(ou <= 1e-10);
            CHECK(ov <= 1e-10);
            if (rel > 1e-12 || ou > 1e-10 || ov > 1e-10)
                fprintf(stderr, "%zu x %zu: rel %.3g orth U %.3g V %.3g\n", m, n, rel, ou, ov);
            free(R);
        }
        printf("pdgesvd %4zu x %-4zu root %d grid %s: %.1f ms, sv err %.2e\n", m, n, root,
               shape ? "given" : "auto", 1e3 * (t1 - t0), serr);
        free(B);
        free(Sr);
    }
    free(A);
    free(S);
    free(U);
    free(VT);
}

static void syev_case(size_t n, int root, const larv_grid_shape *shape, int junk_lower)
{
    double *A = rand_matrix(n, n);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < i; j++)
            A[i * n + j] = A[j * n + i];
    double *Ain = malloc(n * n * sizeof *Ain); /* what is passed: maybe junk below the diagonal */
    memcpy(Ain, A, n * n * sizeof *Ain);
    if (junk_lower)
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < i; j++)
                Ain[i * n + j] = 1e6 + (double)(i * n + j);
    double *W = NULL, *Z = NULL;
    if (rank == root) {
        W = malloc(n * sizeof *W);
        Z = malloc(n * n * sizeof *Z);
    }
    larv_err e;
    double t0 = MPI_Wtime();
    int rc = larv_pdsyevd(MPI_COMM_WORLD, n, rank == root ? Ain : NULL, root, W, Z, shape, &e);
    double t1 = MPI_Wtime();
    if (rc)
        fprintf(stderr, "rank %d: syevd %zu: %s\n", rank, n, e.msg);
    CHECK(rc == 0);
    if (rank == root && rc == 0) {
        double *B = malloc(n * n * sizeof *B), *Wr = malloc(n * sizeof *Wr);
        memcpy(B, A, n * n * sizeof *B);
        CHECK(LAPACKE_dsyevd(LAPACK_ROW_MAJOR, 'V', 'U', (lapack_int)n, B, (lapack_int)n, Wr) == 0);
        double wmax = 0, werr = 0;
        for (size_t i = 0; i < n; i++)
            wmax = fmax(wmax, fabs(Wr[i]));
        for (size_t i = 0; i < n; i++)
            werr = fmax(werr, fabs(W[i] - Wr[i]) / wmax);
        CHECK(werr <= 1e-10);
        /* residual ||A Z - Z diag(W)|| / ||A|| and orthogonality */
        double num = 0, den = 0;
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < n; j++) {
                double s = 0;
                for (size_t l = 0; l < n; l++)
                    s += A[i * n + l] * Z[l * n + j];
                s -= Z[i * n + j] * W[j];
                num += s * s;
                den += A[i * n + j] * A[i * n + j];
            }
        double res = sqrt(num / den), oz = orth_err(Z, n, n, 1);
        CHECK(res <= 1e-12);
        CHECK(oz <= 1e-10);
        if (werr > 1e-10 || res > 1e-12 || oz > 1e-10)
            fprintf(stderr, "syevd %zu: werr %.3g res %.3g orth %.3g\n", n, werr, res, oz);
        printf("pdsyevd %4zu        root %d grid %s: %.1f ms, eig err %.2e\n", n, root,
               shape ? "given" : "auto", 1e3 * (t1 - t0), werr);
        free(B);
        free(Wr);
    }
    free(A);
    free(Ain);
    free(W);
    free(Z);
}

int main(int argc, char **argv)
{
    larv_mpi_preinit(); /* as larv does: see mpi/threads.c */
    MPI_Init(&argc, &argv);
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    int last = size - 1;

    /* automatic grid (1x1, 1x2, 2x2) */
    svd_case(97, 61, 0, NULL, 1);
    svd_case(61, 97, 0, NULL, 1);
    svd_case(128, 128, 0, NULL, 1);
    /* root not rank 0 (and off the grid when the grid is 1 x 1) */
    larv_grid_shape one = {1, 1, 0};
    svd_case(97, 61, last, &one, 1);
    /* a 1 x size row of tiny blocks, and size x 1 is refused (pr <= pc is only a preference) */
    larv_grid_shape row = {1, size, 8};
    svd_case(61, 97, last, &row, 1);
    larv_grid_shape col = {size, 1, 16};
    svd_case(97, 61, 0, &col, 1);
    /* singular values only; degenerate shapes */
    svd_case(50, 20, 0, NULL, 0);
    svd_case(1, 40, 0, NULL, 1);
    svd_case(40, 1, last, NULL, 1);
    svd_case(0, 5, 0, NULL, 1);
    /* many calls in a row: contexts and handles are released */
    for (int i = 0; i < 25; i++)
        svd_case(12, 9, i % size, NULL, 1);

    /* Disjoint sub-communicators factor different matrices at the same time
     * (how the driver shares one big matrix among a group of ranks). */
    {
        MPI_Comm sub;
        MPI_Comm_split(MPI_COMM_WORLD, rank % 2, rank, &sub);
        int sr, ss;
        MPI_Comm_rank(sub, &sr);
        MPI_Comm_size(sub, &ss);
        size_t m = rank % 2 ? 70 : 45, n = rank % 2 ? 33 : 80, k = m < n ? m : n;
        double *A = rand_matrix(m, n), *S = malloc(k * sizeof *S), *U = malloc(m * k * sizeof *U),
               *VT = malloc(k * n * sizeof *VT), *Sr = malloc(k * sizeof *Sr);
        larv_err e;
        int rc = larv_pdgesvd(sub, m, n, A, ss - 1, S, U, VT, NULL, &e);
        CHECK(rc == 0);
        if (rc == 0 && sr == ss - 1) {
            double *B = malloc(m * n * sizeof *B);
            memcpy(B, A, m * n * sizeof *B);
            CHECK(LAPACKE_dgesdd(LAPACK_ROW_MAJOR, 'N', (lapack_int)m, (lapack_int)n, B,
                                 (lapack_int)n, Sr, NULL, (lapack_int)m, NULL, (lapack_int)n) == 0);
            double serr = 0;
            for (size_t i = 0; i < k; i++)
                serr = fmax(serr, fabs(S[i] - Sr[i]) / Sr[0]);
            CHECK(serr <= 1e-10);
            free(B);
        }
        /* and the symmetric solver on the sub-communicator */
        double *W = malloc(k * sizeof *W), *Z = malloc(k * k * sizeof *Z);
        for (size_t i = 0; i < k; i++)
            for (size_t j = 0; j < k; j++)
                A[i * k + j] = (double)(i < j ? i : j) + 1.0; /* min(i,j)+1: SPD */
        CHECK(larv_pdsyevd(sub, k, A, 0, W, Z, NULL, &e) == 0);
        if (sr == 0)
            CHECK(W[0] > 0 && W[k - 1] > W[0]);
        free(A);
        free(S);
        free(U);
        free(VT);
        free(Sr);
        free(W);
        free(Z);
        MPI_Comm_free(&sub);
    }

    syev_case(97, 0, NULL, 0);
    syev_case(128, last, NULL, 1);
    syev_case(5, 0, NULL, 1);
    syev_case(61, 0, &row, 0);
    syev_case(1, 0, NULL, 0);

    /* errors are the same on every rank */
    larv_err e;
    double a[6] = {1, 2, 3, 4, 5, 6}, s[3], u[9], vt[9];
    int rc = larv_pdgesvd(MPI_COMM_WORLD, 2, 3, a, size, s, u, vt, NULL, &e); /* bad root */
    CHECK(rc == -1 && strstr(e.msg, "root"));
    rc = larv_pdgesvd(MPI_COMM_WORLD, rank == last && size > 1 ? 3 : 2, 3, a, 0, s, u, vt, NULL, &e);
    CHECK(size == 1 ? rc == 0 : (rc == -1 && strstr(e.msg, "differs")));
    larv_grid_shape big = {size + 1, size + 1, 0};
    rc = larv_pdgesvd(MPI_COMM_WORLD, 2, 3, a, 0, s, u, vt, &big, &e);
    CHECK(rc == -1 && strstr(e.msg, "grid"));
    rc = larv_pdsyevd(MPI_COMM_WORLD, 2, NULL, 0, s, NULL, NULL, &e); /* no A on root */
    CHECK(rc == -1 && strstr(e.msg, "required"));
    /* still usable after the failures */
    svd_case(30, 20, 0, NULL, 1);

    larv_grid_finalize();
    int status = check_report_all(MPI_COMM_WORLD);
    MPI_Finalize();
    return status;
}
