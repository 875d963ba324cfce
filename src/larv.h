/* LARV: layer-wise adaptive rescaling veneer (spec: LARV section). No MPI. */
#ifndef LARV_LARV_H
#define LARV_LARV_H

#include <stddef.h>

#include "err.h"

typedef enum {
    LARV_RULE_OFF = 0,
    LARV_RULE_TIERED2,
    LARV_RULE_TIERED3,
    LARV_RULE_CONTINUOUS,
    LARV_RULE_DEPTH
} larv_rule;

typedef struct {
    larv_rule rule;       /* default TIERED3 */
    double eta, rho;      /* score exponents: 1, 0.5 */
    double gamma;         /* continuous rule: 3 */
    double s_low, s_mid, s_high; /* 0.5, 1.0, 1.2 */
    double embed_scale, head_scale; /* 1.0, 1.0 */
} larv_opts;

void larv_opts_default(larv_opts *o);
extern const char *const larv_rule_names[]; /* index = value, NULL-terminated */
const char *larv_rule_name(larv_rule r); /* "off", "tiered2", "tiered3", "continuous", "depth" */
int larv_rule_parse(const char *s, larv_rule *r);

/* r_eff = exp(-sum p log p), p_j = sigma_j^2 / sum sigma^2, from the squared
 * singular values (any order; tiny negative values from a Gram eigensolver are
 * treated as 0). A zero matrix has r_eff = 0. */
double larv_effective_rank_sq(const double *sigma_sq, size_t r);

/* Linear-interpolated quantile of v (n values, need not be sorted), as
 * numpy.quantile / torch.quantile with the default method. */
double larv_quantile(const double *v, size_t n, double q);

/* Scores and scales for L blocks from the per-block mean proxies e[l], c[l].
 * chat, score and scale are outputs of L values each (chat may be NULL).
 * For LARV_RULE_OFF every scale is 1. A block with e[l] NaN is untouched (its
 * task vectors are zero, spec "Untouched updates"): it is left out of the
 * standardisation of c and the quantiles, its chat and score are NaN and its
 * scale 1. */
void larv_scales(const larv_opts *o, size_t L, const double *e, const double *c, double *chat,
                 double *score, double *scale);

#endif
