/* Outputs never replace inputs.
 *
 * A command lists the files it reads by identity (device and inode, so
 * symlinks and hard links count): every checkpoint file, each shard an index
 * lists, the job file. Every path it is about to write (the output, each
 * shard, every temporary, journal and the report) is then claimed: refused
 * (exit 64) when it is one of those inputs, or when another output already
 * claimed it. A path that does not exist yet is identified by its directory's
 * identity and its name. */
#ifndef LARV_IO_FILESET_H
#define LARV_IO_FILESET_H

#include "../src/err.h"
#include "ckpt.h"

typedef struct larv_fileset larv_fileset;

larv_fileset *larv_fileset_new(void);
void larv_fileset_free(larv_fileset *s);
/* An input file (ignored when it does not exist: nothing there to replace). */
int larv_fileset_add_input(larv_fileset *s, const char *path, larv_err *err);
/* Every file of an open checkpoint (a sharded one: its index and every shard). */
int larv_fileset_add_ckpt(larv_fileset *s, const larv_ckpt *c, larv_err *err);
/* A path about to be written; `what` names it in the message ("the output",
 * "the report", ...). 0, or -1 with exit 64 naming both paths. */
int larv_fileset_claim(larv_fileset *s, const char *path, const char *what, larv_err *err);

/* 1 when both paths name the same existing file (device and inode: symlinks
 * and hard links count), else 0. */
int larv_same_file(const char *a, const char *b);

/* `larv merge`'s paths as given, before anything is opened: exit 64 when the
 * output has an input's name (symlinks resolved; the engine's claims catch the
 * rest, hard links too), or an input is given twice (by name, or the same
 * file). */
int larv_fileset_check_names(const char *base, const char *const *tasks, size_t ntasks,
                             const char *out, larv_err *err);

#endif
