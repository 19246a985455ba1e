/* GGUF reader over a byte buffer (a memory map natively, an ArrayBuffer in wasm).
 *
 * Nothing in the buffer is trusted: every length, count, offset, type and size is checked
 * against the buffer's length before it is used, and arithmetic is overflow-checked. A bad
 * file yields QA_ERR_FORMAT and a message naming what is wrong, never an out-of-bounds read.
 * Weights are not copied: tensor records point into the buffer.
 *
 * Layout (GGUF v2/v3, little endian):
 *   u32 magic "GGUF" | u32 version | u64 n_tensors | u64 n_kv
 *   n_kv    x { string key | u32 value_type | value }
 *   n_tensors x { string name | u32 n_dims | u64 ne[n_dims] | u32 ggml_type | u64 offset }
 *   padding to general.alignment (default 32) | tensor data (offsets relative to here)
 *   string = u64 length + bytes; array = u32 item type + u64 count + items
 */
#ifndef QA_GGUF_H
#define QA_GGUF_H

#include <stddef.h>
#include <stdint.h>

/* QA_ERR_NEED_MORE: the bytes given are a prefix of the file that ends inside the part
 * asked for; the prefix length needed is returned beside it. */
#include "../errors.h" /* QA_OK, QA_ERR_* */

enum qa_gguf_vtype {
    QA_GV_U8 = 0, QA_GV_I8, QA_GV_U16, QA_GV_I16, QA_GV_U32, QA_GV_I32, QA_GV_F32, QA_GV_BOOL,
    QA_GV_STRING, QA_GV_ARRAY, QA_GV_U64, QA_GV_I64, QA_GV_F64, QA_GV_COUNT
};

/* ggml tensor type ids (ggml.h numbering). The reader knows the block size of each so
 * that it can check any tensor's extent; what a kernel can compute with is its own table
 * (kernel/model: the types table). */
enum qa_ggml_type {
    QA_T_F32 = 0, QA_T_F16 = 1, QA_T_Q4_0 = 2, QA_T_Q4_1 = 3, QA_T_Q5_0 = 6, QA_T_Q5_1 = 7,
    QA_T_Q8_0 = 8, QA_T_Q8_1 = 9, QA_T_Q2_K = 10, QA_T_Q3_K = 11, QA_T_Q4_K = 12, QA_T_Q5_K = 13,
    QA_T_Q6_K = 14, QA_T_Q8_K = 15, QA_T_I8 = 24, QA_T_I16 = 25, QA_T_I32 = 26, QA_T_I64 = 27,
    QA_T_F64 = 28, QA_T_BF16 = 30, QA_T_COUNT = 31
};

typedef struct {
    const uint8_t *key;   /* not NUL-terminated */
    uint64_t key_len;
    uint32_t type;        /* qa_gguf_vtype */
    uint32_t arr_type;    /* item type when type == ARRAY */
    uint64_t arr_n;       /* item count when type == ARRAY */
    const uint8_t *val;   /* first byte of the value (after the array header for arrays) */
} qa_gguf_kv;

typedef struct {
    const uint8_t *name;
    uint64_t name_len;
    uint32_t n_dims;
    uint32_t type;        /* qa_ggml_type */
    int64_t ne[4];        /* ne[0] = innermost (row length) */
    uint64_t offset;      /* relative to data start */
    const uint8_t *data;  /* checked: data .. data + nbytes lies inside the buffer; NULL when
                             the tensor lies past the prefix given to qa_gguf_parse_prefix */
    uint64_t nbytes;
} qa_gguf_tensor;

typedef struct {
    const uint8_t *buf;
    uint64_t len;
    uint32_t version;
    uint32_t alignment;
    uint64_t n_kv, n_tensors;
    qa_gguf_kv *kv;          /* host-provided arrays */
    qa_gguf_tensor *tensors;
    uint64_t data_start;
    uint64_t file_len;       /* the whole file's length (== len unless parsed from a prefix) */
    uint64_t info_end;       /* end of the tensor records: the header is buf[0, info_end) */
} qa_gguf;

/* Reads the counts from the header (checked against len) so the host can size the arrays. */
int qa_gguf_counts(const uint8_t *buf, uint64_t len, uint64_t *n_kv, uint64_t *n_tensors,
                   char *err, size_t err_len);
/* Parses and validates the whole header of a file held whole in buf (no duplicate keys or
 * tensor names, no overlapping tensors); kv/tensors must hold the counts above. */
int qa_gguf_parse(qa_gguf *g, const uint8_t *buf, uint64_t len, qa_gguf_kv *kv, uint64_t kv_cap,
                  qa_gguf_tensor *tensors, uint64_t tensor_cap, char *err, size_t err_len);

/* Prefix mode. `buf` holds the first `len` bytes of a file of `file_len` bytes:
 *   qa_gguf_header_size: QA_OK and *need = data_start (the header with its padding) when
 *     the prefix holds the whole header; QA_ERR_NEED_MORE and *need = the prefix length
 *     needed to read on (ask again with that many bytes); an error for a bad header.
 *   qa_gguf_parse_prefix: qa_gguf_parse over a prefix holding the header; every tensor's
 *     extent is checked against file_len, and `data` is set only for tensors inside buf. */
int qa_gguf_header_size(const uint8_t *buf, uint64_t len, uint64_t file_len, uint64_t *need,
                        char *err, size_t err_len);
int qa_gguf_parse_prefix(qa_gguf *g, const uint8_t *buf, uint64_t len, uint64_t file_len, qa_gguf_kv *kv,
                         uint64_t kv_cap, qa_gguf_tensor *tensors, uint64_t tensor_cap, char *err,
                         size_t err_len);

const qa_gguf_kv *qa_gguf_find_kv(const qa_gguf *g, const char *key);
const qa_gguf_tensor *qa_gguf_find_tensor(const qa_gguf *g, const char *name);
/* Scalar getters: convert any integer type; return QA_ERR_FORMAT if missing or of a wrong type. */
int qa_gguf_get_u32(const qa_gguf *g, const char *key, uint32_t *out);
int qa_gguf_get_f32(const qa_gguf *g, const char *key, float *out);
int qa_gguf_get_bool(const qa_gguf *g, const char *key, int *out);
/* Bytes per row of n elements of a type (0 if the type is unknown or n is not a block multiple). */
uint64_t qa_ggml_row_bytes(uint32_t type, int64_t n);

/* Messages: %s %.*s %d %u %lld %llu %x with width and zero padding (no stdio needed). */
void qa_set_err(char *err, size_t err_len, const char *fmt, ...);
void qa_format(char *out, size_t cap, const char *fmt, ...);

#endif
