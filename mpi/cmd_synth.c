/* TEMPORARY placeholder while the command is being written; replaced in full. */
#include <stdio.h>
#include "cmd.h"
int larv_cmd_synth(int argc, char **argv)
{
    (void)argc;
    fprintf(stderr, "larv %s: not built yet\n", argv[0]);
    return 1;
}
