/* Everything a merge is told: from the command line or a job file. */
#ifndef LARV_MERGE_CFG_H
#define LARV_MERGE_CFG_H

#include <stddef.h>

#include "err.h"
#include "larv.h"
#include "merge.h"

#define LARV_MAX_TASKS 4096
#define LARV_MAX_PATTERNS 64

typedef struct {
    larv_method method;
    char *base;                       /* path */
    char *tasks[LARV_MAX_TASKS];      /* paths */
    size_t ntasks;
    char *out;                        /* path */
    char *report;                     /* JSON report path or NULL */
    double lambda;                    /* NaN = the method's default */
    int have_lambda;
    larv_merge_opts mopts;            /* precision, iso_common, alpha */
    double alpha[LARV_MAX_TASKS];     /* TSV-M per-task alpha when nalpha > 0 */
    size_t nalpha;
    double ties_k;                    /* keep fraction, default 0.2 */
    larv_ties_mode ties_mode;         /* default sum */
    larv_opts larv;                   /* rule and constants */
    char *exclude[LARV_MAX_PATTERNS]; /* fnmatch patterns */
    size_t nexclude;
    char *embed_pat[LARV_MAX_PATTERNS]; /* names matching go to group embed */
    size_t nembed_pat;
    char *head_pat[LARV_MAX_PATTERNS];  /* names matching go to group head */
    size_t nhead_pat;
    char *proxy_pat[LARV_MAX_PATTERNS]; /* LARV proxies from matching block matrices only */
    size_t nproxy_pat;                  /* 0: from every matrix of the block (default) */
    int allow_nonfinite;              /* accept NaN/Inf in task vectors */
    int resume;                       /* --resume */
    int quiet;                        /* --quiet: no progress */
    int readahead;                    /* read the next tensor while computing (default 1) */
    int ranks_per_matrix;             /* team size for ScaLAPACK (0 = automatic) */
    char *job_path;                   /* the job file, when one was given */
} larv_merge_cfg;

void larv_merge_cfg_init(larv_merge_cfg *c);
void larv_merge_cfg_free(larv_merge_cfg *c);

/* Read a YAML job file into cfg (cli/jobfile.c). Keys are the long option
 * names without dashes (examples in jobs/); unknown keys and wrong types are
 * refused naming the key and its line. */
int larv_jobfile_load(const char *path, larv_merge_cfg *cfg, larv_err *err);
/* Same from a memory buffer (for the fuzzer); name is used in messages. */
int larv_jobfile_parse(const char *name, const char *text, size_t len, larv_merge_cfg *cfg,
                       larv_err *err);

#endif
