/* Sweeps: the outputs of one `larv merge` run (template.c).
 *
 * The options flagged LARV_OF_SWEEP in the option table (method, lambda, larv,
 * s_low, s_mid, s_high, ties_k) take a list of values ("0.1,0.2", a job's YAML
 * list). Every combination is one output, named by the --out template: each
 * {NAME} (the option's job key) is replaced by that output's value. */
#ifndef LARV_TEMPLATE_H
#define LARV_TEMPLATE_H

#include <stddef.h>

#include "../src/merge_cfg.h"

#define LARV_MAX_OUTPUTS 1024

/* The outputs of cfg: *outs (malloc'd, *n entries), each a copy of cfg with
 * one value per swept option and its own `out` (malloc'd; every other string
 * is cfg's, which must outlive them). Order: method, larv, s_low, s_mid,
 * s_high, ties_k (TIES outputs only; the others take its first value),
 * lambda, the last varying fastest.
 * Checks (exit 64): an unknown or unclosed placeholder, a list without a
 * template, two outputs with one name, and every output's options
 * (larv_options_validate). Returns 0 or -1 with err. */
int larv_sweep_expand(const larv_merge_cfg *cfg, larv_merge_cfg **outs, size_t *n, larv_err *err);
void larv_sweep_free(larv_merge_cfg *outs, size_t n);

/* How a number is spelled in an output name: the shortest "%.Ng" (N = 1..17)
 * that reads back as the same double ("0.5" for 0.50, 5e-1 and .5; "1e-05"). */
const char *larv_sweep_number(double v, char *buf, size_t len);

/* Fill the template for one output's settings into buf. 0, or -1 with err
 * (an unknown or unclosed placeholder, a name too long). */
int larv_template_fill(const char *tmpl, const larv_merge_cfg *c, char *buf, size_t len,
                       larv_err *err);
/* Whether tmpl has a placeholder ('{'). */
int larv_template_has_placeholder(const char *tmpl);

#endif
