/* Process start-up around MPI_Init: the environment MPI starts in, and BLAS
 * threads per rank from the node-local rank count. */
#ifndef LARV_THREADS_H
#define LARV_THREADS_H

#include <mpi.h>

/* Call first thing in main, before MPI_Init (larv and every test program that
 * starts MPI do). Keeps hwloc, which MPI_Init runs to discover the node, from
 * loading its GPU-discovery plugins (OpenCL, CUDA, NVML, ROCm SMI, Level Zero,
 * GL): larv computes on CPUs only, and those plugins pull vendor libraries
 * with thread-local storage into every rank (see threads.c for what that broke).
 * A HWLOC_PLUGINS_BLACKLIST already in the environment is kept. */
void larv_mpi_preinit(void);

/* When neither OPENBLAS_NUM_THREADS nor OMP_NUM_THREADS is set, give each rank
 * max(1, online cores / ranks on this node) OpenBLAS threads, so that ranks x
 * threads never oversubscribe the node (OpenBLAS threads spin while waiting:
 * 2 ranks x 2 threads on 2 cores ran ~1.4x slower than 2 x 1) and spare cores
 * are used when there are fewer ranks than cores. Collective over comm.
 * Returns the thread count chosen (0: left to the environment). */
int larv_blas_threads_init(MPI_Comm comm);

#endif
