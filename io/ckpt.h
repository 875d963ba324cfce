/* Checkpoint readers and writers: HDF5 (parallel, MPI-IO driver), safetensors,
 * and sharded safetensors (a Hugging Face `*.safetensors.index.json`).
 * The format is chosen by file name: `.h5`/`.hdf5`, `.safetensors`,
 * `.safetensors.index.json`.
 *
 * Reading is by tensor, never the whole model: a rank reads only the tensors it
 * owns, and any number of ranks may read the same files at once.
 * Every error message names the file and, when known, the tensor. */
#ifndef LARV_IO_CKPT_H
#define LARV_IO_CKPT_H

#include <mpi.h>
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

#include "../src/err.h"
#include "../src/tensor.h"

/* Open an input file for reading, refusing anything but a regular file (a
 * FIFO, a device, a socket or a directory: exit 66, naming the file and what it
 * is) without blocking on it. Returns the descriptor (O_CLOEXEC), or -1.
 * Every reader of checkpoints, shards, indexes and job files goes through it. */
int larv_open_regular(const char *path, larv_err *err);

/* An anonymous scratch file (created and unlinked at once, so nothing is left
 * behind even after a kill) in $TMPDIR, or /tmp when TMPDIR is unset or empty.
 * NULL with exit 74 and a message naming the directory when it cannot be made. */
FILE *larv_scratch_file(larv_err *err);

/* Directories are checkpoints: a directory resolves to DIR/model.safetensors,
 * else DIR/model.safetensors.index.json (as the Hugging Face Hub lays a model
 * out); *kind is then that file name, else NULL. Any other path is given back
 * as it is (*resolved is malloc'd either way). A directory with neither is
 * refused (exit 66), naming what it holds (pytorch_model.bin, tf_model.h5, ...)
 * and how to convert it. larv_ckpt_open resolves its path with it; a command
 * that needs the file name before opening calls it itself. */
int larv_ckpt_resolve(const char *path, char **resolved, const char **kind, larv_err *err);

typedef enum { LARV_FMT_HDF5, LARV_FMT_SAFETENSORS, LARV_FMT_SHARDED } larv_format;

/* From the file name; -1 with a message when the extension is not supported. */
int larv_format_from_path(const char *path, larv_format *fmt, larv_err *err);

/* A key/value string pair of file-level metadata (safetensors `__metadata__`,
 * HDF5 string attributes on the root group). */
typedef struct {
    char *key;
    char *value;
} larv_kv;

typedef struct larv_ckpt larv_ckpt;

/* Open for reading; a directory is resolved first (larv_ckpt_resolve). Collective
 * over comm (every rank of comm must call it with the same path). Validates the whole header/structure before returning.
 * Tensors are listed sorted by name (strcmp order). */
int larv_ckpt_open(const char *path, MPI_Comm comm, larv_ckpt **out, larv_err *err);
/* Collective over the comm given to open. NULL is accepted. */
void larv_ckpt_close(larv_ckpt *c);

/* The file read: for a directory given to open, its model.safetensors or
 * model.safetensors.index.json; larv_ckpt_dir is then that directory, else NULL. */
const char *larv_ckpt_path(const larv_ckpt *c);
const char *larv_ckpt_dir(const larv_ckpt *c);
larv_format larv_ckpt_format(const larv_ckpt *c);
size_t larv_ckpt_ntensors(const larv_ckpt *c);
const larv_tensor_info *larv_ckpt_tensor(const larv_ckpt *c, size_t i);
/* Index of the tensor with that name, or -1. */
long larv_ckpt_find(const larv_ckpt *c, const char *name);
/* Restrict the tensor list to names[0 .. n) (sorted by name, no duplicates),
 * so that tensor i is names[i] in every checkpoint a merge restricts to the
 * same list. A name this checkpoint lacks becomes an absent entry that
 * describes like[i] (the tensor of another checkpoint) and that no read
 * accepts; larv_ckpt_absent says which. Collective over the comm given to open
 * (HDF5 closes the datasets left out); every rank passes the same list. */
int larv_ckpt_select(larv_ckpt *c, const char *const *names, const larv_tensor_info *const *like,
                     size_t n, larv_err *err);
int larv_ckpt_absent(const larv_ckpt *c, size_t i);
/* Total bytes on disk (all shards for a sharded checkpoint). */
uint64_t larv_ckpt_file_bytes(const larv_ckpt *c);
/* File-level metadata; NULL when absent. */
const char *larv_ckpt_meta(const larv_ckpt *c, const char *key);
size_t larv_ckpt_nmeta(const larv_ckpt *c);
const larv_kv *larv_ckpt_meta_at(const larv_ckpt *c, size_t i);

/* Independent (non-collective) reads.
 * read: the tensor's raw bytes in its own dtype (nbytes into dst).
 * read_range: elements [first, first+count) of the flattened tensor, raw.
 * read_f32 / read_f64: converted (float dtypes only; error otherwise). */
int larv_ckpt_read(larv_ckpt *c, size_t i, void *dst, larv_err *err);
int larv_ckpt_read_range(larv_ckpt *c, size_t i, uint64_t first, uint64_t count, void *dst,
                         larv_err *err);
int larv_ckpt_read_f32(larv_ckpt *c, size_t i, float *dst, larv_err *err);
int larv_ckpt_read_f64(larv_ckpt *c, size_t i, double *dst, larv_err *err);

typedef struct larv_writer larv_writer;

typedef struct {
    /* sharded safetensors only: largest shard in bytes (0 = 5 GB, as HF) */
    uint64_t max_shard_bytes;
    /* Nothing half-written: every file is created under a temporary name
     * ("<name>.larv-tmp") beside its target and renamed into place by
     * larv_writer_close only when all ranks succeeded (the index of a sharded
     * checkpoint last); on failure or abort the temporaries are removed and any
     * earlier file at the target is left untouched. */
    int atomic;
    /* Room kept for metadata given later by larv_writer_set_meta (bytes of
     * JSON in a safetensors header; HDF5 needs none). */
    size_t meta_reserve;
    /* When set (io/fileset.h): every path the writer will write (the file,
     * each shard, their temporaries) is claimed in it before anything is
     * created, so that no output replaces an input or another output. */
    struct larv_fileset *guard;
} larv_writer_opts;

/* Create a checkpoint at `path` (format from its name). Collective over comm:
 * every rank passes the same tensor list (any order; the file lists them by
 * name) and the same metadata. opts may be NULL (defaults; atomic = 0). */
int larv_writer_create(const char *path, MPI_Comm comm, const larv_tensor_info *tensors,
                       size_t n, const larv_kv *meta, size_t nmeta, const larv_writer_opts *opts,
                       larv_writer **out, larv_err *err);
/* Resume: reopen, for writing, the temporary files that an interrupted atomic
 * writer left at path (a killed job; a failed one removes them). Collective;
 * the arguments must be those given to larv_writer_create (opts->atomic set).
 * Checks that the temporaries hold exactly the layout create would make
 * (safetensors: the header bytes and the file size; HDF5: every dataset's type
 * and shape and the metadata attributes), but not the tensor data: the caller
 * re-reads what it wants to keep (larv_writer_read) and rewrites the rest.
 * Returns 0 with *out set; 1 on every rank (*out NULL, the reason in err with
 * code 0) when there is nothing to resume (no temporary, or one of another
 * layout), and the caller creates the file instead; -1 on a failure. */
int larv_writer_reopen(const char *path, MPI_Comm comm, const larv_tensor_info *tensors,
                       size_t n, const larv_kv *meta, size_t nmeta, const larv_writer_opts *opts,
                       larv_writer **out, larv_err *err);
/* Independent: read back the raw bytes of tensor i from the file being written
 * (nbytes into dst), e.g. to check what an interrupted run wrote. */
int larv_writer_read(larv_writer *w, size_t i, void *dst, larv_err *err);
/* Independent: write tensor i (index into the list given to create) from raw
 * bytes in its dtype. Each tensor is written by exactly one rank. */
int larv_writer_write(larv_writer *w, size_t i, const void *data, larv_err *err);
/* Collective, before close: add file-level metadata known only at the end
 * (provenance, checksums). safetensors: rewrites the header in place, which
 * must fit in the room reserved by opts.meta_reserve (else an error). */
int larv_writer_set_meta(larv_writer *w, const larv_kv *meta, size_t nmeta, larv_err *err);
/* Collective: flush and close. Returns -1 if this or any other rank failed. */
int larv_writer_close(larv_writer *w, larv_err *err);
/* Collective: close without checks after a failure (the caller removes the file). */
void larv_writer_abort(larv_writer *w);
/* For sharded output: every file that create made (the index and the shards),
 * so a caller can rename or remove them. */
size_t larv_writer_nfiles(const larv_writer *w);
const char *larv_writer_file(const larv_writer *w, size_t i);

#endif
