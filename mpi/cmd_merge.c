/* larv merge: the command line, the job file, checks, and the final report. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../io/report.h"
#include "../src/layers.h"
#include "cmd.h"
#include "merge_run.h"

static const char help[] =
    "usage: larv merge --method M --base FILE --task FILE [--task FILE ...] --out FILE [options]\n"
    "       larv merge --job JOB.yaml [options that override the job]\n"
    "       mpirun -np N larv merge ...   |   srun larv merge ...\n"
    "\n"
    "Merges T fine-tuned checkpoints of one base model into one model,\n"
    "theta = theta0 + lambda * M(s_l * tau_1 .. s_l * tau_T), tau_t = theta_t - theta0,\n"
    "where M is the merger and s_l LARV's per-layer scale (computed from the weights alone).\n"
    "\n"
    "methods (--method):\n"
    "  ta       Task Arithmetic: M = sum of task vectors                  (lambda 0.3)\n"
    "  ties     TIES: global top-k trim, sign election, disjoint merge     (lambda 0.3)\n"
    "  tsv      TSV-M: per-task top singular vectors, whitened             (lambda 1.0)\n"
    "  iso-c    Iso-C: spectrum of the sum flattened to its mean           (lambda 1.0)\n"
    "  iso-cts  Iso-CTS: common + task-specific subspaces, isotropic       (lambda 1.0)\n"
    "\n"
    "inputs and outputs (formats by extension: .h5/.hdf5, .safetensors, .safetensors.index.json):\n"
    "  --base FILE           the pretrained checkpoint theta0\n"
    "  --task FILE           a fine-tuned checkpoint (repeat; on the command line the list\n"
    "                        replaces a job file's)\n"
    "  --out FILE            the merged checkpoint, in the inputs' dtypes (written under a\n"
    "                        temporary name and renamed when complete)\n"
    "  --report FILE.json    JSON: method, parameters, per-layer LARV table, inputs, summary\n"
    "  --job FILE.yaml       read options from a job file (paths relative to it; see jobs/)\n"
    "\n"
    "method options:\n"
    "  --lambda X            global scale (default: the method's)\n"
    "  --ties-k F            TIES keep fraction (0,1], default 0.2\n"
    "  --ties-merge M        TIES disjoint merge: sum (default), mean, max\n"
    "  --iso-common F        Iso-CTS common-subspace fraction, default 0.8\n"
    "  --alpha A1,A2,...     TSV-M per-task scales (one per task)\n"
    "  --precision P         SVDs in double (default) or single\n"
    "  --exclude GLOB        treat matching tensors as vector parameters (TIES: keep the base);\n"
    "                        repeatable, fnmatch syntax, e.g. --exclude '*position_embedding*'\n"
    "\n"
    "LARV (the layer-wise veneer; rule tiered3 by default):\n"
    "  --larv RULE           off | tiered2 | tiered3 | continuous | depth\n"
    "  --s-low X --s-mid X --s-high X   tier scales (0.5, 1.0, 1.2)\n"
    "  --eta X --rho X       score exponents (1, 0.5);  --gamma X  continuous slope (3)\n"
    "  --embed-scale X --head-scale X   scales of the groups outside blocks (1, 1)\n"
    "  --embed-pattern GLOB --head-pattern GLOB   put matching names in group embed/head\n"
    "  --larv-proxy GLOB     compute the proxies from the block matrices matching GLOB only\n"
    "                        (repeatable; all matrices are still scaled). Default: the\n"
    "                        block's first MLP matrix (mlp.fc1, mlp.c_fc, intermediate.dense,\n"
    "                        DenseReluDense.wi), every matrix of a block without one;\n"
    "                        --larv-proxy '*' takes every matrix (6x the cost on a ViT).\n"
    "                        Blocks whose task vectors are all zero (frozen in fine-tuning)\n"
    "                        are left out of the scores and keep scale 1\n"
    "\n"
    "other:\n"
    "  --allow-nonfinite     accept NaN/Inf in task vectors (refused by default)\n"
    "  --resume              finish a killed run of the same job (same arguments, inputs and\n"
    "                        rank count): the tensors it wrote to OUT.larv-tmp, re-read and\n"
    "                        verified against its journals OUT.larv-tmp.journal.<rank>, are\n"
    "                        kept, the rest is written; the result is the same bit for bit.\n"
    "                        Without --resume a leftover OUT.larv-tmp is replaced. A run that\n"
    "                        fails (rather than being killed) leaves neither behind\n"
    "  --ranks-per-matrix G  ranks that share one matrix: its eigenproblems run on a ScaLAPACK\n"
    "                        grid of G ranks (default: automatic, only when ranks outnumber\n"
    "                        the matrices; 1 = never)\n"
    "  --no-readahead        read each tensor only when it is needed (default: a helper\n"
    "                        thread reads the next tensors of safetensors inputs while this\n"
    "                        one is computed; same result, more memory: a ring of ~1.1 x the\n"
    "                        largest tensor per input). Off saves that memory, and time for\n"
    "                        ta/ties on a pool the page cache already holds\n"
    "  --quiet               no progress lines\n"
    "  --help                this text\n"
    "\n"
    "examples:\n"
    "  larv synth --arch vit-b-32 --tasks 8 --seed 1 --out pool\n"
    "  mpirun -np 2 larv merge --method iso-c --base pool/base.safetensors \\\n"
    "      --task pool/task01.safetensors --task pool/task02.safetensors --out merged.h5\n"
    "  srun larv merge --job jobs/vit-b-32-x8-iso-c.yaml --report merged.json\n"
    "\n"
    "Progress goes to stderr (rank 0), the LARV table and summary to stdout.\n"
    "exit codes: 0 ok, 1 failure, 64 usage/job file, 65 bad input data, 66 missing input,\n"
    "            74 output not writable\n";

enum {
    O_METHOD = 256, O_BASE, O_TASK, O_OUT, O_REPORT, O_JOB, O_LAMBDA, O_TIESK, O_TIESM, O_ISOC,
    O_ALPHA, O_PREC, O_EXCL, O_LARV, O_SLOW, O_SMID, O_SHIGH, O_ETA, O_RHO, O_GAMMA, O_ESCALE,
    O_HSCALE, O_EPAT, O_HPAT, O_NONFIN, O_QUIET, O_RESUME, O_HELP, O_RPM, O_PPAT, O_NORA
};

static const struct option longopts[] = {
    {"method", required_argument, 0, O_METHOD},   {"base", required_argument, 0, O_BASE},
    {"task", required_argument, 0, O_TASK},       {"out", required_argument, 0, O_OUT},
    {"report", required_argument, 0, O_REPORT},   {"job", required_argument, 0, O_JOB},
    {"lambda", required_argument, 0, O_LAMBDA},   {"ties-k", required_argument, 0, O_TIESK},
    {"ties-merge", required_argument, 0, O_TIESM}, {"iso-common", required_argument, 0, O_ISOC},
    {"alpha", required_argument, 0, O_ALPHA},     {"precision", required_argument, 0, O_PREC},
    {"exclude", required_argument, 0, O_EXCL},    {"larv", required_argument, 0, O_LARV},
    {"s-low", required_argument, 0, O_SLOW},      {"s-mid", required_argument, 0, O_SMID},
    {"s-high", required_argument, 0, O_SHIGH},    {"eta", required_argument, 0, O_ETA},
    {"rho", required_argument, 0, O_RHO},         {"gamma", required_argument, 0, O_GAMMA},
    {"embed-scale", required_argument, 0, O_ESCALE}, {"head-scale", required_argument, 0, O_HSCALE},
    {"embed-pattern", required_argument, 0, O_EPAT}, {"head-pattern", required_argument, 0, O_HPAT},
    {"larv-proxy", required_argument, 0, O_PPAT},
    {"allow-nonfinite", no_argument, 0, O_NONFIN}, {"quiet", no_argument, 0, O_QUIET},
    {"no-readahead", no_argument, 0, O_NORA},
    {"resume", no_argument, 0, O_RESUME},       {"ranks-per-matrix", required_argument, 0, O_RPM},         {"help", no_argument, 0, O_HELP},
    {0, 0, 0, 0}};

static int num(const char *opt, const char *s, double *v, larv_err *err)
{
    char *end;
    errno = 0;
    double d = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(d))
        return larv_fail(err, LARV_EXIT_USAGE, "--%s: '%s' is not a number", opt, s);
    *v = d;
    return 0;
}

static int push(char **arr, size_t *n, size_t max, const char *s, const char *what, larv_err *err)
{
    if (*n >= max)
        return larv_fail(err, LARV_EXIT_USAGE, "too many %s (at most %zu)", what, max);
    arr[(*n)++] = strdup(s);
    return 0;
}

/* Apply one command-line option to cfg. */
static int apply(larv_merge_cfg *c, int opt, const char *arg, int *tasks_reset, larv_err *err)
{
    const char *name = "";
    for (const struct option *o = longopts; o->name; o++)
        if (o->val == opt)
            name = o->name;
    switch (opt) {
    case O_METHOD:
        if (larv_method_parse(arg, &c->method))
            return larv_fail(err, LARV_EXIT_USAGE,
                             "--method: unknown method '%s' (ta, ties, tsv, iso-c, iso-cts)", arg);
        return 0;
    case O_BASE:
        free(c->base);
        c->base = strdup(arg);
        return 0;
    case O_TASK:
        if (!*tasks_reset) { /* the command line's list replaces the job's */
            for (size_t i = 0; i < c->ntasks; i++)
                free(c->tasks[i]);
            c->ntasks = 0;
            *tasks_reset = 1;
        }
        return push(c->tasks, &c->ntasks, LARV_MAX_TASKS, arg, "tasks", err);
    case O_OUT:
        free(c->out);
        c->out = strdup(arg);
        return 0;
    case O_REPORT:
        free(c->report);
        c->report = strdup(arg);
        return 0;
    case O_LAMBDA:
        if (num(name, arg, &c->lambda, err))
            return -1;
        c->have_lambda = 1;
        return 0;
    case O_TIESK:
        if (num(name, arg, &c->ties_k, err))
            return -1;
        if (!(c->ties_k > 0 && c->ties_k <= 1))
            return larv_fail(err, LARV_EXIT_USAGE, "--ties-k: %s is not in (0, 1]", arg);
        return 0;
    case O_TIESM:
        if (!strcmp(arg, "sum"))
            c->ties_mode = LARV_TIES_SUM;
        else if (!strcmp(arg, "mean"))
            c->ties_mode = LARV_TIES_MEAN;
        else if (!strcmp(arg, "max"))
            c->ties_mode = LARV_TIES_MAX;
        else
            return larv_fail(err, LARV_EXIT_USAGE, "--ties-merge: '%s' (sum, mean, max)", arg);
        return 0;
    case O_ISOC:
        if (num(name, arg, &c->mopts.iso_common, err))
            return -1;
        if (!(c->mopts.iso_common >= 0 && c->mopts.iso_common <= 1))
            return larv_fail(err, LARV_EXIT_USAGE, "--iso-common: %s is not in [0, 1]", arg);
        return 0;
    case O_ALPHA: {
        c->nalpha = 0;
        char *dup = strdup(arg), *save = NULL;
        for (char *tok = strtok_r(dup, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            if (c->nalpha >= LARV_MAX_TASKS || num(name, tok, &c->alpha[c->nalpha++], err)) {
                free(dup);
                return larv_fail(err, LARV_EXIT_USAGE, "--alpha: bad list '%s'", arg);
            }
        }
        free(dup);
        return 0;
    }
    case O_PREC:
        if (!strcmp(arg, "double"))
            c->mopts.precision = LARV_PREC_DOUBLE;
        else if (!strcmp(arg, "single"))
            c->mopts.precision = LARV_PREC_SINGLE;
        else
            return larv_fail(err, LARV_EXIT_USAGE, "--precision: '%s' (single, double)", arg);
        return 0;
    case O_EXCL:
        return push(c->exclude, &c->nexclude, LARV_MAX_PATTERNS, arg, "--exclude patterns", err);
    case O_EPAT:
        return push(c->embed_pat, &c->nembed_pat, LARV_MAX_PATTERNS, arg, "--embed-pattern", err);
    case O_HPAT:
        return push(c->head_pat, &c->nhead_pat, LARV_MAX_PATTERNS, arg, "--head-pattern", err);
    case O_PPAT:
        return push(c->proxy_pat, &c->nproxy_pat, LARV_MAX_PATTERNS, arg, "--larv-proxy", err);
    case O_LARV:
        if (larv_rule_parse(arg, &c->larv.rule))
            return larv_fail(err, LARV_EXIT_USAGE,
                             "--larv: unknown rule '%s' (off, tiered2, tiered3, continuous, depth)", arg);
        return 0;
    case O_SLOW: return num(name, arg, &c->larv.s_low, err);
    case O_SMID: return num(name, arg, &c->larv.s_mid, err);
    case O_SHIGH: return num(name, arg, &c->larv.s_high, err);
    case O_ETA: return num(name, arg, &c->larv.eta, err);
    case O_RHO: return num(name, arg, &c->larv.rho, err);
    case O_GAMMA: return num(name, arg, &c->larv.gamma, err);
    case O_ESCALE: return num(name, arg, &c->larv.embed_scale, err);
    case O_HSCALE: return num(name, arg, &c->larv.head_scale, err);
    case O_NONFIN:
        c->allow_nonfinite = 1;
        return 0;
    case O_QUIET:
        c->quiet = 1;
        return 0;
    case O_NORA:
        c->readahead = 0;
        return 0;
    case O_RESUME:
        c->resume = 1;
        return 0;
    case O_RPM: {
        double v = 0;
        if (num(name, arg, &v, err))
            return -1;
        if (v < 0 || v > 4096 || v != (int)v)
            return larv_fail(err, LARV_EXIT_USAGE, "--ranks-per-matrix: '%s' is not a count", arg);
        c->ranks_per_matrix = (int)v;
        return 0;
    }
    }
    return larv_fail(err, LARV_EXIT_USAGE, "unknown option");
}

/* Path identity that works for files that do not exist yet (the output). */
static char *canon(const char *path)
{
    char *r = realpath(path, NULL);
    if (r)
        return r;
    const char *slash = strrchr(path, '/');
    char dir[PATH_MAX];
    const char *base = path;
    if (slash) {
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
        base = slash + 1;
        if (!dir[0])
            strcpy(dir, "/");
    } else {
        strcpy(dir, ".");
    }
    char *d = realpath(dir, NULL);
    if (!d)
        return strdup(path);
    size_t len = strlen(d) + strlen(base) + 2;
    char *out = malloc(len);
    snprintf(out, len, "%s/%s", d, base);
    free(d);
    return out;
}

static int validate(const larv_merge_cfg *c, larv_err *err)
{
    if ((int)c->method < 0)
        return larv_fail(err, LARV_EXIT_USAGE, "no --method given (ta, ties, tsv, iso-c, iso-cts)");
    if (!c->base)
        return larv_fail(err, LARV_EXIT_USAGE, "no --base checkpoint given");
    if (c->ntasks == 0)
        return larv_fail(err, LARV_EXIT_USAGE, "the task pool is empty: give at least one --task");
    if (!c->out)
        return larv_fail(err, LARV_EXIT_USAGE, "no --out file given");
    if (c->nalpha && c->method != LARV_TSV)
        return larv_fail(err, LARV_EXIT_USAGE, "--alpha applies to --method tsv only");
    if (c->nalpha && c->nalpha != c->ntasks)
        return larv_fail(err, LARV_EXIT_USAGE, "--alpha has %zu values for %zu tasks", c->nalpha,
                         c->ntasks);
    size_t n = c->ntasks + 2;
    char **canons = calloc(n, sizeof(char *));
    int rc = 0;
    canons[0] = canon(c->base);
    for (size_t t = 0; t < c->ntasks; t++)
        canons[t + 1] = canon(c->tasks[t]);
    canons[n - 1] = canon(c->out);
    for (size_t i = 0; i + 1 < n && rc == 0; i++) {
        const char *what_i = i == 0 ? c->base : c->tasks[i - 1];
        if (strcmp(canons[i], canons[n - 1]) == 0)
            rc = larv_fail(err, LARV_EXIT_USAGE,
                           "the output %s is also an input: choose another --out", c->out);
        for (size_t j = i + 1; j + 1 < n && rc == 0; j++)
            if (strcmp(canons[i], canons[j]) == 0)
                rc = larv_fail(err, LARV_EXIT_USAGE, "%s is given twice (%s and %s)", what_i,
                               i == 0 ? "as the base" : "as a task",
                               "as a task");
    }
    for (size_t i = 0; i < n; i++)
        free(canons[i]);
    free(canons);
    return rc;
}

static void print_table(const larv_merge_cfg *cfg, const larv_merge_result *r)
{
    printf("\nLARV layer table (rule %s; scale multiplies every task vector of the group)\n",
           larv_rule_name(cfg->larv.rule));
    printf("%-6s %8s %12s %12s %10s %10s %7s\n", "group", "matrices", "eff-rank-c", "conflict",
           "conflict-z", "score", "scale");
    for (size_t g = 0; g < r->ngroups; g++) {
        char nm[32];
        long grp = g == 0 ? LARV_GROUP_EMBED : g == r->ngroups - 1 ? LARV_GROUP_HEAD : (long)g - 1;
        larv_group_name(grp, nm, sizeof nm);
        printf("%-6s %8d ", nm, r->nmatrix[g]);
        if (isfinite(r->e[g]))
            printf("%12.5g %12.5g %10.4f %10.5g ", r->e[g], r->c[g], r->chat[g], r->score[g]);
        else
            printf("%12s %12s %10s %10s ", "-", "-", "-", "-");
        printf("%7.4g\n", r->scale[g]);
    }
    if (cfg->nproxy_pat && cfg->larv.rule != LARV_RULE_OFF) {
        printf("proxies from the block matrices matching --larv-proxy");
        for (size_t i = 0; i < cfg->nproxy_pat; i++)
            printf(" '%s'", cfg->proxy_pat[i]);
        printf(" (per block:");
        for (size_t g = 1; g + 1 < r->ngroups; g++)
            printf(" %d", r->nproxy[g]);
        printf(")\n");
    }
}

static void print_summary(const larv_merge_cfg *cfg, const larv_merge_result *r)
{
    long maxrss = 0, sumrss = 0;
    for (int i = 0; i < r->nranks; i++) {
        sumrss += r->peak_rss_kb[i];
        if (r->peak_rss_kb[i] > maxrss)
            maxrss = r->peak_rss_kb[i];
    }
    printf("\nmerged %s: method %s, lambda %g, %zu tasks, %zu tensors (%zu matrices), %.3g M "
           "parameters\n",
           cfg->out, larv_method_name(cfg->method), r->lambda, cfg->ntasks, r->ntensors,
           r->nmatrix_total, (double)r->nparams / 1e6);
    printf("time %.2f s on %d rank%s (analysis %.2f s, merge+write %.2f s); read %.1f MB, "
           "wrote %.1f MB; peak RSS max %.1f MB per rank, %.1f MB all ranks\n",
           r->seconds, r->nranks, r->nranks > 1 ? "s" : "", r->pass_seconds[0],
           r->pass_seconds[3], (double)r->bytes_read / 1e6, (double)r->bytes_written / 1e6,
           (double)maxrss / 1024, (double)sumrss / 1024);
}

int larv_cmd_merge(int argc, char **argv)
{
    int rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    larv_merge_cfg cfg;
    larv_merge_cfg_init(&cfg);
    larv_err err = {0};
    int rc = 0;

    /* first the job file, then the flags over it */
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            if (rank == 0)
                fputs(help, stdout);
            larv_merge_cfg_free(&cfg);
            return 0;
        }
        const char *job = NULL;
        if (!strcmp(argv[i], "--job") && i + 1 < argc)
            job = argv[i + 1];
        else if (!strncmp(argv[i], "--job=", 6))
            job = argv[i] + 6;
        if (job && larv_jobfile_load(job, &cfg, &err))
            rc = -1;
    }
    int tasks_reset = 0;
    optind = 1;
    opterr = 0;
    int opt;
    while (rc == 0 && (opt = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
        if (opt == O_JOB || opt == O_HELP)
            continue;
        if (opt == '?' || opt == ':') {
            rc = larv_fail(&err, LARV_EXIT_USAGE, "%s '%s' (see larv merge --help)",
                           opt == ':' ? "missing value for" : "unknown option", argv[optind - 1]);
            break;
        }
        rc = apply(&cfg, opt, optarg, &tasks_reset, &err);
    }
    if (rc == 0 && optind < argc)
        rc = larv_fail(&err, LARV_EXIT_USAGE, "unexpected argument '%s' (see larv merge --help)",
                       argv[optind]);
    if (rc == 0)
        rc = validate(&cfg, &err);
    if (rc == 0 && cfg.nalpha)
        cfg.mopts.alpha = cfg.alpha;

    larv_merge_result res = {0};
    if (rc == 0) {
        if (rank == 0 && !cfg.quiet) {
            int size;
            MPI_Comm_size(MPI_COMM_WORLD, &size);
            fprintf(stderr, "[larv] merge: %s, %zu tasks, LARV %s, %d rank%s -> %s\n",
                    larv_method_name(cfg.method), cfg.ntasks, larv_rule_name(cfg.larv.rule), size,
                    size > 1 ? "s" : "", cfg.out);
        }
        rc = larv_merge_run(&cfg, MPI_COMM_WORLD, &res, &err);
    }
    if (rc == 0 && rank == 0) {
        print_table(&cfg, &res);
        print_summary(&cfg, &res);
        if (cfg.report) {
            char *text = larv_report_json(&cfg, &res, 1);
            if (!text || larv_write_text_file(cfg.report, text, &err))
                rc = -1;
            else
                printf("report: %s\n", cfg.report);
            free(text);
        }
    }
    int code = 0;
    if (rc) {
        if (rank == 0)
            fprintf(stderr, "larv merge: %s\n", err.msg);
        code = err.code ? err.code : LARV_EXIT_FAIL;
    }
    larv_merge_result_free(&res);
    larv_merge_cfg_free(&cfg);
    return code;
}
