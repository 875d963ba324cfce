/* The outputs of one merge run (a sweep writes several; outputs.c).
 *
 * Each output is a whole merge's result: its own settings (a copy of the
 * run's configuration with one value per swept option, cli/template.h), its
 * own LARV scales and TIES selection, writer, journal, lock, checksums and
 * provenance. The engine (merge_run.c) reads every tensor once per pass,
 * computes each method's merged update once, and writes that tensor into
 * every output's file before it moves on. */
#ifndef LARV_OUTPUTS_H
#define LARV_OUTPUTS_H

#include <stdint.h>

#include "../io/ckpt.h"
#include "../io/lock.h"
#include "../src/merge_cfg.h"
#include "journal.h"

typedef struct {
    const larv_merge_cfg *cfg; /* this output's settings (out, method, lambda, LARV, ...) */
    larv_merge_result *res;    /* its result (scales, TIES selection, provenance) */
    larv_writer *w;            /* open between larv_resume_open_output and the close */
    larv_journal *journal;     /* this rank's (--resume) */
    larv_lock *lock;           /* rank 0: this run's hold on the target */
    uint64_t job;              /* its resume identity */
    uint64_t *out_hash;        /* nt: the written tensors' checksums */
    unsigned char *done;       /* nt: written and verified by an interrupted run */
    double *pe, *pc;           /* nt x T: the journalled LARV proxies (resume) */
    unsigned char *has_pe;     /* nt */
    int made;                  /* created or reopened (its journals go at the end) */
} larv_output;

/* LARV's proxies for method m come from: 1 TSV-M's own per-task
 * factorisations, 0 the Gram route that every other method shares
 * (src/merge.c). Outputs on one route share the proxies bit for bit. */
int larv_proxy_route(larv_method m);
/* Whether the output scales by LARV. */
int larv_output_larv_on(const larv_output *o);
/* Its arrays (not cfg, res, the writer, journal or lock). */
void larv_output_free(larv_output *o);
/* The report of a sweep: {"outputs": [each output's report]} (texts of JSON
 * objects, as larv_report_json gives them); malloc'd, NULL when out of memory. */
char *larv_outputs_report(char *const *texts, size_t n);

#endif
