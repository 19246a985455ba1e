"""Benchmarks: quantann against its peers on the same data, queries and thread count.

    datasets.py  minilm-100k loader, subsets, and the deterministic clustered generator
    peers.py     hnswlib, FAISS (HNSWFlat, HNSWSQ 8/4 bit, + IndexRefineFlat), usearch i8,
                 exact brute force, behind one small interface
    lazy.py      the lazy-loading baseline (float HNSW, vectors behind an LRU cache, in C)
    runner.py    timed passes (repeats, medians, spreads), memory, RSS, the result JSON
    report.py    tables, plots and the BENCHMARKS.md sections from the JSON
    cli.py       `quantann bench`
"""
