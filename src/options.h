/* The options of `larv merge`, each declared once (options.c).
 *
 * One entry per option: its name, type, valid range, default, job key, help
 * text, and whether it enters the resume identity and the report. The table
 * drives the command line (cli/cmd_merge.c), the job file (cli/jobfile.c),
 * `larv merge --help`, validation, the report's params and the provenance
 * (io/report.c) and the resume identity (mpi/journal.c).
 *
 * Names: the job key is the entry's name; the flag is --NAME with '-' for '_'
 * (--no-NAME for a switch that is on by default). `alias` is an older job key
 * that is still accepted (tasks, embed_patterns, head_patterns). The LARV
 * constants may also be given in a job's `larv:` mapping (rule: for larv). */
#ifndef LARV_OPTIONS_H
#define LARV_OPTIONS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "merge_cfg.h"

typedef enum {
    LARV_OT_SWITCH, /* int 0/1; a flag without a value; job: true/false */
    LARV_OT_STRING, /* char * */
    LARV_OT_LIST,   /* char *[max] + size_t count: a repeated flag, a job list */
    LARV_OT_REAL,   /* double in [lo, hi] */
    LARV_OT_REALS,  /* double[max] + size_t count: "a,b,c", a job list */
    LARV_OT_INT,    /* int in [lo, hi], decimal digits only */
    LARV_OT_CHOICE  /* an enum: the index of its name in choices */
} larv_opt_type;

enum {
    LARV_OF_PATH = 1u << 0,     /* a path: a job's is relative to the job file */
    LARV_OF_IDENTITY = 1u << 1, /* enters the resume identity */
    LARV_OF_CLI = 1u << 2,      /* command line only: no job key, handled by the command */
    LARV_OF_LO_OPEN = 1u << 3,  /* lo itself is outside the range */
    LARV_OF_NEGATED = 1u << 4,  /* a switch on by default: the flag is --no-NAME */
    LARV_OF_NULLABLE = 1u << 5, /* a job may set it to null (~): unset */
    LARV_OF_LARV = 1u << 6,     /* also a key of a job's `larv:` mapping */
    LARV_OF_SWEEP = 1u << 7     /* a list allowed: "a,b,c" or a job list sweeps it (one
                                 * output per value; slot `sweep`, cli/template.h) */
};

typedef enum {
    LARV_REP_NONE,        /* not in the report */
    LARV_REP_HEADER,      /* written by the report itself ("method", "lambda") */
    LARV_REP_PARAMS,      /* "params" (for `method` only, when that is >= 0) */
    LARV_REP_PARAMS_SET,  /* "params", when given (a non-empty list) */
    LARV_REP_LARV         /* the "larv" object */
} larv_opt_report;

typedef struct {
    const char *name;       /* the job key */
    const char *alias;      /* an older job key still accepted, or NULL */
    larv_opt_type type;
    unsigned flags;         /* LARV_OF_* */
    size_t off;             /* the value in larv_merge_cfg */
    size_t count_off;       /* LIST, REALS: its size_t count */
    size_t max;             /* LIST, REALS: most items */
    double lo, hi;          /* REAL, REALS, INT: the valid range */
    const char *const *choices; /* CHOICE: names (index = value), NULL-terminated */
    const char *def;        /* default, as text (NULL: none; set by larv_merge_cfg_init) */
    int method;             /* >= 0: a parameter of this larv_method only */
    larv_opt_report report;
    const char *report_key; /* its key in the report (NULL: name) */
    const char *section;    /* --help: the section this entry opens, or NULL */
    const char *arg;        /* --help: the value's placeholder ("X", "FILE") */
    const char *help;       /* --help: lines after the first are indented */
    int sweep;              /* LARV_OF_SWEEP: its slot in larv_merge_cfg.sweep (LARV_SW_*) */
} larv_option;

extern const larv_option larv_options[];
extern const size_t larv_noptions;

/* The entry with this job key (name or alias), or NULL. */
const larv_option *larv_option_find(const char *key);
/* The command-line flag: "--s-low", "--no-readahead". */
const char *larv_option_flag(const larv_option *o, char *buf, size_t len);

/* Set the option from text (the command line's argument or a job's scalar;
 * a switch takes "true" or "false"), or for LIST/REALS append one item.
 * Checks type and range. Returns 0, or -1 with the reason in msg, e.g.
 * "-1 is not in [0, 10]" (no option name: the caller prefixes it). */
int larv_option_set(const larv_option *o, larv_merge_cfg *c, const char *text, char *msg,
                    size_t len);
/* The same without recording the value in a sweepable option's list (the
 * defaults; one output's settings, cli/template.c). */
int larv_option_set_value(const larv_option *o, larv_merge_cfg *c, const char *text, char *msg,
                          size_t len);
/* A whole number in lo .. hi: decimal digits with an optional sign, nothing
 * else ("2x", "2.0", "" are refused). 0, or -1 with the reason in msg. */
int larv_parse_int(const char *text, long lo, long hi, int *out, char *msg, size_t len);
/* Empty a LIST or REALS option, or a sweepable option's list of values (a
 * job's list replaces, so does the command line's). */
void larv_option_clear(const larv_option *o, larv_merge_cfg *c);
/* "[0, 10]", "(0, 1]", "0 .. 4096", "ta | ties | ...", "" for strings. */
const char *larv_option_range(const larv_option *o, char *buf, size_t len);
/* Whether the option is set to something other than empty (lists) / given. */
int larv_option_is_set(const larv_option *o, const larv_merge_cfg *c);

/* Accessors (the type must match). */
#define LARV_OPT_PTR(c, o, T) ((T *)((char *)(c) + (o)->off))
#define LARV_OPT_CPTR(c, o, T) ((const T *)((const char *)(c) + (o)->off))
#define LARV_OPT_STRS(c, o) ((char *const *)((const char *)(c) + (o)->off)) /* LIST, STRING */
#define LARV_OPT_COUNT(c, o) (*(const size_t *)((const char *)(c) + (o)->count_off))

/* Checks across options: s_low <= s_mid <= s_high, --alpha for tsv only and
 * one per task. Returns 0 or -1 with err (LARV_EXIT_USAGE). */
int larv_options_validate(const larv_merge_cfg *c, larv_err *err);

/* A hash of every option marked LARV_OF_IDENTITY, by name and value: the
 * options' part of the resume identity (mpi/journal.c). */
uint64_t larv_options_identity(const larv_merge_cfg *c);

/* The options part of `larv merge --help`, generated from the table. */
void larv_options_help(FILE *f);

#endif
