/* Per-tensor merge kernels (no MPI, no I/O). Semantics: ../shared/spec/ALGORITHMS.md.
 *
 * Matrices are ROW-MAJOR m x n, exactly as the tensor of shape (m, n) is stored
 * in a checkpoint and as PyTorch sees it: element (i, j) at [i*n + j]. The
 * kernels implement the spec for that (m, n) tensor (note that Iso-CTS projects
 * out the common LEFT subspace, U of the m-dimensional side, so it is not
 * transpose-symmetric). Task t's matrix is at tau + t*m*n. */
#ifndef LARV_MERGE_H
#define LARV_MERGE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef enum { LARV_TA = 0, LARV_TIES, LARV_TSV, LARV_ISO_C, LARV_ISO_CTS } larv_method;

typedef enum { LARV_TIES_SUM = 0, LARV_TIES_MEAN, LARV_TIES_MAX } larv_ties_mode;

typedef enum { LARV_PREC_DOUBLE = 0, LARV_PREC_SINGLE } larv_precision;

/* Names, index = value, NULL-terminated. */
extern const char *const larv_method_names[];
extern const char *const larv_ties_mode_names[];
extern const char *const larv_precision_names[];
const char *larv_method_name(larv_method m);       /* "ta", "ties", "tsv", "iso-c", "iso-cts" */
int larv_method_parse(const char *s, larv_method *m); /* 0 or -1 */
double larv_method_default_lambda(larv_method m);  /* TA 0.3, TIES 0.3, TSV 1.0, Iso 1.0 */

typedef struct {
    larv_precision precision; /* SVDs in float64 (default) or float32 */
    double iso_common;        /* Iso-CTS common fraction f, default 0.8 */
    const double *alpha;      /* TSV-M per-task alpha (T values) or NULL */
} larv_merge_opts;

void larv_merge_opts_default(larv_merge_opts *o);

/* Everything one matrix parameter needs, computed with shared factorizations:
 *  - if M != NULL: the merged update M (m x n, row-major, NOT multiplied by the
 *    method's lambda) for method TA, TSV, ISO_C or ISO_CTS;
 *  - if e != NULL and c != NULL (and W0 != NULL): LARV's proxies per task,
 *    e[t] = r_eff(W0) / (r_eff(tau_t) + 1e-8) and c[t] = the normalised
 *    commutator conflict of W0 and tau_t (spec, LARV section); an update
 *    that is exactly zero (spec: "Untouched updates") gives e[t] = c[t] = NaN,
 *    which the caller leaves out of the block's means.
 * tau (T matrices) may be overwritten (used as workspace). W0 is the base
 * matrix (m x n). Returns 0, or -1 with a message (e.g. LAPACK failure). */
int larv_merge_matrix(larv_method method, size_t m, size_t n, size_t T, const double *W0,
                      double *tau, double *M, double *e, double *c, const larv_merge_opts *o,
                      larv_err *err);

/* Iso-CTS subspace sizes (spec step 1): common c and per-task d for r = min(m, n),
 * T tasks, common fraction f (round half to even). Choice: if the reference's
 * rounding would make the task-specific total exceed r, d = floor(r/T). */
void larv_iso_cts_sizes(size_t r, size_t T, double f, size_t *c, size_t *d);

/* Vector parameters (and matrices of TA): M = sum_t tau_t (TA) or the mean
 * (TSV, Iso-C, Iso-CTS), accumulated in float64. n elements per task. */
void larv_merge_vector(larv_method method, size_t n, size_t T, const double *tau, double *M);

/* ---- TIES building blocks (tau as float32, computed as fl32(theta_t - theta_0),
 *      then optionally fl32(s * tau) by LARV) ---- */

/* Monotone key of |x| for a float32 (the bit pattern with the sign cleared). */
static inline uint32_t larv_abs_key(float x)
{
    union { float f; uint32_t u; } v = {x};
    return v.u & 0x7fffffffu;
}
/* Add to hist[65536] the count of entries whose key has (key & mask) == want,
 * binned by (key >> shift) & 0xffff. Radix select in two rounds:
 * round 1 shift 16, mask 0; round 2 shift 0, mask 0xffff0000, want = bucket<<16. */
void larv_ties_hist(const float *tau, size_t n, int shift, uint32_t mask, uint32_t want,
                    uint64_t *hist);
/* Keep |tau| >= thr (ties kept), zero the rest. tau is T x n (task t at
 * tau + t*n), thr[t] per task, trimmed in place. */
void larv_ties_trim(float *tau, size_t n, size_t T, const float *thr);
/* FusionBench's majority sign input: sum over the n coordinates of
 * sign(sum_t tau_t) (its resolve_zero_signs takes torch.sign(sign_to_mult.sum()),
 * a count of signs, not a sum of values). */
double larv_ties_sign_count(const float *tau, size_t n, size_t T);
/* Elect and disjoint-merge already trimmed tau (T x n) into M (n, float64).
 * majority_sign (+1 or -1) is used where sum_t tau_t is exactly 0. */
void larv_ties_merge(const float *tau, size_t n, size_t T, larv_ties_mode mode,
                     double majority_sign, double *M);

#endif
