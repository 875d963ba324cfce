/* Opening the outputs of a merge run, and --resume (journal.h).
 *
 * Each output is created under its temporary name, or, with --resume, the
 * temporary file and journals that an interrupted run of the same job left
 * are reopened: the inputs of every journalled tensor are re-read and their
 * checksums compared with the journal's (a changed input: nothing is reused),
 * then each rank re-reads the journalled tensors it owns from the temporary
 * file and keeps those whose checksum matches; the rest are written again.
 * The engine (merge_run.c) passes what this needs, not its context. */
#ifndef LARV_RESUME_H
#define LARV_RESUME_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

#include "../io/ckpt.h"
#include "../io/fileset.h"
#include "../src/err.h"
#include "outputs.h"

/* larv_resume_run.role[i]: what this rank does with tensor i */
enum {
    LARV_ROLE_MERGED = 1, /* merges and writes it */
    LARV_ROLE_COPIED = 2, /* copies it from the base (its inputs: the base only) */
    LARV_ROLE_PROXY = 4   /* with a role above: LARV's proxies are computed from it */
};

/* What the run knows that opening an output needs. */
typedef struct {
    MPI_Comm comm;
    int rank, size;
    size_t T, nt;
    const larv_tensor_info *info;  /* nt: the output's tensors, in the job's order */
    const unsigned char *role;     /* nt: LARV_ROLE_* flags; 0: another rank's tensor */
    larv_ckpt *base;
    larv_ckpt *const *tasks;       /* T */
    larv_fileset *files;           /* the run's inputs and claimed paths (the writer's guard) */
    const uint64_t *cache_digest;  /* --larv-cache with cached proxies: the cache's digest, else NULL */
    uint64_t *in_hash;             /* (T + 1) x nt, file-major: receives the journalled input
                                      checksums of the tensors kept */
} larv_resume_run;

/* Create output o (its arrays, its resume identity o->job, its writer o->w and
 * this rank's journal), or with o->cfg->resume reopen what an interrupted run
 * of the same job left and mark the verified tensors in o->done (with their
 * checksums and journalled LARV proxies). Says on stderr (rank 0) what was
 * resumed, or why nothing was. Collective; returns 0, or -1 on every rank with
 * err (o->w is then NULL). */
int larv_resume_open_output(const larv_resume_run *r, larv_output *o, larv_err *err);

#endif
