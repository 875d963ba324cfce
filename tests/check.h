/* Minimal test harness: CHECK records a pass or a failure with its location;
 * check_report() prints "N passed, N failed" and returns the exit status. */
#ifndef LARV_CHECK_H
#define LARV_CHECK_H

#include <stddef.h>

extern int check_passed, check_failed;
void check_record(int ok, const char *file, int line, const char *what);
/* Relative Frobenius distance ||a-b|| / max(||b||, tiny). */
double check_rel_diff(const double *a, const double *b, size_t n);
int check_report(void);

#define CHECK(cond) check_record(!!(cond), __FILE__, __LINE__, #cond)
#define CHECK_NEAR(a, b, tol)                                                                      \
    check_record(fabs((double)(a) - (double)(b)) <= (tol), __FILE__, __LINE__,                     \
                 #a " ~= " #b " within " #tol)
#define CHECK_REL(a, b, n, tol)                                                                    \
    check_record(check_rel_diff((a), (b), (n)) <= (tol), __FILE__, __LINE__,                       \
                 "rel(" #a ", " #b ") <= " #tol)

#endif
