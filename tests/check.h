/* Minimal test harness: CHECK records a pass or a failure with its location;
 * check_report() prints "N passed, N failed" and returns the exit status. */
#ifndef LARV_CHECK_H
#define LARV_CHECK_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

extern int check_passed, check_failed;
void check_record(int ok, const char *file, int line, const char *what);
/* Relative Frobenius distance ||a-b|| / max(||b||, tiny). */
double check_rel_diff(const double *a, const double *b, size_t n);
int check_report(void);
/* MPI tests: every rank's failures are summed so all ranks agree on the
 * verdict; rank 0 prints the report. Returns the exit status on every rank. */
int check_report_all(MPI_Comm comm);

/* A reproducible test RNG (64-bit LCG): check_seed, then uniform in (0, 1)
 * and standard normal (Box-Muller). */
void check_seed(uint64_t seed);
double check_urand(void);
double check_nrand(void);

#define CHECK(cond) check_record(!!(cond), __FILE__, __LINE__, #cond)
#define CHECK_NEAR(a, b, tol)                                                                      \
    check_record(fabs((double)(a) - (double)(b)) <= (tol), __FILE__, __LINE__,                     \
                 #a " ~= " #b " within " #tol)
#define CHECK_REL(a, b, n, tol)                                                                    \
    check_record(check_rel_diff((a), (b), (n)) <= (tol), __FILE__, __LINE__,                       \
                 "rel(" #a ", " #b ") <= " #tol)

#endif
