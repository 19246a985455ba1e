"""The K-quant rows (Q8_K activations, Q4_K, Q6_K; and Q5_0 x Q8_0) held bit for bit to
ggml itself: the CPU library that llama-cpp-python installs, called through ctypes, is the
oracle of llama.cpp's numerics on this machine (its x86 quantize_row_q8_K, its AVX2
Q6_K and Q5_0 dots, and the q4_K_8x8 gemv it runs on Q4_K matrices after repacking them).
Where llama-cpp-python is not installed (CI), ggml's answers come from
tests/data/ggml_oracle.json, recorded from it by tests/data/make_ggml_oracle.py."""
import ctypes
import glob
import hashlib
import json
import os

import numpy as np
import pytest
from gguf import GGMLQuantizationType as T

from quantann import _model

SCALAR, BEST = 0, 3


RECORDED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "ggml_oracle.json")
RECORD_ENV = "QUANTANN_RECORD_GGML"  # set by make_ggml_oracle.py: write what ggml answered


def _ggml_lib():
    try:
        import llama_cpp
    except ImportError:
        return None
    libs = glob.glob(os.path.join(os.path.dirname(llama_cpp.__file__), "lib", "libggml-cpu.so"))
    if not libs:
        return None
    lib = ctypes.CDLL(libs[0])
    lib.ggml_cpu_init()
    return lib


def _key(*parts) -> str:
    h = hashlib.sha1()
    for p in parts:
        h.update(p if isinstance(p, bytes) else str(p).encode())
    return h.hexdigest()


class Oracle:
    """ggml's answers: live from llama-cpp-python's libggml-cpu, or as recorded from it
    (quantized rows by their sha1, dots and gemv outputs as floats, each under the sha1 of
    its inputs). Recorded, a quantized row is ours once its digest equals ggml's, so the
    dots that follow look up exactly the inputs ggml was given."""

    def __init__(self, lib, recorded):
        self.lib, self.rec, self.seen = lib, recorded, {}

    def _answer(self, key, live):
        if self.lib is not None:
            self.seen[key] = out = live()
            return out
        assert key in self.rec, "inputs ggml never saw: re-record tests/data/ggml_oracle.json"
        return self.rec[key]

    def quantize(self, fn, x) -> bytes:
        x = np.ascontiguousarray(x, np.float32)
        if self.lib is not None:
            out = ggml_quantize(self.lib, fn, x)
            self.seen[_key(fn, x.tobytes())] = hashlib.sha1(out).hexdigest()
            return out
        out = _model.type_quantize_act(int(T.Q4_K if fn == "quantize_row_q8_K" else T.Q5_0), x)
        assert hashlib.sha1(out).hexdigest() == self.rec[_key(fn, x.tobytes())], f"{fn} differs from ggml's"
        return out

    def vec_dot(self, fn, n, w, a) -> float:
        return self._answer(_key(fn, n, w, a), lambda: ggml_vec_dot(self.lib, fn, n, w, a))

    def gemv_q4_k(self, n, packed, a) -> list:
        def live():
            out = (ctypes.c_float * 8)()
            self.lib.ggml_gemv_q4_K_8x8_q8_K(ctypes.c_int(n), out, ctypes.c_size_t(8), _ptr(packed), _ptr(a),
                                             ctypes.c_int(1), ctypes.c_int(8))
            return list(out)
        return self._answer(_key("gemv_q4_K_8x8", n, packed, a), live)


@pytest.fixture(scope="module")
def ggml():
    lib = _ggml_lib()
    if lib is None and os.environ.get(RECORD_ENV):
        pytest.fail("recording needs llama-cpp-python (libggml-cpu.so)")
    oracle = Oracle(lib, None if lib is not None else json.load(open(RECORDED)))
    yield oracle
    if os.environ.get(RECORD_ENV):
        rec = json.load(open(RECORDED)) if os.path.exists(RECORDED) else {}
        rec.update(oracle.seen)
        with open(RECORDED, "w") as f:
            json.dump(rec, f, sort_keys=True, indent=0)


@pytest.fixture(autouse=True)
def best_simd():
    yield
    _model.set_simd(BEST)


P = ctypes.c_void_p


def _ptr(b):
    return ctypes.cast(ctypes.c_char_p(b), P)


def ggml_quantize(lib, fn, x):
    x = np.ascontiguousarray(x, np.float32)
    size = {"quantize_row_q8_K": 292 * (x.size // 256), "quantize_row_q8_0": 34 * (x.size // 32)}[fn]
    out = ctypes.create_string_buffer(size)
    getattr(lib, fn)(x.ctypes.data_as(P), out, ctypes.c_int64(x.size))
    return out.raw


def ggml_vec_dot(lib, fn, n, w, a):
    s = ctypes.c_float()
    getattr(lib, fn)(ctypes.c_int(n), ctypes.byref(s), ctypes.c_size_t(0), _ptr(w), ctypes.c_size_t(0), _ptr(a),
                     ctypes.c_size_t(0), ctypes.c_int(1))
    return s.value


def activations(n_rows, n, seed):
    rng = np.random.default_rng(seed)
    x = (rng.normal(size=(n_rows, n)) * rng.uniform(0.05, 20, size=(n_rows, 1))).astype(np.float32)
    x[:, :5] *= 30  # outliers
    x[0, 256:512] = 0  # an all-zero super-block
    x[1, 3] = -np.abs(x[1]).max() * 2  # a negative extreme
    return x


def k_blocks(t, n_rows, n, seed):
    """Random blocks with finite fp16 scales (any byte pattern is a valid block otherwise)."""
    rng = np.random.default_rng(seed)
    size = {T.Q4_K: 144, T.Q6_K: 210, T.Q5_0: 22}[t]
    blck = 32 if t == T.Q5_0 else 256
    b = rng.integers(0, 256, size=(n_rows, n // blck, size), dtype=np.uint8)
    f16 = lambda: np.frombuffer(rng.normal(scale=0.02, size=n_rows * (n // blck)).astype(np.float16).tobytes(),
                                np.uint8).reshape(n_rows, n // blck, 2)
    if t == T.Q6_K:
        b[..., 208:210] = f16()
    else:
        b[..., 0:2] = f16()
        if t == T.Q4_K:
            b[..., 2:4] = f16()
    return b.reshape(n_rows, -1)


def test_q8_k_activations_equal_ggml(ggml):
    for x in activations(12, 1024, 1):
        want = ggml.quantize("quantize_row_q8_K", x)
        for level in (SCALAR, BEST):
            _model.set_simd(level)
            assert _model.type_quantize_act(int(T.Q4_K), x) == want, level


@pytest.mark.parametrize("t,fn,n", [(T.Q6_K, "ggml_vec_dot_q6_K_q8_K", 2048), (T.Q6_K, "ggml_vec_dot_q6_K_q8_K", 256),
                                    (T.Q5_0, "ggml_vec_dot_q5_0_q8_0", 640), (T.Q5_0, "ggml_vec_dot_q5_0_q8_0", 2048)])
def test_dots_equal_ggml(ggml, t, fn, n):
    w = k_blocks(t, 40, n, 2)
    x = activations(40, n, 3)
    for i in range(len(w)):
        a = ggml.quantize("quantize_row_q8_0" if t == T.Q5_0 else "quantize_row_q8_K", x[i])
        want = ggml.vec_dot(fn, n, w[i].tobytes(), a)
        for level in (SCALAR, BEST):
            _model.set_simd(level)
            got = _model.type_dot(int(t), w[i].tobytes(), a, n, level == SCALAR)
            assert np.float32(got) == np.float32(want), (i, level, got, want)


def repack_q4_k_x8(rows):
    """8 Q4_K rows -> ggml's block_q4_Kx8 stream (repack.cpp's make_block_q4_Kx8, 8-byte
    interleave): per super-block d[8], dmin[8], scales[96], qs[1024]."""
    nb = rows.shape[1] // 144
    blk = rows.reshape(8, nb, 144)
    out = []
    for b in range(nb):
        x = blk[:, b]
        d, dmin, sc, qs = x[:, 0:2], x[:, 2:4], x[:, 4:16].astype(np.int32), x[:, 16:]
        q = qs.reshape(8, 16, 8).transpose(1, 0, 2).reshape(-1)  # 8 bytes of each row in turn
        s = np.zeros(96, np.int32)
        lo_s, lo_m = sc[:, 0:4] & 63, sc[:, 4:8] & 63
        hi_s = ((sc[:, 0:4] & 192) >> 2) | (sc[:, 8:12] & 15)
        hi_m = ((sc[:, 4:8] & 192) >> 2) | ((sc[:, 8:12] & 240) >> 4)
        for base, ss, mm in ((0, lo_s, lo_m), (48, hi_s, hi_m)):
            for i in range(4):
                sv, mv = ss[:, i], mm[:, i]
                o = base + 12 * i
                s[o:o + 4] = (sv[0:4] & 63) + ((sv[4:8] & 48) << 2)
                s[o + 4:o + 8] = (mv[0:4] & 63) + ((mv[4:8] & 48) << 2)
                s[o + 8:o + 12] = (sv[4:8] & 15) + ((mv[4:8] & 15) << 4)
        out.append(np.concatenate([d.reshape(-1), dmin.reshape(-1), (s & 255).astype(np.uint8), q]))
    return np.concatenate(out).tobytes()


@pytest.mark.parametrize("n", [256, 1024, 2048])
def test_q4_k_dot_equals_ggml_repacked_gemv(ggml, n):
    """llama.cpp repacks Q4_K matrices (rows a multiple of 8) on AVX2 CPUs and multiplies
    them with ggml_gemv_q4_K_8x8_q8_K (one activation row) or its gemm (4 rows, the same
    per-output sums): each output of that is what the Q4_K row's dot gives."""
    w = k_blocks(T.Q4_K, 32, n, 4)
    x = activations(6, n, 5)
    for r in range(0, len(w), 8):
        packed = repack_q4_k_x8(w[r:r + 8])
        for xi in x:
            a = ggml.quantize("quantize_row_q8_K", xi)
            out = ggml.gemv_q4_k(n, packed, a)
            for c in range(8):
                for level in (SCALAR, BEST):
                    _model.set_simd(level)
                    got = _model.type_dot(int(T.Q4_K), w[r + c].tobytes(), a, n, level == SCALAR)
                    assert np.float32(got) == np.float32(out[c]), (r + c, level, got, out[c])
