/* The MPI error policy of larv, and small collective helpers.
 *
 * main sets MPI_ERRORS_RETURN, so an MPI call reports a failure by its return
 * code. The policy:
 *  1. Every MPI call is checked through larv_mpi_check (LARV_MPI): a failure
 *     becomes "MPI_Xxx failed: <MPI's error string>" in a larv_err, exit code
 *     LARV_EXIT_FAIL. Exempt: MPI_Comm_rank/MPI_Comm_size/MPI_Wtime (local
 *     queries of a valid communicator), MPI_Error_string, MPI_Abort, and
 *     MPI_Init_thread/MPI_Finalize in main.
 *  2. A failure on one rank becomes the same failure on every rank before the
 *     next collective: larv_coll_check after each collective phase, or
 *     LARV_MPI_ALL (check + agreement) for a single collective call.
 *  3. When even that is impossible - the agreement's own collectives fail, or
 *     the members of a ScaLAPACK team (mpi/team.c) cannot hear their leader -
 *     the rank prints the error and calls MPI_Abort (larv_mpi_fatal): like a
 *     kill, it leaves the temporary output and journals for --resume, but never
 *     a hang.
 *
 * Test hook: LARV_TEST_MPI_FAIL=NAME:RANK:N makes the N-th checked call of
 * MPI function NAME on rank RANK of MPI_COMM_WORLD report MPI_ERR_OTHER (after
 * the call itself completed on every rank), e.g. MPI_Allreduce:1:3
 * (tests/cli_mpi_errors.sh).
 *
 * Every function below but larv_mpi_check and larv_mpi_fatal is COLLECTIVE over
 * `comm`: all ranks must call it, in the same order, with the same counts. */
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
 * prefixed "rank R: " when comm has more than one rank (so rank 0 can print it)
 * unless an earlier agreement already named the rank (err->agreed).
 * err may be NULL on any rank (a failing rank with err == NULL reports
 * "failed without a message"). Cost: one MPI_Allreduce of 2 ints, plus one
 * MPI_Bcast of the message only when something failed.
 * Call it before every collective phase, with the status of the local work that
 * precedes it, so that no rank enters a collective its peers never reach. If
 * its own collectives fail, the rank aborts the job (rule 3). */
int larv_coll_check(MPI_Comm comm, int local_rc, larv_err *err);

/* In-place element-wise sums over comm (any n; split into chunks of at most
 * 2^30 elements). Return 0, or -1 on every rank (agreed, rule 2) if MPI
 * fails on any. */
int larv_allreduce_sum_double(MPI_Comm comm, double *buf, size_t n, larv_err *err);
int larv_allreduce_sum_u64(MPI_Comm comm, uint64_t *buf, size_t n, larv_err *err);
/* In-place element-wise max / min over comm. */
int larv_allreduce_max_u64(MPI_Comm comm, uint64_t *buf, size_t n, larv_err *err);
int larv_allreduce_max_double(MPI_Comm comm, double *buf, size_t n, larv_err *err);
int larv_allreduce_min_double(MPI_Comm comm, double *buf, size_t n, larv_err *err);

/* Broadcast n bytes from root (any n, chunked); failures agreed like the sums. */
int larv_bcast_bytes(MPI_Comm comm, void *buf, size_t n, int root, larv_err *err);

/* Check an MPI call's return code: 0 for MPI_SUCCESS, else -1 with err set to
 * "<function> failed: <MPI error string>" (call: the call's text; the name
 * before '(' is used). Local: no communication. */
int larv_mpi_check(int mpi_rc, const char *call, larv_err *err);
#define LARV_MPI(call, err) larv_mpi_check((call), #call, (err))
/* Check a collective call and agree on the result across comm (rule 2):
 * larv_coll_check(comm, larv_mpi_check(...), err). */
#define LARV_MPI_ALL(comm, call, err) larv_coll_check((comm), larv_mpi_check((call), #call, (err)), (err))
/* Rule 3: print "larv: rank R: <err's message>; aborting the job" on stderr
 * and MPI_Abort(MPI_COMM_WORLD, LARV_EXIT_FAIL). */
_Noreturn void larv_mpi_fatal(const larv_err *err);

#endif
