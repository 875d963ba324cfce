/* A fast 64-bit checksum of tensor bytes, for provenance and `larv verify`.
 * Not cryptographic: it detects corruption and accidental change, not attack. */
#ifndef LARV_HASH_H
#define LARV_HASH_H

#include <stddef.h>
#include <stdint.h>

uint64_t larv_hash64(const void *data, size_t n, uint64_t seed);
/* "%016llx" into buf (17 bytes). */
const char *larv_hash_hex(uint64_t h, char buf[17]);
/* Parse 16 hex digits; -1 if malformed. */
int larv_hash_parse(const char *s, uint64_t *h);

#endif
