/* The tensor selection of a merge: which tensors of the pool are merged,
 * copied from the base, or left out, and the checks that the pool agrees.
 *
 * The merged set is the tensors every task has (restricted to --include's
 * patterns when given); they must all be in the base with the same shape. A
 * tensor that only the base has is left out, or copied from the base with
 * --keep-base-only. A task tensor the base lacks, or one that only some tasks
 * have, is an error (65); so is a shape that differs, a non-float tensor whose
 * dtype differs, or a float tensor where another checkpoint has a non-float
 * one. Float dtypes (F32/F16/BF16/F64) may differ: every value is widened to
 * float64 before tau is formed. Every mismatch is listed on stderr by rank 0
 * (the first LARV_POOL_LIST and a count of the rest).
 *
 * On success every checkpoint is restricted to the same sorted list
 * (larv_ckpt_select), so tensor i is the same tensor in all of them; an entry
 * copied from the base is absent in the tasks (and never read there). */
#ifndef LARV_MPI_POOL_H
#define LARV_MPI_POOL_H

#include <mpi.h>

#include "../io/ckpt.h"
#include "../src/merge_cfg.h"

#define LARV_POOL_LIST 20

typedef struct {
    size_t n;                 /* the merge's list */
    unsigned char *base_only; /* n: copied from the base, in no task */
    size_t n_base_only;       /* only in the base (after --include), kept or not */
    size_t n_kept;            /* of which kept (--keep-base-only) */
    size_t n_not_included;    /* base tensors --include did not match */
} larv_pool_sel;

/* Collective over comm: the same verdict and the same lists on every rank. */
int larv_pool_select(const larv_merge_cfg *cfg, larv_ckpt *base, larv_ckpt **tasks, size_t T,
                     MPI_Comm comm, larv_pool_sel *s, larv_err *err);
void larv_pool_sel_free(larv_pool_sel *s);

#endif
