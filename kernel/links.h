/* Compact level-0 neighbour lists: each id in b = bitlen(n) bits instead of 32.
 *
 * Row r of a packed array is row_bytes = ceil(M0 * b / 8) bytes at r * row_bytes; slot j
 * is the b bits at bit j * b of the row, least significant bit first (little-endian bit
 * order, FORMAT.md). The all-ones value 2^b - 1 (>= n) marks an empty slot, like -1 in the
 * int32 lists; a list ends at its first empty slot. Rows are whole bytes so that
 * two rows never share a byte (the writer of one row cannot disturb another).
 * Fixed width keeps slot j of row r at a known place: no sorted deltas, no index.
 */
#ifndef QA_LINKS_H
#define QA_LINKS_H
#include <stdint.h>
#include <string.h>

/* Links of width 32 are the plain int32 lists (-1 for an empty slot). */
#define QA_LINK_BITS_INT32 32

/* The packed width for n rows: enough bits for 0..n (n itself stands for "empty"). */
static inline int qa_link_bits(int64_t n) {
    int b = 1;
    while (b < 31 && ((int64_t)1 << b) <= n) b++;
    return b;
}

static inline int64_t qa_link_row_bytes(int M0, int bits) { return ((int64_t)M0 * bits + 7) / 8; }

/* Reads the list of one packed row into out (int32 ids); returns its length. `avail`:
 * the bytes readable from `row` on (to the end of the array). With 8 bytes to spare past
 * the row, each slot is one unaligned 64-bit load, shift and mask (a search decodes a
 * list per hop: this is on its path); otherwise, and on big-endian hosts, byte by byte. */
static inline int qa_links_unpack_row(const uint8_t *row, int M0, int bits, int64_t avail, int32_t *out) {
    const uint32_t empty = (uint32_t)((1u << bits) - 1);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (avail >= qa_link_row_bytes(M0, bits) + 8) {
        int n = 0;
        for (int j = 0, bit = 0; j < M0; j++, bit += bits) {
            uint64_t w;
            memcpy(&w, row + (bit >> 3), 8);
            uint32_t v = (uint32_t)(w >> (bit & 7)) & empty;
            if (v == empty) break;
            out[n++] = (int32_t)v;
        }
        return n;
    }
#endif
    (void)avail;
    uint64_t acc = 0;
    int have = 0, n = 0;
    const uint8_t *p = row;
    for (int j = 0; j < M0; j++) {
        while (have < bits) { acc |= (uint64_t)*p++ << have; have += 8; }
        uint32_t v = (uint32_t)acc & empty;
        acc >>= bits;
        have -= bits;
        if (v == empty) break;
        out[n++] = (int32_t)v;
    }
    return n;
}

/* Writes an int32 list (-1 ends it early) as one packed row of row_bytes bytes. */
static inline void qa_links_pack_row(const int32_t *src, int M0, int bits, uint8_t *row) {
    const uint32_t empty = (uint32_t)((1u << bits) - 1);
    uint64_t acc = 0;
    int have = 0, ended = 0;
    uint8_t *p = row;
    for (int j = 0; j < M0; j++) {
        if (src[j] < 0) ended = 1;
        uint32_t v = ended ? empty : (uint32_t)src[j];
        acc |= (uint64_t)v << have;
        have += bits;
        while (have >= 8) { *p++ = (uint8_t)acc; acc >>= 8; have -= 8; }
    }
    if (have) *p = (uint8_t)acc; /* the tail bits of the last byte are 0 */
}

/* n rows of int32 lists (n x M0) <-> n packed rows (n x row_bytes). */
static inline void qa_links_pack(const int32_t *src, int64_t n, int M0, int bits, uint8_t *dst) {
    const int64_t rb = qa_link_row_bytes(M0, bits);
    for (int64_t r = 0; r < n; r++) qa_links_pack_row(src + r * M0, M0, bits, dst + r * rb);
}

static inline void qa_links_unpack(const uint8_t *src, int64_t n, int M0, int bits, int32_t *dst) {
    const int64_t rb = qa_link_row_bytes(M0, bits);
    for (int64_t r = 0; r < n; r++) {
        int32_t *out = dst + r * M0;
        for (int j = qa_links_unpack_row(src + r * rb, M0, bits, (n - r) * rb, out); j < M0; j++) out[j] = -1;
    }
}
#endif
