/* larv verify of a model directory, an index and a shard (cmd_verify.c). */
#ifndef LARV_CLI_VERIFY_DIR_H
#define LARV_CLI_VERIFY_DIR_H

#include <stddef.h>

#include "../src/err.h"

typedef struct {
    char *ckpt;    /* what to open: the file, the directory's weights, a shard's index */
    char **only;   /* a shard: the tensors the index maps to it (sorted), else NULL */
    size_t nonly;
} larv_verify_target;

/* Resolve path and run the structural checks that need no checksums: a
 * directory or an index as transformers loads it (io/modeldir.h
 * larv_index_check; a directory's model.safetensors must carry "format"), a
 * shard's tensors against its index's list for it; a single file without
 * "format" metadata gets a warning on stderr. 0, or -1 with err. Not collective. */
int larv_verify_resolve(const char *path, larv_verify_target *vt, larv_err *err);
/* Whether this tensor is checked (all, or a shard's own). */
int larv_verify_wants(const larv_verify_target *vt, const char *name);
void larv_verify_target_free(larv_verify_target *vt);

#endif
