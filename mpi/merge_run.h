/* The distributed merge engine behind `larv merge`. */
#ifndef LARV_MERGE_RUN_H
#define LARV_MERGE_RUN_H

#include <mpi.h>
#include <stdint.h>

#include "../src/merge_cfg.h"

/* Run the merge described by cfg on comm. Collective. Returns 0 or -1 (same on
 * every rank) with err set on every rank. */
int larv_merge_run(const larv_merge_cfg *cfg, MPI_Comm comm, larv_merge_result *res, larv_err *err);

/* A run with several outputs (a sweep, cli/template.h): cfgs[k] describes
 * output k (the same inputs, patterns, precision and run options in all;
 * method, lambda, LARV rule and constants, TIES k, out differ). Every tensor
 * is read once per pass and each method's update computed once; results[k]
 * is output k's, and each output is byte for byte the single merge of
 * cfgs[k]. cfgs[0]->report gets one report per output. Collective. */
int larv_merge_run_outputs(const larv_merge_cfg *const *cfgs, size_t nout, MPI_Comm comm,
                           larv_merge_result *results, larv_err *err);

#endif
