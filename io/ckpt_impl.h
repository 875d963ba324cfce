/* Private to io/: the structures behind larv_ckpt / larv_writer and the
 * parsers of untrusted headers (exposed for the fuzz targets). */
#ifndef LARV_IO_CKPT_IMPL_H
#define LARV_IO_CKPT_IMPL_H

#include <hdf5.h>
#include <stdint.h>

#include "../src/str.h"
#include "ckpt.h"
#include "coll.h"

/* Bounds on untrusted input. */
#define LARV_ST_MAX_HEADER (100u * 1024u * 1024u) /* safetensors JSON header */
#define LARV_INDEX_MAX_BYTES (64u * 1024u * 1024u) /* sharded index JSON */
#define LARV_IO_CHUNK ((uint64_t)1 << 30)          /* largest single pread/pwrite/H5D I/O */
#define LARV_TMP_SUFFIX ".larv-tmp"
/* larv_writer_reopen: the temporaries are absent or were made for another
 * layout (an err code that never leaves io/; reopen returns 1 for it). */
#define LARV_REOPEN_NOMATCH 1000

/* ---- safetensors header ---------------------------------------------------- */

typedef struct {
    size_t n;
    larv_tensor_info *t; /* sorted by name */
    uint64_t *begin;     /* data_offsets[0] of t[i], relative to the data start */
    size_t nmeta;
    larv_kv *meta;       /* "__metadata__", sorted by key */
} larv_st_header;

/* Check the 8-byte header length against the bounds and the file size. */
int larv_st_check_header_len(const char *fname, uint64_t hlen, uint64_t file_size, larv_err *err);
/* Parse and validate the JSON header (len bytes, not NUL-terminated) of a file
 * whose data section (after the header) is data_bytes long. On success fills h
 * (free with larv_st_header_free); on failure h is left empty. */
int larv_st_parse_header(const char *fname, const char *json, size_t len, uint64_t data_bytes,
                         larv_st_header *h, larv_err *err);
void larv_st_header_free(larv_st_header *h);

/* ---- sharded index ------------------------------------------------------------- */

typedef struct {
    size_t n;          /* weight_map entries, sorted by tensor name */
    char **names;
    size_t *shard;     /* index into shards */
    size_t nshards;    /* distinct shard files, sorted */
    char **shards;     /* as written in the index (relative to its directory) */
    size_t nmeta;      /* "metadata" minus "total_size"; non-string values as compact JSON */
    larv_kv *meta;
} larv_index;

int larv_index_parse(const char *fname, const char *json, size_t len, larv_index *ix,
                     larv_err *err);
void larv_index_free(larv_index *ix);

/* ---- reader ------------------------------------------------------------------------ */

typedef struct {
    char *path;
    int fd;
    uint64_t size;
    uint64_t data_start; /* 8 + header length */
} larv_st_file;

struct larv_ckpt {
    char *path;          /* the file read (a directory's model.safetensors[.index.json]) */
    char *dir;           /* the directory given, or NULL */
    unsigned char *absent; /* larv_ckpt_select: entry i is not in this checkpoint (or NULL) */
    larv_format fmt;
    MPI_Comm comm;
    size_t n;
    larv_tensor_info *t; /* sorted by name */
    size_t nmeta;
    larv_kv *meta;       /* sorted by key */
    uint64_t file_bytes;
    /* safetensors / sharded */
    size_t nfiles;
    larv_st_file *files;
    size_t *tfile;       /* file of tensor i */
    uint64_t *toff;      /* absolute offset of tensor i in its file */
    /* HDF5 */
    hid_t fid;
    hid_t *dsets;        /* open dataset of tensor i */
};

/* ---- writer -------------------------------------------------------------------------- */

struct larv_writer {
    larv_format fmt;
    MPI_Comm comm;
    int rank, size;
    int atomic;
    int reopen;          /* larv_writer_reopen: open the existing temporaries */
    struct larv_fileset *guard; /* opts.guard */
    int failed;          /* a local failure happened */
    larv_err ferr;       /* its message */
    int closed;
    size_t n;
    larv_tensor_info *t; /* in the caller's order */
    /* files: for sharded, [0] is the index and [1..] the shards */
    size_t nfiles;
    char **final_paths;
    char **tmp_paths;    /* == the final names when not atomic */
    /* safetensors / sharded: per data file (shard k is file k+1 when sharded) */
    int *fds;
    size_t *tfile;       /* file of tensor i */
    uint64_t *toff;      /* absolute offset */
    char *index_json;    /* sharded: written by rank 0 at close */
    larv_kv *meta;       /* current file metadata, sorted by key */
    size_t nmeta;
    uint64_t st_hlen;    /* safetensors (single file): header length incl. reserve */
    size_t *order;       /* safetensors (single file): tensors in name order */
    size_t nshards;      /* sharded */
    size_t *shard_start; /* sharded: shard k holds order[shard_start[k] .. [k+1]) */
    /* HDF5 */
    hid_t fid;
    hid_t *dsets;
};

/* ---- helpers (ckpt_util.c) ---------------------------------------------------------- */

int larv_pread_full(int fd, void *buf, uint64_t n, uint64_t off, const char *fname,
                    larv_err *err);
int larv_pwrite_full(int fd, const void *buf, uint64_t n, uint64_t off, const char *fname,
                     larv_err *err);
/* Check that the directory of path exists and is writable (LARV_EXIT_IOERR). */
int larv_check_out_dir(const char *path, larv_err *err);
void larv_kv_free(larv_kv *kv, size_t n);
void larv_kv_sort(larv_kv *kv, size_t n);
int larv_kv_copy(larv_kv **dst, const larv_kv *src, size_t n);
int larv_name_cmp_info(const void *a, const void *b);

/* Claim every final and temporary path in w->guard (when set); -1 with a
 * message when one is an input or another output. Not collective. */
int larv_writer_claim_paths(larv_writer *w, larv_err *err);

/* ---- per-format (safetensors.c, sharded.c, hdf5.c) ------------------------------------ */
int larv_st_open_file(larv_st_file *f, const char *path, larv_st_header *h, larv_err *err);
int larv_st_ckpt_open(larv_ckpt *c, larv_err *err);
int larv_sharded_ckpt_open(larv_ckpt *c, larv_err *err);
int larv_h5_ckpt_open(larv_ckpt *c, larv_err *err);
void larv_h5_ckpt_close(larv_ckpt *c);
int larv_h5_read_range(larv_ckpt *c, size_t i, uint64_t first, uint64_t count, void *dst,
                       larv_err *err);

/* Build a safetensors header (padded to a multiple of 8) for the tensors
 * idx[0..m) of t (in name order), with their offsets relative to the data. */
char *larv_st_build_header(const larv_tensor_info *t, const size_t *idx, size_t m,
                           const larv_kv *meta, size_t nmeta, uint64_t *hlen, uint64_t *rel_off);
int larv_st_writer_create(larv_writer *w, const char *path, const larv_kv *meta, size_t nmeta,
                          uint64_t max_shard, size_t meta_reserve, larv_err *err);
int larv_st_writer_set_meta(larv_writer *w, larv_err *err);
char *larv_st_build_index(const larv_writer *w);
int larv_h5_writer_create(larv_writer *w, const larv_kv *meta, size_t nmeta, larv_err *err);
int larv_h5_writer_set_meta(larv_writer *w, const larv_kv *meta, size_t nmeta, larv_err *err);
int larv_h5_writer_write(larv_writer *w, size_t i, const void *data, larv_err *err);
int larv_h5_writer_read(larv_writer *w, size_t i, void *dst, larv_err *err);
int larv_h5_writer_close(larv_writer *w, larv_err *err);

/* HDF5 dataset names: '%' -> "%25", '/' -> "%2F", a name that is "." or ".."
 * has its dots as "%2E". Returns malloc'd strings. */
char *larv_h5_encode_name(const char *name);
char *larv_h5_decode_name(const char *enc);

#endif
