/* The file format of LARV's proxy cache (`larv merge --larv-cache FILE`; the
 * engine's side is mpi/proxy_cache.h).
 *
 * A small binary file, integers as unsigned 64-bit little-endian ("u64"):
 *
 *   "LARVPXC\n"                       8 bytes, the magic
 *   u64 version                       LARV_PCACHE_VERSION
 *   u64 K, K bytes                    the key: text lines, everything the
 *                                     proxies' bits depend on besides the
 *                                     tensors' bytes (see proxy_cache.h)
 *   u64 T, u64 n                      tasks, entries (proxy matrices)
 *   n entries:
 *     u64 L, L bytes                  the tensor's name
 *     u64 threads                     BLAS threads of the rank that computed it
 *     T + 1 u64                       the hashes of its bytes in the base and
 *                                     each task (src/hash.h, as the merge
 *                                     takes them while it reads)
 *     T u64, T u64                    e_t and c_t, the doubles' bits
 *   u64                               larv_hash64 of every byte before it
 *
 * Written under a unique temporary name in the same directory (mkstemp), then
 * renamed: a reader sees the old file or the new one, never a mix, and two
 * writers cannot corrupt it (the last rename wins). */
#ifndef LARV_IO_PCACHE_H
#define LARV_IO_PCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "../src/err.h"
#include "ckpt.h"

#define LARV_PCACHE_VERSION 1u

typedef struct {
    char *key;          /* NUL-terminated key text */
    size_t T, n;
    char **name;        /* n */
    uint64_t *threads;  /* n */
    uint64_t *in_hash;  /* n x (T + 1) */
    uint64_t *e, *c;    /* n x T: bits of the doubles */
} larv_pcache;

/* Arrays for n entries of T tasks (names NULL). 0 or -1 (out of memory). */
int larv_pcache_alloc(larv_pcache *pc, size_t T, size_t n);
void larv_pcache_free(larv_pcache *pc);

/* Read and check the file: 1 read, 0 no such file, -1 unusable; for 0 and -1
 * `why` says why ("truncated or damaged (its checksum does not match)",
 * "version 7, this larv reads 1", ...). The key is not compared here. */
int larv_pcache_read(const char *path, larv_pcache *pc, char *why, size_t len);

/* Write atomically (temporary + rename). 0, or -1 with err (exit 74). */
int larv_pcache_write(const char *path, const larv_pcache *pc, larv_err *err);

/* One key line per checkpoint: its size, every file's size and modification
 * time (ns), and a hash of its tensor list (names, dtypes, shapes, offsets).
 * Cheap: no tensor is read. malloc'd, or NULL (out of memory). */
char *larv_pcache_ckpt_identity(const larv_ckpt *c);

#endif
