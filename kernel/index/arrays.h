/* The arrays of an index, as the host holds them: borrowed pointers plus the header values.
 *
 * This is the meeting point of the two halves of the index kernel:
 *   - kernel/index/qann.c fills it from a .qann file's in-memory part (one GGUF reader,
 *     every value checked, pointers into the caller's buffer);
 *   - the index ABI (kernel/index/index.h) builds a searchable index over it, whether the
 *     arrays came from a file or from a build in memory.
 * Layout of each array: FORMAT.md. Nothing here is owned: the host keeps the buffers alive.
 */
#ifndef QA_INDEX_ARRAYS_H
#define QA_INDEX_ARRAYS_H

#include <stdint.h>

typedef struct {
    /* header */
    int metric;               /* QA_METRIC_L2 / QA_METRIC_IP (cosine: IP over unit vectors) */
    int cosine;               /* 1 when the user's metric is cosine (queries are normalised) */
    int codec;                /* QA_CODEC_* */
    int d;                    /* dimensions */
    int64_t n;                /* rows */
    int M, M0;                /* links per node on upper levels / level 0 */
    int32_t entry;            /* entry row, -1 when empty */
    int max_level;
    int ef_construction;
    /* quantizer parameters: codec-defined, `quant_bytes` bytes (sq: vmin[dpad], scale[dpad]) */
    const float *vmin, *scale;
    /* codes: n x code_size bytes; norms: |decoded code|^2 per row (L2 only, else NULL) */
    const uint8_t *codes;
    const float *norms;
    /* graph */
    const uint8_t *level;     /* [n] */
    const int32_t *links0;    /* [n * M0], when link_bits is 0 or 32 (else NULL) */
    const int32_t *up_nodes;  /* [n_up] */
    const int64_t *up_off;    /* [n_up] */
    int64_t n_up;
    const int32_t *upper;     /* [n_upper] */
    int64_t n_upper;
    const uint64_t *ids;      /* [n] user ids, NULL when the ids are the rows */
    const uint8_t *deleted;   /* bitset [(n + 7) / 8], NULL when nothing is deleted */
    /* the full vectors in the file (not in the buffer): byte offset of row 0, f32 rows */
    uint64_t vectors_offset;
    uint32_t vectors_crc32;
    /* level 0 packed (kernel/links.h): link_bits 1..31 bits per id in rows of
     * qa_link_row_bytes(M0, link_bits) bytes at links0_packed; 0 or 32: the int32 links0 */
    int link_bits;
    const uint8_t *links0_packed;
    /* [n] the codec's per-row residual (codec.h `residual`; sq8: |x - x^|), which makes
     * rerank auto's bound hold for every row; NULL: absent (files before format 5) */
    const float *resid;
} qa_index_arrays;

#endif
