/* Tensor metadata and element-type conversion (no MPI, no I/O). */
#ifndef LARV_TENSOR_H
#define LARV_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef enum {
    LARV_F32 = 0,
    LARV_F16,
    LARV_BF16,
    LARV_F64,
    /* Non-float tensors are carried through a merge unchanged (copied from the base). */
    LARV_I64,
    LARV_I32,
    LARV_I16,
    LARV_I8,
    LARV_U8,
    LARV_BOOL,
    LARV_NDTYPES
} larv_dtype;

#define LARV_MAX_DIMS 8

typedef struct {
    char *name;                    /* owned, NUL-terminated, kept exactly as in the file */
    larv_dtype dtype;
    int ndim;                      /* 0 .. LARV_MAX_DIMS (0 = scalar) */
    int64_t shape[LARV_MAX_DIMS];
    uint64_t numel;
    uint64_t nbytes;               /* numel * larv_dtype_size(dtype) */
} larv_tensor_info;

size_t larv_dtype_size(larv_dtype dt);
/* safetensors spelling: "F32", "F16", "BF16", "F64", "I64", ..., "BOOL". */
const char *larv_dtype_name(larv_dtype dt);
/* Returns 0 and sets *dt, or -1 for an unknown name. */
int larv_dtype_parse(const char *name, larv_dtype *dt);
int larv_dtype_is_float(larv_dtype dt);

/* Fill numel and nbytes from dtype/ndim/shape; fails (naming `what`) on a
 * negative dimension or on overflow of 64 bits. */
int larv_tensor_info_finish(larv_tensor_info *ti, const char *what, larv_err *err);
/* Same name, dtype and shape. */
int larv_tensor_info_same(const larv_tensor_info *a, const larv_tensor_info *b);
/* "[3072, 768]" into buf. */
const char *larv_shape_str(const larv_tensor_info *ti, char *buf, size_t len);
void larv_tensor_info_free(larv_tensor_info *ti);
/* Index of name in t[0..n) sorted by name (strcmp), or -1. */
long larv_tensor_find(const larv_tensor_info *t, size_t n, const char *name);
int larv_tensor_info_copy(larv_tensor_info *dst, const larv_tensor_info *src);

/* Conversions for float dtypes (F32, F16, BF16, F64). Narrowing rounds to
 * nearest even; NaN and Inf are preserved. */
void larv_to_f32(larv_dtype dt, const void *src, float *dst, size_t n);
void larv_to_f64(larv_dtype dt, const void *src, double *dst, size_t n);
void larv_from_f32(larv_dtype dt, const float *src, void *dst, size_t n);
void larv_from_f64(larv_dtype dt, const double *src, void *dst, size_t n);

/* Index of the first NaN or Inf among n values of float dtype dt (raw, as
 * stored: F16 overflow shows here, not in float64), or n when all are finite
 * (and for non-float dtypes). */
size_t larv_first_nonfinite(larv_dtype dt, const void *src, size_t n);

float larv_f16_to_f32(uint16_t h);
uint16_t larv_f32_to_f16(float f);
float larv_bf16_to_f32(uint16_t h);
uint16_t larv_f32_to_bf16(float f);

#endif
