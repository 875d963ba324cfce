/* Progress of long runs: rank 0 prints what it has done of its own share, the
 * throughput and an ETA, at most every few seconds, on stderr. Quiet when told. */
#ifndef LARV_PROGRESS_H
#define LARV_PROGRESS_H

#include <mpi.h>
#include <stdint.h>

typedef struct {
    int active;       /* rank 0 and not quiet */
    const char *label;
    uint64_t total, done;
    double t0, last;
} larv_progress;

void larv_progress_init(larv_progress *p, MPI_Comm comm, int quiet);
/* Start a phase; total = bytes this rank will process in it (0 = unknown). */
void larv_progress_begin(larv_progress *p, const char *label, uint64_t total);
void larv_progress_step(larv_progress *p, uint64_t bytes);
void larv_progress_end(larv_progress *p);

#endif
