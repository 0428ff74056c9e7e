// tensorcast native kernel: CRC32C (Castagnoli), the checksum of every data-plane frame and shm chunk.
#ifndef TENSORCAST_CRC32C_H
#define TENSORCAST_CRC32C_H
#include <stddef.h>
#include <stdint.h>

/** Continues `crc` (0 for a fresh checksum) over `n` bytes at `p`; the same value as crc32c(a || b) chaining. */
uint32_t tc_crc32c(uint32_t crc, const uint8_t* p, size_t n);

/** The portable table kernel alone (what runs without SSE4.2), for tests on machines that have it. */
uint32_t tc_crc32c_portable(uint32_t crc, const uint8_t* p, size_t n);

/** 1 when the SSE4.2 instruction path runs, 0 for the portable table path. */
int tc_crc32c_hardware(void);

#endif
