/* The distributed merge engine behind `larv merge`. */
#ifndef LARV_MERGE_RUN_H
#define LARV_MERGE_RUN_H

#include <mpi.h>
#include <stdint.h>

#include "../src/merge_cfg.h"

/* Layer groups are indexed 0 = embed, 1 .. L = blocks 0 .. L-1, L+1 = head. */
typedef struct {
    long L;              /* number of blocks */
    size_t ngroups;      /* L + 2 */
    double *e, *c;       /* mean proxies per group (NaN where none: embed, head, LARV off) */
    double *chat, *score, *scale;
    int *nmatrix;        /* matrix parameters per group */
    int *nproxy;         /* of which LARV's proxies are computed from */
    double lambda;       /* the lambda used */
    double seconds;      /* wall time of the merge */
    double pass_seconds[4]; /* analysis (LARV proxies), TIES selection, TIES sign, write */
    uint64_t bytes_read, bytes_written; /* over all ranks */
    uint64_t bytes_read_ahead;          /* of bytes_read: by the read-ahead thread */
    int nranks;
    long *peak_rss_kb;   /* per rank */
    size_t T;
    float *ties_thr;     /* per task (TIES) */
    double ties_majority;
    uint64_t *input_digest; /* T + 1: base then tasks (combined per-tensor hashes) */
    uint64_t *input_bytes;  /* T + 1 */
    size_t ntensors, nmatrix_total;
    uint64_t nparams;
    double imbalance;    /* max/mean estimated cost per rank (per team) */
    int team_size;       /* ranks sharing one matrix (ScaLAPACK grid); 1 = none */
} larv_merge_result;

/* Run the merge described by cfg on comm. Collective. Returns 0 or -1 (same on
 * every rank) with err set on every rank. */
int larv_merge_run(const larv_merge_cfg *cfg, MPI_Comm comm, larv_merge_result *res, larv_err *err);
void larv_merge_result_free(larv_merge_result *r);

#endif
