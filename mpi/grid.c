#include "grid.h"

#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../io/coll.h"
#include "../src/linalg.h"
#include "partition.h"

/* ---- BLACS / ScaLAPACK (no C header on Debian: declared here) --------------------
 * Fortran routines take pointers; CHARACTER arguments get gfortran's hidden
 * lengths (size_t) appended, which is harmless for ABIs that do not expect them. */
extern int Csys2blacs_handle(MPI_Comm comm);
extern void Cfree_blacs_system_handle(int handle);
extern void Cblacs_gridinit(int *ctxt, const char *order, int nprow, int npcol);
extern void Cblacs_gridmap(int *ctxt, int *usermap, int ldumap, int nprow, int npcol);
extern void Cblacs_gridinfo(int ctxt, int *nprow, int *npcol, int *myrow, int *mycol);
extern void Cblacs_gridexit(int ctxt);
extern void Cblacs_exit(int not_done);
extern void Cpdgemr2d(int m, int n, double *A, int ia, int ja, int *descA, double *B, int ib,
                      int jb, int *descB, int gcontext);
extern int numroc_(const int *n, const int *nb, const int *iproc, const int *isrcproc,
                   const int *nprocs);
extern void descinit_(int *desc, const int *m, const int *n, const int *mb, const int *nb,
                      const int *irsrc, const int *icsrc, const int *ictxt, const int *lld,
                      int *info);
extern void pdgesvd_(const char *jobu, const char *jobvt, const int *m, const int *n, double *a,
                     const int *ia, const int *ja, const int *desca, double *s, double *u,
                     const int *iu, const int *ju, const int *descu, double *vt, const int *ivt,
                     const int *jvt, const int *descvt, double *work, const int *lwork, int *info,
                     size_t ljobu, size_t ljobvt);
extern void pdsyevd_(const char *jobz, const char *uplo, const int *n, double *a, const int *ia,
                     const int *ja, const int *desca, double *w, double *z, const int *iz,
                     const int *jz, const int *descz, double *work, const int *lwork, int *iwork,
                     const int *liwork, int *info, size_t ljobz, size_t luplo);

enum { DTYPE_ = 0, CTXT_ = 1, M_ = 2, N_ = 3, MB_ = 4, NB_ = 5, RSRC_ = 6, CSRC_ = 7, LLD_ = 8 };

/* The BLACS contexts of one operation. */
typedef struct {
    int sys;                /* system handle of comm */
    int all, root1, grid;   /* 1 x P over comm; 1 x 1 on root; pr x pc */
    int in_all, in_root, in_grid;
    int pr, pc, nb, myrow, mycol;
    int rank, size, rootrank;
} blacs;

static void blacs_close(blacs *b)
{
    if (b->in_grid)
        Cblacs_gridexit(b->grid);
    if (b->in_root)
        Cblacs_gridexit(b->root1);
    if (b->in_all)
        Cblacs_gridexit(b->all);
    b->in_grid = b->in_root = b->in_all = 0;
    if (b->sys >= 0)
        Cfree_blacs_system_handle(b->sys);
    b->sys = -1;
}

/* Collective over comm: build the three contexts. Cannot fail locally (BLACS
 * aborts on its own errors). */
static void blacs_open(blacs *b, MPI_Comm comm, int root, int pr, int pc, int nb)
{
    memset(b, 0, sizeof *b);
    MPI_Comm_rank(comm, &b->rank);
    MPI_Comm_size(comm, &b->size);
    b->rootrank = root;
    b->pr = pr;
    b->pc = pc;
    b->nb = nb;
    b->sys = Csys2blacs_handle(comm);
    b->all = b->sys;
    Cblacs_gridinit(&b->all, "Row", 1, b->size);
    b->in_all = 1;
    b->root1 = b->sys;
    int map = root;
    Cblacs_gridmap(&b->root1, &map, 1, 1, 1);
    b->in_root = b->rank == root;
    b->grid = b->sys;
    Cblacs_gridinit(&b->grid, "Row", pr, pc);
    b->in_grid = b->rank < pr * pc;
    b->myrow = b->mycol = -1;
    if (b->in_grid) {
        int r, c;
        Cblacs_gridinfo(b->grid, &r, &c, &b->myrow, &b->mycol);
    }
    if (!b->in_root)
        b->root1 = -1;
    if (!b->in_grid)
        b->grid = -1;
}

/* Descriptor of a rows x cols matrix on the grid (or CTXT -1 off the grid);
 * *nloc = local element count. */
static int desc_grid(const blacs *b, int rows, int cols, int *desc, size_t *nloc, larv_err *err)
{
    if (!b->in_grid) {
        int d[9] = {1, -1, rows, cols, b->nb, b->nb, 0, 0, 1};
        memcpy(desc, d, sizeof d);
        *nloc = 0;
        return 0;
    }
    int zero = 0, info = 0;
    int lr = numroc_(&rows, &b->nb, &b->myrow, &zero, &b->pr);
    int lc = numroc_(&cols, &b->nb, &b->mycol, &zero, &b->pc);
    int lld = lr > 1 ? lr : 1;
    descinit_(desc, &rows, &cols, &b->nb, &b->nb, &zero, &zero, &b->grid, &lld, &info);
    if (info != 0)
        return larv_fail(err, LARV_EXIT_FAIL, "descinit (%d x %d, grid %d x %d, nb %d): info %d",
                         rows, cols, b->pr, b->pc, b->nb, info);
    *nloc = (size_t)lr * (size_t)lc;
    return 0;
}

/* Descriptor of the whole rows x cols column-major matrix on root (CTXT -1 elsewhere). */
static int desc_root(const blacs *b, int rows, int cols, int *desc, larv_err *err)
{
    int lld = rows > 1 ? rows : 1;
    if (!b->in_root) {
        int d[9] = {1, -1, rows, cols, b->nb, b->nb, 0, 0, lld};
        memcpy(desc, d, sizeof d);
        return 0;
    }
    int zero = 0, info = 0;
    descinit_(desc, &rows, &cols, &b->nb, &b->nb, &zero, &zero, &b->root1, &lld, &info);
    if (info != 0)
        return larv_fail(err, LARV_EXIT_FAIL, "descinit (root, %d x %d): info %d", rows, cols,
                         info);
    return 0;
}

static int check_int(size_t v, const char *what, larv_err *err)
{
    if (v > (size_t)INT_MAX / 2)
        return larv_fail(err, LARV_EXIT_FAIL, "%s = %zu is too large for ScaLAPACK (int)", what, v);
    return 0;
}

/* Agree on the arguments (from root) and the grid. want[] flags come from root.
 * Returns 0 or -1 (on every rank). */
static int agree(MPI_Comm comm, int root, size_t m, size_t n, int *want, int nwant,
                 const larv_grid_shape *shape, int *pr, int *pc, int *nb, larv_err *err)
{
    int size, rank, rc = 0;
    MPI_Comm_size(comm, &size);
    MPI_Comm_rank(comm, &rank);
    /* root is checked locally: a bad root on any rank fails everywhere. */
    if (root < 0 || root >= size)
        rc = larv_fail(err, LARV_EXIT_FAIL, "root %d is not a rank of the communicator (size %d)",
                       root, size);
    if (larv_coll_check(comm, rc, err))
        return -1;
    uint64_t v[8] = {m, n};
    for (int i = 0; i < nwant; i++)
        v[2 + i] = (uint64_t)want[i];
    if (larv_bcast_bytes(comm, v, sizeof v, root, err))
        return -1;
    if (v[0] != m || v[1] != n)
        rc = larv_fail(err, LARV_EXIT_FAIL,
                       "matrix size %zu x %zu differs from root's %llu x %llu", m, n,
                       (unsigned long long)v[0], (unsigned long long)v[1]);
    for (int i = 0; i < nwant; i++)
        want[i] = (int)v[2 + i];
    if (!rc)
        rc = check_int(m, "rows", err) || check_int(n, "columns", err) ? -1 : 0;
    /* the factored matrix is always oriented with rows >= cols */
    larv_grid_choose(size, m > n ? m : n, m > n ? n : m, pr, pc, nb);
    if (!rc && shape) {
        if (shape->pr > 0)
            *pr = shape->pr;
        if (shape->pc > 0)
            *pc = shape->pc;
        if (shape->nb > 0)
            *nb = shape->nb;
        if ((long)*pr * *pc > size)
            rc = larv_fail(err, LARV_EXIT_FAIL, "process grid %d x %d needs more than %d ranks",
                           *pr, *pc, size);
    }
    return larv_coll_check(comm, rc, err);
}

/* After a ScaLAPACK call on the grid: info (0 off the grid) into a common verdict. */
static int info_check(MPI_Comm comm, int info, const char *what, const blacs *b, larv_err *err)
{
    int rc = 0;
    if (info != 0) {
        larv_lapack_fail(err, what, info); /* what the code means, then where */
        rc = larv_err_prefix(err, "on a %d x %d grid (nb %d)", b->pr, b->pc, b->nb);
    }
    return larv_coll_check(comm, rc, err);
}

int larv_pdgesvd(MPI_Comm comm, size_t m, size_t n, const double *A, int root, double *S,
                 double *U, double *VT, const larv_grid_shape *shape, larv_err *err)
{
    larv_err lerr;
    larv_err *e = err ? err : &lerr;
    larv_err_clear(e);
    int rank;
    MPI_Comm_rank(comm, &rank);
    int want[2] = {rank == root && U != NULL, rank == root && VT != NULL};
    int pr, pc, nb;
    /* ScaLAPACK factors a column-major C with rows >= cols (its pdgesvd is about
     * twice as fast on tall matrices as on wide ones):
     *  - m <= n: C = A^T (n x m), which IS A's row-major buffer, no copy:
     *    C = Uc S VcT gives A = VcT^T S Uc^T, and the column-major buffers of
     *    VcT (k x m) and Uc (n x k) ARE the row-major U (m x k) and VT (k x n);
     *  - m > n: C = A (m x n), a column-major copy made on root; Uc (m x k) and
     *    VcT (k x n) are transposed on root into the row-major U and VT. */
    if (agree(comm, root, m, n, want, 2, shape, &pr, &pc, &nb, e))
        return -1;
    int tall = m > n;
    int rows = (int)(tall ? m : n), cols = (int)(tall ? n : m), k = cols;
    if (k == 0)
        return 0;
    int want_uc = tall ? want[0] : want[1], want_vct = tall ? want[1] : want[0];

    blacs b;
    blacs_open(&b, comm, root, pr, pc, nb);
    int rc = 0, info = 0, one = 1;
    int dA0[9], dA[9], dUc[9], dVcT[9], dUc0[9], dVcT0[9];
    size_t nA = 0, nUc = 0, nVcT = 0;
    double *a = NULL, *uc = NULL, *vct = NULL, *work = NULL, *s = NULL;
    double *ac = NULL, *tu = NULL, *tv = NULL; /* root, tall case only */
    rc = desc_root(&b, rows, cols, dA0, e) || desc_grid(&b, rows, cols, dA, &nA, e) ||
                 desc_grid(&b, rows, k, dUc, &nUc, e) || desc_grid(&b, k, cols, dVcT, &nVcT, e) ||
                 desc_root(&b, rows, k, dUc0, e) || desc_root(&b, k, cols, dVcT0, e)
             ? -1
             : 0;
    if (!rc) {
        a = malloc((nA ? nA : 1) * sizeof *a);
        uc = malloc((nUc ? nUc : 1) * sizeof *uc);
        vct = malloc((nVcT ? nVcT : 1) * sizeof *vct);
        s = malloc((size_t)k * sizeof *s);
        if (!a || !uc || !vct || !s)
            rc = larv_fail(e, LARV_EXIT_FAIL, "pdgesvd: out of memory (%zu x %zu)", m, n);
    }
    if (!rc && rank == root && (!A || !S))
        rc = larv_fail(e, LARV_EXIT_FAIL, "pdgesvd: A and S are required on root");
    if (!rc && rank == root && tall) {
        ac = malloc(m * n * sizeof *ac);
        tu = want_uc ? malloc(m * (size_t)k * sizeof *tu) : NULL;
        tv = want_vct ? malloc((size_t)k * n * sizeof *tv) : NULL;
        if (!ac || (want_uc && !tu) || (want_vct && !tv))
            rc = larv_fail(e, LARV_EXIT_FAIL, "pdgesvd: out of memory (%zu x %zu)", m, n);
        else
            for (size_t i = 0; i < m; i++)
                for (size_t j = 0; j < n; j++)
                    ac[i + j * m] = A[i * n + j];
    }
    if ((rc = larv_coll_check(comm, rc, e)) != 0)
        goto out;

    /* Scatter root -> grid (the whole comm takes part). */
    Cpdgemr2d(rows, cols, tall ? ac : (double *)A, 1, 1, dA0, a, 1, 1, dA, b.all);

    const char *ju = want_uc ? "V" : "N", *jv = want_vct ? "V" : "N";
    if (b.in_grid) {
        double q = 0;
        int lwork = -1;
        pdgesvd_(ju, jv, &rows, &cols, a, &one, &one, dA, s, uc, &one, &one, dUc, vct, &one, &one,
                 dVcT, &q, &lwork, &info, 1, 1);
        if (info == 0) {
            double want_w = q * 1.1 + 64.0;
            if (want_w > (double)INT_MAX)
                info = -1000;
            else {
                lwork = (int)want_w;
                work = malloc((size_t)lwork * sizeof *work);
                if (!work)
                    info = -1001;
                else
                    pdgesvd_(ju, jv, &rows, &cols, a, &one, &one, dA, s, uc, &one, &one, dUc, vct,
                             &one, &one, dVcT, work, &lwork, &info, 1, 1);
            }
        }
    }
    if ((rc = info_check(comm, info, "pdgesvd", &b, e)) != 0)
        goto out;

    /* Gather Uc (rows x k) and VcT (k x cols) to root. */
    if (want_uc)
        Cpdgemr2d(rows, k, uc, 1, 1, dUc, tall ? tu : VT, 1, 1, dUc0, b.all);
    if (want_vct)
        Cpdgemr2d(k, cols, vct, 1, 1, dVcT, tall ? tv : U, 1, 1, dVcT0, b.all);
    if (rank == root && tall) {
        size_t K = (size_t)k;
        if (want_uc) /* U[i][p] = Uc[i + p m] */
            for (size_t i = 0; i < m; i++)
                for (size_t p = 0; p < K; p++)
                    U[i * K + p] = tu[i + p * m];
        if (want_vct) /* VT[p][j] = VcT[p + j k] */
            for (size_t p = 0; p < K; p++)
                for (size_t j = 0; j < n; j++)
                    VT[p * n + j] = tv[p + j * K];
    }
    /* S is replicated on the grid; comm rank 0 is always on it. */
    if (larv_bcast_bytes(comm, s, (size_t)k * sizeof *s, 0, e))
        rc = -1;
    else if (rank == root)
        memcpy(S, s, (size_t)k * sizeof *s);
    rc = larv_coll_check(comm, rc, e);

out:
    free(a);
    free(uc);
    free(vct);
    free(s);
    free(work);
    free(ac);
    free(tu);
    free(tv);
    blacs_close(&b);
    return rc ? -1 : 0;
}

int larv_pdsyevd(MPI_Comm comm, size_t n, const double *A, int root, double *W, double *Z,
                 const larv_grid_shape *shape, larv_err *err)
{
    larv_err lerr;
    larv_err *e = err ? err : &lerr;
    larv_err_clear(e);
    int rank;
    MPI_Comm_rank(comm, &rank);
    int want[1] = {rank == root && Z != NULL};
    int pr, pc, nb;
    if (agree(comm, root, n, n, want, 1, shape, &pr, &pc, &nb, e))
        return -1;
    int N = (int)n;
    if (N == 0)
        return 0;

    blacs b;
    blacs_open(&b, comm, root, pr, pc, nb);
    int rc = 0, info = 0, one = 1;
    int dA0[9], dA[9], dZ[9];
    size_t nA = 0, nZ = 0;
    double *a = NULL, *z = NULL, *work = NULL, *w = NULL, *zt = NULL;
    int *iwork = NULL;
    rc = desc_root(&b, N, N, dA0, e) || desc_grid(&b, N, N, dA, &nA, e) ||
                 desc_grid(&b, N, N, dZ, &nZ, e)
             ? -1
             : 0;
    if (!rc) {
        a = malloc((nA ? nA : 1) * sizeof *a);
        z = malloc((nZ ? nZ : 1) * sizeof *z);
        w = malloc(n * sizeof *w);
        if (want[0])
            zt = malloc(n * n * sizeof *zt);
        if (!a || !z || !w || (want[0] && !zt))
            rc = larv_fail(e, LARV_EXIT_FAIL, "pdsyevd: out of memory (%zu x %zu)", n, n);
    }
    if (!rc && rank == root && (!A || !W))
        rc = larv_fail(e, LARV_EXIT_FAIL, "pdsyevd: A and W are required on root");
    if ((rc = larv_coll_check(comm, rc, e)) != 0)
        goto out;

    /* Row-major upper triangle == column-major lower triangle: uplo 'L'. */
    Cpdgemr2d(N, N, (double *)A, 1, 1, dA0, a, 1, 1, dA, b.all);
    if (b.in_grid) {
        double q = 0;
        int lwork = -1, liwork = -1, iq = 0;
        pdsyevd_("V", "L", &N, a, &one, &one, dA, w, z, &one, &one, dZ, &q, &lwork, &iq, &liwork,
                 &info, 1, 1);
        if (info == 0) {
            /* The query under-reports what PDORMTR needs when N < NB (ScaLAPACK
             * 2.2: "PDORMTR parameter 16" and wrong vectors): add its minimum,
             * NB*NB + max(NB(NB-1)/2, (MPC0 + NQC0) NB), bounded with MPC0, NQC0
             * <= local size + NB, on top of the 4N PDSYEVD keeps before it. */
            int zero = 0;
            double np = numroc_(&N, &b.nb, &b.myrow, &zero, &b.pr) + b.nb;
            double nq = numroc_(&N, &b.nb, &b.mycol, &zero, &b.pc) + b.nb;
            double nbd = b.nb, orm = nbd * nbd + fmax(nbd * (nbd - 1) / 2, (np + nq) * nbd);
            double want_w = fmax(q, orm + 4.0 * N) * 1.1 + 1024.0;
            /* The documented minimum of LIWORK is 7N + 8 NPCOL + 2. */
            long li = (long)iq > 7L * N + 8L * b.pc + 2 ? (long)iq : 7L * N + 8L * b.pc + 2;
            if (want_w > (double)INT_MAX || li > INT_MAX)
                info = -1000;
            else {
                lwork = (int)want_w;
                liwork = (int)li;
                work = malloc((size_t)lwork * sizeof *work);
                iwork = malloc((size_t)liwork * sizeof *iwork);
                if (!work || !iwork)
                    info = -1001;
                else
                    pdsyevd_("V", "L", &N, a, &one, &one, dA, w, z, &one, &one, dZ, work, &lwork,
                             iwork, &liwork, &info, 1, 1);
            }
        }
    }
    if ((rc = info_check(comm, info, "pdsyevd", &b, e)) != 0)
        goto out;
    if (want[0])
        Cpdgemr2d(N, N, z, 1, 1, dZ, zt, 1, 1, dA0, b.all);
    if (larv_bcast_bytes(comm, w, n * sizeof *w, 0, e))
        rc = -1;
    else if (rank == root) {
        memcpy(W, w, n * sizeof *w);
        if (want[0]) /* column-major Z -> row-major, eigenvectors in columns */
            for (size_t i = 0; i < n; i++)
                for (size_t j = 0; j < n; j++)
                    Z[i * n + j] = zt[i + j * n];
    }
    rc = larv_coll_check(comm, rc, e);

out:
    free(a);
    free(z);
    free(w);
    free(zt);
    free(work);
    free(iwork);
    blacs_close(&b);
    return rc ? -1 : 0;
}

void larv_grid_finalize(void)
{
    Cblacs_exit(1);
}
