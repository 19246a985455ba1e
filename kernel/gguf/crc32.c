#include "crc32.h"

static uint32_t table[16][256];
static volatile int table_ready;

/* Filled on first use. Two threads racing here write the same values, and a thread that
 * sees table_ready set sees a full table (the flag is written last). */
static void make_table(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int s = 1; s < 16; s++) table[s][i] = table[0][table[s - 1][i] & 255] ^ (table[s - 1][i] >> 8);
    __atomic_store_n(&table_ready, 1, __ATOMIC_RELEASE);
}

static inline uint32_t le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define QA_CRC_CLMUL 1
/* Folding with carry-less multiplication (Intel, "Fast CRC Computation for Generic
 * Polynomials Using PCLMULQDQ"), for the reflected polynomial: four 128-bit lanes fold
 * 64 bytes per step, then one lane, then a Barrett reduction to 32 bits. n >= 64 and a
 * multiple of 16; crc is the raw register (no inversion). ~10x the table loop. */
__attribute__((target("pclmul,sse4.1"))) static uint32_t crc_clmul(uint32_t crc, const uint8_t *p, size_t n) {
    const __m128i k1k2 = _mm_set_epi64x(0x1c6e41596, 0x154442bd4);
    const __m128i k3k4 = _mm_set_epi64x(0x0ccaa009e, 0x1751997d0);
    const __m128i k5 = _mm_set_epi64x(0, 0x163cd6124);
    const __m128i poly = _mm_set_epi64x(0x1f7011641, 0x1db710641); /* u, P' */
    const __m128i mask32 = _mm_set_epi32(0, 0, 0, -1);
    __m128i x1 = _mm_loadu_si128((const __m128i *)p), x2 = _mm_loadu_si128((const __m128i *)(p + 16));
    __m128i x3 = _mm_loadu_si128((const __m128i *)(p + 32)), x4 = _mm_loadu_si128((const __m128i *)(p + 48));
    x1 = _mm_xor_si128(x1, _mm_cvtsi32_si128((int)crc));
    p += 64;
    n -= 64;
#define FOLD(x, k, next) _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x, k, 0x00), _mm_clmulepi64_si128(x, k, 0x11)), next)
    for (; n >= 64; n -= 64, p += 64) {
        x1 = FOLD(x1, k1k2, _mm_loadu_si128((const __m128i *)p));
        x2 = FOLD(x2, k1k2, _mm_loadu_si128((const __m128i *)(p + 16)));
        x3 = FOLD(x3, k1k2, _mm_loadu_si128((const __m128i *)(p + 32)));
        x4 = FOLD(x4, k1k2, _mm_loadu_si128((const __m128i *)(p + 48)));
    }
    x1 = FOLD(x1, k3k4, x2);
    x1 = FOLD(x1, k3k4, x3);
    x1 = FOLD(x1, k3k4, x4);
    for (; n >= 16; n -= 16, p += 16) x1 = FOLD(x1, k3k4, _mm_loadu_si128((const __m128i *)p));
#undef FOLD
    /* 128 -> 64 bits (appending 32 zero bits), then -> 32 bits by Barrett reduction */
    x1 = _mm_xor_si128(_mm_clmulepi64_si128(k3k4, x1, 0x01), _mm_srli_si128(x1, 8));
    x2 = _mm_srli_si128(x1, 4);
    x1 = _mm_xor_si128(_mm_clmulepi64_si128(_mm_and_si128(x1, mask32), k5, 0x00), x2);
    x2 = x1;
    x1 = _mm_and_si128(_mm_clmulepi64_si128(_mm_and_si128(x1, mask32), poly, 0x10), mask32);
    x1 = _mm_xor_si128(_mm_clmulepi64_si128(x1, poly, 0x00), x2);
    return (uint32_t)_mm_extract_epi32(x1, 1);
}
#endif

uint32_t qa_crc32(uint32_t crc, const uint8_t *p, size_t n) {
    if (!__atomic_load_n(&table_ready, __ATOMIC_ACQUIRE)) make_table();
    crc = ~crc;
#ifdef QA_CRC_CLMUL
    if (n >= 128 && __builtin_cpu_supports("pclmul") && __builtin_cpu_supports("sse4.1")) {
        size_t m = n & ~(size_t)15;
        crc = crc_clmul(crc, p, m);
        p += m;
        n -= m;
    }
#endif
    for (; n && ((uintptr_t)p & 7); n--) crc = table[0][(crc ^ *p++) & 255] ^ (crc >> 8);
    for (; n >= 16; n -= 16, p += 16) {
        uint32_t w0 = crc ^ le32(p), w1 = le32(p + 4), w2 = le32(p + 8), w3 = le32(p + 12);
        crc = table[15][w0 & 255] ^ table[14][(w0 >> 8) & 255] ^ table[13][(w0 >> 16) & 255] ^ table[12][w0 >> 24] ^
              table[11][w1 & 255] ^ table[10][(w1 >> 8) & 255] ^ table[9][(w1 >> 16) & 255] ^ table[8][w1 >> 24] ^
              table[7][w2 & 255] ^ table[6][(w2 >> 8) & 255] ^ table[5][(w2 >> 16) & 255] ^ table[4][w2 >> 24] ^
              table[3][w3 & 255] ^ table[2][(w3 >> 8) & 255] ^ table[1][(w3 >> 16) & 255] ^ table[0][w3 >> 24];
    }
    for (; n; n--) crc = table[0][(crc ^ *p++) & 255] ^ (crc >> 8);
    return ~crc;
}
