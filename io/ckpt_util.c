/* io/'s shared helpers (ckpt_impl.h): file reads and writes, paths, metadata
 * lists, the writer's claim on its paths. ckpt.c and the format backends
 * (safetensors.c, sharded.c, hdf5.c) call them; they call neither. */
#include "ckpt_impl.h"
#include "fileset.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int larv_open_regular(const char *path, larv_err *err)
{
    /* O_NONBLOCK: opening a FIFO with no writer must not wait for one */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0)
        return larv_fail(err, LARV_EXIT_NOINPUT, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    const char *what = NULL;
    if (fstat(fd, &st) != 0)
        what = "cannot be examined";
    else if (S_ISDIR(st.st_mode))
        what = "is a directory";
    else if (S_ISFIFO(st.st_mode))
        what = "is a FIFO (named pipe)";
    else if (S_ISSOCK(st.st_mode))
        what = "is a socket";
    else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode))
        what = "is a device";
    else if (!S_ISREG(st.st_mode))
        what = "is not a regular file";
    int fl = what ? -1 : fcntl(fd, F_GETFL);
    if (!what && (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0))
        what = "cannot be opened for blocking reads";
    if (what) {
        close(fd);
        return larv_fail(err, LARV_EXIT_NOINPUT, "%s: %s; only regular files are read", path,
                         what);
    }
    return fd;
}

FILE *larv_scratch_file(larv_err *err)
{
    const char *dir = getenv("TMPDIR");
    if (!dir || !*dir)
        dir = "/tmp";
    char *path = larv_strdup_printf("%s/larv-scratch-XXXXXX", dir);
    if (!path) {
        larv_fail(err, LARV_EXIT_FAIL, "out of memory");
        return NULL;
    }
    int fd = mkstemp(path);
    FILE *f = NULL;
    if (fd < 0) {
        larv_fail(err, LARV_EXIT_IOERR,
                  "cannot create a scratch file in %s (TMPDIR%s): %s", dir,
                  getenv("TMPDIR") && *getenv("TMPDIR") ? "" : " is unset", strerror(errno));
    } else {
        unlink(path);
        f = fdopen(fd, "w+b");
        if (!f) {
            larv_fail(err, LARV_EXIT_IOERR, "scratch file in %s: %s", dir, strerror(errno));
            close(fd);
        }
    }
    free(path);
    return f;
}

int larv_pread_full(int fd, void *buf, uint64_t n, uint64_t off, const char *fname,
                    larv_err *err)
{
    char *p = buf;
    while (n > 0) {
        size_t want = n > LARV_IO_CHUNK ? (size_t)LARV_IO_CHUNK : (size_t)n;
        if (off > (uint64_t)INT64_MAX)
            return larv_fail(err, LARV_EXIT_DATAERR, "%s: offset %llu out of range", fname,
                             (unsigned long long)off);
        ssize_t got = pread(fd, p, want, (off_t)off);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            return larv_fail(err, LARV_EXIT_NOINPUT, "%s: read error at byte %llu: %s", fname,
                             (unsigned long long)off, strerror(errno));
        }
        if (got == 0)
            return larv_fail(err, LARV_EXIT_DATAERR,
                             "%s: unexpected end of file at byte %llu (file truncated?)", fname,
                             (unsigned long long)off);
        p += got;
        n -= (uint64_t)got;
        off += (uint64_t)got;
    }
    return 0;
}

int larv_pwrite_full(int fd, const void *buf, uint64_t n, uint64_t off, const char *fname,
                     larv_err *err)
{
    const char *p = buf;
    while (n > 0) {
        size_t want = n > LARV_IO_CHUNK ? (size_t)LARV_IO_CHUNK : (size_t)n;
        ssize_t put = pwrite(fd, p, want, (off_t)off);
        if (put < 0) {
            if (errno == EINTR)
                continue;
            return larv_fail(err, LARV_EXIT_IOERR, "%s: write error at byte %llu: %s", fname,
                             (unsigned long long)off, strerror(errno));
        }
        p += put;
        n -= (uint64_t)put;
        off += (uint64_t)put;
    }
    return 0;
}

int larv_check_out_dir(const char *path, larv_err *err)
{
    char *dir = larv_dirname(path);
    if (!dir)
        return larv_fail(err, LARV_EXIT_FAIL, "out of memory");
    struct stat st;
    int rc = 0;
    if (stat(dir, &st) != 0)
        rc = larv_fail(err, LARV_EXIT_IOERR, "%s: cannot create: directory '%s' does not exist",
                       path, dir);
    else if (!S_ISDIR(st.st_mode))
        rc = larv_fail(err, LARV_EXIT_IOERR, "%s: cannot create: '%s' is not a directory", path,
                       dir);
    else if (access(dir, W_OK | X_OK) != 0)
        rc = larv_fail(err, LARV_EXIT_IOERR, "%s: cannot create: directory '%s' is not writable",
                       path, dir);
    free(dir);
    return rc;
}

void larv_kv_free(larv_kv *kv, size_t n)
{
    if (!kv)
        return;
    for (size_t i = 0; i < n; i++) {
        free(kv[i].key);
        free(kv[i].value);
    }
    free(kv);
}

static int kv_cmp(const void *a, const void *b)
{
    return strcmp(((const larv_kv *)a)->key, ((const larv_kv *)b)->key);
}

void larv_kv_sort(larv_kv *kv, size_t n)
{
    if (n > 1)
        qsort(kv, n, sizeof *kv, kv_cmp);
}

int larv_kv_copy(larv_kv **dst, const larv_kv *src, size_t n)
{
    *dst = NULL;
    if (n == 0)
        return 0;
    larv_kv *kv = calloc(n, sizeof *kv);
    if (!kv)
        return -1;
    for (size_t i = 0; i < n; i++) {
        kv[i].key = strdup(src[i].key ? src[i].key : "");
        kv[i].value = strdup(src[i].value ? src[i].value : "");
        if (!kv[i].key || !kv[i].value) {
            larv_kv_free(kv, n);
            return -1;
        }
    }
    *dst = kv;
    return 0;
}

int larv_name_cmp_info(const void *a, const void *b)
{
    return strcmp(((const larv_tensor_info *)a)->name, ((const larv_tensor_info *)b)->name);
}

int larv_writer_claim_paths(larv_writer *w, larv_err *err)
{
    int rc = 0;
    for (size_t k = 0; w->guard && k < w->nfiles && rc == 0; k++) {
        rc = larv_fileset_claim(w->guard, w->final_paths[k], k ? "the output shard" : "the output",
                                err);
        if (rc == 0 && w->tmp_paths[k] != w->final_paths[k])
            rc = larv_fileset_claim(w->guard, w->tmp_paths[k], "the temporary output", err);
    }
    if (rc)
        w->atomic = 0; /* the cleanup of a failed create must not remove what it names */
    return rc;
}
