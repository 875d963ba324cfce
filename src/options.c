/* The option table of `larv merge` (see options.h). */
#include "options.h"

#include "hash.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(sizeof(larv_method) == sizeof(int) && sizeof(larv_rule) == sizeof(int) &&
                   sizeof(larv_ties_mode) == sizeof(int) && sizeof(larv_precision) == sizeof(int),
               "CHOICE options are stored as int");

#define OFF(f) offsetof(larv_merge_cfg, f)
#define NOT_IN_CFG SIZE_MAX
#define SCALE_MAX 10.0  /* LARV scales and exponents */
#define LAMBDA_MAX 100.0

static const char *const switch_names[] = {"false", "true", NULL};
const char *const larv_out_dtype_names[] = {"base", "F32", "F16", "BF16", NULL};

const larv_option larv_options[] = {
    /* ---- inputs and outputs */
    {.name = "method", .type = LARV_OT_CHOICE, .flags = LARV_OF_IDENTITY | LARV_OF_SWEEP,
     .sweep = LARV_SW_METHOD, .off = OFF(method),
     .choices = larv_method_names, .method = -1, .report = LARV_REP_HEADER,
     .section = "inputs and outputs (formats by extension: .h5/.hdf5, .safetensors, "
                ".safetensors.index.json;\na directory means its model.safetensors or "
                "model.safetensors.index.json):",
     .arg = "M[,M...]",
     .help = "the merger (see methods above); required. A list (ta,tsv,iso-c)\n"
             "merges with each, reading every tensor once: one output per\n"
             "method ({method} in --out)"},
    {.name = "base", .type = LARV_OT_STRING, .flags = LARV_OF_PATH | LARV_OF_IDENTITY,
     .off = OFF(base), .method = -1, .arg = "PATH",
     .help = "the pretrained checkpoint theta0: a file or a model directory (a\n"
             "full CLIPModel base may hold more tensors than the tasks)"},
    {.name = "task", .alias = "tasks", .type = LARV_OT_LIST,
     .flags = LARV_OF_PATH | LARV_OF_IDENTITY, .off = OFF(tasks), .count_off = OFF(ntasks),
     .max = LARV_MAX_TASKS, .method = -1, .arg = "PATH",
     .help = "a fine-tuned checkpoint, file or model directory (repeat; job\n"
             "key tasks: a list). Float dtypes may differ (F32/F16/BF16)"},
    {.name = "include", .type = LARV_OT_LIST, .flags = LARV_OF_IDENTITY, .off = OFF(include),
     .count_off = OFF(ninclude), .max = LARV_MAX_PATTERNS, .method = -1,
     .report = LARV_REP_PARAMS_SET, .arg = "GLOB",
     .help = "merge and write only the tensors matching GLOB (repeatable,\n"
             "fnmatch syntax, e.g. --include 'vision_model.*'). Without it: the\n"
             "tensors every task has; those only the base has are left out\n"
             "(counted in the summary and the report)"},
    {.name = "keep_base_only", .type = LARV_OT_SWITCH, .flags = LARV_OF_IDENTITY,
     .off = OFF(keep_base_only), .def = "false", .method = -1, .report = LARV_REP_PARAMS,
     .help = "copy the tensors only the base has into OUT instead of leaving\n"
             "them out (e.g. the text tower of a CLIP base with vision tasks)"},
    {.name = "out_dtype", .type = LARV_OT_CHOICE, .flags = LARV_OF_IDENTITY, .off = OFF(out_dtype),
     .choices = larv_out_dtype_names, .def = "base", .method = -1, .report = LARV_REP_PARAMS,
     .arg = "D", .help = "dtype of OUT's float tensors (round to nearest even; default:\n"
             "the base's). Inputs may mix F32/F16/BF16: tau is formed in float64"},
    {.name = "out", .type = LARV_OT_STRING, .flags = LARV_OF_PATH | LARV_OF_IDENTITY,
     .off = OFF(out), .method = -1, .arg = "FILE|DIR/",
     .help = "the merged checkpoint, in the base's dtypes (--out-dtype; written under a\n"
             "temporary name and renamed when complete; never an input, by\n"
             "device and inode; one run at a time: OUT.larv-lock).\n"
             "A model directory when OUT ends in '/', is a directory or has\n"
             "no extension: OUT/model.safetensors (or shards + index, see\n"
             "--out-shard-size), config.json and the tokenizer/preprocessor\n"
             "files (JSON/text, <= 10 MB, never weights) copied from the first\n"
             "task's directory (the --task itself if a directory, or its\n"
             "directory if named model.safetensors[.index.json]; else none),\n"
             "a README.md model card and larv-report.json; staged in\n"
             "OUT.larv-tmp/ and moved into place when complete"},
    {.name = "out_shard_size", .type = LARV_OT_STRING, .flags = LARV_OF_IDENTITY,
     .off = OFF(out_shard_size), .def = "5G", .method = -1, .arg = "SIZE",
     .help = "largest shard of a model directory or .safetensors.index.json\n"
             "output (5G as transformers; K/M/G/T = 1000^n, KiB.. = 1024^n);\n"
             "a model directory smaller than it gets one model.safetensors"},
    {.name = "report", .type = LARV_OT_STRING, .flags = LARV_OF_PATH | LARV_OF_NULLABLE,
     .off = OFF(report), .method = -1, .arg = "FILE.json",
     .help = "JSON: method, parameters, per-layer LARV table, inputs, summary\n"
             "(appears together with OUT, or neither does)"},
    {.name = "job", .type = LARV_OT_STRING, .flags = LARV_OF_CLI, .off = NOT_IN_CFG, .method = -1,
     .arg = "FILE.yaml",
     .help = "read options from a job file (keys: the option names with '_' for\n"
             "'-'; paths relative to it; see jobs/); flags given too override it"},

    /* ---- the method */
    {.name = "lambda", .type = LARV_OT_REAL, .flags = LARV_OF_IDENTITY | LARV_OF_SWEEP,
     .sweep = LARV_SW_LAMBDA, .off = OFF(lambda),
     .lo = -LAMBDA_MAX, .hi = LAMBDA_MAX, .method = -1, .report = LARV_REP_HEADER,
     .section = "method options:", .arg = "X[,X...]",
     .help = "global scale (default: the method's, 0.3 for ta/ties, 1 otherwise);\n"
             "a list sweeps it ({lambda} in --out)"},
    {.name = "precision", .type = LARV_OT_CHOICE, .flags = LARV_OF_IDENTITY,
     .off = OFF(mopts.precision), .choices = larv_precision_names, .def = "double", .method = -1,
     .report = LARV_REP_PARAMS, .arg = "P", .help = "SVDs in float64 or float32"},
    {.name = "ties_k", .type = LARV_OT_REAL,
     .flags = LARV_OF_IDENTITY | LARV_OF_LO_OPEN | LARV_OF_SWEEP, .sweep = LARV_SW_TIES_K,
     .off = OFF(ties_k), .lo = 0, .hi = 1, .def = "0.2", .method = LARV_TIES,
     .report = LARV_REP_PARAMS, .arg = "F[,F...]",
     .help = "TIES keep fraction; a list sweeps it ({ties_k}; each k runs\n"
             "its own selection)"},
    {.name = "ties_merge", .type = LARV_OT_CHOICE, .flags = LARV_OF_IDENTITY,
     .off = OFF(ties_mode), .choices = larv_ties_mode_names, .def = "sum", .method = LARV_TIES,
     .report = LARV_REP_PARAMS, .arg = "M", .help = "TIES disjoint merge"},
    {.name = "iso_common", .type = LARV_OT_REAL, .flags = LARV_OF_IDENTITY,
     .off = OFF(mopts.iso_common), .lo = 0, .hi = 1, .def = "0.8", .method = LARV_ISO_CTS,
     .report = LARV_REP_PARAMS, .arg = "F", .help = "Iso-CTS common-subspace fraction"},
    {.name = "alpha", .type = LARV_OT_REALS, .flags = LARV_OF_IDENTITY, .off = OFF(alpha),
     .count_off = OFF(nalpha), .max = LARV_MAX_TASKS, .lo = 0, .hi = LAMBDA_MAX,
     .method = LARV_TSV, .report = LARV_REP_PARAMS_SET, .arg = "A1,A2,...",
     .help = "TSV-M per-task scales (one per task; default 1 each)"},
    {.name = "exclude", .type = LARV_OT_LIST, .flags = LARV_OF_IDENTITY, .off = OFF(exclude),
     .count_off = OFF(nexclude), .max = LARV_MAX_PATTERNS, .method = -1,
     .report = LARV_REP_PARAMS, .arg = "GLOB",
     .help = "treat matching tensors as vector parameters (TIES: keep the base);\n"
             "repeatable, fnmatch syntax, e.g. --exclude '*position_embedding*'"},

    /* ---- LARV; the report's "larv" object keeps this order */
    {.name = "larv", .type = LARV_OT_CHOICE,
     .flags = LARV_OF_IDENTITY | LARV_OF_LARV | LARV_OF_SWEEP, .sweep = LARV_SW_LARV,
     .off = OFF(larv.rule), .choices = larv_rule_names, .def = "tiered3", .method = -1,
     .report = LARV_REP_LARV, .report_key = "rule",
     .section = "LARV (the layer-wise veneer):", .arg = "RULE[,RULE...]",
     .help = "the rule (job: larv: RULE, or rule: in a larv: mapping); a list\n"
             "sweeps it ({larv}), the proxies are computed once"},
    {.name = "eta", .type = LARV_OT_REAL, .flags = LARV_OF_IDENTITY | LARV_OF_LARV,
     .off = OFF(larv.eta), .lo = 0, .hi = SCALE_MAX, .def = "1", .method = -1,
     .report = LARV_REP_LARV, .arg = "X", .help = "score exponent of the effective-rank contrast"},
    {.name = "rho", .type = LARV_OT_REAL, .flags = LARV_OF_IDENTITY | LARV_OF_LARV,
     .off = OFF(larv.rho), .lo = 0, .hi = SCALE_MAX, .def = "0.5", .method = -1,
     .report = LARV_REP_LARV, .arg = "X", .help = "score exponent of the depth prior"},
    {.name = "gamma", .type = LARV_OT_REAL, .flags = LARV_OF_IDENTITY | LARV_OF_LARV,
     .off = OFF(larv.gamma), .lo = 0, .hi = 100, .def = "3", .method = -1,
     .report = LARV_REP_LARV, .arg = "X", .help = "slope of the continuous rule"},
    {.name = "s_low", .type = LARV_OT_REAL,
     .flags = LARV_OF_IDENTITY | LARV_OF_LARV | LARV_OF_SWEEP, .sweep = LARV_SW_S_LOW,
     .off = OFF(larv.s_low), .lo = 0, .hi = SCALE_MAX, .def = "0.5", .method = -1,
     .report = LARV_REP_LARV, .arg = "X[,X...]",
     .help = "scale of the low tier (s_low <= s_mid <= s_high); the three tier\n"
             "scales take lists too ({s_low}, {s_mid}, {s_high})"},
    {.name = "s_mid", .type = LARV_OT_REAL,
     .flags = LARV_OF_IDENTITY | LARV_OF_LARV | LARV_OF_SWEEP, .sweep = LARV_SW_S_MID,
     .off = OFF(larv.s_mid), .lo = 0, .hi = SCALE_MAX, .def = "1", .method = -1,
     .report = LARV_REP_LARV, .arg = "X[,X...]", .help = "scale of the middle tier (tiered3)"},
    {.name = "s_high", .type = LARV_OT_REAL,
     .flags = LARV_OF_IDENTITY | LARV_OF_LARV | LARV_OF_SWEEP, .sweep = LARV_SW_S_HIGH,
     .off = OFF(larv.s_high), .lo = 0, .hi = SCALE_MAX, .def = "1.2", .method = -1,
     .report = LARV_REP_LARV, .arg = "X[,X...]", .help = "scale of the high tier"},
    {.name = "embed_scale", .type = LARV_OT_REAL, .flags = LARV_OF_IDENTITY | LARV_OF_LARV,
     .off = OFF(larv.embed_scale), .lo = 0, .hi = SCALE_MAX, .def = "1", .method = -1,
     .report = LARV_REP_LARV, .arg = "X", .help = "scale of the group embed (outside blocks)"},
    {.name = "head_scale", .type = LARV_OT_REAL, .flags = LARV_OF_IDENTITY | LARV_OF_LARV,
     .off = OFF(larv.head_scale), .lo = 0, .hi = SCALE_MAX, .def = "1", .method = -1,
     .report = LARV_REP_LARV, .arg = "X", .help = "scale of the group head (outside blocks)"},
    {.name = "embed_pattern", .alias = "embed_patterns", .type = LARV_OT_LIST,
     .flags = LARV_OF_IDENTITY, .off = OFF(embed_pat), .count_off = OFF(nembed_pat),
     .max = LARV_MAX_PATTERNS, .method = -1, .report = LARV_REP_PARAMS_SET, .arg = "GLOB",
     .help = "put matching names (outside blocks) in group embed (repeatable); "
             "STACK=GLOB also puts them into that stack (larv inspect lists the stacks)"},
    {.name = "head_pattern", .alias = "head_patterns", .type = LARV_OT_LIST,
     .flags = LARV_OF_IDENTITY, .off = OFF(head_pat), .count_off = OFF(nhead_pat),
     .max = LARV_MAX_PATTERNS, .method = -1, .report = LARV_REP_PARAMS_SET, .arg = "GLOB",
     .help = "put matching names (outside blocks) in group head (repeatable); "
             "STACK=GLOB also puts them into that stack"},
    {.name = "larv_proxy", .type = LARV_OT_LIST, .flags = LARV_OF_IDENTITY, .off = OFF(proxy_pat),
     .count_off = OFF(nproxy_pat), .max = LARV_MAX_PATTERNS, .method = -1,
     .report = LARV_REP_PARAMS, .arg = "GLOB",
     .help = "compute the proxies from the block matrices matching GLOB only\n"
             "(repeatable; all matrices are still scaled). Default: the\n"
             "block's first MLP matrix (mlp.fc1, mlp.c_fc, intermediate.dense,\n"
             "DenseReluDense.wi), every matrix of a block without one;\n"
             "--larv-proxy '*' takes every matrix (6x the cost on a ViT).\n"
             "Blocks whose task vectors are all zero (frozen in fine-tuning)\n"
             "are left out of the scores and keep scale 1"},
    {.name = "larv_cache", .type = LARV_OT_STRING, .flags = LARV_OF_PATH | LARV_OF_NULLABLE,
     .off = OFF(larv_cache), .method = -1, .arg = "FILE",
     .help = "keep LARV's per-matrix proxies in FILE and reuse them in later\n"
             "merges of the same pool with any method, lambda or rule (none\n"
             "by default). Checked, never trusted: another pool, other\n"
             "proxy options or precision, a changed input (by its bytes'\n"
             "hashes) or a damaged file: a warning, and they are computed\n"
             "again; the result is the same bytes either way"},

    /* ---- how it runs */
    {.name = "allow_nonfinite", .type = LARV_OT_SWITCH, .flags = LARV_OF_IDENTITY,
     .off = OFF(allow_nonfinite), .def = "false", .method = -1, .report = LARV_REP_PARAMS,
     .section = "other:", .help = "accept NaN/Inf in the inputs (elementwise merges only) and\n"
             "write a result that is not finite in the output dtype\n"
             "(both refused by default, naming the tensor: exit 65)"},
    {.name = "resume", .type = LARV_OT_SWITCH, .off = OFF(resume), .def = "false", .method = -1,
     .help = "finish a killed run of the same job (same arguments, inputs and\n"
             "rank count): the tensors it wrote to OUT.larv-tmp, re-read and\n"
             "verified against its journals OUT.larv-tmp.journal.<rank>, are\n"
             "kept, the rest is written; the result is the same bit for bit.\n"
             "Without --resume a leftover OUT.larv-tmp is replaced. A run that\n"
             "fails (rather than being killed) leaves neither behind"},
    {.name = "ranks_per_matrix", .type = LARV_OT_INT, .flags = LARV_OF_IDENTITY,
     .off = OFF(ranks_per_matrix), .lo = 0, .hi = 4096, .def = "0", .method = -1, .arg = "G",
     .help = "ranks that share one matrix: its eigenproblems run on a ScaLAPACK\n"
             "grid of G ranks (0 = automatic, only when ranks outnumber\n"
             "the matrices; 1 = never)"},
    {.name = "readahead", .type = LARV_OT_SWITCH, .flags = LARV_OF_NEGATED, .off = OFF(readahead),
     .def = "true", .method = -1,
     .help = "read each tensor only when it is needed (default: a helper\n"
             "thread reads the next tensors of safetensors inputs while this\n"
             "one is computed; same result, more memory: a ring of ~1.1 x the\n"
             "largest tensor per input). Off saves that memory, and time for\n"
             "ta/ties on a pool the page cache already holds"},
    {.name = "quiet", .type = LARV_OT_SWITCH, .off = OFF(quiet), .def = "false", .method = -1,
     .help = "no progress lines"},
    {.name = "help", .type = LARV_OT_SWITCH, .flags = LARV_OF_CLI, .off = NOT_IN_CFG,
     .method = -1, .help = "this text"},
};
const size_t larv_noptions = sizeof larv_options / sizeof larv_options[0];

const larv_option *larv_option_find(const char *key)
{
    for (size_t i = 0; i < larv_noptions; i++) {
        const larv_option *o = &larv_options[i];
        if (!(o->flags & LARV_OF_CLI) &&
            (strcmp(o->name, key) == 0 || (o->alias && strcmp(o->alias, key) == 0)))
            return o;
    }
    return NULL;
}

const char *larv_option_flag(const larv_option *o, char *buf, size_t len)
{
    snprintf(buf, len, "--%s%s", (o->flags & LARV_OF_NEGATED) ? "no-" : "", o->name);
    for (char *p = buf + 2; *p; p++)
        if (*p == '_')
            *p = '-';
    return buf;
}

static void fmt_num(char *buf, size_t len, double v)
{
    snprintf(buf, len, "%.17g", v);
}

const char *larv_option_range(const larv_option *o, char *buf, size_t len)
{
    char lo[32], hi[32];
    fmt_num(lo, sizeof lo, o->lo);
    fmt_num(hi, sizeof hi, o->hi);
    buf[0] = '\0';
    switch (o->type) {
    case LARV_OT_REAL:
    case LARV_OT_REALS:
        snprintf(buf, len, "%s%s, %s]", (o->flags & LARV_OF_LO_OPEN) ? "(" : "[", lo, hi);
        break;
    case LARV_OT_INT: snprintf(buf, len, "%s .. %s", lo, hi); break;
    case LARV_OT_CHOICE:
        for (const char *const *n = o->choices; *n; n++) {
            if (n != o->choices)
                strncat(buf, " | ", len - strlen(buf) - 1);
            strncat(buf, *n, len - strlen(buf) - 1);
        }
        break;
    default: break;
    }
    return buf;
}

#define FAIL(...) (snprintf(msg, len, __VA_ARGS__), -1)

static int in_range(const larv_option *o, double v)
{
    return ((o->flags & LARV_OF_LO_OPEN) ? v > o->lo : v >= o->lo) && v <= o->hi;
}

/* A finite decimal number in the option's range. Underflow to a subnormal or
 * zero is a number (strtod's ERANGE there is not an error); overflow is not. */
static int parse_real(const larv_option *o, const char *text, double *out, char *msg, size_t len)
{
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (end == text || *end || !isfinite(v))
        return FAIL("'%.60s' is not a finite number", text);
    if (!in_range(o, v)) {
        char r[64];
        return FAIL("%.60s is not in %s", text, larv_option_range(o, r, sizeof r));
    }
    *out = v;
    return 0;
}

int larv_parse_int(const char *text, long lo, long hi, int *out, char *msg, size_t len)
{
    const char *p = text + (text[0] == '-' || text[0] == '+');
    int digits = *p != '\0';
    for (const char *q = p; *q; q++)
        digits &= *q >= '0' && *q <= '9';
    errno = 0;
    long v = digits ? strtol(text, NULL, 10) : 0;
    if (!digits || errno)
        return FAIL("'%.60s' is not a whole number", text);
    if (v < lo || v > hi)
        return FAIL("%.60s is not in %ld .. %ld", text, lo, hi);
    *out = (int)v;
    return 0;
}

static int parse_choice(const char *const *names, const char *text, int *out)
{
    for (int i = 0; names[i]; i++)
        if (strcmp(names[i], text) == 0) {
            *out = i;
            return 0;
        }
    return -1;
}

int larv_option_set(const larv_option *o, larv_merge_cfg *c, const char *text, char *msg,
                    size_t len)
{
    if (larv_option_set_value(o, c, text, msg, len))
        return -1;
    if (!(o->flags & LARV_OF_SWEEP))
        return 0;
    larv_sweep_vals *v = &c->sweep[o->sweep];
    if (v->n >= LARV_MAX_SWEEP)
        return FAIL("more than %d values", LARV_MAX_SWEEP);
    if (!(v->text[v->n] = strdup(text)))
        return FAIL("out of memory");
    v->n++;
    return 0;
}

int larv_option_set_value(const larv_option *o, larv_merge_cfg *c, const char *text, char *msg,
                          size_t len)
{
    if (o->off == NOT_IN_CFG)
        return FAIL("handled by the command");
    if (!text[0] && o->type != LARV_OT_SWITCH)
        return FAIL("empty value");
    switch (o->type) {
    case LARV_OT_SWITCH: {
        int v;
        if (parse_choice(switch_names, text, &v))
            return FAIL("expected true or false, got '%.60s'", text);
        *LARV_OPT_PTR(c, o, int) = v;
        return 0;
    }
    case LARV_OT_STRING: {
        char *s = strdup(text), **dst = LARV_OPT_PTR(c, o, char *);
        if (!s)
            return FAIL("out of memory");
        free(*dst);
        *dst = s;
        return 0;
    }
    case LARV_OT_LIST: {
        size_t *n = (size_t *)((char *)c + o->count_off);
        if (*n >= o->max)
            return FAIL("more than %zu entries", o->max);
        char *s = strdup(text);
        if (!s)
            return FAIL("out of memory");
        LARV_OPT_PTR(c, o, char *)[(*n)++] = s;
        return 0;
    }
    case LARV_OT_REAL: return parse_real(o, text, LARV_OPT_PTR(c, o, double), msg, len);
    case LARV_OT_REALS: {
        size_t *n = (size_t *)((char *)c + o->count_off);
        if (*n >= o->max)
            return FAIL("more than %zu entries", o->max);
        if (parse_real(o, text, &LARV_OPT_PTR(c, o, double)[*n], msg, len))
            return -1;
        (*n)++;
        return 0;
    }
    case LARV_OT_INT:
        return larv_parse_int(text, (long)o->lo, (long)o->hi, LARV_OPT_PTR(c, o, int), msg, len);
    case LARV_OT_CHOICE: {
        int v;
        if (parse_choice(o->choices, text, &v)) {
            char r[128];
            return FAIL("'%.60s' is not one of %s", text, larv_option_range(o, r, sizeof r));
        }
        *LARV_OPT_PTR(c, o, int) = v;
        return 0;
    }
    }
    return FAIL("internal: unknown option type");
}

void larv_option_clear(const larv_option *o, larv_merge_cfg *c)
{
    if (o->flags & LARV_OF_SWEEP)
        larv_str_list_free(c->sweep[o->sweep].text, &c->sweep[o->sweep].n);
    if (o->type == LARV_OT_LIST)
        larv_str_list_free(LARV_OPT_PTR(c, o, char *), (size_t *)((char *)c + o->count_off));
    else if (o->type == LARV_OT_REALS)
        *(size_t *)((char *)c + o->count_off) = 0;
}

int larv_option_is_set(const larv_option *o, const larv_merge_cfg *c)
{
    switch (o->type) {
    case LARV_OT_LIST:
    case LARV_OT_REALS: return LARV_OPT_COUNT(c, o) > 0;
    case LARV_OT_STRING: return LARV_OPT_STRS(c, o)[0] != NULL;
    case LARV_OT_REAL: return !isnan(*LARV_OPT_CPTR(c, o, double));
    default: return 1;
    }
}

static uint64_t hash_str(const char *v, uint64_t h)
{
    size_t n = v ? strlen(v) + 1 : 0; /* NULL and "" differ */
    h = larv_hash64(&n, sizeof n, h);
    return v ? larv_hash64(v, n, h) : h;
}

uint64_t larv_options_identity(const larv_merge_cfg *c)
{
    uint64_t h = 0x6c6172766f707473ull;
    for (size_t i = 0; i < larv_noptions; i++) {
        const larv_option *o = &larv_options[i];
        if (!(o->flags & LARV_OF_IDENTITY))
            continue;
        h = hash_str(o->name, h);
        switch (o->type) {
        case LARV_OT_SWITCH:
        case LARV_OT_INT:
        case LARV_OT_CHOICE: h = larv_hash64(LARV_OPT_CPTR(c, o, int), sizeof(int), h); break;
        case LARV_OT_REAL: h = larv_hash64(LARV_OPT_CPTR(c, o, double), sizeof(double), h); break;
        case LARV_OT_STRING: h = hash_str(LARV_OPT_STRS(c, o)[0], h); break;
        case LARV_OT_LIST:
            h = larv_hash64(&LARV_OPT_COUNT(c, o), sizeof(size_t), h);
            for (size_t k = 0; k < LARV_OPT_COUNT(c, o); k++)
                h = hash_str(LARV_OPT_STRS(c, o)[k], h);
            break;
        case LARV_OT_REALS:
            h = larv_hash64(&LARV_OPT_COUNT(c, o), sizeof(size_t), h);
            h = larv_hash64(LARV_OPT_CPTR(c, o, double), LARV_OPT_COUNT(c, o) * sizeof(double), h);
            break;
        }
    }
    return h;
}

int larv_options_validate(const larv_merge_cfg *c, larv_err *err)
{
    const larv_opts *l = &c->larv;
    if (!(l->s_low <= l->s_mid && l->s_mid <= l->s_high))
        return larv_fail(err, LARV_EXIT_USAGE,
                         "the LARV tier scales must satisfy s_low <= s_mid <= s_high (got %g, "
                         "%g, %g)",
                         l->s_low, l->s_mid, l->s_high);
    char f[64];
    for (size_t i = 0; i < larv_noptions; i++) {
        const larv_option *o = &larv_options[i];
        if (o->method >= 0 && (o->type == LARV_OT_LIST || o->type == LARV_OT_REALS) &&
            larv_option_is_set(o, c) && (int)c->method != o->method)
            return larv_fail(err, LARV_EXIT_USAGE, "%s applies to --method %s only",
                             larv_option_flag(o, f, sizeof f), larv_method_name(o->method));
    }
    if (c->nalpha && c->nalpha != c->ntasks)
        return larv_fail(err, LARV_EXIT_USAGE, "--alpha has %zu values for %zu tasks", c->nalpha,
                         c->ntasks);
    return 0;
}

void larv_options_help(FILE *f)
{
    enum { COL = 24 };
    for (size_t i = 0; i < larv_noptions; i++) {
        const larv_option *o = &larv_options[i];
        if (o->section)
            fprintf(f, "%s%s\n", i ? "\n" : "", o->section);
        char flag[64], lead[96];
        larv_option_flag(o, flag, sizeof flag);
        int n = snprintf(lead, sizeof lead, "  %s%s%s", flag, o->arg ? " " : "",
                         o->arg ? o->arg : "");
        fputs(lead, f);
        const char *h = o->help;
        int first = 1;
        while (*h) {
            const char *nl = strchr(h, '\n');
            int w = nl ? (int)(nl - h) : (int)strlen(h);
            if (first && n < COL - 1)
                fprintf(f, "%*s%.*s\n", COL - n, "", w, h);
            else
                fprintf(f, "%s%*s%.*s\n", first ? "\n" : "", COL, "", w, h);
            first = 0;
            h += w + (nl != NULL);
        }
        char r[128], extra[256] = "";
        larv_option_range(o, r, sizeof r);
        if (r[0])
            snprintf(extra, sizeof extra, "%s %s", o->type == LARV_OT_CHOICE ? "one of" : "in", r);
        if (o->def && o->type != LARV_OT_SWITCH) {
            size_t k = strlen(extra);
            snprintf(extra + k, sizeof extra - k, "%sdefault %s", k ? "; " : "", o->def);
        }
        if (extra[0])
            fprintf(f, "%*s(%s)\n", COL, "", extra);
    }
}
