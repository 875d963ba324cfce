/* One run per target (see lock.h). */
#include "lock.h"

#include "ckpt_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

struct larv_lock {
    int fd;
    char *path;
};

char *larv_lock_path(const char *target)
{
    size_t len = strlen(target) + 16;
    char *p = malloc(len);
    if (p)
        snprintf(p, len, "%s.larv-lock", target);
    return p;
}

larv_lock *larv_lock_take(const char *target, larv_err *err)
{
    if (larv_check_out_dir(target, err)) /* the writer's own words for a bad directory */
        return NULL;
    larv_lock *l = calloc(1, sizeof *l);
    if (!l || !(l->path = larv_lock_path(target))) {
        free(l);
        larv_fail(err, LARV_EXIT_FAIL, "out of memory");
        return NULL;
    }
    for (;;) {
        l->fd = open(l->path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
        if (l->fd < 0) {
            larv_fail(err, LARV_EXIT_IOERR, "%s: cannot create the lock file %s: %s", target,
                      l->path, strerror(errno));
            break;
        }
        if (flock(l->fd, LOCK_EX | LOCK_NB) != 0) {
            if (errno == EWOULDBLOCK)
                larv_fail(err, LARV_EXIT_IOERR,
                          "%s: another larv run is writing this target (it holds %s); wait for "
                          "it or choose another output",
                          target, l->path);
            else
                larv_fail(err, LARV_EXIT_IOERR, "%s: cannot lock %s: %s", target, l->path,
                          strerror(errno));
            break;
        }
        /* the holder before us may have removed the file after we opened it:
         * the lock counts only on the file that is at the path now */
        struct stat a, b;
        if (fstat(l->fd, &a) == 0 && stat(l->path, &b) == 0 && a.st_dev == b.st_dev &&
            a.st_ino == b.st_ino)
            return l;
        close(l->fd);
    }
    if (l->fd >= 0)
        close(l->fd);
    free(l->path);
    free(l);
    return NULL;
}

void larv_lock_release(larv_lock *l)
{
    if (!l)
        return;
    unlink(l->path); /* while still holding it: a waiter re-checks the path */
    close(l->fd);
    free(l->path);
    free(l);
}
