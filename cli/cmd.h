/* The larv subcommands. Each runs inside MPI_Init/Finalize (done by main) and
 * returns a process exit code (LARV_EXIT_*). argv[0] is the subcommand name. */
#ifndef LARV_CMD_H
#define LARV_CMD_H

int larv_cmd_inspect(int argc, char **argv);
int larv_cmd_convert(int argc, char **argv);
int larv_cmd_synth(int argc, char **argv);
int larv_cmd_merge(int argc, char **argv);
int larv_cmd_verify(int argc, char **argv);
int larv_cmd_plan(int argc, char **argv);

#endif
