#include "tensor.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *name;
    size_t size;
} dtypes[LARV_NDTYPES] = {
    [LARV_F32] = {"F32", 4}, [LARV_F16] = {"F16", 2}, [LARV_BF16] = {"BF16", 2},
    [LARV_F64] = {"F64", 8}, [LARV_I64] = {"I64", 8}, [LARV_I32] = {"I32", 4},
    [LARV_I16] = {"I16", 2}, [LARV_I8] = {"I8", 1},   [LARV_U8] = {"U8", 1},
    [LARV_BOOL] = {"BOOL", 1},
};

size_t larv_dtype_size(larv_dtype dt)
{
    return (unsigned)dt < LARV_NDTYPES ? dtypes[dt].size : 0;
}

const char *larv_dtype_name(larv_dtype dt)
{
    return (unsigned)dt < LARV_NDTYPES ? dtypes[dt].name : "?";
}

int larv_dtype_parse(const char *name, larv_dtype *dt)
{
    for (int i = 0; i < LARV_NDTYPES; i++)
        if (strcmp(name, dtypes[i].name) == 0) {
            *dt = (larv_dtype)i;
            return 0;
        }
    return -1;
}

int larv_dtype_is_float(larv_dtype dt)
{
    return dt == LARV_F32 || dt == LARV_F16 || dt == LARV_BF16 || dt == LARV_F64;
}

size_t larv_first_nonfinite(larv_dtype dt, const void *src, size_t n)
{
    if (dt == LARV_F32) {
        const float *f = src;
        for (size_t i = 0; i < n; i++)
            if (!isfinite(f[i]))
                return i;
    } else if (dt == LARV_F64) {
        const double *d = src;
        for (size_t i = 0; i < n; i++)
            if (!isfinite(d[i]))
                return i;
    } else if (dt == LARV_F16 || dt == LARV_BF16) { /* exponent all ones */
        const uint16_t *h = src;
        uint16_t e = dt == LARV_F16 ? 0x7c00 : 0x7f80;
        for (size_t i = 0; i < n; i++) {
            uint16_t v;
            memcpy(&v, h + i, 2);
            if ((v & e) == e)
                return i;
        }
    }
    return n;
}

int larv_tensor_info_finish(larv_tensor_info *ti, const char *what, larv_err *err)
{
    if (ti->ndim < 0 || ti->ndim > LARV_MAX_DIMS)
        return larv_fail(err, LARV_EXIT_DATAERR, "%s: %d dimensions (at most %d supported)", what,
                         ti->ndim, LARV_MAX_DIMS);
    if ((unsigned)ti->dtype >= LARV_NDTYPES)
        return larv_fail(err, LARV_EXIT_DATAERR, "%s: unknown dtype", what);
    uint64_t n = 1;
    for (int i = 0; i < ti->ndim; i++) {
        if (ti->shape[i] < 0)
            return larv_fail(err, LARV_EXIT_DATAERR, "%s: negative dimension %lld", what,
                             (long long)ti->shape[i]);
        uint64_t d = (uint64_t)ti->shape[i];
        if (d && n > UINT64_MAX / d)
            return larv_fail(err, LARV_EXIT_DATAERR, "%s: shape overflows 64 bits", what);
        n *= d;
    }
    size_t es = larv_dtype_size(ti->dtype);
    if (n > UINT64_MAX / es)
        return larv_fail(err, LARV_EXIT_DATAERR, "%s: byte size overflows 64 bits", what);
    ti->numel = n;
    ti->nbytes = n * es;
    return 0;
}

int larv_tensor_info_same(const larv_tensor_info *a, const larv_tensor_info *b)
{
    if (strcmp(a->name, b->name) || a->dtype != b->dtype || a->ndim != b->ndim)
        return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i])
            return 0;
    return 1;
}

const char *larv_shape_str(const larv_tensor_info *ti, char *buf, size_t len)
{
    size_t off = 0;
    if (len == 0)
        return buf;
    buf[0] = '\0';
    off += (size_t)snprintf(buf + off, len - off, "[");
    for (int i = 0; i < ti->ndim && off < len; i++)
        off += (size_t)snprintf(buf + off, len - off, "%s%lld", i ? ", " : "",
                                (long long)ti->shape[i]);
    if (off < len)
        snprintf(buf + off, len - off, "]");
    return buf;
}

long larv_tensor_find(const larv_tensor_info *t, size_t n, const char *name)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int r = strcmp(t[mid].name, name);
        if (r == 0)
            return (long)mid;
        if (r < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

void larv_tensor_info_free(larv_tensor_info *ti)
{
    if (ti) {
        free(ti->name);
        ti->name = NULL;
    }
}

int larv_tensor_info_copy(larv_tensor_info *dst, const larv_tensor_info *src)
{
    *dst = *src;
    dst->name = strdup(src->name);
    return dst->name ? 0 : -1;
}

/* ---- half precision ---------------------------------------------------- */

float larv_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ffu, bits;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (man << 13);
    } else if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: value = man * 2^-24 */
            float v = (float)man * 0x1p-24f;
            memcpy(&bits, &v, 4);
            bits |= sign;
        }
    } else {
        bits = sign | ((exp + 112) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t larv_f32_to_f16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    uint32_t ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) /* Inf or NaN (keep a quiet NaN) */
        return (uint16_t)(sign | 0x7c00u | (ax > 0x7f800000u ? 0x200u | ((ax >> 13) & 0x3ffu) : 0));
    if (ax >= 0x477ff000u) /* rounds to >= 65520: overflow to Inf */
        return (uint16_t)(sign | 0x7c00u);
    if (ax < 0x38800000u) { /* below the smallest normal half: subnormal or zero */
        float a;
        memcpy(&a, &ax, 4);
        /* a * 2^24 rounded to nearest even gives the subnormal mantissa */
        float m = nearbyintf(a * 0x1p24f);
        return (uint16_t)(sign | (uint16_t)m);
    }
    uint32_t r = ax - 0x38000000u; /* rebias exponent 127 -> 15 */
    uint32_t lsb = (r >> 13) & 1u;
    r += 0xfffu + lsb; /* round to nearest even */
    return (uint16_t)(sign | (uint16_t)(r >> 13));
}

float larv_bf16_to_f32(uint16_t h)
{
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t larv_f32_to_bf16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u) /* NaN: keep it quiet */
        return (uint16_t)((x >> 16) | 0x40u);
    uint32_t lsb = (x >> 16) & 1u;
    x += 0x7fffu + lsb;
    return (uint16_t)(x >> 16);
}

/* ---- bulk conversions -------------------------------------------------- */

void larv_to_f32(larv_dtype dt, const void *src, float *dst, size_t n)
{
    switch (dt) {
    case LARV_F32:
        memmove(dst, src, n * 4);
        break;
    case LARV_F64:
        for (size_t i = 0; i < n; i++)
            dst[i] = (float)((const double *)src)[i];
        break;
    case LARV_F16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, (const char *)src + 2 * i, 2);
            dst[i] = larv_f16_to_f32(h);
        }
        break;
    case LARV_BF16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, (const char *)src + 2 * i, 2);
            dst[i] = larv_bf16_to_f32(h);
        }
        break;
    default:
        abort(); /* callers only convert float dtypes */
    }
}

void larv_to_f64(larv_dtype dt, const void *src, double *dst, size_t n)
{
    if (dt == LARV_F64) {
        memmove(dst, src, n * 8);
        return;
    }
    /* Convert back to front so that src and dst may share storage; float32 in
     * blocks of 8 (each block is read before it is written, and a block's
     * output never reaches source bytes not yet read), which vectorises. */
    if (dt == LARV_F32) {
        const float *s = src;
        size_t i = n;
        while (i >= 8) {
            i -= 8;
            float blk[8];
            memcpy(blk, s + i, sizeof blk);
            for (size_t k = 0; k < 8; k++)
                dst[i + k] = blk[k];
        }
        while (i-- > 0)
            dst[i] = s[i];
        return;
    }
    for (size_t i = n; i-- > 0;) {
        float f;
        larv_to_f32(dt, (const char *)src + i * larv_dtype_size(dt), &f, 1);
        dst[i] = f;
    }
}

void larv_from_f32(larv_dtype dt, const float *src, void *dst, size_t n)
{
    switch (dt) {
    case LARV_F32:
        memmove(dst, src, n * 4);
        break;
    case LARV_F64:
        for (size_t i = n; i-- > 0;)
            ((double *)dst)[i] = src[i];
        break;
    case LARV_F16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h = larv_f32_to_f16(src[i]);
            memcpy((char *)dst + 2 * i, &h, 2);
        }
        break;
    case LARV_BF16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h = larv_f32_to_bf16(src[i]);
            memcpy((char *)dst + 2 * i, &h, 2);
        }
        break;
    default:
        abort();
    }
}

void larv_from_f64(larv_dtype dt, const double *src, void *dst, size_t n)
{
    if (dt == LARV_F64) {
        memmove(dst, src, n * 8);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        float f = (float)src[i];
        /* F16/BF16 from double: round via float (double rounding is harmless at
         * the tolerance larv promises; F32 is exact round-to-nearest). */
        larv_from_f32(dt, &f, (char *)dst + i * larv_dtype_size(dt), 1);
    }
}
