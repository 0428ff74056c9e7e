// tensorcast native kernel: CRC32C (Castagnoli, reflected polynomial 0x82F63B78).
//
// On x86-64 with SSE4.2 the crc32 instruction does 8 bytes per step but has a latency of ~3 cycles, so one
// dependent chain runs at a third of the unit's throughput. The buffer is therefore cut into three lanes
// checksummed at once and the three registers are merged: the register after A||B equals the register after
// A advanced over len(B) zero bytes, xor the register of B from zero (the update is linear). Advancing over a
// fixed number of zero bytes is itself linear in the 32 register bits, so it is a table lookup per register
// byte, tables built once at load. Elsewhere a slicing-by-8 table kernel runs.

#include "crc32c.h"

#include <string.h>

#define POLY 0x82F63B78u
// Lane lengths: long lanes for bulk, short ones so mid-size tails still run three-wide.
#define LONG_LANE 8192
#define SHORT_LANE 256

static uint32_t table8[8][256];
static uint32_t shift_long[4][256];
static uint32_t shift_short[4][256];
static int have_sse42;

// Multiplies two polynomials modulo P in the reflected representation (bit 31 is x^0).
static uint32_t mul_mod_p(uint32_t a, uint32_t b) {
  uint32_t product = 0;
  for (int i = 0; i < 32; i++) {
    if (a & 0x80000000u) product ^= b;
    a <<= 1;
    b = (b & 1) ? (b >> 1) ^ POLY : b >> 1;
  }
  return product;
}

// x^(8 * bytes) mod P: the operator that advances a register over `bytes` zero bytes.
static uint32_t x_pow_bytes(size_t bytes) {
  uint32_t result = 0x80000000u;  // x^0
  uint32_t square = 0x40000000u;  // x^1
  for (uint64_t e = (uint64_t)bytes * 8; e != 0; e >>= 1) {
    if (e & 1) result = mul_mod_p(result, square);
    square = mul_mod_p(square, square);
  }
  return result;
}

static void build_shift(uint32_t table[4][256], size_t bytes) {
  uint32_t op = x_pow_bytes(bytes);
  for (int k = 0; k < 4; k++)
    for (uint32_t v = 0; v < 256; v++) table[k][v] = mul_mod_p(op, v << (8 * k));
}

static inline uint32_t shift(const uint32_t table[4][256], uint32_t crc) {
  return table[0][crc & 0xff] ^ table[1][(crc >> 8) & 0xff] ^ table[2][(crc >> 16) & 0xff] ^ table[3][crc >> 24];
}

__attribute__((constructor)) static void crc32c_init(void) {
  for (uint32_t v = 0; v < 256; v++) {
    uint32_t c = v;
    for (int i = 0; i < 8; i++) c = (c & 1) ? (c >> 1) ^ POLY : c >> 1;
    table8[0][v] = c;
  }
  for (uint32_t v = 0; v < 256; v++)
    for (int k = 1; k < 8; k++) table8[k][v] = (table8[k - 1][v] >> 8) ^ table8[0][table8[k - 1][v] & 0xff];
  build_shift(shift_long, LONG_LANE);
  build_shift(shift_short, SHORT_LANE);
#if defined(__x86_64__)
  __builtin_cpu_init();
  have_sse42 = __builtin_cpu_supports("sse4.2");
#endif
}

static uint32_t crc_table(uint32_t crc, const uint8_t* p, size_t n) {
  while (n > 0 && ((uintptr_t)p & 7) != 0) {
    crc = (crc >> 8) ^ table8[0][(crc ^ *p++) & 0xff];
    n--;
  }
  while (n >= 8) {
    uint64_t w;
    memcpy(&w, p, 8);
    w ^= crc;
    crc = table8[7][w & 0xff] ^ table8[6][(w >> 8) & 0xff] ^ table8[5][(w >> 16) & 0xff] ^ table8[4][(w >> 24) & 0xff] ^
          table8[3][(w >> 32) & 0xff] ^ table8[2][(w >> 40) & 0xff] ^ table8[1][(w >> 48) & 0xff] ^ table8[0][w >> 56];
    p += 8;
    n -= 8;
  }
  while (n-- > 0) crc = (crc >> 8) ^ table8[0][(crc ^ *p++) & 0xff];
  return crc;
}

#if defined(__x86_64__)
#include <nmmintrin.h>

__attribute__((target("sse4.2"))) static uint64_t lanes(uint64_t c0, const uint8_t* p, size_t lane, const uint32_t table[4][256]) {
  uint64_t c1 = 0, c2 = 0;
  const uint8_t* end = p + lane;
  for (; p < end; p += 8) {
    uint64_t a, b, c;
    memcpy(&a, p, 8);
    memcpy(&b, p + lane, 8);
    memcpy(&c, p + 2 * lane, 8);
    c0 = _mm_crc32_u64(c0, a);
    c1 = _mm_crc32_u64(c1, b);
    c2 = _mm_crc32_u64(c2, c);
  }
  return shift(table, shift(table, (uint32_t)c0) ^ (uint32_t)c1) ^ (uint32_t)c2;
}

__attribute__((target("sse4.2"))) static uint32_t crc_sse42(uint32_t crc, const uint8_t* p, size_t n) {
  while (n > 0 && ((uintptr_t)p & 7) != 0) {
    crc = _mm_crc32_u8(crc, *p++);
    n--;
  }
  uint64_t c = crc;
  for (; n >= 3 * LONG_LANE; p += 3 * LONG_LANE, n -= 3 * LONG_LANE) c = lanes(c, p, LONG_LANE, shift_long);
  for (; n >= 3 * SHORT_LANE; p += 3 * SHORT_LANE, n -= 3 * SHORT_LANE) c = lanes(c, p, SHORT_LANE, shift_short);
  for (; n >= 8; p += 8, n -= 8) {
    uint64_t w;
    memcpy(&w, p, 8);
    c = _mm_crc32_u64(c, w);
  }
  crc = (uint32_t)c;
  while (n-- > 0) crc = _mm_crc32_u8(crc, *p++);
  return crc;
}
#endif

uint32_t tc_crc32c(uint32_t crc, const uint8_t* p, size_t n) {
  crc = ~crc;
#if defined(__x86_64__)
  if (have_sse42) return ~crc_sse42(crc, p, n);
#endif
  return ~crc_table(crc, p, n);
}

uint32_t tc_crc32c_portable(uint32_t crc, const uint8_t* p, size_t n) { return ~crc_table(~crc, p, n); }

int tc_crc32c_hardware(void) { return have_sse42; }
