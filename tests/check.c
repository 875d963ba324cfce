#include "check.h"

#include <math.h>
#include <stdio.h>

int check_passed, check_failed;

void check_record(int ok, const char *file, int line, const char *what)
{
    if (ok) {
        check_passed++;
    } else {
        check_failed++;
        fprintf(stderr, "FAIL %s:%d: %s\n", file, line, what);
    }
}

double check_rel_diff(const double *a, const double *b, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        num += (a[i] - b[i]) * (a[i] - b[i]);
        den += b[i] * b[i];
    }
    if (den < 1e-300)
        return sqrt(num);
    return sqrt(num / den);
}

int check_report(void)
{
    printf("%d passed, %d failed\n", check_passed, check_failed);
    return check_failed ? 1 : 0;
}

int check_report_all(MPI_Comm comm)
{
    int rank, fails = check_failed, total = 0;
    MPI_Comm_rank(comm, &rank);
    MPI_Allreduce(&fails, &total, 1, MPI_INT, MPI_SUM, comm);
    check_failed = total;
    if (rank == 0)
        check_report();
    return total ? 1 : 0;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

void check_seed(uint64_t seed)
{
    rng_state = seed;
}

double check_urand(void)
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return ((rng_state >> 11) + 0.5) / 9007199254740992.0;
}

double check_nrand(void)
{
    double u = check_urand(), v = check_urand();
    return sqrt(-2 * log(u)) * cos(6.283185307179586 * v);
}
