/* larv verify DIR | INDEX | SHARD (verify_dir.h). */
#include "verify_dir.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../io/ckpt.h"
#include "../io/modeldir.h"
#include "../src/str.h"

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int format_known(const char *f)
{
    return f && (!strcmp(f, "pt") || !strcmp(f, "tf") || !strcmp(f, "flax") || !strcmp(f, "mlx"));
}

int larv_verify_resolve(const char *path, larv_verify_target *vt, larv_err *err)
{
    memset(vt, 0, sizeof *vt);
    int rank = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    struct stat st;
    int is_dir = stat(path, &st) == 0 && S_ISDIR(st.st_mode);
    char *idx = NULL;
    if (is_dir) {
        if (larv_ckpt_resolve(path, &vt->ckpt, NULL, err))
            return -1;
    } else if ((idx = larv_shard_index_path(path))) {
        vt->ckpt = idx;
    } else if (!(vt->ckpt = strdup(path))) {
        return larv_fail(err, LARV_EXIT_FAIL, "out of memory");
    }
    if (larv_ends_with(vt->ckpt, ".safetensors.index.json")) {
        if (larv_index_check(vt->ckpt, err))
            return -1;
    } else if (larv_ends_with(vt->ckpt, ".safetensors")) {
        char *f = larv_st_file_format(vt->ckpt, err);
        if (!f)
            return -1;
        int ok = format_known(f);
        if (!ok && is_dir) {
            larv_fail(err, LARV_EXIT_DATAERR,
                      "%s: __metadata__ has no \"format\" of pt, tf, flax or mlx: transformers "
                      "refuses it",
                      vt->ckpt);
            free(f);
            return -1;
        }
        if (!ok && rank == 0)
            fprintf(stderr,
                    "larv verify: warning: %s: __metadata__ has no \"format\" of pt, tf, flax or "
                    "mlx, so transformers refuses it (larv convert it to a new file)\n",
                    vt->ckpt);
        free(f);
    }
    if (idx) { /* a shard: its tensors are exactly those its index maps to it */
        if (larv_index_shard_tensors(idx, path, &vt->only, &vt->nonly, err))
            return -1;
        larv_ckpt *c = NULL;
        if (larv_ckpt_open(path, MPI_COMM_SELF, &c, err))
            return -1;
        int rc = 0;
        size_t n = larv_ckpt_ntensors(c);
        for (size_t i = 0; i < n && rc == 0; i++) {
            const char *nm = larv_ckpt_tensor(c, i)->name;
            if (!bsearch(&nm, vt->only, vt->nonly, sizeof *vt->only, cmp_str))
                rc = larv_fail(err, LARV_EXIT_DATAERR,
                               "%s: tensor '%s' of this shard is not mapped to it by %s", path, nm,
                               idx);
        }
        if (rc == 0 && n != vt->nonly)
            rc = larv_fail(err, LARV_EXIT_DATAERR,
                           "%s: holds %zu tensors, its index %s maps %zu to it", path, n, idx,
                           vt->nonly);
        char *f = rc == 0 ? larv_st_file_format(path, err) : NULL;
        if (rc == 0 && !f)
            rc = -1;
        if (rc == 0 && !format_known(f))
            rc = larv_fail(err, LARV_EXIT_DATAERR,
                           "%s: __metadata__ has no \"format\" of pt, tf, flax or mlx: "
                           "transformers refuses it",
                           path);
        free(f);
        larv_ckpt_close(c);
        if (rc)
            return -1;
    }
    return 0;
}

int larv_verify_wants(const larv_verify_target *vt, const char *name)
{
    return !vt->only || bsearch(&name, vt->only, vt->nonly, sizeof *vt->only, cmp_str) != NULL;
}

void larv_verify_target_free(larv_verify_target *vt)
{
    for (size_t i = 0; i < vt->nonly; i++)
        free(vt->only[i]);
    free(vt->only);
    free(vt->ckpt);
    memset(vt, 0, sizeof *vt);
}
