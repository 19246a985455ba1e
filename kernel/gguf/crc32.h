/* CRC-32 (the zlib / PNG polynomial, reflected 0xEDB88320), as Python's zlib.crc32 writes
 * the checksums of a .qann file. Carry-less multiplication on x86-64 (PCLMUL), slicing by 16
 * bytes elsewhere (wasm): checking every in-memory tensor on open costs little next to
 * mapping it. */
#ifndef QA_CRC32_H
#define QA_CRC32_H

#include <stddef.h>
#include <stdint.h>

/* Continues `crc` (0 to start) over p[0, n). */
uint32_t qa_crc32(uint32_t crc, const uint8_t *p, size_t n);

#endif
