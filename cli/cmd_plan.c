/* larv plan: what N ranks would do with a merge, without running it. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../io/ckpt.h"
#include "../src/options.h"
#include "../src/synth.h"
#include "cmd.h"
#include "../mpi/plan.h"
#include "../src/layers.h"

static const char help[] =
    "usage: larv plan (--arch ARCH | --base PATH) --tasks T --method M [options]\n"
    "\n"
    "Shows how `larv merge` would split a merge over N ranks, before you ask a\n"
    "scheduler for them: whole layers or single tensors per rank, rank teams that\n"
    "share one matrix on a ScaLAPACK grid, load balance, and memory per rank.\n"
    "\n"
    "  --arch ARCH            a known architecture (vit-b-32, vit-b-16, vit-l-14, tiny)\n"
    "  --base PATH            or the tensor list of a real checkpoint (file or model directory)\n"
    "  --include GLOB         only the matching tensors (repeatable; as merge --include)\n"
    "  --tasks T              number of fine-tuned checkpoints\n"
    "  --method M             ta, ties, tsv, iso-c, iso-cts\n"
    "  --larv RULE            off, tiered2, tiered3 (default), continuous, depth\n"
    "  --ranks N[,N...]       rank counts to show (default 1,2,4,8,16,24,48,96,192,384)\n"
    "  --ranks-per-matrix G   force a team size (default: automatic)\n"
    "\n"
    "example:  larv plan --arch vit-l-14 --tasks 20 --method iso-cts --ranks 24,96,384\n"
    "\n"
    "columns: unit = what a rank (team) owns; busy = teams with work; imbalance =\n"
    "max/mean estimated cost; mem/rank = (T + 3) float64 copies of the largest tensor\n"
    "a team leader holds plus the read-ahead ring, 1.125 (T + 1) copies of it in its dtype\n"
    "(the engine's working set, without LAPACK workspace; merge --no-readahead and HDF5\n"
    "inputs need no ring).\n";

int larv_cmd_plan(int argc, char **argv)
{
    int rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    const char *arch = NULL, *base = NULL, *ranks = "1,2,4,8,16,24,48,96,192,384";
    larv_merge_cfg cfg;
    larv_merge_cfg_init(&cfg);
    cfg.method = LARV_TA;
    int have_method = 0;
    int T = 0;
    static const struct option opts[] = {{"arch", required_argument, 0, 'a'},
                                         {"base", required_argument, 0, 'b'},
                                         {"tasks", required_argument, 0, 't'},
                                         {"method", required_argument, 0, 'm'},
                                         {"larv", required_argument, 0, 'l'},
                                         {"ranks", required_argument, 0, 'r'},
                                         {"ranks-per-matrix", required_argument, 0, 'g'},
                                         {"include", required_argument, 0, 'i'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int c, bad = 0;
    char msg[256];
    optind = 1;
    opterr = 0;
    /* values through the merge's option table: the same parsing and ranges */
    while (!bad && (c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        const larv_option *o = c == 'm' ? larv_option_find("method")
                               : c == 'l' ? larv_option_find("larv")
                               : c == 'g' ? larv_option_find("ranks_per_matrix")
                                          : NULL;
        switch (c) {
        case 'a': arch = optarg; break;
        case 'b': base = optarg; break;
        case 't':
            if (larv_parse_int(optarg, 1, LARV_MAX_TASKS, &T, msg, sizeof msg))
                bad = fprintf(stderr, "larv plan: --tasks: %s\n", msg);
            break;
        case 'm':
        case 'l':
        case 'g':
            if (larv_option_set(o, &cfg, optarg, msg, sizeof msg))
                bad = fprintf(stderr, "larv plan: --%s: %s\n", opts[c == 'm' ? 3 : c == 'l' ? 4 : 6].name, msg);
            have_method |= c == 'm';
            break;
        case 'i':
            if (larv_option_set(larv_option_find("include"), &cfg, optarg, msg, sizeof msg))
                bad = fprintf(stderr, "larv plan: --include: %s\n", msg);
            break;
        case 'r': ranks = optarg; break;
        case 'h':
            if (rank == 0)
                fputs(help, stdout);
            larv_merge_cfg_free(&cfg);
            return 0;
        default:
            bad = fprintf(stderr, "larv plan: bad option '%s' (see larv plan --help)\n",
                          argv[optind - 1]);
        }
    }
    if (!bad && ((!arch) == (!base) || T < 1 || !have_method))
        bad = fprintf(stderr, "larv plan: give --arch or --base, --tasks T >= 1 and --method "
                              "(see larv plan --help)\n");
    if (bad) {
        larv_merge_cfg_free(&cfg);
        return LARV_EXIT_USAGE;
    }
    larv_err err = {0};
    larv_tensor_info *syn = NULL;
    size_t n = 0, np = 0; /* tensors; of which planned (--include) */
    larv_ckpt *ck = NULL;
    const larv_tensor_info **infos = NULL;
    int rc = 0;
    if (arch) {
        const larv_synth_arch *a = larv_synth_arch_find(arch);
        rc = a ? larv_synth_infos(a, LARV_F32, &syn, &n, &err)
               : larv_fail(&err, LARV_EXIT_USAGE, "unknown architecture '%s' (%s)", arch,
                           larv_synth_arch_list());
    } else {
        rc = larv_ckpt_open(base, MPI_COMM_SELF, &ck, &err);
        if (rc == 0)
            n = larv_ckpt_ntensors(ck);
    }
    if (rc == 0) {
        infos = malloc((n ? n : 1) * sizeof *infos);
        for (size_t i = 0; infos && i < n; i++) {
            const larv_tensor_info *ti = syn ? &syn[i] : larv_ckpt_tensor(ck, i);
            if (!cfg.ninclude || larv_match_any(ti->name, cfg.include, cfg.ninclude))
                infos[np++] = ti;
        }
        if (infos && np == 0 && n > 0)
            rc = larv_fail(&err, LARV_EXIT_DATAERR, "--include matches none of the %zu tensors", n);
        if (!infos)
            rc = larv_fail(&err, LARV_EXIT_FAIL, "out of memory");
    }
    if (rc == 0 && rank == 0) {
        printf("%s x %d tasks, method %s, LARV %s: %zu tensors\n", arch ? arch : base, T,
               larv_method_name(cfg.method), larv_rule_name(cfg.larv.rule), np);
        printf("%7s %6s %7s %8s %6s %10s %10s\n", "ranks", "teams", "team", "unit", "busy",
               "imbalance", "mem/rank");
        /* N[,N...]: every item a whole number >= 1, none empty */
        const char *tok = ranks;
        for (int more = 1; more && rc == 0;) {
            const char *comma = strchr(tok, ',');
            char item[32];
            size_t len = comma ? (size_t)(comma - tok) : strlen(tok);
            snprintf(item, sizeof item, "%.*s", (int)(len < sizeof item ? len : sizeof item - 1), tok);
            more = comma != NULL;
            if (comma)
                tok = comma + 1;
            int N;
            if (len >= sizeof item || larv_parse_int(item, 1, 1 << 24, &N, msg, sizeof msg)) {
                rc = larv_fail(&err, LARV_EXIT_USAGE, "--ranks: %s in '%s'",
                               len >= sizeof item ? "item too long" : len ? msg : "empty item", ranks);
                break;
            }
            larv_plan p;
            if (larv_plan_make(infos, np, &cfg, (size_t)T, N, &p, &err)) {
                rc = -1;
                break;
            }
            /* the largest tensor any team leader holds */
            uint64_t big = 0, bigb = 0;
            for (size_t i = 0; i < np; i++)
                if (infos[i]->numel > big && p.items[i].kind != LARV_KIND_KEEP) {
                    big = infos[i]->numel;
                    bigb = infos[i]->nbytes;
                }
            double mem = (double)((uint64_t)T + 3) * 8.0 * (double)big +
                         1.125 * (double)((uint64_t)T + 1) * (double)bigb;
            printf("%7d %6d %7d %8s %6d %10.2f %8.2f GB\n", N, p.nteams, p.team_size,
                   p.by_group ? "layers" : "tensors", p.busy, p.imbalance, mem / 1e9);
            larv_plan_free(&p);
        }
        larv_plan one;
        if (rc == 0 && larv_plan_make(infos, np, &cfg, (size_t)T, 1, &one, &err) == 0) {
            printf("(%zu matrices need eigen/SVD work; %ld blocks + embed + head = %zu layer "
                   "groups%s: ranks beyond that own single tensors, beyond 2 x the matrices they "
                   "form teams)\n",
                   one.nfactor, one.L, one.grouping.ngroups,
                   one.grouping.nstacks > 1 ? " over the stacks" : "");
            larv_plan_free(&one);
        }
    }
    if (rc && rank == 0)
        fprintf(stderr, "larv plan: %s\n", err.msg);
    free(infos);
    if (syn)
        larv_synth_infos_free(syn, n);
    if (ck)
        larv_ckpt_close(ck);
    larv_merge_cfg_free(&cfg);
    return rc ? (err.code ? err.code : LARV_EXIT_FAIL) : 0;
}
