/* YAML job files for `larv merge --job FILE` (cli/jobfile.c). */
#ifndef LARV_JOBFILE_H
#define LARV_JOBFILE_H

#include <stddef.h>

#include "../src/merge_cfg.h"

/* Read a YAML job file into cfg. Keys are the long option names with '_' for
 * '-' (examples in jobs/); unknown keys and wrong types are refused naming the
 * key and its line. */
int larv_jobfile_load(const char *path, larv_merge_cfg *cfg, larv_err *err);
/* Same from a memory buffer (for the fuzzer); name is used in messages. */
int larv_jobfile_parse(const char *name, const char *text, size_t len, larv_merge_cfg *cfg,
                       larv_err *err);

#endif
