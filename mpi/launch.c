#include "launch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/err.h"

static long env_long(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? strtol(v, NULL, 10) : 0;
}

static int env_set(const char *name)
{
    const char *v = getenv(name);
    return v && *v;
}

int larv_launch_check(int argc, char **argv, int size)
{
    const char *cmd = argv[1];
    /* a launcher's MPI wiring (srun's PMIx/PMI, mpirun's), read before MPI_Init
     * (a singleton's MPI_Init may set some of these itself) */
    static int wired = -1;
    if (wired < 0)
        wired = env_set("PMIX_RANK") || env_set("PMI_RANK") || env_set("OMPI_COMM_WORLD_RANK");
    long step_tasks = env_long("SLURM_STEP_NUM_TASKS");
    long alloc_tasks = env_long("SLURM_NTASKS");
    int quiet = env_long("SLURM_PROCID") != 0; /* one message, from task 0 */
    if (size == 0) {
        if (step_tasks > 1 && !wired) {
            if (!quiet)
                fprintf(stderr,
                        "larv: srun started %ld tasks without MPI wiring (no PMIx/PMI in the "
                        "environment: --mpi=none?), so each would run alone.\n"
                        "  Launch with 'srun --mpi=pmix larv %s ...' (the plugin Open MPI "
                        "needs; 'srun --mpi=list' shows a site's), or with 'mpirun -np %ld "
                        "larv %s ...'.\n",
                        step_tasks, cmd, step_tasks, cmd);
            return LARV_EXIT_USAGE;
        }
        return 0;
    }
    if (size != 1)
        return 0;
    if (step_tasks > 1) {
        if (!quiet)
            fprintf(stderr,
                    "larv: srun started %ld tasks but MPI sees 1 rank in each: the MPI plugin "
                    "did not connect them, and each would run alone.\n"
                    "  Launch with 'srun --mpi=pmix larv %s ...' (the plugin Open MPI needs; "
                    "'srun --mpi=list' shows a site's), or with 'mpirun -np %ld larv %s ...'.\n",
                    step_tasks, cmd, step_tasks, cmd);
        return LARV_EXIT_USAGE;
    }
    int splits = strcmp(cmd, "merge") == 0 || strcmp(cmd, "synth") == 0;
    for (int i = 2; i < argc; i++) /* asking for help needs no ranks */
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            splits = 0;
    if (splits && !env_set("SLURM_STEP_ID") && alloc_tasks > 1 && !wired &&
        !env_set("LARV_ALLOW_SINGLETON")) {
        if (!quiet)
            fprintf(stderr,
                    "larv: this Slurm allocation has %ld tasks (SLURM_NTASKS) but larv %s was "
                    "started without srun or mpirun, as 1 rank.\n"
                    "  Run 'srun --mpi=pmix larv %s ...' or 'mpirun larv %s ...'; for one rank "
                    "on purpose, 'srun -n 1 larv %s ...' or LARV_ALLOW_SINGLETON=1.\n",
                    alloc_tasks, cmd, cmd, cmd, cmd);
        return LARV_EXIT_USAGE;
    }
    return 0;
}
