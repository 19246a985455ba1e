/* GGUF reader over a byte buffer (a memory map natively, an ArrayBuffer in wasm).
 *
 * Nothing in the buffer is trusted: every length, count, offset, type and size is checked
 * against the buffer's length before it is used, and arithmetic is overflow-checked. A bad
 * file yields QM_ERR_FORMAT and a message naming what is wrong, never an out-of-bounds read.
 * Weights are not copied: tensor records point into the buffer.
 *
 * Layout (GGUF v2/v3, little endian):
 *   u32 magic "GGUF" | u32 version | u64 n_tensors | u64 n_kv
 *   n_kv    x { string key | u32 value_type | value }
 *   n_tensors x { string name | u32 n_dims | u64 ne[n_dims] | u32 ggml_type | u64 offset }
 *   padding to general.alignment (default 32) | tensor data (offsets relative to here)
 *   string = u64 length + bytes; array = u32 item type + u64 count + items
 */
#ifndef QM_GGUF_H
#define QM_GGUF_H

#include <stddef.h>
#include <stdint.h>

enum { QM_OK = 0, QM_ERR_FORMAT = -1, QM_ERR_UNSUPPORTED = -2, QM_ERR_SPACE = -3, QM_ERR_ARG = -4 };

enum qm_gguf_vtype {
    QM_GV_U8 = 0, QM_GV_I8, QM_GV_U16, QM_GV_I16, QM_GV_U32, QM_GV_I32, QM_GV_F32, QM_GV_BOOL,
    QM_GV_STRING, QM_GV_ARRAY, QM_GV_U64, QM_GV_I64, QM_GV_F64, QM_GV_COUNT
};

/* ggml tensor types this kernel reads. */
enum qm_ggml_type { QM_T_F32 = 0, QM_T_F16 = 1, QM_T_Q4_0 = 2, QM_T_Q8_0 = 8 };

typedef struct {
    const uint8_t *key;   /* not NUL-terminated */
    uint64_t key_len;
    uint32_t type;        /* qm_gguf_vtype */
    uint32_t arr_type;    /* item type when type == ARRAY */
    uint64_t arr_n;       /* item count when type == ARRAY */
    const uint8_t *val;   /* first byte of the value (after the array header for arrays) */
} qm_gguf_kv;

typedef struct {
    const uint8_t *name;
    uint64_t name_len;
    uint32_t n_dims;
    uint32_t type;        /* qm_ggml_type */
    int64_t ne[4];        /* ne[0] = innermost (row length) */
    uint64_t offset;      /* relative to data start */
    const uint8_t *data;  /* checked: data .. data + nbytes lies inside the buffer */
    uint64_t nbytes;
} qm_gguf_tensor;

typedef struct {
    const uint8_t *buf;
    uint64_t len;
    uint32_t version;
    uint32_t alignment;
    uint64_t n_kv, n_tensors;
    qm_gguf_kv *kv;          /* host-provided arrays */
    qm_gguf_tensor *tensors;
    uint64_t data_start;
} qm_gguf;

/* Reads the counts from the header (checked against len) so the host can size the arrays. */
int qm_gguf_counts(const uint8_t *buf, uint64_t len, uint64_t *n_kv, uint64_t *n_tensors,
                   char *err, size_t err_len);
/* Parses and validates the whole header; kv/tensors must hold the counts above. */
int qm_gguf_parse(qm_gguf *g, const uint8_t *buf, uint64_t len, qm_gguf_kv *kv, uint64_t kv_cap,
                  qm_gguf_tensor *tensors, uint64_t tensor_cap, char *err, size_t err_len);

const qm_gguf_kv *qm_gguf_find_kv(const qm_gguf *g, const char *key);
const qm_gguf_tensor *qm_gguf_find_tensor(const qm_gguf *g, const char *name);
/* Scalar getters: convert any integer type; return QM_ERR_FORMAT if missing or of a wrong type. */
int qm_gguf_get_u32(const qm_gguf *g, const char *key, uint32_t *out);
int qm_gguf_get_f32(const qm_gguf *g, const char *key, float *out);
int qm_gguf_get_bool(const qm_gguf *g, const char *key, int *out);
/* Bytes per row of n elements of a type (0 if the type is unknown or n is not a block multiple). */
uint64_t qm_ggml_row_bytes(uint32_t type, int64_t n);

void qm_set_err(char *err, size_t err_len, const char *fmt, ...);

#endif
