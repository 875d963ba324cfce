#include "coll.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

int larv_mpi_fail(larv_err *err, int mpi_rc, const char *what)
{
    char s[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(mpi_rc, s, &len) != MPI_SUCCESS)
        snprintf(s, sizeof s, "MPI error %d", mpi_rc);
    return larv_fail(err, LARV_EXIT_FAIL, "%s failed: %s", what, s);
}

/* Largest chunk per MPI call: counts are int. */
#define CHUNK ((size_t)1 << 30)

static int allreduce_chunked(MPI_Comm comm, void *buf, size_t n, size_t esize,
                             MPI_Datatype dt, MPI_Op op, larv_err *err)
{
    char *p = buf;
    for (size_t off = 0; off < n; off += CHUNK) {
        size_t c = n - off < CHUNK ? n - off : CHUNK;
        int rc = MPI_Allreduce(MPI_IN_PLACE, p + off * esize, (int)c, dt, op, comm);
        if (rc != MPI_SUCCESS)
            return larv_mpi_fail(err, rc, "MPI_Allreduce");
    }
    return 0;
}

int larv_allreduce_sum_double(MPI_Comm comm, double *buf, size_t n, larv_err *err)
{
    return allreduce_chunked(comm, buf, n, sizeof *buf, MPI_DOUBLE, MPI_SUM, err);
}

int larv_allreduce_sum_u64(MPI_Comm comm, uint64_t *buf, size_t n, larv_err *err)
{
    return allreduce_chunked(comm, buf, n, sizeof *buf, MPI_UINT64_T, MPI_SUM, err);
}

int larv_allreduce_max_u64(MPI_Comm comm, uint64_t *buf, size_t n, larv_err *err)
{
    return allreduce_chunked(comm, buf, n, sizeof *buf, MPI_UINT64_T, MPI_MAX, err);
}

int larv_allreduce_max_double(MPI_Comm comm, double *buf, size_t n, larv_err *err)
{
    return allreduce_chunked(comm, buf, n, sizeof *buf, MPI_DOUBLE, MPI_MAX, err);
}

int larv_allreduce_min_double(MPI_Comm comm, double *buf, size_t n, larv_err *err)
{
    return allreduce_chunked(comm, buf, n, sizeof *buf, MPI_DOUBLE, MPI_MIN, err);
}

int larv_bcast_bytes(MPI_Comm comm, void *buf, size_t n, int root, larv_err *err)
{
    char *p = buf;
    for (size_t off = 0; off < n; off += CHUNK) {
        size_t c = n - off < CHUNK ? n - off : CHUNK;
        int rc = MPI_Bcast(p + off, (int)c, MPI_BYTE, root, comm);
        if (rc != MPI_SUCCESS)
            return larv_mpi_fail(err, rc, "MPI_Bcast");
    }
    return 0;
}

int larv_coll_check(MPI_Comm comm, int local_rc, larv_err *err)
{
    int rank = 0, size = 1;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    /* Lowest failing rank (size when none). */
    int first = local_rc ? rank : size;
    int rc = MPI_Allreduce(MPI_IN_PLACE, &first, 1, MPI_INT, MPI_MIN, comm);
    if (rc != MPI_SUCCESS) {
        if (local_rc)
            return -1; /* keep this rank's own message */
        return larv_mpi_fail(err, rc, "MPI_Allreduce (error check)");
    }
    if (first >= size)
        return 0;

    struct {
        int code;
        char msg[LARV_ERR_LEN];
    } m;
    memset(&m, 0, sizeof m);
    if (rank == first) {
        if (err && err->msg[0]) {
            m.code = err->code ? err->code : LARV_EXIT_FAIL;
            memcpy(m.msg, err->msg, sizeof m.msg);
            m.msg[sizeof m.msg - 1] = '\0';
        } else {
            m.code = (err && err->code) ? err->code : LARV_EXIT_FAIL;
            snprintf(m.msg, sizeof m.msg, "failed without a message");
        }
    }
    rc = MPI_Bcast(&m, (int)sizeof m, MPI_BYTE, first, comm);
    if (rc != MPI_SUCCESS) {
        if (local_rc)
            return -1;
        return larv_mpi_fail(err, rc, "MPI_Bcast (error message)");
    }
    if (err) {
        err->code = m.code;
        if (size > 1) {
            snprintf(err->msg, sizeof err->msg, "rank %d: ", first);
            size_t used = strlen(err->msg);
            size_t len = strnlen(m.msg, sizeof m.msg);
            if (len > sizeof err->msg - 1 - used)
                len = sizeof err->msg - 1 - used;
            memcpy(err->msg + used, m.msg, len);
            err->msg[used + len] = '\0';
        } else {
            memcpy(err->msg, m.msg, sizeof err->msg);
        }
    }
    return -1;
}
