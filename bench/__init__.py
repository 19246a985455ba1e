"""Benchmarks: quantann against its peers on the same data, queries and thread count.

    datasets.py  minilm-100k loader, subsets, and the deterministic clustered generator
    peers.py     hnswlib, FAISS (HNSWFlat, HNSWSQ 8/4 bit, + IndexRefineFlat), usearch i8,
                 exact brute force, behind one small interface
    lazy/        the lazy-loading baseline: float HNSW, vectors behind an LRU cache, in C
                 (bench/lazy/lazy.c; extension bench._lazy by bench/setup_lazy.py, wasm by
                 bench/lazy/build-wasm.sh) and its Python driver (LazyIndex)
    runner.py    timed passes (repeats, medians, spreads), memory, RSS, the result JSON
    report.py    tables, plots and the BENCHMARKS.md sections from the JSON
    run.py       `python -m bench.run`: the suite from the command line
    web/         the browser benchmark: pages, the lazy baseline in JS, the headless runner
"""
