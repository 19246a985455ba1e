"""The page server (quantann/pageserver.py): symlinks inside its root are served, any path
that resolves outside gets 403, and a bad request never kills the handler."""
import os
import urllib.error
import urllib.request

import pytest

from quantann.pageserver import Server


@pytest.fixture()
def served(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "sub").mkdir(parents=True)
    outside.mkdir()
    (root / "sub" / "data.bin").write_bytes(bytes(range(256)))
    (outside / "secret.txt").write_text("not yours")
    os.symlink(root / "sub" / "data.bin", root / "inside-link.bin")
    os.symlink(outside / "secret.txt", root / "outside-link.txt")
    os.symlink(outside, root / "outside-dir")
    with Server({"/": str(root)}) as s:
        yield s.url


def get(url, headers=None, method="GET"):
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}, method=method), timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_symlink_inside_root_is_served_with_ranges(served):
    assert get(f"{served}/inside-link.bin") == (200, bytes(range(256)))
    assert get(f"{served}/inside-link.bin", {"Range": "bytes=10-19"}) == (206, bytes(range(10, 20)))
    assert get(f"{served}/inside-link.bin", method="HEAD")[0] == 200


@pytest.mark.parametrize("path", ["/outside-link.txt", "/outside-dir/secret.txt", "/sub/../../outside/secret.txt",
                                  "/%2e%2e/outside/secret.txt"])
def test_paths_resolving_outside_root_are_403(served, path):
    status, body = get(served + path)
    assert status == 403 and b"not yours" not in body
    assert get(served + path, method="HEAD")[0] == 403


def test_bad_paths_do_not_kill_the_handler(served):
    assert get(f"{served}/a%00b")[0] in (403, 404)
    assert get(f"{served}/missing.bin")[0] == 404
    assert get(f"{served}/sub/data.bin")[0] == 200  # the server still answers


def test_precompressed_br_only_to_clients_that_accept_it_and_never_for_ranges(served, tmp_path):
    (tmp_path / "root" / "sub" / "data.bin.br").write_bytes(b"pretend brotli")  # the server sends it as it is
    url = f"{served}/sub/data.bin"

    def fetch(headers):
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as r:
            return r.status, r.headers.get("Content-Encoding"), r.read()
    assert fetch({"Accept-Encoding": "gzip, br"}) == (200, "br", b"pretend brotli")
    assert fetch({"Accept-Encoding": "gzip"}) == (200, None, bytes(range(256)))
    assert fetch({}) == (200, None, bytes(range(256)))
    assert fetch({"Accept-Encoding": "br", "Range": "bytes=0-9"}) == (206, None, bytes(range(10)))


@pytest.mark.parametrize("isolated", [False, True])
def test_isolated_pages_get_coop_and_coep(tmp_path, isolated):
    """--isolated: the pages are cross-origin isolated (finer performance.now(), SharedArrayBuffer)."""
    (tmp_path / "p.html").write_text("<p>hi")
    with Server({"/": str(tmp_path)}, isolated=isolated) as s:
        with urllib.request.urlopen(f"{s.url}/p.html", timeout=10) as r:
            h = r.headers
    assert (h.get("Cross-Origin-Opener-Policy"), h.get("Cross-Origin-Embedder-Policy")) == (
        ("same-origin", "require-corp") if isolated else (None, None))
