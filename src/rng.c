#include "rng.h"

#include <math.h>

uint64_t larv_hash_str(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ULL;
    }
    return larv_mix64(h);
}

/* Both normals of pair p: Box-Muller in single precision on the two 32-bit
 * halves of one 64-bit draw (u1 in (0, 1], so the tails reach about 6.7). */
static inline void normal_pair(uint64_t key, uint64_t p, double *z0, double *z1)
{
    uint64_t b = larv_rng_u64(key, p);
    float u1 = ((float)(uint32_t)(b >> 40) + 1.0f) * (1.0f / 16777216.0f);
    float u2 = (float)(uint32_t)(b & 0xffffffu) * (1.0f / 16777216.0f);
    float r = sqrtf(-2.0f * logf(u1));
    float a = 6.2831853f * u2;
    *z0 = (double)(r * cosf(a));
    *z1 = (double)(r * sinf(a));
}

double larv_rng_normal(uint64_t key, uint64_t i)
{
    double z0, z1;
    normal_pair(key, i >> 1, &z0, &z1);
    return (i & 1) ? z1 : z0;
}

#define FILL_BODY(OP, T)                                                                           \
    size_t j = 0;                                                                                  \
    if (n && (first & 1)) {                                                                        \
        dst[0] OP (T)(scale * larv_rng_normal(key, first));                                        \
        j = 1;                                                                                     \
    }                                                                                              \
    for (; j + 1 < n; j += 2) {                                                                    \
        double z0, z1;                                                                             \
        normal_pair(key, (first + j) >> 1, &z0, &z1);                                              \
        dst[j] OP (T)(scale * z0);                                                                 \
        dst[j + 1] OP (T)(scale * z1);                                                             \
    }                                                                                              \
    if (j < n)                                                                                     \
        dst[j] OP (T)(scale * larv_rng_normal(key, first + j));

void larv_rng_fill_normal_f32(uint64_t key, uint64_t first, size_t n, float scale, float *dst)
{
    FILL_BODY(=, float)
}

void larv_rng_fill_normal_f64(uint64_t key, uint64_t first, size_t n, double scale, double *dst)
{
    FILL_BODY(=, double)
}

void larv_rng_add_normal_f32(uint64_t key, uint64_t first, size_t n, float scale, float *dst)
{
    FILL_BODY(+=, float)
}
