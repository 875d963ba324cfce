/* Non-finite detection in the output dtype (larv_first_nonfinite), against
 * values built by hand: a float64 value that is finite but overflows the
 * dtype on rounding (F16 above 65504, BF16/F32 above 3.4e38) is caught, and
 * NaN/Inf at any position; and LAPACK failures always come with an
 * explanation (larv_lapack_fail), never the bare info code. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../src/linalg.h"
#include "../src/tensor.h"
#include "check.h"

static void dtype_case(larv_dtype dt, const double *v, size_t n, size_t want)
{
    unsigned char raw[64];
    larv_from_f64(dt, v, raw, n);
    size_t got = larv_first_nonfinite(dt, raw, n);
    if (got != want)
        fprintf(stderr, "%s: first non-finite %zu, expected %zu\n", larv_dtype_name(dt), got, want);
    CHECK(got == want);
}

int main(void)
{
    const larv_dtype fl[] = {LARV_F16, LARV_BF16, LARV_F32, LARV_F64};
    for (size_t k = 0; k < 4; k++) {
        larv_dtype dt = fl[k];
        double ok[4] = {0.0, -1.5, 1e-30, 60000.0};
        dtype_case(dt, ok, 4, 4);
        double nan_at2[4] = {1.0, 2.0, NAN, 3.0};
        dtype_case(dt, nan_at2, 4, 2);
        double inf_at0[3] = {-INFINITY, 1.0, 2.0};
        dtype_case(dt, inf_at0, 3, 0);
    }
    /* finite in float64, not in the dtype */
    double f16_over[3] = {1.0, 65504.0, 70000.0};
    dtype_case(LARV_F16, f16_over, 3, 2);
    dtype_case(LARV_F32, f16_over, 3, 3);
    double f32_over[2] = {3.0e38, 1e39};
    dtype_case(LARV_F32, f32_over, 2, 1);
    dtype_case(LARV_BF16, f32_over, 2, 1);
    dtype_case(LARV_F64, f32_over, 2, 2);
    double huge[2] = {1e308, 1e308 * 10.0};
    dtype_case(LARV_F64, huge, 2, 1);
    /* non-float dtypes never report */
    int32_t ints[2] = {-1, 0x7f800000};
    CHECK(larv_first_nonfinite(LARV_I32, ints, 2) == 2);

    /* LAPACK codes come with what they mean */
    larv_err err;
    larv_err_clear(&err);
    CHECK(larv_lapack_fail(&err, "dsterf", -2) == -1);
    CHECK(strstr(err.msg, "dsterf") && strstr(err.msg, "info -2") &&
          strstr(err.msg, "argument 2 had an illegal value") && err.code == LARV_EXIT_FAIL);
    larv_err_clear(&err);
    larv_lapack_fail(&err, "dgesdd", 7);
    CHECK(strstr(err.msg, "dgesdd") && strstr(err.msg, "did not converge") &&
          strstr(err.msg, "--lambda") && err.code == LARV_EXIT_DATAERR);
    return check_report();
}
