/* See threads.h. */
#define _GNU_SOURCE
#include "threads.h"

#include <sched.h>
#include <stdlib.h>
#include <unistd.h>

void openblas_set_num_threads(int num_threads); /* OpenBLAS */

static int set_in_env(const char *name)
{
    const char *v = getenv(name);
    return v && *v;
}

int larv_blas_threads_init(MPI_Comm comm)
{
    MPI_Comm node;
    int local = 1;
    if (MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node) == MPI_SUCCESS) {
        MPI_Comm_size(node, &local);
        MPI_Comm_free(&node);
    }
    if (set_in_env("OPENBLAS_NUM_THREADS") || set_in_env("OMP_NUM_THREADS") ||
        set_in_env("GOTO_NUM_THREADS"))
        return 0;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int nt = cores > 0 && local > 0 ? (int)(cores / local) : 1;
#ifdef CPU_COUNT
    cpu_set_t cs; /* a rank bound to fewer cores (mpirun --bind-to) uses only those */
    if (sched_getaffinity(0, sizeof cs, &cs) == 0 && CPU_COUNT(&cs) > 0 && CPU_COUNT(&cs) < nt)
        nt = CPU_COUNT(&cs);
#endif
    if (nt < 1)
        nt = 1;
    openblas_set_num_threads(nt);
    return nt;
}
