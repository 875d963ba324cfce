/* Static work partition of a merge over MPI ranks (pure functions, no MPI calls).
 *
 * Everything here is deterministic: given the same inputs, every rank computes
 * the same partition without communicating (floating-point costs are added in
 * a fixed order). */
#ifndef LARV_PARTITION_H
#define LARV_PARTITION_H

#include <stddef.h>
#include <stdint.h>

#include "../src/err.h"
#include "../src/tensor.h"

/* One unit of work: one tensor (all T tasks of it). */
typedef struct {
    size_t tensor; /* the caller's tensor index (only carried along and used for ties) */
    long group;    /* block index >= 0, or LARV_GROUP_EMBED / LARV_GROUP_HEAD (layers.h) */
    double cost;   /* >= 0, e.g. larv_cost_estimate() */
} larv_work_item;

typedef struct {
    int nranks;
    size_t nitems;
    int *owner;          /* [nitems]: owning rank of items[i] */
    size_t *rank_start;  /* [nranks + 1]: rank r owns rank_items[rank_start[r] .. rank_start[r+1]) */
    size_t *rank_items;  /* [nitems]: positions i in the input array, ascending within a rank */
    double *rank_cost;   /* [nranks]: summed cost per rank */
    int by_group;        /* 1: whole groups were assigned (each group on one rank); 0: per tensor */
    size_t ngroups;      /* distinct group values among the items */
    double total_cost;
    double max_cost;     /* max over ranks of rank_cost */
    double imbalance;    /* max_cost / (total_cost / nranks); 1.0 when total_cost == 0 */
} larv_partition;

/* Partition n items over nranks >= 1 ranks.
 * Policy: if nranks <= (number of distinct groups), WHOLE groups are assigned
 * (every tensor of a layer on one rank, so each rank reads only its layers):
 * groups sorted by cost descending (ties: embed, blocks 0, 1, ..., head), each
 * given to the least-loaded rank so far (ties: lowest rank) -- LPT, within
 * 4/3 of the optimal makespan. Otherwise (more ranks than groups) individual
 * tensors are assigned by LPT the same way (ties: lower `tensor`, then input
 * position); ranks may then own nothing when nranks > n.
 * Fails on nranks < 1, a negative or non-finite cost, or out of memory.
 * Free with larv_partition_free (also safe on a zeroed or failed partition). */
int larv_partition_make(const larv_work_item *items, size_t n, int nranks, larv_partition *p,
                        larv_err *err);
void larv_partition_free(larv_partition *p);

/* Owners for n tensors of the given byte sizes (copying work: convert, synth):
 * LPT by bytes over nranks, each tensor on its own. Returns a malloc'd array
 * (free it), or NULL with err set. */
int *larv_partition_by_bytes(const larv_tensor_info *const *t, size_t n, int nranks, larv_err *err);

/* ---- cost model ---------------------------------------------------------------
 * Relative cost (arbitrary units ~ floating-point operations plus bytes touched)
 * of merging one tensor over T tasks:
 *   vector parameter (flags without LARV_COST_MATRIX), numel = m * n:
 *        numel * T                               (read T task vectors, add)
 *   matrix m x n, elementwise merger (TA, TIES):
 *        m * n * T
 *   matrix m x n with LARV_COST_SVD (TSV-M, Iso-C, Iso-CTS, or the LARV proxies,
 *   which need the spectrum of W0 and of every task update):
 *        m * n * T  +  m * n * min(m, n) * T
 * (The SVD term dominates: one thin SVD costs O(m n min(m, n)); TSV-M and
 * Iso-CTS run about one per task.) Computed in double; never negative. */
enum { LARV_COST_MATRIX = 1, LARV_COST_SVD = 2 };
double larv_cost_estimate(uint64_t m, uint64_t n, size_t T, int flags);

/* ---- process grid for one shared matrix ----------------------------------------
 * For nprocs ranks that together factor one m x n matrix with ScaLAPACK:
 * a near-square grid pr x pc (pr <= pc, pr * pc <= nprocs) and a square block
 * size nb. Rules: start from the most square factorisation pr * pc == nprocs;
 * if it is too elongated (pc > 4 pr, e.g. a prime nprocs) use
 * pr = floor(sqrt(nprocs)), pc = floor(nprocs / pr) instead (some ranks idle).
 * Then shrink the grid while the matrix has fewer than one nb-block per process
 * row / column with nb >= 8 (small matrices use fewer ranks). nb = 64, halved
 * (down to 8) while a process row or column would get no block. A 0 x 0 or
 * 1-rank case gives 1 x 1. Always succeeds for nprocs >= 1. */
void larv_grid_choose(int nprocs, uint64_t m, uint64_t n, int *pr, int *pc, int *nb);

#endif
