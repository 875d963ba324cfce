/* The larv subcommands. Each runs inside MPI_Init/Finalize (done by main) and
 * returns a process exit code (LARV_EXIT_*). argv[0] is the subcommand name. */
#ifndef LARV_CMD_H
#define LARV_CMD_H

#include "../src/merge_cfg.h"

int larv_cmd_inspect(int argc, char **argv);
int larv_cmd_convert(int argc, char **argv);
int larv_cmd_synth(int argc, char **argv);
int larv_cmd_merge(int argc, char **argv);
int larv_cmd_verify(int argc, char **argv);
int larv_cmd_plan(int argc, char **argv);

/* larv merge's arguments into cfg (initialised by the caller): the job files
 * given by --job, then the flags over them, each through the option table
 * (src/options.h). Not collective, no MPI. 0, or -1 with err (LARV_EXIT_USAGE,
 * or the job file's code). */
int larv_merge_args(int argc, char **argv, larv_merge_cfg *cfg, larv_err *err);

#endif
