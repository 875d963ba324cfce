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

#include "../io/ckpt.h"
#include "../io/fileset.h"
#include "../io/modeldir.h"
#include "../io/report.h"
#include "../src/layers.h"
#include "../src/options.h"
#include "cmd.h"
#include "jobfile.h"
#include "outdir.h"
#include "template.h"
#include "../mpi/merge_run.h"

static const char help_head[] =
    "usage: larv merge --method M --base PATH --task PATH [--task PATH ...] --out FILE|DIR/ [options]\n"
    "       (PATH: a checkpoint file or a model directory with model.safetensors[.index.json])\n"
    "       larv merge --job JOB.yaml [options that override the job]\n"
    "       mpirun -np N larv merge ...   |   srun --mpi=pmix larv merge ...  (Slurm)\n"
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
    "\n";

static const char help_tail[] =
    "\n"
    "sweeps (several outputs in one run):\n"
    "  --method, --lambda, --larv, --s-low, --s-mid, --s-high and --ties-k take\n"
    "  comma-separated lists (job files: YAML lists); every combination is one output\n"
    "  (--ties-k for ties outputs only), named by the --out template: {method},\n"
    "  {lambda}, {larv}, {s_low}, {s_mid}, {s_high}, {ties_k} are replaced by the\n"
    "  output's value, a number in its shortest form that reads back (0.50 -> 0.5,\n"
    "  the method's default lambda when none is given). A list without a template,\n"
    "  two outputs with one name or an unknown placeholder are refused (exit 64).\n"
    "  Each tensor is read once per pass; each method's update is computed once and\n"
    "  written into every output of that method (lambda and the LARV scale are a\n"
    "  factor at write time; LARV's proxies are computed once; each TIES output\n"
    "  runs its own selection). Each output equals the single merge with its\n"
    "  settings byte for byte, with its own provenance, checksums, lock and\n"
    "  journals (--resume resumes each on its own); --report gets\n"
    "  {\"outputs\": [one report per output]}.\n"
    "  Memory per rank, beyond one merge's: T + 2 float64 copies of the largest\n"
    "  tensor, plus one per method (two for a method with LARV on); outputs are\n"
    "  written one tensor at a time each (no buffer per output). Scratch file: one\n"
    "  float64 M per method with LARV on.\n"
    "  mpirun -np 2 larv merge --method iso-c,tsv --larv off,tiered3 \\\n"
    "      --lambda 0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1.0 ... \\\n"
    "      --out 'out/{method}-{larv}-{lambda}.safetensors'       (40 outputs)\n"
    "\n"
    "environment:\n"
    "  TMPDIR                where each rank keeps its scratch file (the merged updates of\n"
    "                        the SVD mergers with LARV on, about the size of the output's\n"
    "                        share in float64; unlinked at once), default /tmp\n"
    "\n"
    "examples:\n"
    "  larv synth --arch vit-b-32 --tasks 8 --seed 1 --out pool\n"
    "  mpirun -np 2 larv merge --method iso-c --base pool/base.safetensors \\\n"
    "      --task pool/task01.safetensors --task pool/task02.safetensors --out merged.h5\n"
    "  mpirun -np 2 larv merge --method ta --base clip-vit-base-patch32/ \\\n"
    "      --task clip-vit-base-patch32_sun397/ --task clip-vit-base-patch32_dtd/ \\\n"
    "      --include 'vision_model.*' --out merged/     (a model directory for transformers)\n"
    "  srun --mpi=pmix larv merge --job jobs/vit-b-32-x8-iso-c.yaml --report merged.json\n"
    "  sbatch slurm/merge-one-node.sbatch jobs/vit-b-32-x8-iso-c.yaml   (resumes when resubmitted)\n"
    "\n"
    "Progress goes to stderr (rank 0), the LARV table and summary to stdout.\n"
    "exit codes: 0 ok, 1 failure, 64 usage/job file, 65 bad input data, 66 missing input,\n"
    "            74 output not writable\n";

/* The command line: getopt's table built from the option table (val = 256 + index). */
static struct option longopts[64];
static char flagnames[64][48];

static void build_longopts(void)
{
    size_t k = 0;
    for (size_t i = 0; i < larv_noptions && k + 1 < sizeof longopts / sizeof longopts[0]; i++, k++) {
        const larv_option *o = &larv_options[i];
        larv_option_flag(o, flagnames[k], sizeof flagnames[k]);
        longopts[k].name = flagnames[k] + 2;
        longopts[k].has_arg = o->type == LARV_OT_SWITCH ? no_argument : required_argument;
        longopts[k].flag = NULL;
        longopts[k].val = 256 + (int)i;
    }
    memset(&longopts[k], 0, sizeof longopts[k]);
}

/* Apply one command-line option to cfg. A list given on the command line
 * replaces the job file's (cleared on its first use: cli_seen). */
static int apply(larv_merge_cfg *c, const larv_option *o, const char *arg, unsigned char *cli_seen,
                 larv_err *err)
{
    char flag[64], msg[256];
    larv_option_flag(o, flag, sizeof flag);
    size_t i = (size_t)(o - larv_options);
    int sweep = (o->flags & LARV_OF_SWEEP) != 0; /* "a,b,c" sweeps it (cli/template.h) */
    if (o->type == LARV_OT_LIST || o->type == LARV_OT_REALS || sweep) {
        if (!cli_seen[i] || o->type == LARV_OT_REALS || sweep)
            larv_option_clear(o, c);
    }
    cli_seen[i] = 1;
    if (o->type == LARV_OT_SWITCH)
        arg = (o->flags & LARV_OF_NEGATED) ? "false" : "true";
    if (o->type == LARV_OT_REALS || sweep) {
        /* "a,b,c": every item a number, none empty */
        const char *p = arg;
        for (;;) {
            const char *comma = strchr(p, ',');
            size_t n = comma ? (size_t)(comma - p) : strlen(p);
            char item[128];
            if (n == 0)
                return larv_fail(err, LARV_EXIT_USAGE, "%s: empty item in '%s'", flag, arg);
            snprintf(item, sizeof item, "%.*s", (int)(n < sizeof item ? n : sizeof item - 1), p);
            if (n >= sizeof item || larv_option_set(o, c, item, msg, sizeof msg))
                return larv_fail(err, LARV_EXIT_USAGE, "%s: %s (in '%s')", flag,
                                 n >= sizeof item ? "item too long" : msg, arg);
            if (!comma)
                return 0;
            p = comma + 1;
        }
    }
    if (larv_option_set(o, c, arg, msg, sizeof msg))
        return larv_fail(err, LARV_EXIT_USAGE, "%s: %s", flag, msg);
    return 0;
}

/* What every merge needs; the options are checked per output (cli/template.h). */
static int validate_given(const larv_merge_cfg *c, larv_err *err)
{
    if ((int)c->method < 0)
        return larv_fail(err, LARV_EXIT_USAGE, "no --method given (ta, ties, tsv, iso-c, iso-cts)");
    if (!c->base)
        return larv_fail(err, LARV_EXIT_USAGE, "no --base checkpoint given");
    if (c->ntasks == 0)
        return larv_fail(err, LARV_EXIT_USAGE, "the task pool is empty: give at least one --task");
    if (!c->out)
        return larv_fail(err, LARV_EXIT_USAGE, "no --out file given");
    uint64_t shard;
    char msg[200];
    if (c->out_shard_size && larv_size_parse(c->out_shard_size, &shard, msg, sizeof msg))
        return larv_fail(err, LARV_EXIT_USAGE, "--out-shard-size: %s", msg);
    return 0;
}

/* One output's paths: never an input, no input twice (io/fileset.h). */
static int validate(const larv_merge_cfg *c, larv_err *err)
{
    return larv_fileset_check_names(c->base, (const char *const *)c->tasks, c->ntasks, c->out,
                                    err);
}

static void print_table(const larv_merge_cfg *cfg, const larv_merge_result *r)
{
    printf("\nLARV layer table (rule %s; scale multiplies every task vector of the group)\n",
           larv_rule_name(cfg->larv.rule));
    printf("%-6s %8s %12s %12s %10s %10s %7s\n", "group", "matrices", "eff-rank-c", "conflict",
           "conflict-z", "score", "scale");
    const larv_grouping *gr = &r->grouping;
    for (size_t g = 0; g < r->ngroups; g++) {
        char nm[32];
        if (gr->nstacks > 1 && gr->stacks[gr->gstack[g]].g0 == g) /* each stack its own table */
            printf("stack %s (%ld blocks)\n", gr->stacks[gr->gstack[g]].name,
                   gr->stacks[gr->gstack[g]].L);
        larv_group_name(gr->gblock[g], nm, sizeof nm);
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
        for (size_t g = 0; g < r->ngroups; g++)
            if (gr->gblock[g] >= 0)
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
    if (r->n_base_only || r->n_not_included)
        printf("selection: %zu tensors only the base has (%zu left out, %zu copied from the "
               "base); %zu not matched by --include\n",
               r->n_base_only, r->n_base_only - r->n_base_only_kept, r->n_base_only_kept,
               r->n_not_included);
    printf("time %.2f s on %d rank%s (analysis %.2f s, merge+write %.2f s); read %.1f MB, "
           "wrote %.1f MB; peak RSS max %.1f MB per rank, %.1f MB all ranks\n",
           r->seconds, r->nranks, r->nranks > 1 ? "s" : "", r->pass_seconds[LARV_PASS_ANALYSIS],
           r->pass_seconds[LARV_PASS_WRITE], (double)r->bytes_read / 1e6, (double)r->bytes_written / 1e6,
           (double)maxrss / 1024, (double)sumrss / 1024);
}

int larv_merge_args(int argc, char **argv, larv_merge_cfg *cfg, larv_err *err)
{
    /* first the job file, then the flags over it */
    for (int i = 1; i < argc; i++) {
        const char *job = NULL;
        if (!strcmp(argv[i], "--job") && i + 1 < argc)
            job = argv[i + 1];
        else if (!strncmp(argv[i], "--job=", 6))
            job = argv[i] + 6;
        if (job && larv_jobfile_load(job, cfg, err))
            return -1;
    }
    unsigned char cli_seen[64] = {0};
    build_longopts();
    optind = 1;
    opterr = 0;
    int opt;
    while ((opt = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
        if (opt == '?' || opt == ':')
            return larv_fail(err, LARV_EXIT_USAGE, "%s '%s' (see larv merge --help)",
                             opt == ':' ? "missing value for" : "unknown option", argv[optind - 1]);
        const larv_option *o = &larv_options[opt - 256];
        if (o->flags & LARV_OF_CLI) /* --job (read above), --help */
            continue;
        if (apply(cfg, o, optarg, cli_seen, err))
            return -1;
    }
    if (optind < argc)
        return larv_fail(err, LARV_EXIT_USAGE, "unexpected argument '%s' (see larv merge --help)",
                         argv[optind]);
    return 0;
}

/* A sweep: one line per output, then the shared time and sizes. */
static void print_outputs(const larv_merge_cfg *outs, const larv_merge_result *res, size_t n)
{
    printf("\n%zu outputs:\n", n);
    for (size_t k = 0; k < n; k++) {
        char kk[48] = "";
        if (outs[k].method == LARV_TIES)
            snprintf(kk, sizeof kk, ", k %g", outs[k].ties_k);
        printf("  %s: method %s, lambda %g, LARV %s%s\n", outs[k].out,
               larv_method_name(outs[k].method), res[k].lambda, larv_rule_name(outs[k].larv.rule),
               kk);
    }
    long maxrss = 0;
    for (int i = 0; i < res[0].nranks; i++)
        maxrss = res[0].peak_rss_kb[i] > maxrss ? res[0].peak_rss_kb[i] : maxrss;
    printf("time %.2f s on %d rank%s (analysis %.2f s, merge+write %.2f s); read %.1f MB, "
           "wrote %.1f MB per output; peak RSS max %.1f MB per rank\n",
           res[0].seconds, res[0].nranks, res[0].nranks > 1 ? "s" : "",
           res[0].pass_seconds[LARV_PASS_ANALYSIS], res[0].pass_seconds[LARV_PASS_WRITE],
           (double)res[0].bytes_read / 1e6, (double)res[0].bytes_written / 1e6,
           (double)maxrss / 1024);
}

int larv_cmd_merge(int argc, char **argv)
{
    int rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            if (rank == 0) {
                fputs(help_head, stdout);
                larv_options_help(stdout);
                fputs(help_tail, stdout);
            }
            return 0;
        }
    larv_merge_cfg cfg;
    larv_merge_cfg_init(&cfg);
    larv_err err = {0};
    int rc = larv_merge_args(argc, argv, &cfg, &err);
    if (rc == 0)
        rc = validate_given(&cfg, &err);
    /* the outputs: one, or one per combination of the lists given (a sweep) */
    larv_merge_cfg *outs = NULL;
    size_t nout = 0;
    if (rc == 0)
        rc = larv_sweep_expand(&cfg, &outs, &nout, &err);
    for (size_t k = 0; rc == 0 && k < nout; k++) {
        rc = validate(&outs[k], &err);
        if (outs[k].nalpha)
            outs[k].mopts.alpha = outs[k].alpha;
    }
    larv_merge_result *res = calloc(nout ? nout : 1, sizeof *res);
    const larv_merge_cfg **cfgs = calloc(nout ? nout : 1, sizeof *cfgs);
    if (rc == 0 && (!res || !cfgs))
        rc = larv_fail(&err, LARV_EXIT_FAIL, "out of memory");
    /* --out DIR/ (or a directory template): each output a model directory (outdir.h) */
    larv_outdir *od = calloc(nout ? nout : 1, sizeof *od);
    if (rc == 0 && !od)
        rc = larv_fail(&err, LARV_EXIT_FAIL, "out of memory");
    for (size_t k = 0; rc == 0 && k < nout; k++)
        rc = larv_outdir_begin(&outs[k], &od[k], MPI_COMM_WORLD, &err);
    if (rc == 0) {
        for (size_t k = 0; k < nout; k++)
            cfgs[k] = &outs[k];
        if (rank == 0 && !cfg.quiet) {
            int size;
            MPI_Comm_size(MPI_COMM_WORLD, &size);
            if (nout == 1)
                fprintf(stderr, "[larv] merge: %s, %zu tasks, LARV %s, %d rank%s -> %s\n",
                        larv_method_name(outs[0].method), cfg.ntasks,
                        larv_rule_name(outs[0].larv.rule), size, size > 1 ? "s" : "",
                        outs[0].out_dir ? outs[0].out_dir : outs[0].out);
            else
                fprintf(stderr, "[larv] merge: %zu outputs (%s), %zu tasks, %d rank%s\n", nout,
                        cfg.out, cfg.ntasks, size, size > 1 ? "s" : "");
        }
        rc = larv_merge_run_outputs(cfgs, nout, MPI_COMM_WORLD, res, &err);
    }
    /* every begun directory is finished: completed when the run succeeded, else cleaned */
    for (size_t k = 0; od && k < nout; k++)
        if (od[k].active) {
            larv_err ferr = {0};
            int frc = larv_outdir_finish(&outs[k], &res[k], &od[k], rc == 0, argc, argv,
                                         MPI_COMM_WORLD, &ferr);
            if (rc == 0 && frc) {
                rc = frc;
                err = ferr;
            }
        }
    if (rc == 0 && rank == 0) {
        if (nout == 1) {
            print_table(&outs[0], &res[0]);
            print_summary(&outs[0], &res[0]);
        } else {
            print_outputs(outs, res, nout);
        }
        if (cfg.report) /* written by larv_merge_run, together with the outputs */
            printf("report: %s\n", cfg.report);
        for (size_t k = 0; od && k < nout; k++)
            if (od[k].summary)
                printf("%s\n", od[k].summary);
    }
    int code = 0;
    if (rc) {
        if (rank == 0)
            fprintf(stderr, "larv merge: %s\n", err.msg);
        code = err.code ? err.code : LARV_EXIT_FAIL;
    }
    for (size_t k = 0; od && k < nout; k++)
        larv_outdir_free(&od[k]);
    free(od);
    for (size_t k = 0; res && k < nout; k++)
        larv_merge_result_free(&res[k]);
    free(res);
    free(cfgs);
    larv_sweep_free(outs, nout);
    larv_merge_cfg_free(&cfg);
    return code;
}
