/* Everything a merge is told (from the command line or a job file) and what it
 * reports back: plain structs, no MPI. */
#ifndef LARV_MERGE_CFG_H
#define LARV_MERGE_CFG_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "larv.h"
#include "layers.h"
#include "merge.h"

#define LARV_MAX_TASKS 4096
#define LARV_MAX_PATTERNS 64
#define LARV_MAX_SWEEP 64 /* values of one swept option (--lambda 0.1,0.2,...) */

/* The options that take a list of values in one run (a sweep; src/options.c
 * flags them LARV_OF_SWEEP; cli/template.c expands them into outputs). */
enum {
    LARV_SW_METHOD,
    LARV_SW_LAMBDA,
    LARV_SW_LARV,
    LARV_SW_S_LOW,
    LARV_SW_S_MID,
    LARV_SW_S_HIGH,
    LARV_SW_TIES_K,
    LARV_NSWEEP
};
typedef struct {
    char *text[LARV_MAX_SWEEP]; /* each value as given (checked by the option table) */
    size_t n;                   /* 0: not given (the scalar's default stands) */
} larv_sweep_vals;

typedef struct {
    larv_method method;
    char *base;                       /* path */
    char *tasks[LARV_MAX_TASKS];      /* paths */
    size_t ntasks;
    char *out;                        /* path */
    char *report;                     /* JSON report path or NULL */
    char *out_shard_size;             /* --out-shard-size (text, io/modeldir.h) */
    char *out_dir;                    /* a model directory output (cli/outdir.c) or NULL;
                                         then out is the weights' path inside its stage */
    double lambda;                    /* NaN = the method's default */
    larv_merge_opts mopts;            /* precision, iso_common, alpha */
    double alpha[LARV_MAX_TASKS];     /* TSV-M per-task alpha when nalpha > 0 */
    size_t nalpha;
    double ties_k;                    /* keep fraction, default 0.2 */
    larv_ties_mode ties_mode;         /* default sum */
    larv_opts larv;                   /* rule and constants */
    char *include[LARV_MAX_PATTERNS]; /* merge only matching tensors (none: all) */
    size_t ninclude;
    int keep_base_only;               /* copy tensors only the base has */
    int out_dtype;                    /* index in larv_out_dtype_names: 0 = the base's */
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
    char *larv_cache;                 /* --larv-cache: LARV's proxy cache file, or NULL */
    larv_sweep_vals sweep[LARV_NSWEEP]; /* the values given to each sweepable option */
} larv_merge_cfg;

/* --out-dtype's choices: "base", then dtype names (larv_dtype_parse). */
extern const char *const larv_out_dtype_names[];

/* The defaults of the option table (src/options.c); method unset (-1). */
void larv_merge_cfg_init(larv_merge_cfg *c);
void larv_merge_cfg_free(larv_merge_cfg *c);
/* Free v[0 .. *n) and set *n = 0 (the cfg's lists). */
void larv_str_list_free(char **v, size_t *n);

/* The passes of a merge (larv_merge_result.pass_seconds). */
enum {
    LARV_PASS_ANALYSIS,       /* LARV's proxies (and the SVD mergers' M) */
    LARV_PASS_TIES_THRESHOLD, /* TIES: the global k-th largest |tau| per task */
    LARV_PASS_TIES_SIGN,      /* TIES: the majority sign */
    LARV_PASS_WRITE,          /* merge and write */
    LARV_NPASSES
};

/* What a merge reports. Layer groups are indexed as grouping says: stack by
 * stack, embed, blocks 0 .. L_stack-1, head; with one stack 0 = embed,
 * 1 .. L = blocks 0 .. L-1, L+1 = head. */
typedef struct {
    long L;              /* number of blocks (over all stacks) */
    size_t ngroups;      /* sum over stacks of L_stack + 2 (one stack: L + 2) */
    larv_grouping grouping; /* the stacks; gstack/gblock name each group */
    double *e, *c;       /* mean proxies per group (NaN where none: embed, head, LARV off) */
    double *chat, *score, *scale;
    int *nmatrix;        /* matrix parameters per group */
    int *nproxy;         /* of which LARV's proxies are computed from */
    double lambda;       /* the lambda used */
    double seconds;      /* wall time of the merge */
    double pass_seconds[LARV_NPASSES]; /* wall time per pass */
    uint64_t bytes_read, bytes_written; /* over all ranks */
    uint64_t bytes_read_ahead;          /* of bytes_read: by the read-ahead thread */
    int nranks;
    long *peak_rss_kb;   /* per rank */
    size_t T;
    float *ties_thr;     /* per task (TIES) */
    double ties_majority;
    uint64_t *input_digest; /* T + 1: base then tasks (combined per-tensor hashes) */
    uint64_t *input_bytes;  /* T + 1 */
    size_t ntensors, nmatrix_total;
    uint64_t nparams;
    double imbalance;    /* max/mean estimated cost per rank (per team) */
    int team_size;       /* ranks sharing one matrix (ScaLAPACK grid); 1 = none */
    /* the tensor selection (mpi/pool.h) */
    size_t n_base_only;  /* tensors only the base has (after --include) */
    size_t n_base_only_kept; /* of which copied (--keep-base-only) */
    size_t n_not_included; /* tensors of the base that --include left out */
    char **input_file;   /* T + 1: the file read for each input (a directory's weights file) */
    int proxy_cache;     /* --larv-cache: 1 proxies computed, 2 from the cache (0: none) */
    char proxy_cache_why[600]; /* 1: why not from the cache */
} larv_merge_result;

void larv_merge_result_free(larv_merge_result *r);

#endif
