/* The resume journal of `larv merge --resume`.
 *
 * A merge writes its output under the temporary name "<out>.larv-tmp" (see
 * io/ckpt.h, opts.atomic), which survives a killed job. Beside it every rank
 * keeps its own journal "<out>.larv-tmp.journal.<rank>", a text file:
 *
 *   larv-journal 1 job <16 hex> rank <r> ranks <N> tasks <T>
 *   t <index> <out hash> <in hashes> <e> <c> <name> <line hash>
 *
 * one "t" line per tensor, appended (and flushed) only after its bytes were
 * written to the temporary output: the index in the job's tensor list, the
 * 64-bit hash of the bytes written (src/hash.h), the hashes of the inputs' bytes
 * of that tensor ((T + 1) values joined by ',', base first; the provenance
 * needs them), the LARV proxies e_t and c_t of the tensor (T values each, the
 * bits of the doubles in hex joined by ',', or '-' where the tensor has none),
 * the tensor's name (percent-encoded: no spaces) and a hash of the line before
 * it. A torn or corrupt line is ignored, and so is a journal whose header names
 * another job: its tensors are simply written again.
 *
 * The job identity hashes everything the output depends on: the larv version,
 * the method and every parameter, the LARV options, the output name, the number
 * of ranks and --ranks-per-matrix (the LARV sums are added in a per-rank order,
 * and the team size picks the eigensolver), and every input's
 * path, size, modification time and tensor list. */
#ifndef LARV_JOURNAL_H
#define LARV_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#include "../io/ckpt.h"
#include "../src/err.h"
#include "../src/merge_cfg.h"

/* The job identity (same on every rank for the same job). */
uint64_t larv_job_identity(const larv_merge_cfg *cfg, int nranks, larv_ckpt *base,
                           larv_ckpt *const *tasks);

/* What the journals of an interrupted run say, per tensor of the job. */
typedef struct {
    size_t nt, T;
    unsigned char *have;     /* nt: a valid line was found */
    unsigned char *has_proxy; /* nt: the line carries e and c */
    uint64_t *out_hash;      /* nt */
    uint64_t *in_hash;       /* (T + 1) x nt, file-major like the engine's */
    double *e, *c;           /* nt x T */
    size_t njournals;        /* journals of this job that were found */
    size_t nlines;           /* valid lines */
} larv_journal_state;

/* Read "<out>.larv-tmp.journal.0" .. ".<nranks-1>" (local, not collective).
 * names: the job's tensor names (index order). Missing, foreign or corrupt
 * journals are not errors. Returns 0, or -1 when out of memory. */
int larv_journal_load(const char *out, uint64_t job, int nranks, size_t T, size_t nt,
                      const char *const *names, larv_journal_state *st, larv_err *err);
void larv_journal_state_free(larv_journal_state *st);
/* Resume trusts no input by its size and time: re-read the inputs of every
 * journalled tensor i with check[i] set (this rank's; 2: the base only, a
 * tensor copied from it) and compare their hashes with the journal's. files:
 * the T + 1 inputs, base first. Returns 0 when all match, 1 at the first input
 * whose bytes changed (why: the file and the tensor), -1 on a read failure. */
int larv_journal_check_inputs(const larv_journal_state *st, larv_ckpt *const *files,
                              const unsigned char *check, larv_err *why, larv_err *err);

typedef struct larv_journal larv_journal;

/* Open this rank's journal for appending (fresh: truncate it first). */
int larv_journal_open(const char *out, int rank, int nranks, uint64_t job, size_t T, int fresh,
                      larv_journal **j, larv_err *err);
/* Append one tensor's line and flush it. e and c may be NULL (no proxies). */
int larv_journal_add(larv_journal *j, size_t idx, const char *name, uint64_t out_hash,
                     const uint64_t *in_hash, size_t in_stride, const double *e,
                     const double *c, larv_err *err);
void larv_journal_close(larv_journal *j);
/* Remove every "<out>.larv-tmp.journal.*" file (rank 0 calls it). */
void larv_journal_remove_all(const char *out);

#endif
