/* `larv merge --out DIR/`: a model directory that transformers loads.
 *
 * begin (before the merge) decides whether --out names a directory (io/modeldir.h:
 * a trailing '/', an existing directory, or no extension), takes the lock
 * DIR.larv-lock, makes the staging directory DIR.larv-tmp/ and points cfg->out
 * at DIR.larv-tmp/model.safetensors (cfg->out_dir = DIR): the merge, its
 * temporaries, journals and --resume work there as for a file output.
 * finish (after the merge) adds larv-report.json, the README.md model card and
 * the copies of config.json and the tokenizer/preprocessor files of the first
 * task directory, sets config.json's torch_dtype to the weights' dtype, and
 * moves everything into place: DIR.larv-tmp/ is renamed to DIR when DIR did not
 * exist (all files appear at once); into an existing DIR each file is renamed
 * (replacing the file of the same name; stale weights of the other layout are
 * removed). Both are collective (rank 0 touches the file system). */
#ifndef LARV_CLI_OUTDIR_H
#define LARV_CLI_OUTDIR_H

#include <mpi.h>

#include "../src/merge_cfg.h"

struct larv_lock;

typedef struct {
    int active;        /* --out names a model directory */
    char *dir;         /* DIR, without a trailing '/' */
    char *stage;       /* DIR.larv-tmp */
    int existed;       /* DIR was a directory before the run */
    char *src;         /* the first task directory (files copied from it), or NULL */
    struct larv_lock *lock;
    char *summary;     /* rank 0, after finish: what the directory holds */
} larv_outdir;

/* "The first task directory": the first --task if it is a directory, or the
 * directory holding it when it is named model.safetensors or
 * model.safetensors.index.json (the Hub's layout); else NULL (malloc'd). */
char *larv_outdir_source(const char *first_task);

int larv_outdir_begin(larv_merge_cfg *cfg, larv_outdir *od, MPI_Comm comm, larv_err *err);
/* ok: the merge succeeded (then the directory is completed and moved into
 * place, or on a failure here nothing appears at DIR); !ok: what this run
 * put in the stage is removed, a killed run's temporaries and journals kept.
 * cmdline: argv of `larv merge` (for the model card). cfg->out is DIR/ after. */
int larv_outdir_finish(larv_merge_cfg *cfg, const larv_merge_result *res, larv_outdir *od, int ok,
                       int argc, char **argv, MPI_Comm comm, larv_err *err);
void larv_outdir_free(larv_outdir *od);

#endif
