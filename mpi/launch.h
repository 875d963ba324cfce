/* Refusing a launch that did not wire up MPI (see README, "Running under Slurm"). */
#ifndef LARV_LAUNCH_H
#define LARV_LAUNCH_H

/* argv: main's (argv[1] the command). Slurm started N > 1 tasks but MPI does not connect them: every task would be
 * a 1-rank job of its own, all writing the same output. Call it twice in the
 * start-up, before any command runs:
 *   size == 0, before MPI_Init: an srun step of N > 1 tasks whose environment
 *     has no MPI wiring at all (no PMIX_RANK, PMI_RANK or mpirun's
 *     OMPI_COMM_WORLD_RANK: `srun --mpi=none`), on which Open MPI would abort
 *     inside MPI_Init with a message that does not say what to do;
 *   size == MPI_Comm_size, after: size 1 while
 *     - the srun step has N > 1 tasks (SLURM_STEP_NUM_TASKS), any command; or
 *     - outside a step, the allocation has SLURM_NTASKS > 1 and no launcher
 *       (mpirun, mpiexec) started this process: larv typed in an salloc shell
 *       or a batch script without srun; for the commands that split work over
 *       ranks (merge, synth; not with --help).
 *       LARV_ALLOW_SINGLETON=1 (or `srun -n 1`, `mpirun -np 1`) runs one rank
 *       on purpose.
 * Returns 0, or LARV_EXIT_USAGE (64) after printing the fix on stderr (task 0
 * only: every task gets the same answer). */
int larv_launch_check(int argc, char **argv, int size);

#endif
