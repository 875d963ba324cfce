#include "coll.h"

#include <limits.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

static void mpi_error_string(int mpi_rc, char *s, size_t len)
{
    char m[MPI_MAX_ERROR_STRING];
    int n = 0;
    if (MPI_Error_string(mpi_rc, m, &n) != MPI_SUCCESS)
        snprintf(m, sizeof m, "MPI error %d", mpi_rc);
    snprintf(s, len, "%s", m);
}

/* The test hook (coll.h): NAME:RANK:N, read once. */
static struct {
    int read, rank, nth, seen;
    char name[64];
} hook;

static int hook_fires(const char *name)
{
    if (!hook.read) {
        hook.read = 1;
        const char *h = getenv("LARV_TEST_MPI_FAIL");
        if (h && sscanf(h, "%63[^:]:%d:%d", hook.name, &hook.rank, &hook.nth) != 3)
            hook.name[0] = '\0';
        if (!h)
            hook.name[0] = '\0';
    }
    if (!hook.name[0] || strcmp(hook.name, name) != 0)
        return 0;
    int rank = -1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    return rank == hook.rank && ++hook.seen == hook.nth;
}

int larv_mpi_check(int mpi_rc, const char *call, larv_err *err)
{
    char name[64];
    size_t n = strcspn(call, "( ");
    snprintf(name, sizeof name, "%.*s", (int)(n < sizeof name ? n : sizeof name - 1), call);
    if (mpi_rc == MPI_SUCCESS && hook_fires(name))
        mpi_rc = MPI_ERR_OTHER;
    if (mpi_rc == MPI_SUCCESS)
        return 0;
    char s[MPI_MAX_ERROR_STRING];
    mpi_error_string(mpi_rc, s, sizeof s);
    return larv_fail(err, LARV_EXIT_FAIL, "%s failed: %s", name, s);
}

_Noreturn void larv_mpi_fatal(const larv_err *err)
{
    int rank = -1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    fprintf(stderr, "larv: rank %d: %s; aborting the job\n", rank,
            err && err->msg[0] ? err->msg : "MPI failed");
    fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, LARV_EXIT_FAIL);
    abort(); /* MPI_Abort does not return */
}

/* The agreement's own calls: a failure ends the job (rule 3). */
static void agreement_call(int mpi_rc, const char *what)
{
    if (mpi_rc == MPI_SUCCESS)
        return;
    char s[MPI_MAX_ERROR_STRING];
    mpi_error_string(mpi_rc, s, sizeof s);
    larv_err e;
    larv_fail(&e, LARV_EXIT_FAIL, "%s of the error agreement failed: %s", what, s);
    larv_mpi_fatal(&e);
}

/* Largest chunk per MPI call: counts are int. */
#define CHUNK ((size_t)1 << 30)

static int allreduce_chunked(MPI_Comm comm, void *buf, size_t n, size_t esize,
                             MPI_Datatype dt, MPI_Op op, larv_err *err)
{
    /* every chunk on every rank, whatever failed, then one agreement */
    char *p = buf;
    int rc = 0;
    for (size_t off = 0; off < n; off += CHUNK) {
        size_t c = n - off < CHUNK ? n - off : CHUNK;
        if (LARV_MPI(MPI_Allreduce(MPI_IN_PLACE, p + off * esize, (int)c, dt, op, comm),
                     rc ? NULL : err))
            rc = -1;
    }
    return larv_coll_check(comm, rc, err);
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
    int rc = 0;
    for (size_t off = 0; off < n; off += CHUNK) {
        size_t c = n - off < CHUNK ? n - off : CHUNK;
        if (LARV_MPI(MPI_Bcast(p + off, (int)c, MPI_BYTE, root, comm), rc ? NULL : err))
            rc = -1;
    }
    return larv_coll_check(comm, rc, err);
}

int larv_coll_check(MPI_Comm comm, int local_rc, larv_err *err)
{
    int rank = 0, size = 1;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    /* Lowest failing rank (size when none). The agreement's own calls are not
     * checked through larv_mpi_check (no test hook): when they fail, the ranks
     * can no longer agree, and the job ends (rule 3). */
    int first = local_rc ? rank : size;
    agreement_call(MPI_Allreduce(MPI_IN_PLACE, &first, 1, MPI_INT, MPI_MIN, comm), "MPI_Allreduce");
    if (first >= size)
        return 0;

    struct {
        int code, agreed;
        char msg[LARV_ERR_LEN];
    } m;
    memset(&m, 0, sizeof m);
    if (rank == first) {
        m.code = (err && err->code) ? err->code : LARV_EXIT_FAIL;
        m.agreed = err ? err->agreed : 0;
        if (err && err->msg[0]) {
            memcpy(m.msg, err->msg, sizeof m.msg);
            m.msg[sizeof m.msg - 1] = '\0';
        } else {
            snprintf(m.msg, sizeof m.msg, "failed without a message");
        }
    }
    agreement_call(MPI_Bcast(&m, (int)sizeof m, MPI_BYTE, first, comm), "MPI_Bcast");
    if (err) {
        err->code = m.code;
        if (size > 1 && !m.agreed) {
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
        err->agreed = size > 1 || m.agreed;
    }
    return -1;
}
