/* larv: data-free, layer-aware merging of fine-tuned models, on MPI ranks. */
#include <mpi.h>
#include <stdio.h>
#include <string.h>

#include "../src/err.h"
#include "cmd.h"
#include "../io/coll.h"
#include "../mpi/launch.h"
#include "../mpi/threads.h"

static const char usage[] =
    "larv " LARV_VERSION " - merge fine-tuned models without data, layer-aware (LARV), on MPI ranks\n"
    "\n"
    "usage: larv COMMAND [options]          (one rank)\n"
    "       mpirun -np N larv COMMAND ...   (or srun --mpi=pmix larv COMMAND ... under Slurm)\n"
    "\n"
    "commands:\n"
    "  merge    merge a base checkpoint and T fine-tuned ones (TA, TIES, TSV-M, Iso-C, Iso-CTS,\n"
    "           each with the LARV veneer); from flags or a YAML job file (--job)\n"
    "  inspect  list a checkpoint's tensors, shapes, dtypes, sizes and layer groups\n"
    "  convert  copy a checkpoint between HDF5 (.h5), safetensors (.safetensors) and\n"
    "           sharded safetensors (.safetensors.index.json), bit for bit\n"
    "  synth    write a synthetic task pool (base + T fine-tuned checkpoints) with real\n"
    "           architectures' names and shapes (CLIP ViT-B/32, B/16, L/14, tiny)\n"
    "  verify   check a merged file's per-tensor checksums against its provenance\n"
    "  plan     show how N ranks would split a merge (layers, tensors, ScaLAPACK teams)\n"
    "\n"
    "Run 'larv COMMAND --help' for a command's options and examples.\n"
    "\n"
    "exit codes: 0 ok, 1 runtime failure, 64 bad usage or job file (also: Slurm started N tasks\n"
    "            that MPI did not connect; LARV_ALLOW_SINGLETON=1 runs one rank on purpose),\n"
    "            65 bad input data, 66 input missing or unreadable, 74 output cannot be written\n";

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        fputs(usage, stdout);
        return argc < 2 ? LARV_EXIT_USAGE : LARV_EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("larv %s\n", LARV_VERSION);
        return 0;
    }
    static const struct {
        const char *name;
        int (*fn)(int, char **);
    } cmds[] = {
        {"merge", larv_cmd_merge},     {"inspect", larv_cmd_inspect}, {"convert", larv_cmd_convert},
        {"synth", larv_cmd_synth},     {"verify", larv_cmd_verify},   {"plan", larv_cmd_plan},
    };
    int (*fn)(int, char **) = NULL;
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        if (strcmp(argv[1], cmds[i].name) == 0)
            fn = cmds[i].fn;
    if (!fn) {
        fprintf(stderr, "larv: unknown command '%s'\n\n%s", argv[1], usage);
        return LARV_EXIT_USAGE;
    }
    int lrc = larv_launch_check(argc, argv, 0); /* srun without MPI wiring: before MPI_Init */
    if (lrc)
        return lrc;
    int provided, size;
    larv_mpi_preinit(); /* before MPI_Init: no GPU-discovery plugins (threads.c) */
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if ((lrc = larv_launch_check(argc, argv, size))) { /* N Slurm tasks, 1 rank each */
        MPI_Finalize();
        return lrc;
    }
    /* A failing rank must not leave the others hanging: MPI calls return their
     * errors, which are checked and agreed across ranks (io/coll.h). */
    larv_err err;
    larv_err_clear(&err);
    if (LARV_MPI(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN), &err))
        larv_mpi_fatal(&err); /* no error can be agreed without it (io/coll.h, rule 3) */
    larv_blas_threads_init(MPI_COMM_WORLD); /* BLAS threads = cores per node-local rank */
    int rc = fn(argc - 1, argv + 1);
    MPI_Finalize();
    return rc;
}
