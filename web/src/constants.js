// generated from quantann/constants.json by scripts/gen_constants.py: do not edit
export const CONSTANTS = Object.freeze({
  "format": {
    "arch": "quantann",
    "version": 5,
    "min_version": 1,
    "alignment": 32
  },
  "metrics": {
    "l2": 0,
    "ip": 1,
    "cosine": 1
  },
  "codecs": {
    "none": 0,
    "sq8": 1,
    "sq4": 2,
    "rabitq1": 3,
    "rabitq2": 4,
    "rabitq3": 5,
    "rabitq4": 6
  },
  "keys": {
    "format_version": "quantann.format_version",
    "dim": "quantann.dim",
    "metric": "quantann.metric",
    "quant": "quantann.quant",
    "count": "quantann.count",
    "hnsw_M": "quantann.hnsw.M",
    "hnsw_M0": "quantann.hnsw.M0",
    "hnsw_entry": "quantann.hnsw.entry",
    "hnsw_max_level": "quantann.hnsw.max_level",
    "hnsw_ef_construction": "quantann.hnsw.ef_construction",
    "hnsw_link_bits": "quantann.hnsw.link_bits",
    "vectors_dtype": "quantann.vectors.dtype",
    "vectors_crc32": "quantann.vectors.crc32",
    "checksum_tensors": "quantann.checksums.tensors",
    "checksum_crc32": "quantann.checksums.crc32",
    "checksum_header": "quantann.checksums.header",
    "ids_next": "quantann.ids.next"
  },
  "tensors": {
    "vmin": "quant.vmin",
    "scale": "quant.scale",
    "codes": "codes",
    "norms": "norms",
    "residuals": "residuals",
    "level": "graph.level",
    "links0": "graph.links0",
    "up_nodes": "graph.up_nodes",
    "up_off": "graph.up_off",
    "upper": "graph.upper",
    "ids": "ids",
    "vectors": "vectors"
  },
  "limits": {
    "rerank_auto": -1,
    "rerank_default": 4,
    "max_dim": 65536,
    "max_rows": 2147483646,
    "max_level": 16,
    "max_M": 127,
    "max_k": 100000,
    "max_ef": 1048576,
    "max_candidates": 1048576,
    "max_bound_eps": 16,
    "max_ef_construction": 65536,
    "max_threads": 256,
    "stream_chunk_max_bytes": 67108864
  },
  "manifest": {
    "format": "quantann-shards",
    "version": 1
  },
  "text_store": {
    "arch": "quantann-texts",
    "model_key": "quantann.text.model",
    "ids": "text.ids",
    "offsets": "text.offsets",
    "bytes": "text.bytes",
    "fields_offsets": "text.fields.offsets",
    "fields_bytes": "text.fields.bytes",
    "lex_terms": "lex.terms",
    "lex_term_offsets": "lex.term_offsets",
    "lex_df": "lex.df",
    "lex_post_offsets": "lex.post_offsets",
    "lex_postings": "lex.postings",
    "lex_doc_len": "lex.doc_len"
  },
  "lexical": {
    "_comment": "BM25 over a text store's passages (kernel/text/lexical.c) and its fusion with vector search (kernel/text/fuse.c)",
    "k1": 1.2,
    "b": 0.75,
    "max_term_bytes": 32,
    "rrf_k": 60,
    "candidates": 50,
    "max_candidates": 1000,
    "common_df": 0.25,
    "_common_df": "a query term in more than this fraction of the documents is skipped when the query has a term in at most that fraction (its idf <= ln 4: its postings cost most of a search and move the ranking little)"
  },
  "ask": {
    "max_k": 20,
    "passage_tokens": 64,
    "best_last": false,
    "system": "Answer the question using only the numbered passages below. Cite the passages you use as [n]. If they do not hold the answer, say so."
  },
  "size_units": {
    "B": 1,
    "KB": 1000,
    "MB": 1000000,
    "GB": 1000000000,
    "TB": 1000000000000,
    "KiB": 1024,
    "MiB": 1048576,
    "GiB": 1073741824,
    "TiB": 1099511627776
  }
});
