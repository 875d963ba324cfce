/* Small collective helpers over an MPI communicator.
 *
 * Every function here is COLLECTIVE over `comm`: all ranks must call it, in the
 * same order, with the same counts. MPI failures (with MPI_ERRORS_RETURN set on
 * the communicator) are turned into a larv_err message instead of a hang. */
#ifndef LARV_COLL_H
#define LARV_COLL_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

#include "../src/err.h"

/* Make a failure on any rank a failure on every rank.
 * local_rc: this rank's status (0 = ok, anything else = failed, its message in
 * *err). Returns 0 on every rank when no rank failed; otherwise -1 on every rank,
 * and every rank's err gets the code and the message of the LOWEST failing rank,
 * prefixed "rank R: " when comm has more than one rank (so rank 0 can print it).
 * err may be NULL on any rank (a failing rank with err == NULL reports
 * "failed without a message"). Cost: one MPI_Allreduce of 2 ints, plus one
 * MPI_Bcast of the message only when something failed.
 * Call it before every collective phase, with the status of the local work that
 * precedes it, so that no rank enters a collective its peers never reach. */
int larv_coll_check(MPI_Comm comm, int local_rc, larv_err *err);

/* In-place element-wise sums over comm (any n; split into chunks of at most
 * INT_MAX elements). Return 0, or -1 with a message if MPI fails. */
int larv_allreduce_sum_double(MPI_Comm comm, double *buf, size_t n, larv_err *err);
int larv_allreduce_sum_u64(MPI_Comm comm, uint64_t *buf, size_t n, larv_err *err);
/* In-place element-wise max / min over comm. */
int larv_allreduce_max_u64(MPI_Comm comm, uint64_t *buf, size_t n, larv_err *err);
int larv_allreduce_max_double(MPI_Comm comm, double *buf, size_t n, larv_err *err);
int larv_allreduce_min_double(MPI_Comm comm, double *buf, size_t n, larv_err *err);

/* Broadcast n bytes from root (any n, chunked). */
int larv_bcast_bytes(MPI_Comm comm, void *buf, size_t n, int root, larv_err *err);

/* Message for an MPI error code: "MPI_Allreduce failed: <MPI error string>". */
int larv_mpi_fail(larv_err *err, int mpi_rc, const char *what);

#endif
