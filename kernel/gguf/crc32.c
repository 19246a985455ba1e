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

uint32_t qa_crc32(uint32_t crc, const uint8_t *p, size_t n) {
    if (!__atomic_load_n(&table_ready, __ATOMIC_ACQUIRE)) make_table();
    crc = ~crc;
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
