/* Checkpoint I/O: format dispatch, reads with conversion, and the writer's
 * life cycle (temporaries, agreement between ranks, renames). It calls into
 * the format backends (safetensors.c, sharded.c, hdf5.c); the helpers both
 * share are in ckpt_util.c. */
#include "ckpt_impl.h"
#include "../src/str.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- format ------------------------------------------------------------------------- */

int larv_format_from_path(const char *path, larv_format *fmt, larv_err *err)
{
    if (!path || !*path)
        return larv_fail(err, LARV_EXIT_USAGE, "empty file name");
    if (larv_ends_with(path, ".safetensors.index.json"))
        *fmt = LARV_FMT_SHARDED;
    else if (larv_ends_with(path, ".safetensors"))
        *fmt = LARV_FMT_SAFETENSORS;
    else if (larv_ends_with(path, ".h5") || larv_ends_with(path, ".hdf5"))
        *fmt = LARV_FMT_HDF5;
    else
        return larv_fail(err, LARV_EXIT_USAGE,
                         "%s: unknown checkpoint format (the name must end in .h5, .hdf5, "
                         ".safetensors or .safetensors.index.json)",
                         path);
    return 0;
}

/* ---- reader --------------------------------------------------------------------------- */

int larv_ckpt_open(const char *path, MPI_Comm comm, larv_ckpt **out, larv_err *err)
{
    *out = NULL;
    larv_format fmt;
    char *file = NULL; /* a directory: its model.safetensors[.index.json] */
    const char *kind = NULL;
    int rc = larv_ckpt_resolve(path, &file, &kind, err);
    if (rc == 0)
        rc = larv_format_from_path(file, &fmt, err);
    if (larv_coll_check(comm, rc, err)) {
        free(file);
        return -1;
    }
    larv_ckpt *c = calloc(1, sizeof *c);
    if (!c || (kind && !(c->dir = strdup(path)))) {
        free(c ? c->dir : NULL);
        free(c);
        free(file);
        larv_fail(err, LARV_EXIT_FAIL, "out of memory");
        larv_coll_check(comm, -1, err);
        return -1;
    }
    c->path = file;
    c->fmt = fmt;
    c->comm = comm;
    c->fid = H5I_INVALID_HID;
    switch (fmt) {
    case LARV_FMT_SAFETENSORS:
        rc = larv_st_ckpt_open(c, err);
        break;
    case LARV_FMT_SHARDED:
        rc = larv_sharded_ckpt_open(c, err);
        break;
    case LARV_FMT_HDF5:
        rc = larv_h5_ckpt_open(c, err); /* agrees internally (collective HDF5 calls) */
        break;
    }
    if (larv_coll_check(comm, rc, err)) {
        larv_ckpt_close(c);
        return -1;
    }
    *out = c;
    return 0;
}

void larv_ckpt_close(larv_ckpt *c)
{
    if (!c)
        return;
    if (c->fmt == LARV_FMT_HDF5)
        larv_h5_ckpt_close(c);
    for (size_t i = 0; i < c->nfiles; i++) {
        if (c->files[i].fd >= 0)
            close(c->files[i].fd);
        free(c->files[i].path);
    }
    free(c->files);
    for (size_t i = 0; i < c->n; i++)
        larv_tensor_info_free(&c->t[i]);
    free(c->t);
    larv_kv_free(c->meta, c->nmeta);
    free(c->tfile);
    free(c->toff);
    free(c->absent);
    free(c->path);
    free(c->dir);
    free(c);
}

const char *larv_ckpt_path(const larv_ckpt *c) { return c->path; }
const char *larv_ckpt_dir(const larv_ckpt *c) { return c->dir; }
larv_format larv_ckpt_format(const larv_ckpt *c) { return c->fmt; }
size_t larv_ckpt_ntensors(const larv_ckpt *c) { return c->n; }
uint64_t larv_ckpt_file_bytes(const larv_ckpt *c) { return c->file_bytes; }
size_t larv_ckpt_nmeta(const larv_ckpt *c) { return c->nmeta; }

const larv_tensor_info *larv_ckpt_tensor(const larv_ckpt *c, size_t i)
{
    return i < c->n ? &c->t[i] : NULL;
}

const larv_kv *larv_ckpt_meta_at(const larv_ckpt *c, size_t i)
{
    return i < c->nmeta ? &c->meta[i] : NULL;
}

long larv_ckpt_find(const larv_ckpt *c, const char *name)
{
    return larv_tensor_find(c->t, c->n, name);
}

const char *larv_ckpt_meta(const larv_ckpt *c, const char *key)
{
    for (size_t i = 0; i < c->nmeta; i++)
        if (strcmp(c->meta[i].key, key) == 0)
            return c->meta[i].value;
    return NULL;
}

int larv_ckpt_read_range(larv_ckpt *c, size_t i, uint64_t first, uint64_t count, void *dst,
                         larv_err *err)
{
    if (i >= c->n)
        return larv_fail(err, LARV_EXIT_FAIL, "%s: tensor index %zu out of range (%zu tensors)",
                         c->path, i, c->n);
    const larv_tensor_info *t = &c->t[i];
    if (c->absent && c->absent[i])
        return larv_fail(err, LARV_EXIT_FAIL, "%s: tensor '%s' is not in this checkpoint", c->path,
                         t->name);
    if (first > t->numel || count > t->numel - first)
        return larv_fail(err, LARV_EXIT_FAIL,
                         "%s: tensor '%s': elements [%llu, +%llu) out of range (%llu elements)",
                         c->path, t->name, (unsigned long long)first, (unsigned long long)count,
                         (unsigned long long)t->numel);
    if (count == 0)
        return 0;
    if (c->fmt == LARV_FMT_HDF5)
        return larv_h5_read_range(c, i, first, count, dst, err);
    size_t es = larv_dtype_size(t->dtype);
    const larv_st_file *f = &c->files[c->tfile[i]];
    if (larv_pread_full(f->fd, dst, count * es, c->toff[i] + first * es, f->path, err))
        return larv_err_prefix(err, "tensor '%s'", t->name);
    return 0;
}

/* Benchmark hook (tests/bench/overlap.sh): LARV_TEST_READ_MBPS=N makes a
 * whole-tensor read last at least nbytes / (N MB/s), as from a file system
 * that gives this process N MB/s (the page cache here is far faster). */
static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int larv_ckpt_read(larv_ckpt *c, size_t i, void *dst, larv_err *err)
{
    if (i >= c->n)
        return larv_fail(err, LARV_EXIT_FAIL, "%s: tensor index %zu out of range (%zu tensors)",
                         c->path, i, c->n);
    const char *hook = getenv("LARV_TEST_READ_MBPS");
    double mbps = hook ? atof(hook) : 0, t0 = mbps > 0 ? now_s() : 0;
    int rc = larv_ckpt_read_range(c, i, 0, c->t[i].numel, dst, err);
    double left = mbps > 0 ? (double)c->t[i].nbytes / (mbps * 1e6) - (now_s() - t0) : 0;
    if (rc == 0 && left > 0) {
        struct timespec ts = {(time_t)left, (long)((left - (double)(time_t)left) * 1e9)};
        nanosleep(&ts, NULL);
    }
    return rc;
}

/* Converted reads: native dtype straight into dst, others through a bounded buffer. */
static int read_conv(larv_ckpt *c, size_t i, void *dst, int f64, larv_err *err)
{
    if (i >= c->n)
        return larv_fail(err, LARV_EXIT_FAIL, "%s: tensor index %zu out of range (%zu tensors)",
                         c->path, i, c->n);
    const larv_tensor_info *t = &c->t[i];
    if (!larv_dtype_is_float(t->dtype))
        return larv_fail(err, LARV_EXIT_DATAERR,
                         "%s: tensor '%s': dtype %s is not a float type (no conversion to %s)",
                         c->path, t->name, larv_dtype_name(t->dtype), f64 ? "F64" : "F32");
    if (t->dtype == (f64 ? LARV_F64 : LARV_F32))
        return larv_ckpt_read(c, i, dst, err);
    size_t es = larv_dtype_size(t->dtype);
    uint64_t step = ((uint64_t)4 << 20) / es;
    void *tmp = malloc((size_t)(t->numel < step ? (t->numel ? t->numel : 1) : step) * es);
    if (!tmp)
        return larv_fail(err, LARV_EXIT_FAIL, "out of memory");
    int rc = 0;
    for (uint64_t at = 0; at < t->numel && rc == 0; at += step) {
        uint64_t m = t->numel - at < step ? t->numel - at : step;
        rc = larv_ckpt_read_range(c, i, at, m, tmp, err);
        if (rc == 0) {
            if (f64)
                larv_to_f64(t->dtype, tmp, (double *)dst + at, (size_t)m);
            else
                larv_to_f32(t->dtype, tmp, (float *)dst + at, (size_t)m);
        }
    }
    free(tmp);
    return rc;
}

int larv_ckpt_read_f32(larv_ckpt *c, size_t i, float *dst, larv_err *err)
{
    return read_conv(c, i, dst, 0, err);
}

int larv_ckpt_read_f64(larv_ckpt *c, size_t i, double *dst, larv_err *err)
{
    return read_conv(c, i, dst, 1, err);
}

/* ---- writer ------------------------------------------------------------------------------ */

static void writer_free(larv_writer *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->n; i++)
        larv_tensor_info_free(&w->t[i]);
    free(w->t);
    for (size_t k = 0; k < w->nfiles; k++) {
        if (w->tmp_paths && w->tmp_paths[k] != w->final_paths[k])
            free(w->tmp_paths[k]);
        free(w->final_paths[k]);
    }
    free(w->final_paths);
    free(w->tmp_paths);
    free(w->fds);
    free(w->tfile);
    free(w->toff);
    free(w->index_json);
    larv_kv_free(w->meta, w->nmeta);
    free(w->order);
    free(w->shard_start);
    free(w->dsets);
    free(w);
}

/* Close the local handles (collective for HDF5); returns -1 on a local failure. */
static int writer_close_handles(larv_writer *w, larv_err *err)
{
    int rc = 0;
    if (w->fmt == LARV_FMT_HDF5) {
        rc = larv_h5_writer_close(w, err);
    } else if (w->fds) {
        size_t first = w->fmt == LARV_FMT_SHARDED ? 1 : 0;
        for (size_t k = first; k < w->nfiles; k++) {
            int fd = w->fds[k];
            if (fd < 0)
                continue;
            if (!w->failed && rc == 0 && fsync(fd) != 0 && errno != EINVAL && errno != EROFS)
                rc = larv_fail(err, LARV_EXIT_IOERR, "%s: cannot flush: %s", w->tmp_paths[k],
                               strerror(errno));
            if (close(fd) != 0 && rc == 0 && !w->failed)
                rc = larv_fail(err, LARV_EXIT_IOERR, "%s: cannot close: %s", w->tmp_paths[k],
                               strerror(errno));
            w->fds[k] = -1;
        }
    }
    return rc;
}

static void writer_remove_tmp(larv_writer *w)
{
    if (!w->atomic || w->rank != 0)
        return;
    for (size_t k = 0; k < w->nfiles; k++)
        unlink(w->tmp_paths[k]);
}

/* Rank 0: index (sharded) then renames (atomic), shards first, index last. */
static int writer_commit_rank0(larv_writer *w, larv_err *err)
{
    if (w->fmt == LARV_FMT_SHARDED) {
        free(w->index_json);
        w->index_json = larv_st_build_index(w);
        if (!w->index_json)
            return larv_fail(err, LARV_EXIT_FAIL, "%s: cannot encode the index", w->tmp_paths[0]);
        FILE *f = fopen(w->tmp_paths[0], "wb");
        if (!f)
            return larv_fail(err, LARV_EXIT_IOERR, "%s: cannot create: %s", w->tmp_paths[0],
                             strerror(errno));
        size_t len = strlen(w->index_json);
        int bad = fwrite(w->index_json, 1, len, f) != len;
        bad |= fflush(f) != 0;
        if (!bad)
            fsync(fileno(f));
        bad |= fclose(f) != 0;
        if (bad)
            return larv_fail(err, LARV_EXIT_IOERR, "%s: write error: %s", w->tmp_paths[0],
                             strerror(errno));
    }
    if (!w->atomic)
        return 0;
    size_t order_first = w->fmt == LARV_FMT_SHARDED ? 1 : 0;
    for (size_t j = 0; j < w->nfiles; j++) {
        /* sharded: shards 1..n-1 first, then the index (file 0) */
        size_t k = order_first ? (j + 1 < w->nfiles ? j + 1 : 0) : j;
        if (rename(w->tmp_paths[k], w->final_paths[k]) != 0)
            return larv_fail(err, LARV_EXIT_IOERR, "%s: cannot rename into place as %s: %s",
                             w->tmp_paths[k], w->final_paths[k], strerror(errno));
    }
    char *dir = larv_dirname(w->final_paths[0]);
    if (dir) { /* make the renames durable */
        FILE *d = fopen(dir, "r");
        if (d) {
            fsync(fileno(d));
            fclose(d);
        }
        free(dir);
    }
    return 0;
}

static int writer_open(const char *path, MPI_Comm comm, const larv_tensor_info *tensors,
                       size_t n, const larv_kv *meta, size_t nmeta, const larv_writer_opts *opts,
                       int reopen, larv_writer **out, larv_err *err)
{
    *out = NULL;
    larv_format fmt;
    int rc = larv_format_from_path(path, &fmt, err);
    if (rc == 0 && reopen && !(opts && opts->atomic))
        rc = larv_fail(err, LARV_EXIT_FAIL, "%s: only an atomic writer can be reopened", path);
    if (rc == 0)
        rc = larv_check_out_dir(path, err);
    if (larv_coll_check(comm, rc, err))
        return -1;
    larv_writer *w = calloc(1, sizeof *w);
    if (!w) {
        larv_fail(err, LARV_EXIT_FAIL, "out of memory");
        larv_coll_check(comm, -1, err);
        return -1;
    }
    w->fmt = fmt;
    w->comm = comm;
    MPI_Comm_rank(comm, &w->rank);
    MPI_Comm_size(comm, &w->size);
    w->atomic = opts ? opts->atomic : 0;
    w->reopen = reopen;
    w->guard = opts ? opts->guard : NULL;
    w->fid = H5I_INVALID_HID;
    w->t = calloc(n ? n : 1, sizeof *w->t);
    rc = w->t ? 0 : larv_fail(err, LARV_EXIT_FAIL, "out of memory");
    for (size_t i = 0; i < n && rc == 0; i++) {
        larv_tensor_info ti = tensors[i];
        if (!ti.name || !*ti.name) {
            rc = larv_fail(err, LARV_EXIT_FAIL, "%s: tensor %zu has an empty name", path, i);
            break;
        }
        if (fmt != LARV_FMT_HDF5 && strcmp(ti.name, "__metadata__") == 0) {
            rc = larv_fail(err, LARV_EXIT_FAIL,
                           "%s: tensor '__metadata__': the name is reserved in safetensors", path);
            break;
        }
        if (larv_tensor_info_finish(&ti, ti.name, err)) {
            rc = larv_err_prefix(err, "%s", path);
            break;
        }
        if (larv_tensor_info_copy(&w->t[i], &ti)) {
            rc = larv_fail(err, LARV_EXIT_FAIL, "out of memory");
            break;
        }
        w->n = i + 1;
    }
    if (rc == 0 && n > 1) { /* duplicate names */
        larv_tensor_info *s = malloc(n * sizeof *s);
        if (!s) {
            rc = larv_fail(err, LARV_EXIT_FAIL, "out of memory");
        } else {
            memcpy(s, w->t, n * sizeof *s);
            qsort(s, n, sizeof *s, larv_name_cmp_info);
            for (size_t i = 1; i < n && rc == 0; i++)
                if (strcmp(s[i - 1].name, s[i].name) == 0)
                    rc = larv_fail(err, LARV_EXIT_FAIL, "%s: tensor '%s' is listed twice", path,
                                   s[i].name);
            free(s);
        }
    }
    for (size_t i = 0; i < nmeta && rc == 0; i++)
        if (!meta[i].key || !*meta[i].key || !meta[i].value)
            rc = larv_fail(err, LARV_EXIT_FAIL, "%s: metadata entry %zu has no key or value", path,
                           i);
    if (larv_coll_check(comm, rc, err)) {
        writer_free(w);
        return -1;
    }
    if (fmt == LARV_FMT_HDF5) {
        w->nfiles = 1;
        w->final_paths = calloc(1, sizeof(char *));
        w->tmp_paths = calloc(1, sizeof(char *));
        rc = -1;
        if (w->final_paths && w->tmp_paths && (w->final_paths[0] = strdup(path))) {
            w->tmp_paths[0] = w->atomic ? larv_strdup_printf("%s%s", path, LARV_TMP_SUFFIX)
                                        : w->final_paths[0];
            if (w->tmp_paths[0])
                rc = 0;
        }
        if (rc)
            larv_fail(err, LARV_EXIT_FAIL, "out of memory");
        else
            rc = larv_writer_claim_paths(w, err);
        if (larv_coll_check(comm, rc, err)) {
            writer_free(w);
            return -1;
        }
        rc = larv_kv_copy(&w->meta, meta, nmeta) ? larv_fail(err, LARV_EXIT_FAIL, "out of memory") : 0;
        w->nmeta = rc ? 0 : nmeta;
        larv_kv_sort(w->meta, w->nmeta);
        if (larv_coll_check(comm, rc, err)) {
            writer_free(w);
            return -1;
        }
        rc = larv_h5_writer_create(w, meta, nmeta, err); /* agrees internally */
    } else {
        uint64_t max_shard = opts && opts->max_shard_bytes ? opts->max_shard_bytes
                                                           : (uint64_t)5000000000ull;
        rc = larv_st_writer_create(w, path, meta, nmeta, max_shard, opts ? opts->meta_reserve : 0,
                                   err); /* agrees internally */
    }
    if (rc) {
        if (!reopen) /* a reopen that failed leaves the temporaries as they were */
            writer_remove_tmp(w);
        writer_free(w);
        return -1;
    }
    *out = w;
    return 0;
}

int larv_writer_create(const char *path, MPI_Comm comm, const larv_tensor_info *tensors,
                       size_t n, const larv_kv *meta, size_t nmeta, const larv_writer_opts *opts,
                       larv_writer **out, larv_err *err)
{
    return writer_open(path, comm, tensors, n, meta, nmeta, opts, 0, out, err);
}

int larv_writer_reopen(const char *path, MPI_Comm comm, const larv_tensor_info *tensors,
                       size_t n, const larv_kv *meta, size_t nmeta, const larv_writer_opts *opts,
                       larv_writer **out, larv_err *err)
{
    larv_err local;
    larv_err_clear(&local);
    int rc = writer_open(path, comm, tensors, n, meta, nmeta, opts, 1, out, &local);
    if (rc && local.code == LARV_REOPEN_NOMATCH) {
        local.code = 0;
        rc = 1;
    }
    if (rc && err)
        *err = local;
    return rc;
}

int larv_writer_read(larv_writer *w, size_t i, void *dst, larv_err *err)
{
    if (i >= w->n)
        return larv_fail(err, LARV_EXIT_FAIL, "%s: tensor index %zu out of range (%zu tensors)",
                         w->final_paths[0], i, w->n);
    if (w->fmt == LARV_FMT_HDF5)
        return larv_h5_writer_read(w, i, dst, err);
    size_t k = w->tfile[i];
    if (larv_pread_full(w->fds[k], dst, w->t[i].nbytes, w->toff[i], w->tmp_paths[k], err))
        return larv_err_prefix(err, "tensor '%s'", w->t[i].name);
    return 0;
}

int larv_writer_write(larv_writer *w, size_t i, const void *data, larv_err *err)
{
    if (i >= w->n) {
        if (!w->failed)
            larv_fail(&w->ferr, LARV_EXIT_FAIL, "%s: tensor index %zu out of range",
                      w->final_paths[0], i);
        w->failed = 1;
        return larv_fail(err, LARV_EXIT_FAIL, "%s: tensor index %zu out of range (%zu tensors)",
                         w->final_paths[0], i, w->n);
    }
    int rc;
    if (w->fmt == LARV_FMT_HDF5) {
        rc = larv_h5_writer_write(w, i, data, err);
    } else {
        size_t k = w->tfile[i];
        rc = larv_pwrite_full(w->fds[k], data, w->t[i].nbytes, w->toff[i], w->tmp_paths[k], err);
        if (rc)
            larv_err_prefix(err, "tensor '%s'", w->t[i].name);
    }
    if (rc && !w->failed) {
        w->failed = 1;
        if (err)
            w->ferr = *err;
        else
            larv_fail(&w->ferr, LARV_EXIT_IOERR, "%s: tensor '%s': write failed",
                      w->final_paths[0], w->t[i].name);
    }
    return rc;
}

int larv_writer_close(larv_writer *w, larv_err *err)
{
    if (!w)
        return 0;
    larv_err local;
    larv_err_clear(&local);
    int rc = 0;
    if (w->failed) {
        rc = -1;
        local = w->ferr;
    }
    if (writer_close_handles(w, rc ? NULL : &local))
        rc = -1;
    rc = larv_coll_check(w->comm, rc, &local);
    if (rc == 0) {
        int rc0 = 0;
        if (w->rank == 0)
            rc0 = writer_commit_rank0(w, &local);
        rc = larv_coll_check(w->comm, rc0, &local);
    }
    if (rc) {
        if (w->rank == 0 && w->atomic)
            for (size_t k = 0; k < w->nfiles; k++)
                unlink(w->tmp_paths[k]);
        if (err)
            *err = local;
    }
    writer_free(w);
    return rc;
}

void larv_writer_abort(larv_writer *w)
{
    if (!w)
        return;
    w->failed = 1;
    writer_close_handles(w, NULL);
    /* every rank has closed its handles before the temporaries go */
    larv_err e;
    if (LARV_MPI(MPI_Barrier(w->comm), &e))
        larv_mpi_fatal(&e);
    writer_remove_tmp(w);
    writer_free(w);
}

int larv_writer_set_meta(larv_writer *w, const larv_kv *meta, size_t nmeta, larv_err *err)
{
    int rc = 0;
    for (size_t i = 0; i < nmeta && rc == 0; i++)
        if (!meta[i].key || !*meta[i].key || !meta[i].value)
            rc = larv_fail(err, LARV_EXIT_FAIL, "%s: metadata entry %zu has no key or value",
                           w->final_paths[0], i);
    /* merge: new keys replace old ones */
    larv_kv *m = NULL;
    size_t nm = 0;
    if (rc == 0) {
        m = calloc(w->nmeta + nmeta + 1, sizeof *m);
        if (!m)
            rc = larv_fail(err, LARV_EXIT_FAIL, "out of memory");
    }
    for (size_t i = 0; i < w->nmeta && rc == 0; i++) {
        size_t j = 0;
        while (j < nmeta && strcmp(meta[j].key, w->meta[i].key) != 0)
            j++;
        if (j < nmeta)
            continue;
        m[nm].key = strdup(w->meta[i].key);
        m[nm].value = strdup(w->meta[i].value);
        nm++;
        if (!m[nm - 1].key || !m[nm - 1].value)
            rc = larv_fail(err, LARV_EXIT_FAIL, "out of memory");
    }
    for (size_t j = 0; j < nmeta && rc == 0; j++) {
        size_t k = 0;
        while (k < j && strcmp(meta[k].key, meta[j].key) != 0)
            k++;
        if (k < j)
            continue; /* repeated key in the call: the first wins */
        m[nm].key = strdup(meta[j].key);
        m[nm].value = strdup(meta[j].value);
        nm++;
        if (!m[nm - 1].key || !m[nm - 1].value)
            rc = larv_fail(err, LARV_EXIT_FAIL, "out of memory");
    }
    if (rc == 0) {
        larv_kv_sort(m, nm);
        larv_kv_free(w->meta, w->nmeta);
        w->meta = m;
        w->nmeta = nm;
        m = NULL;
        if (w->fmt == LARV_FMT_HDF5)
            rc = larv_h5_writer_set_meta(w, meta, nmeta, err);
        else
            rc = larv_st_writer_set_meta(w, err);
    }
    larv_kv_free(m, nm);
    rc = larv_coll_check(w->comm, rc, err);
    if (rc && !w->failed) {
        w->failed = 1;
        if (err)
            w->ferr = *err;
    }
    return rc;
}

size_t larv_writer_nfiles(const larv_writer *w) { return w->nfiles; }

const char *larv_writer_file(const larv_writer *w, size_t i)
{
    return i < w->nfiles ? w->final_paths[i] : NULL;
}
