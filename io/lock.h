/* One run per target: an advisory lock (flock) on "<target>.larv-lock", held
 * for the whole run by one process (rank 0). A second run on the same target
 * fails at once instead of mixing its tensors into the first one's file. The
 * lock dies with its process (a killed run leaves no stale lock, at most the
 * empty file, which the next run takes over); a run that ends removes it. */
#ifndef LARV_IO_LOCK_H
#define LARV_IO_LOCK_H

#include "../src/err.h"

typedef struct larv_lock larv_lock;

/* Take the lock of target; NULL with exit 74 naming the target when another
 * run holds it (or the lock file cannot be made). */
larv_lock *larv_lock_take(const char *target, larv_err *err);
/* Remove the lock file and release (NULL is accepted). */
void larv_lock_release(larv_lock *l);
/* "<target>.larv-lock" (malloc'd), e.g. to claim it as an output. */
char *larv_lock_path(const char *target);

#endif
