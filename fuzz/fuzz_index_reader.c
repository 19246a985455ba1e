/* libFuzzer target for the .qann reader (kernel/index/qann.c over kernel/gguf/gguf.c):
 * any bytes, read as a whole file and as every kind of prefix, must give QA_OK or an
 * error, never an out-of-bounds access (run under ASan + UBSan). Seeds: tests/conformance/index.
 * Checksums are left as they are (fuzz_qann_open_search.c repairs them to go deeper).
 * Build and run: fuzz/run.sh index_reader (make fuzz).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "index/qann.h"
#include "links.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* the reader wants an 8-byte aligned buffer, as a memory map or a malloc gives */
    uint8_t *buf = (uint8_t *)malloc(size ? size : 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    char err[256];
    qa_qann_info info;
    qa_index_arrays a;
    uint64_t prefix = size > 64 ? size / 3 : size;
    int rc = qa_qann_info_read(buf, prefix, size, &info, err, sizeof err);
    if (rc == QA_ERR_NEED_MORE && info.header_bytes <= size)
        rc = qa_qann_info_read(buf, info.header_bytes, size, &info, err, sizeof err);
    if (rc == QA_OK && qa_qann_read(buf, size, size, &a, err, sizeof err) == QA_OK) {
        /* what the search will follow: touch every array end to end */
        volatile uint32_t sink = 0;
        if (a.links0_packed) {
            int32_t lst[256];
            const int64_t rb = qa_link_row_bytes(a.M0, a.link_bits);
            for (int64_t i = 0; i < a.n; i++)
                sink += (uint32_t)qa_links_unpack_row(a.links0_packed + i * rb, a.M0, a.link_bits, (a.n - i) * rb, lst) + a.level[i];
        } else {
            for (int64_t i = 0; i < a.n * a.M0; i++) sink += (uint32_t)a.links0[i] + a.level[i % a.n];
        }
        for (int64_t i = 0; i < a.n_upper; i++) sink += (uint32_t)a.upper[i];
    }
    free(buf);
    return 0;
}
