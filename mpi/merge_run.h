/* The distributed merge engine behind `larv merge`. */
#ifndef LARV_MERGE_RUN_H
#define LARV_MERGE_RUN_H

#include <mpi.h>
#include <stdint.h>

#include "../src/merge_cfg.h"

/* Run the merge described by cfg on comm. Collective. Returns 0 or -1 (same on
 * every rank) with err set on every rank. */
int larv_merge_run(const larv_merge_cfg *cfg, MPI_Comm comm, larv_merge_result *res, larv_err *err);

#endif
