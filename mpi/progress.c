#include "progress.h"

#include <stdio.h>
#include <time.h>

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void larv_progress_init(larv_progress *p, MPI_Comm comm, int quiet)
{
    int rank;
    MPI_Comm_rank(comm, &rank);
    p->active = rank == 0 && !quiet;
    p->label = NULL;
    p->total = p->done = 0;
    p->t0 = p->last = mono();
}

static void print(larv_progress *p, int final)
{
    double t = mono(), el = t - p->t0;
    double rate = el > 0 ? (double)p->done / el : 0;
    if (p->total > 0) {
        double frac = (double)p->done / (double)p->total;
        double eta = rate > 0 ? (double)(p->total - (p->done < p->total ? p->done : p->total)) / rate : 0;
        fprintf(stderr, "[larv] %-15s %5.1f%%  %8.1f MB/s  elapsed %6.1fs  %s %5.0fs\n", p->label,
                100 * frac, rate / 1e6, el, final ? "done" : "ETA", final ? el : eta);
    } else {
        fprintf(stderr, "[larv] %-15s %8.1f MB  %8.1f MB/s  elapsed %6.1fs%s\n", p->label,
                (double)p->done / 1e6, rate / 1e6, el, final ? "  done" : "");
    }
    p->last = t;
}

void larv_progress_begin(larv_progress *p, const char *label, uint64_t total)
{
    if (p->active && p->label && p->done)
        print(p, 1);
    p->label = label;
    p->total = total;
    p->done = 0;
    p->t0 = p->last = mono();
}

void larv_progress_step(larv_progress *p, uint64_t bytes)
{
    p->done += bytes;
    if (p->active && mono() - p->last >= 2.0)
        print(p, 0);
}

void larv_progress_end(larv_progress *p)
{
    if (p->active && p->label && p->done)
        print(p, 1);
    p->label = NULL;
}
