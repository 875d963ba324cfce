/* Counter-based random numbers (no state, no MPI): every value is a pure
 * function of a 64-bit key and a 64-bit counter, so any rank can produce any
 * element of any stream alone, in any order, with the same result.
 *
 * The mixer is the splitmix64 finaliser (Steele, Lea, Flood 2014) applied to
 * key + golden * (counter + 1); keys are derived by chaining the same mixer
 * over the fields that identify a stream (seed, checkpoint, tensor name, ...). */
#ifndef LARV_RNG_H
#define LARV_RNG_H

#include <stddef.h>
#include <stdint.h>

/* The splitmix64 finaliser: a bijective 64-bit mix. */
static inline uint64_t larv_mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Derive a child key from a key and one more field. */
static inline uint64_t larv_rng_key(uint64_t key, uint64_t field)
{
    return larv_mix64(key ^ larv_mix64(field + 0x9e3779b97f4a7c15ULL));
}

/* 64 random bits for (key, counter). */
static inline uint64_t larv_rng_u64(uint64_t key, uint64_t ctr)
{
    return larv_mix64(key + 0x9e3779b97f4a7c15ULL * (ctr + 1));
}

/* Uniform in the open interval (0, 1), 53 bits. */
static inline double larv_rng_uniform(uint64_t key, uint64_t ctr)
{
    return ((double)(larv_rng_u64(key, ctr) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

/* FNV-1a 64 of a NUL-terminated string, then mixed (for tensor-name keys). */
uint64_t larv_hash_str(const char *s);

/* Standard normal number with index i of stream `key`: Box-Muller (single
 * precision, 24-bit uniforms) on draw i/2; even i takes the cosine, odd i the sine. */
double larv_rng_normal(uint64_t key, uint64_t i);

/* dst[j] = scale * normal(key, first + j), j < n (float / double output).
 * Equal to calling larv_rng_normal element by element. */
void larv_rng_fill_normal_f32(uint64_t key, uint64_t first, size_t n, float scale, float *dst);
void larv_rng_fill_normal_f64(uint64_t key, uint64_t first, size_t n, double scale, double *dst);
/* dst[j] += scale * normal(key, first + j). */
void larv_rng_add_normal_f32(uint64_t key, uint64_t first, size_t n, float scale, float *dst);

#endif
