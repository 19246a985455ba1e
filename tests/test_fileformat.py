"""Bad files get a clear FormatError, never a crash; saving is atomic."""
import os
import struct

import numpy as np
import pytest
from gguf import GGUFWriter

import quantann
from quantann import _kernel, fileformat
from quantann.gguf_file import GGUFFile


@pytest.fixture(scope="module")
def saved(tmp_path_factory, real):
    x, _ = real
    path = tmp_path_factory.mktemp("ff") / "good.qann"
    quantann.Index.build(x[:1500], quant="sq8", metric="l2").save(path)
    return path, path.read_bytes()


def write(tmp_path, data, name="bad.qann"):
    p = tmp_path / name
    p.write_bytes(data)
    return p


def test_good_file_opens(saved):
    path, _ = saved
    idx = quantann.open(path)
    assert len(idx) == 1500 and idx.metric == "l2" and idx.norms is not None


@pytest.mark.parametrize("cut", [0, 3, 10, 24, 100, 1000, 0.3, 0.6, 0.9, 0.999])
def test_truncated(saved, tmp_path, cut):
    _, data = saved
    n = int(len(data) * cut) if isinstance(cut, float) else cut
    p = write(tmp_path, data[:n])
    with pytest.raises(quantann.FormatError, match="truncated|too short|corrupt"):
        quantann.open(p)


def test_flipped_byte_in_every_in_memory_tensor(saved, tmp_path):
    path, data = saved
    f = GGUFFile(path)
    names = [n for n in f.tensors if n != "vectors"]
    offsets = {n: f.tensors[n][2] + f.tensors[n][3] // 2 for n in names}
    for name, off in offsets.items():
        bad = bytearray(data)
        bad[off] ^= 0x5A
        p = write(tmp_path, bytes(bad))
        with pytest.raises(quantann.FormatError, match=f"checksum mismatch in tensor {name}"):
            quantann.open(p)


def test_random_header_corruption_never_crashes(saved, tmp_path):
    """Any byte of the header and tensor table changed: an error naming the file, or (if
    the byte did not matter) a working index."""
    path, data = saved
    header_end = _kernel.qann_info(data, len(data))["header_bytes"]
    rng = np.random.default_rng(0)
    for pos in rng.choice(header_end, size=120, replace=False):
        bad = bytearray(data)
        bad[pos] = (bad[pos] + rng.integers(1, 256)) % 256
        p = write(tmp_path, bytes(bad))
        try:
            idx = quantann.open(p)
        except (quantann.FormatError, ValueError) as e:
            assert str(p) in str(e) or "bad.qann" in str(e)
            continue
        idx.search(np.ones(idx.dim, np.float32), k=3)


def test_kernel_crc32_is_zlibs():
    """The kernel's CRC-32 (carry-less multiply on x86-64, tables elsewhere) equals
    zlib.crc32, which wrote the checksums, at every length, offset and start value."""
    import zlib
    rng = np.random.default_rng(0)
    data = rng.bytes(5000)
    for n in list(range(0, 300)) + [1023, 1024, 4096, 4999]:
        for off in (0, 1, 7):
            seed = int(rng.integers(0, 2**32))
            chunk = data[off:off + n]
            assert _kernel.crc32(chunk, seed) == zlib.crc32(chunk, seed), (n, off)
    big = rng.bytes(3 << 20)
    assert _kernel.crc32(big) == zlib.crc32(big)


def test_header_prefix_mode(saved):
    """The kernel says exactly how many bytes the header needs, from any prefix, and then
    where the in-memory part ends: a streamed reader fetches no more than that."""
    _, data = saved
    info = _kernel.qann_info(data, len(data))
    assert info["part_bytes"] > info["header_bytes"] > 24
    n, steps = 24, 0
    while True:
        got = _kernel.qann_info(data[:n], len(data))
        if isinstance(got, dict):
            break
        assert n < got <= info["header_bytes"]
        n, steps = got, steps + 1
    assert got == info and n <= info["header_bytes"] and steps > 3
    with pytest.raises(ValueError, match="in-memory part needs"):
        _kernel.qann_read(data[:info["part_bytes"] - 1], len(data))


@pytest.mark.parametrize("version", [1, 2])
def test_reads_old_formats(tmp_path, real, version):
    """Format-1 files (no header checksum) and format-2 files (int32 level-0 lists, no
    link_bits key), written before format 3, still open and search alike."""
    x, _ = real
    path = tmp_path / f"v{version}.qann"
    idx = quantann.Index.build(x[:300], quant="sq8")
    idx.compact_graph = False  # before format 3 level 0 was int32
    idx.residuals = None  # before format 5 there were none
    from gguf import GGUFWriter
    from quantann import constants

    class OldWriter(GGUFWriter):
        def add_uint32(self, key, val):
            if key == constants.KEYS["hnsw_link_bits"] or (version == 1 and key == constants.KEYS["checksum_header"]):
                return
            super().add_uint32(key, version if key == constants.KEYS["format_version"] else val)
    import quantann.fileformat as ff
    orig = ff.GGUFWriter, ff._patch_header_crc
    ff.GGUFWriter = OldWriter
    if version == 1:
        ff._patch_header_crc = lambda p: None
    try:
        idx.save(path)
    finally:
        ff.GGUFWriter, ff._patch_header_crc = orig
    j = quantann.open(path)
    assert j.file.format_version == version
    assert not j.graph.packed and j.graph.links0.shape == (300, j.graph.M0)
    idx.compact_graph = True
    assert np.array_equal(j.search(x[:20], k=5)[0], idx.search(x[:20], k=5)[0])
    # saved again: format 3, packed when asked
    j.compact_graph = True
    j.save(tmp_path / "v3.qann")
    k = quantann.open(tmp_path / "v3.qann")
    assert k.file.format_version == 3 and k.graph.packed
    assert np.array_equal(k.graph.lists0(), j.graph.lists0())


def test_foreign_files(tmp_path):
    p = write(tmp_path, b"PK\x03\x04" + b"\0" * 100)
    with pytest.raises(quantann.FormatError, match="not a GGUF file"):
        quantann.open(p)
    w = GGUFWriter(str(tmp_path / "model.gguf"), "bert")
    w.add_tensor("x", np.zeros(4, np.float32))
    w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()
    with pytest.raises(quantann.FormatError, match="not a quantann index .*'bert'"):
        quantann.open(tmp_path / "model.gguf")
    with pytest.raises(FileNotFoundError):
        quantann.open(tmp_path / "missing.qann")


def test_newer_format_version(saved, tmp_path):
    _, data = saved
    key = b"quantann.format_version"
    i = data.index(key) + len(key)
    vtype, value = struct.unpack_from("<II", data, i)
    # format 5 for sq8's residuals; 4 only for numbered ids in a permuted order (test_row_order)
    assert vtype == 4 and value == 5
    bad = bytearray(data)
    struct.pack_into("<I", bad, i + 4, fileformat.FORMAT_VERSION + 1)
    with pytest.raises(quantann.FormatError, match="newer quantann"):
        quantann.open(write(tmp_path, bytes(bad)))


def test_corrupt_graph_with_valid_checksums(real, tmp_path, monkeypatch):
    """A file whose checksums agree but whose links point outside the index (crafted, not
    damaged) is refused before the C search can follow them."""
    x, _ = real
    idx = quantann.Index.build(x[:300], quant="sq8")
    # packed (9 bits per link for 300 rows): slot 0 of row 5 = 400, inside 9 bits, outside 300
    g = idx.graph
    assert g.link_bits == 9
    g.packed0[5, 0] = 400 & 0xFF
    g.packed0[5, 1] = (g.packed0[5, 1] & 0xFE) | (400 >> 8)
    assert g.neighbours(5)[0] == 400
    idx.save(tmp_path / "evil.qann")
    with pytest.raises(quantann.FormatError, match="link outside the index"):
        quantann.open(tmp_path / "evil.qann")
    # int32 lists (link_bits 32)
    idx = quantann.Index.build(x[:300], quant="sq8")
    idx.compact_graph = False
    idx.graph.links0[5, 0] = 10_000
    idx.save(tmp_path / "evil32.qann")
    with pytest.raises(quantann.FormatError, match="link outside the index"):
        quantann.open(tmp_path / "evil32.qann")


def test_save_is_atomic(real, tmp_path, monkeypatch):
    x, _ = real
    path = tmp_path / "a.qann"
    quantann.Index.build(x[:200], quant="sq8").save(path)
    before = path.read_bytes()
    idx = quantann.Index.build(x[:400], quant="sq4")

    def crash(*a, **k):
        raise KeyboardInterrupt("power cut")
    monkeypatch.setattr(fileformat, "_pad", crash)
    with pytest.raises(KeyboardInterrupt):
        idx.save(path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["a.qann"]  # no temporary left behind
    monkeypatch.undo()
    idx.save(path)
    assert len(quantann.open(path)) == 400


def test_vectors_checksum(saved, tmp_path):
    path, data = saved
    idx = quantann.open(path)
    assert fileformat.verify_vectors(idx.file)
    off = idx.file.vectors_offset + 100
    bad = bytearray(data)
    bad[off] ^= 1
    j = quantann.open(write(tmp_path, bytes(bad)))
    assert not fileformat.verify_vectors(j.file)
    from quantann.cli import main
    assert main(["info", str(path), "--verify"]) == 0
    assert main(["info", str(tmp_path / "bad.qann"), "--verify"]) == 1  # exit status 1, error: on stderr


def test_crash_at_every_write_leaves_old_or_new(real, tmp_path, monkeypatch):
    """A crash after any number of writes (the process dies mid-save) leaves the old
    file byte for byte, and the next save succeeds."""
    import builtins

    import gguf.gguf_writer as gw
    x, _ = real
    path = tmp_path / "c.qann"
    quantann.Index.build(x[:100], quant="sq8").save(path)
    before = path.read_bytes()
    idx = quantann.Index.build(x[:150], quant="sq4")
    state = {"n": 0, "crash_at": None}

    class Dying:
        """A file whose write() kills the save after `crash_at` writes."""
        def __init__(self, f):
            self._f = f

        def write(self, b):
            if state["crash_at"] is not None and state["n"] >= state["crash_at"]:
                raise SystemExit("killed")
            state["n"] += 1
            return self._f.write(b)

        def __getattr__(self, name):
            return getattr(self._f, name)

    monkeypatch.setattr(gw, "open", lambda *a, **k: Dying(builtins.open(*a, **k)), raising=False)
    idx.save(tmp_path / "probe.qann")
    total = state["n"]
    assert total > 5
    for crash_at in range(total):
        state.update(n=0, crash_at=crash_at)
        with pytest.raises(SystemExit):
            idx.save(path)
        assert path.read_bytes() == before, crash_at
        assert sorted(os.listdir(tmp_path)) == ["c.qann", "probe.qann"]
    state["crash_at"] = None
    idx.save(path)
    assert len(quantann.open(path)) == 150


# ---- crash consistency ------------------------------------------------------------------

def _temps(directory):
    return sorted(n for n in os.listdir(directory) if ".tmp-" in n)


def test_two_threads_saving_one_path(real, tmp_path):
    """Each thread writes its own temporary (pid and thread in the name): the file is
    always one of the two indexes, whole, and no temporary is left."""
    import threading
    x, _ = real
    a = quantann.Index.build(x[:300], quant="sq8")
    b = quantann.Index.build(x[:500], quant="sq4")
    path = tmp_path / "t.qann"
    for _ in range(20):
        start = threading.Barrier(2)

        def save(idx):
            start.wait()
            idx.save(path)
        ts = [threading.Thread(target=save, args=(i,)) for i in (a, b)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        got = quantann.open(path)
        assert (len(got), got.quant) in ((300, "sq8"), (500, "sq4"))
        ids, _ = got.search(x[7], k=1)
        assert ids[0, 0] == 7
        assert _temps(tmp_path) == []


def test_stale_temporaries_of_dead_processes_are_removed(real, tmp_path):
    import subprocess
    import sys
    x, _ = real
    path = tmp_path / "s.qann"
    quantann.Index.build(x[:100], quant="sq8").save(path)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    dead_pid = int(dead.stdout)
    stale = tmp_path / f".s.qann.tmp-{dead_pid}-1"
    live = tmp_path / f".s.qann.tmp-{os.getpid()}-1"  # a writer of this (live) process
    other = tmp_path / f".other.qann.tmp-{dead_pid}-1"  # another file's: not ours to touch
    for p in (stale, live, other):
        p.write_bytes(b"partial")
    quantann.open(path)
    assert not stale.exists() and live.exists() and other.exists()
    stale.write_bytes(b"partial")
    quantann.Index.build(x[:120], quant="sq8").save(path)
    assert not stale.exists() and live.exists()


CHILD = r"""
import sys, numpy as np, quantann
path, rounds = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(0)
for r in range(rounds):
    idx = quantann.open(path)
    add = np.random.default_rng(len(idx)).standard_normal((400, 64)).astype(np.float32)
    print("adding", len(idx), flush=True)
    idx.add(add)
    print("saving", len(idx), flush=True)
    idx.save(path)
    print("saved", len(idx), flush=True)
"""


def test_kill_during_add_and_save(tmp_path):
    """A real process adding and saving in a loop, killed with SIGKILL 20 times (half while
    adding, half while saving): the file is always the old or the new index, whole, and
    the next open removes the killed save's temporary."""
    import random
    import signal
    import subprocess
    import sys
    import time
    path = tmp_path / "k.qann"
    x = np.random.default_rng(1).standard_normal((2000, 64)).astype(np.float32)
    quantann.Index.build(x, quant="sq8", metric="l2").save(path)
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(quantann.__file__))))
    rnd = random.Random(3)
    last, temps_cleaned = 2000, 0
    for r in range(20):
        p = subprocess.Popen([sys.executable, "-c", CHILD, str(path), "50"], stdout=subprocess.PIPE, text=True, env=env)
        phase = "saving" if r % 2 else "adding"
        for line in p.stdout:
            if line.startswith(phase):
                break
        time.sleep(rnd.uniform(0, 0.03))
        p.send_signal(signal.SIGKILL)
        p.wait()
        p.stdout.close()
        temps_cleaned += len(_temps(tmp_path))
        idx = quantann.open(path)  # removes the dead writer's temporary
        assert len(idx) in (last, last + 400), (r, len(idx), last)
        last = len(idx)
        probe = np.random.default_rng(last - 400).standard_normal((1, 64)).astype(np.float32) if last > 2000 else x[:1]
        ids, d = idx.search(probe, k=1)
        assert d[0, 0] < 1e-3  # the last vectors written are all there
        assert _temps(tmp_path) == []
    print(f"{temps_cleaned} temporaries of killed saves removed over 20 kills; final rows {last}")


@pytest.mark.parametrize("key, refused", [("quantann.build.seconds", True), ("quantann.ids.nxt", True),
                                          ("general.name", False)])
def test_unknown_header_keys(real, tmp_path, key, refused):
    """An unknown key of ours is refused (meaning comes with a format version: FORMAT.md);
    a key of another namespace is skipped. The header checksum is patched as usual, so only
    the key decides."""
    x, _ = real
    idx = quantann.Index.build(x[:300], quant="sq8")
    from quantann import constants

    class ExtraKeyWriter(GGUFWriter):
        def add_uint32(self, k, val):
            if k == constants.KEYS["checksum_header"]:
                self.add_string(key, "x")
            super().add_uint32(k, val)
    import quantann.fileformat as ff
    orig = ff.GGUFWriter
    ff.GGUFWriter = ExtraKeyWriter
    try:
        idx.save(tmp_path / "extra.qann")
    finally:
        ff.GGUFWriter = orig
    assert key.encode() in (tmp_path / "extra.qann").read_bytes()
    if refused:
        with pytest.raises(quantann.FormatError, match=f"unknown key '{key}'"):
            quantann.open(tmp_path / "extra.qann")
    else:
        j = quantann.open(tmp_path / "extra.qann")
        assert np.array_equal(j.search(x[:20], k=5)[0], idx.search(x[:20], k=5)[0])
