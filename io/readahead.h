/* Read-ahead: whole tensors read on a helper thread while the caller computes.
 *
 * A merge pass visits its tensors in a known order and, for each, reads the
 * same tensor from several checkpoints (the base and the T tasks). The caller
 * hands that list of reads to larv_readahead_begin; a helper thread reads them
 * in order into a ring buffer, as far ahead as the ring has room, and the
 * caller uses the bytes in place, in the same order (larv_readahead_get waits
 * for a read that is not done yet; the caller converts straight from the ring,
 * so a read-ahead tensor costs no more copies than a direct read). So while the caller factors one tensor, the
 * thread reads the next ones. The extra memory is the ring.
 *
 * Only safetensors and sharded safetensors are read ahead (pread on file
 * descriptors, safe from another thread). Parallel HDF5 is not thread-safe and
 * reads through MPI-IO, so larv_readahead_create gives NULL when any checkpoint
 * is HDF5 and the caller reads synchronously. The helper thread never calls MPI. */
#ifndef LARV_IO_READAHEAD_H
#define LARV_IO_READAHEAD_H

#include <stddef.h>
#include <stdint.h>

#include "ckpt.h"

typedef struct larv_readahead larv_readahead;

/* A helper for the checkpoints c[0..n) (kept open by the caller until
 * larv_readahead_free). *out = NULL, and 0 returned, when any of them is HDF5. */
int larv_readahead_create(larv_ckpt *const *c, size_t n, larv_readahead **out, larv_err *err);
/* Stops the thread (after the read in flight) and frees everything. NULL is accepted. */
void larv_readahead_free(larv_readahead *ra);

/* The reads of one pass, in the order the caller will take them: read j is
 * tensor tensor[j] of checkpoint file[j] (the arrays are copied). ring_bytes:
 * how far the thread may read ahead (raised to the largest single read); the
 * merge engine gives 1.125 x its largest group of reads (one tensor of the base
 * and of every task), so that behind one large tensor the small ones that
 * follow it and the next large one are read. Ends any earlier schedule. */
int larv_readahead_begin(larv_readahead *ra, const size_t *tensor, const size_t *file,
                         size_t nreads, uint64_t ring_bytes, larv_err *err);
/* Ends the current schedule (waits for the read in flight). */
void larv_readahead_end(larv_readahead *ra);

/* Tensor idx of checkpoint f, when that is the caller's next read in the
 * schedule: waits until the thread has read it and returns 1 with *data
 * pointing at its raw bytes (nbytes of the tensor, in the ring) and *hash their
 * checksum (larv_hash64, seed 0, computed by the thread). The bytes stay valid,
 * and the schedule stays at this read, until larv_readahead_release. Returns 0
 * when (idx, f) is not the next read or a read is still held (the caller reads
 * it itself; the schedule then stays where it is, so a caller that strays from
 * it reads everything itself from there on), and -1 with err set (naming the
 * file and the tensor) when the read failed. */
int larv_readahead_get(larv_readahead *ra, size_t idx, size_t f, const void **data,
                       uint64_t *hash, larv_err *err);
/* Done with the bytes of the last get: the thread may reuse their room. */
void larv_readahead_release(larv_readahead *ra);

/* Bytes handed out (released) since create. */
uint64_t larv_readahead_bytes(const larv_readahead *ra);

#endif
