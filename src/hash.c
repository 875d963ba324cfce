#include "hash.h"

#include <stdio.h>
#include <string.h>

/* 64-bit multiply-xorshift over 8-byte words (the finalizer of splitmix64 as
 * the mixing step); processes 32 bytes per iteration in four lanes. */
static inline uint64_t mix(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

uint64_t larv_hash64(const void *data, size_t n, uint64_t seed)
{
    const unsigned char *p = data;
    uint64_t h[4] = {seed ^ 0x9e3779b97f4a7c15ULL, seed + 0x632be59bd9b4e019ULL,
                     ~seed, seed * 0xff51afd7ed558ccdULL + 1};
    size_t i = 0;
    for (; i + 32 <= n; i += 32)
        for (int l = 0; l < 4; l++) {
            uint64_t w;
            memcpy(&w, p + i + 8 * l, 8);
            h[l] = mix(h[l] ^ w) + 0x9e3779b97f4a7c15ULL;
        }
    uint64_t tail = 0;
    size_t rest = n - i;
    memcpy(&tail, p + i, rest > 8 ? 8 : rest);
    if (rest > 8) {
        for (size_t j = 8; j < rest; j++)
            tail = mix(tail ^ (uint64_t)p[i + j] << ((j % 8) * 8));
    }
    uint64_t out = mix(h[0] ^ mix(h[1] ^ mix(h[2] ^ mix(h[3] ^ tail))));
    return mix(out ^ (uint64_t)n);
}

const char *larv_hash_hex(uint64_t h, char buf[17])
{
    snprintf(buf, 17, "%016llx", (unsigned long long)h);
    return buf;
}

int larv_hash_parse(const char *s, uint64_t *h)
{
    uint64_t v = 0;
    for (int i = 0; i < 16; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0)
            return -1;
        v = v << 4 | (uint64_t)d;
    }
    if (s[16] != '\0')
        return -1;
    *h = v;
    return 0;
}
