/* The MPI error policy (io/coll.h) with collectives that really fail: with
 * MPI_ERRORS_RETURN, an MPI_Allreduce with a negative count and an MPI_Bcast
 * from a root outside the communicator return an error on every rank.
 * LARV_MPI turns it into "MPI_Xxx failed: <MPI's error string>" (exit code 1),
 * LARV_MPI_ALL and the chunked helpers agree on it across the ranks, and an
 * error agreed once keeps naming the rank where it happened when it is agreed
 * again (no "rank 0: rank 3: ..."). The independent truth: MPI's own error
 * class of the return code, and the rank that failed by construction. */
#include <mpi.h>
#include <stdio.h>
#include <string.h>

#include "../io/coll.h"
#include "check.h"

static int rank, size;

static void test_check(void)
{
    larv_err e;
    larv_err_clear(&e);
    CHECK(larv_mpi_check(MPI_SUCCESS, "MPI_Barrier(comm)", &e) == 0 && e.code == 0 && !e.msg[0]);
    CHECK(LARV_MPI(MPI_Barrier(MPI_COMM_WORLD), &e) == 0 && !e.msg[0]);

    /* a real failure: a negative count, refused on every rank */
    int x = rank, y = 0;
    int mrc = MPI_Allreduce(&x, &y, -1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    int cls = MPI_SUCCESS;
    MPI_Error_class(mrc, &cls);
    CHECK(mrc != MPI_SUCCESS && cls == MPI_ERR_COUNT);
    char want[MPI_MAX_ERROR_STRING + 64];
    int len = 0;
    char s[MPI_MAX_ERROR_STRING];
    MPI_Error_string(mrc, s, &len);
    snprintf(want, sizeof want, "MPI_Allreduce failed: %s", s);
    larv_err_clear(&e);
    CHECK(larv_mpi_check(mrc, "MPI_Allreduce(&x, &y, -1, MPI_INT, MPI_SUM, comm)", &e) == -1);
    CHECK(e.code == LARV_EXIT_FAIL && strcmp(e.msg, want) == 0 && !e.agreed);
    if (strcmp(e.msg, want) != 0)
        printf("  got '%s'\n  want '%s'\n", e.msg, want);
    /* NULL err: still -1 */
    CHECK(larv_mpi_check(mrc, "MPI_Allreduce", NULL) == -1);
}

static void test_agree(void)
{
    larv_err e;
    /* a failing collective, agreed: -1 on every rank, named by the lowest rank */
    larv_err_clear(&e);
    int x = rank, y = 0;
    int rc = LARV_MPI_ALL(MPI_COMM_WORLD, MPI_Allreduce(&x, &y, -1, MPI_INT, MPI_SUM, MPI_COMM_WORLD), &e);
    CHECK(rc == -1 && e.code == LARV_EXIT_FAIL);
    CHECK(strstr(e.msg, "MPI_Allreduce failed: ") != NULL);
    CHECK(size == 1 || strncmp(e.msg, "rank 0: MPI_Allreduce failed", 28) == 0);

    /* a broadcast from a root that does not exist */
    larv_err_clear(&e);
    rc = LARV_MPI_ALL(MPI_COMM_WORLD, MPI_Bcast(&x, 1, MPI_INT, size, MPI_COMM_WORLD), &e);
    CHECK(rc == -1 && strstr(e.msg, "MPI_Bcast failed: ") != NULL);

    /* the chunked helpers agree too */
    larv_err_clear(&e);
    char buf[8] = {0};
    CHECK(larv_bcast_bytes(MPI_COMM_WORLD, buf, sizeof buf, -5, &e) == -1 &&
          strstr(e.msg, "MPI_Bcast failed: ") != NULL);

    /* agreed on the last rank, then agreed again by every rank: the message
     * still names the last rank, once */
    larv_err_clear(&e);
    rc = rank == size - 1 ? larv_fail(&e, LARV_EXIT_DATAERR, "bad tensor 'x'") : 0;
    CHECK(larv_coll_check(MPI_COMM_WORLD, rc, &e) == -1);
    CHECK(larv_coll_check(MPI_COMM_WORLD, -1, &e) == -1);
    char want[64];
    if (size > 1)
        snprintf(want, sizeof want, "rank %d: bad tensor 'x'", size - 1);
    else
        snprintf(want, sizeof want, "bad tensor 'x'");
    CHECK(e.code == LARV_EXIT_DATAERR && strcmp(e.msg, want) == 0);
    if (strcmp(e.msg, want) != 0)
        printf("  rank %d got '%s', want '%s'\n", rank, e.msg, want);
    /* a new failure is not agreed yet */
    larv_fail(&e, LARV_EXIT_FAIL, "again");
    CHECK(!e.agreed);

    /* and after all that the communicator still works */
    larv_err_clear(&e);
    double d = 1;
    CHECK(larv_allreduce_sum_double(MPI_COMM_WORLD, &d, 1, &e) == 0 && d == size);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    test_check();
    test_agree();
    int rc = check_report_all(MPI_COMM_WORLD);
    MPI_Finalize();
    return rc;
}
