/* Dense factorisations of one matrix shared by a group of ranks (ScaLAPACK).
 *
 * The matrix lives on one rank (root) of comm; it is redistributed block-cyclically
 * to a BLACS process grid built over comm's own ranks (Csys2blacs_handle(comm)),
 * factored there (pdgesvd / pdsyevd), and the factors are gathered back to root.
 * Matrices are ROW-MAJOR, as everywhere in larv. Every function is COLLECTIVE over
 * comm; the size arguments and root must be equal on all ranks; the arrays are
 * only read / written on root (other ranks may pass NULL). On failure every rank
 * returns -1 with the same message (larv_coll_check). */
#ifndef LARV_GRID_H
#define LARV_GRID_H

#include <mpi.h>
#include <stddef.h>

#include "../src/err.h"

/* Process grid and block size; 0 in any field means "choose" (larv_grid_choose
 * from partition.h). pr * pc must not exceed comm's size. The grid occupies comm
 * ranks 0 .. pr*pc-1 (row-major); the others only take part in the transfers. */
typedef struct {
    int pr, pc, nb;
} larv_grid_shape;

/* Thin SVD A = U diag(S) VT of the row-major m x n matrix A on root;
 * k = min(m, n): S[k] descending, U m x k row-major, VT k x n row-major
 * (U or VT may be NULL on root when not wanted; S is required on root).
 * shape may be NULL (automatic). A is not modified. */
int larv_pdgesvd(MPI_Comm comm, size_t m, size_t n, const double *A, int root, double *S,
                 double *U, double *VT, const larv_grid_shape *shape, larv_err *err);

/* Eigen-decomposition of the symmetric n x n matrix A on root (only the upper
 * triangle of the row-major A is read): W[n] ascending, Z n x n row-major with
 * the eigenvector of W[j] in COLUMN j (as LAPACKE_dsyevd with LAPACK_ROW_MAJOR).
 * Z may be NULL on root (eigenvalues only is not cheaper here: vectors are
 * always computed). shape may be NULL. */
int larv_pdsyevd(MPI_Comm comm, size_t n, const double *A, int root, double *W, double *Z,
                 const larv_grid_shape *shape, larv_err *err);

/* Release BLACS' internal buffers (Cblacs_exit(1): MPI stays initialised).
 * Optional, once, after the last larv_pd* call and before MPI_Finalize. */
void larv_grid_finalize(void);

#endif
