/* See threads.h. */
#define _GNU_SOURCE
#include "threads.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "../io/coll.h"

void openblas_set_num_threads(int num_threads); /* OpenBLAS */

static int set_in_env(const char *name)
{
    const char *v = getenv(name);
    return v && *v;
}

/* Why larv keeps hwloc's GPU plugins out (issue #10). Run as one process
 * without mpirun (larv inspect, convert, synth, verify; the tests' singleton
 * runs), MPI_Init has hwloc discover the node itself, and hwloc dlopens all its
 * plugins; hwloc_opencl.so brings libOpenCL.so.1 (ocl-icd), whose 4 bytes of
 * thread-local storage glibc then allocates on the main thread as a dynamic TLS
 * block, with malloc. In an AddressSanitizer build that malloc is ASan's, and
 * the __tls_get_addr interceptor of GCC 12's libasan (LLVM's up to 16) takes
 * any such block that starts 16 bytes past a 4096-byte boundary for a glibc
 * 2.19 block with a header, reads the 16 bytes before it (ASan's own chunk
 * header) as {start, size}, and registers that garbage range as a TLS root. At
 * exit LeakSanitizer's stop-the-world tracer scans it and dies ("Tracer caught
 * signal 11: addr=0x3ba0", "LeakSanitizer has encountered a fatal error").
 * Whether the block lands there depends only on how many chunks of its size
 * were allocated before it, and that varies with the process id, the paths and
 * the environment (MPI_Init builds strings from them): with the suite's
 * sanitizer options `larv inspect --help` in the ASan build crashed the tracer at
 * every 4-digit pid tried and at none of the 5-digit ones, whatever the CPU
 * load, and other arguments or paths have other unlucky pids. So the suite
 * passed or failed with where the machine's pid counter stood (it wraps at
 * pid_max, 32768, the sooner the busier the machine). Without the plugin no
 * malloc'd dynamic TLS block exists in the process, so nothing depends on where
 * one lands: tests/asan_dtls.sh checks that none exists and, as a control, that
 * libOpenCL's block moved to offset 16 does crash the tracer. */
void larv_mpi_preinit(void)
{
    setenv("HWLOC_PLUGINS_BLACKLIST",
           "hwloc_opencl,hwloc_cuda,hwloc_nvml,hwloc_rsmi,hwloc_levelzero,hwloc_gl", 0);
}

int larv_blas_threads_init(MPI_Comm comm)
{
    MPI_Comm node;
    int local = 1;
    larv_err err;
    larv_err_clear(&err);
    /* A failure here only sizes the BLAS threads as for one rank per node:
     * a warning, not an error (io/coll.h, rule 1). */
    if (LARV_MPI(MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node), &err) ==
        0) {
        MPI_Comm_size(node, &local);
        if (LARV_MPI(MPI_Comm_free(&node), &err))
            fprintf(stderr, "larv: warning: %s\n", err.msg);
    } else {
        fprintf(stderr, "larv: warning: %s; BLAS threads sized for one rank per node\n", err.msg);
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
