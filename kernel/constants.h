/* generated from quantann/constants.json by scripts/gen_constants.py: do not edit */
#ifndef QA_CONSTANTS_H
#define QA_CONSTANTS_H

#define QA_FORMAT_ARCH "quantann"
#define QA_FORMAT_VERSION 5
#define QA_FORMAT_MIN_VERSION 1
#define QA_FORMAT_ALIGNMENT 32

#define QA_METRIC_L2 0
#define QA_METRIC_IP 1

#define QA_CODEC_NONE 0
#define QA_CODEC_SQ8 1
#define QA_CODEC_SQ4 2
#define QA_CODEC_RABITQ1 3
#define QA_CODEC_RABITQ2 4
#define QA_CODEC_RABITQ3 5
#define QA_CODEC_RABITQ4 6
#define QA_CODEC_COUNT 7

#define QA_KEY_FORMAT_VERSION "quantann.format_version"
#define QA_KEY_DIM "quantann.dim"
#define QA_KEY_METRIC "quantann.metric"
#define QA_KEY_QUANT "quantann.quant"
#define QA_KEY_COUNT "quantann.count"
#define QA_KEY_HNSW_M "quantann.hnsw.M"
#define QA_KEY_HNSW_M0 "quantann.hnsw.M0"
#define QA_KEY_HNSW_ENTRY "quantann.hnsw.entry"
#define QA_KEY_HNSW_MAX_LEVEL "quantann.hnsw.max_level"
#define QA_KEY_HNSW_EF_CONSTRUCTION "quantann.hnsw.ef_construction"
#define QA_KEY_HNSW_LINK_BITS "quantann.hnsw.link_bits"
#define QA_KEY_VECTORS_DTYPE "quantann.vectors.dtype"
#define QA_KEY_VECTORS_CRC32 "quantann.vectors.crc32"
#define QA_KEY_CHECKSUM_TENSORS "quantann.checksums.tensors"
#define QA_KEY_CHECKSUM_CRC32 "quantann.checksums.crc32"
#define QA_KEY_CHECKSUM_HEADER "quantann.checksums.header"
#define QA_KEY_IDS_NEXT "quantann.ids.next"
/* every key of the index header, as an array initialiser */
#define QA_KEY_LIST {QA_KEY_FORMAT_VERSION, QA_KEY_DIM, QA_KEY_METRIC, QA_KEY_QUANT, QA_KEY_COUNT, QA_KEY_HNSW_M, QA_KEY_HNSW_M0, QA_KEY_HNSW_ENTRY, QA_KEY_HNSW_MAX_LEVEL, QA_KEY_HNSW_EF_CONSTRUCTION, QA_KEY_HNSW_LINK_BITS, QA_KEY_VECTORS_DTYPE, QA_KEY_VECTORS_CRC32, QA_KEY_CHECKSUM_TENSORS, QA_KEY_CHECKSUM_CRC32, QA_KEY_CHECKSUM_HEADER, QA_KEY_IDS_NEXT}

#define QA_TENSOR_VMIN "quant.vmin"
#define QA_TENSOR_SCALE "quant.scale"
#define QA_TENSOR_CODES "codes"
#define QA_TENSOR_NORMS "norms"
#define QA_TENSOR_RESIDUALS "residuals"
#define QA_TENSOR_LEVEL "graph.level"
#define QA_TENSOR_LINKS0 "graph.links0"
#define QA_TENSOR_UP_NODES "graph.up_nodes"
#define QA_TENSOR_UP_OFF "graph.up_off"
#define QA_TENSOR_UPPER "graph.upper"
#define QA_TENSOR_IDS "ids"
#define QA_TENSOR_VECTORS "vectors"

#define QA_TEXT_STORE_ARCH "quantann-texts"
#define QA_TEXT_STORE_MODEL_KEY "quantann.text.model"
#define QA_TEXT_STORE_IDS "text.ids"
#define QA_TEXT_STORE_OFFSETS "text.offsets"
#define QA_TEXT_STORE_BYTES "text.bytes"
#define QA_TEXT_STORE_FIELDS_OFFSETS "text.fields.offsets"
#define QA_TEXT_STORE_FIELDS_BYTES "text.fields.bytes"
#define QA_TEXT_STORE_LEX_TERMS "lex.terms"
#define QA_TEXT_STORE_LEX_TERM_OFFSETS "lex.term_offsets"
#define QA_TEXT_STORE_LEX_DF "lex.df"
#define QA_TEXT_STORE_LEX_POST_OFFSETS "lex.post_offsets"
#define QA_TEXT_STORE_LEX_POSTINGS "lex.postings"
#define QA_TEXT_STORE_LEX_DOC_LEN "lex.doc_len"

#define QA_LEXICAL_K1 1.2
#define QA_LEXICAL_B 0.75
#define QA_LEXICAL_MAX_TERM_BYTES 32
#define QA_LEXICAL_RRF_K 60
#define QA_LEXICAL_CANDIDATES 50
#define QA_LEXICAL_MAX_CANDIDATES 1000
#define QA_LEXICAL_COMMON_DF 0.25

#define QA_RERANK_AUTO -1LL
#define QA_RERANK_DEFAULT 4LL
#define QA_MAX_DIM 65536LL
#define QA_MAX_ROWS 2147483646LL
#define QA_MAX_LEVEL 16LL
#define QA_MAX_M 127LL
#define QA_MAX_K 100000LL
#define QA_MAX_EF 1048576LL
#define QA_MAX_CANDIDATES 1048576LL
#define QA_MAX_BOUND_EPS 16LL
#define QA_MAX_EF_CONSTRUCTION 65536LL
#define QA_MAX_THREADS 256LL
#define QA_STREAM_CHUNK_MAX_BYTES 67108864LL

#endif
