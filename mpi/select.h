/* Exact distributed selection for TIES trimming (spec: TIES step 2).
 *
 * For each task t, the kk[t]-th smallest |x| (1-based) over the UNION of every
 * rank's float32 data of task t -- exactly the value of torch.kthvalue(|x|, kk)
 * on the concatenated vector, whatever the number of ranks and however the data
 * is spread over them (a rank may hold nothing). */
#ifndef LARV_SELECT_H
#define LARV_SELECT_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

#include "../src/err.h"

/* Visitor given to the source: called once per local chunk of data. */
typedef void (*larv_select_visit)(void *vctx, const float *x, size_t n);

/* The rank's data, streamed. each(ctx, t, visit, vctx, err) must call
 * visit(vctx, x, n) for every local chunk of task t exactly once (any chunking,
 * any order, zero chunks allowed), then return 0; or return -1 with a message
 * (e.g. a read error) -- the selection then fails on EVERY rank with that message.
 * larv_select_kth calls each() exactly twice per task, tasks in batches of up
 * to 32: t = b..b+31 (round 1), then again t = b..b+31 (round 2), then the next
 * batch; the data must be the same both times. */
typedef struct {
    int (*each)(void *ctx, size_t t, larv_select_visit visit, void *vctx, larv_err *err);
    void *ctx;
} larv_select_source;

/* COLLECTIVE over comm. T and kk[0..T-1] must be the same on every rank
 * (checked). On success every rank gets thr_out[t] = the kk[t]-th smallest
 * |x| of task t (a non-negative float; -0.0 counts as 0.0, +Inf is allowed and
 * sorts last) and 0 is returned. Fails (-1 on every rank, same message) if any
 * task holds a NaN, if kk[t] is not in [1, D_t] (D_t = the global element count
 * of task t), if T or kk differ between ranks, on a source failure, or on an
 * MPI failure.
 * Algorithm: radix select on the bit pattern of |x| (larv_abs_key, monotone):
 * round 1 builds, per task, a 65536-bin histogram of the high 16 bits and sums
 * it over comm (one MPI_Allreduce of 65537 uint64 per task, NaN count included),
 * which fixes the bucket holding the kk-th value; round 2 histograms the low 16
 * bits of the entries in that bucket, and a second allreduce gives the exact
 * value. Cost: two reads of the data, 2 allreduces of 512 KiB per task.
 * Memory: 512 KiB per task of the current batch (at most 16 MiB). */
int larv_select_kth(MPI_Comm comm, size_t T, const uint64_t *kk, larv_select_source *src,
                    float *thr_out, larv_err *err);

/* Convenience source over arrays: task t is given by nchunks[t] chunks
 * chunks[t][c] of lengths lens[t][c]. */
typedef struct {
    const float *const *const *chunks; /* [T][nchunks[t]] */
    const size_t *const *lens;         /* [T][nchunks[t]] */
    const size_t *nchunks;             /* [T] */
} larv_select_arrays;
/* Fill src to read from a (a must outlive the call to larv_select_kth). */
void larv_select_source_arrays(larv_select_source *src, larv_select_arrays *a);

#endif
