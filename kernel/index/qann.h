/* The .qann index file (FORMAT.md), read once, in C, for every host.
 *
 * A .qann is a GGUF file: header, then the in-memory tensors (quantizer, codes, graph,
 * ids), then the full vectors. A host gives the first bytes of the file and the file's
 * length; the reader checks every value a kernel will follow before handing out pointers:
 * architecture and format version, every key's presence and GGUF type, header values
 * against the limits of quantann/constants.json, a CRC-32 over the whole header (format 2),
 * every tensor's type, shape and extent, the CRC-32 of every in-memory tensor, the graph
 * (links inside the index and only to nodes that have the level they are on, levels, the
 * upper-level lists and offsets, the entry on the top level), finite quantizer parameters
 * and float codes, finite non-negative residuals, unique ids. The vectors tensor is checked against the file's length
 * only: it is never in the buffer.
 *
 * Two steps, so that a streamed or HTTP reader fetches exactly what it needs and checks
 * the memory budget before fetching the in-memory part:
 *   qa_qann_info_read(prefix)  header checks, sizes; QA_ERR_NEED_MORE says how many bytes
 *   qa_qann_read(part)         everything, and the arrays (pointers into the buffer)
 */
#ifndef QA_QANN_H
#define QA_QANN_H

#include <stddef.h>
#include <stdint.h>

#include "../gguf/gguf.h"
#include "arrays.h"

/* The tensors of a .qann, in file order (names: kernel/constants.h, QA_TENSOR_*). */
enum { QA_QANN_VMIN, QA_QANN_SCALE, QA_QANN_CODES, QA_QANN_NORMS, QA_QANN_RESIDUALS, QA_QANN_LEVEL,
       QA_QANN_LINKS0, QA_QANN_UP_NODES, QA_QANN_UP_OFF, QA_QANN_UPPER, QA_QANN_IDS, QA_QANN_VECTORS,
       QA_QANN_TENSORS };

typedef struct {
    uint32_t gguf_version;
    uint32_t format_version;
    uint64_t file_len;
    uint64_t header_bytes;   /* the GGUF header with its padding (where tensor data starts) */
    uint64_t part_bytes;     /* header + in-memory tensors: the vectors tensor starts here */
    /* memory of the in-memory part once open, by part (as Index.memory() counts it) */
    uint64_t mem_codes, mem_graph, mem_ids, mem_other;
    /* format 4, quantann.ids.next: the ids tensor holds the index's own numbering (rows
     * stored in a permuted order) and `add` gives this id next; 0 when absent (the ids are
     * the rows, or the caller's) */
    uint64_t next_id;
    /* the header values (pointers NULL) and where each tensor lies in the file (0, 0: absent) */
    qa_index_arrays header;
    uint64_t offset[QA_QANN_TENSORS], nbytes[QA_QANN_TENSORS];
} qa_qann_info;

/* buf: the first len bytes of a file of file_len bytes (8-byte aligned).
 * QA_OK: the header is sound and `info` filled. QA_ERR_NEED_MORE: the prefix ends inside
 * the header; info->header_bytes is the prefix length to ask for next. Otherwise an error
 * with its message in err. */
int qa_qann_info_read(const uint8_t *buf, uint64_t len, uint64_t file_len, qa_qann_info *info, char *err,
                      size_t err_len);

/* buf: the first len >= part_bytes bytes of the file. Checks everything above and fills
 * `out` with pointers into buf (`info` too when not NULL). QA_ERR_NEED_MORE when len is
 * short of the in-memory part (info->part_bytes then says how much is needed). */
int qa_qann_read(const uint8_t *buf, uint64_t len, uint64_t file_len, qa_index_arrays *out, char *err,
                 size_t err_len);
int qa_qann_read_info(const uint8_t *buf, uint64_t len, uint64_t file_len, qa_index_arrays *out,
                      qa_qann_info *info, char *err, size_t err_len);

/* The graph checks of qa_qann_read alone (a.n, M, M0, entry, max_level and the graph
 * arrays): every link in [-1, n) and, above level 0, only to rows that have that level;
 * levels <= max_level, the entry on it; up_nodes, up_off and the pool size. */
int qa_qann_check_graph(const qa_index_arrays *a, char *err, size_t err_len);

/* The header checksum of a format-2 file (for the writer): the CRC-32 of the header bytes
 * [0, end of the tensor records) with the 4 value bytes of quantann.checksums.header
 * counted as zeros. *value_at: where those 4 bytes are (the writer patches them). */
int qa_qann_header_crc(const uint8_t *buf, uint64_t len, uint32_t *crc, uint64_t *value_at, char *err,
                       size_t err_len);

#endif
