"""The router's instruction prefix, computed once per machine: llama.cpp's KV state of it kept in a file.

Why: every new process computed the router's ~1.1k-token instructions before its first step (12 s on the 1.5B on
2 cores; `app.py ask` is one process per question). The prefix is always computed the same way (its own prefill
from position 0, in n_batch chunks), so the KV cells it leaves are a pure function of the model, the tokens and
the llama.cpp build: restoring them from a file gives the very numbers a computation would, and the sessions that
follow are the same to the byte.

A file is named by the model (and adapter) file and the prefix's tokens, so it is never shared across models or
prompts. Its first line is a JSON header: what else the numbers depend on (llama.cpp's version, n_batch, the
threads, the model file's size and time) and the payload's sha256. A file whose header disagrees is *stale*, one
whose payload does not match its hash (or that llama.cpp refuses) is *corrupt*: either is never used; the prefix is
computed again, the file rewritten, and one line says so. Files are written whole or not at all (a temporary file
renamed), and the directory keeps the newest KEEP of them.

Where: $ROUTER_STUDIO_PREFIX_STATES (a directory, or "off"), else <user cache dir>/router-r1-studio/prefix-states.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any, Sequence

log = logging.getLogger("router_studio.prefix_state")

FORMAT = 1
KEEP = 12            # state files kept in the directory, newest first (~30 MB each for the 1.5B's instructions)
MIN_TOKENS = 64      # a shorter prefix is computed faster than a file is read and checked


def state_dir() -> Path | None:
    """Where prefix states live, or None when they are off."""
    raw = os.environ.get("ROUTER_STUDIO_PREFIX_STATES", "").strip()
    if raw.lower() == "off":
        return None
    if raw:
        return Path(raw)
    from platformdirs import user_cache_dir
    return Path(os.environ.get("ROUTER_STUDIO_CACHE") or user_cache_dir("router-r1-studio")) / "prefix-states"


def _file_facts(path: str | None) -> dict[str, Any]:
    if not path:
        return {}
    st = os.stat(path)
    return {"path": os.path.realpath(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def expected(model_path: str, adapter: str | None, tokens: Sequence[int], *, version: str, n_batch: int,
             n_threads: int) -> dict[str, Any]:
    """The header a usable state file for this prefix holds (less the payload's hash)."""
    return {"format": FORMAT, "llama_cpp": version, "n_batch": n_batch, "n_threads": n_threads,
            "model": _file_facts(model_path), "adapter": _file_facts(adapter), "n_tokens": len(tokens),
            "tokens_sha256": hashlib.sha256(json.dumps(list(tokens)).encode()).hexdigest()}


def path_for(folder: Path, model_path: str, adapter: str | None, tokens: Sequence[int]) -> Path:
    """The file of this model, adapter and prefix (one per prefix, whatever built it: a rebuild overwrites)."""
    key = json.dumps([os.path.realpath(model_path), os.path.realpath(adapter) if adapter else None, list(tokens)])
    return folder / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.state"


def read(path: Path, want: dict[str, Any]) -> bytes | None:
    """The payload of a usable file, or None (no file; a stale or corrupt one, said in one line)."""
    try:
        with open(path, "rb") as f:
            head = json.loads(f.readline().decode("utf-8"))
            payload = f.read()
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        log.warning("prefix state %s is corrupt (%s): computing the prefix again", path.name, e)
        return None
    if not isinstance(head, dict):
        log.warning("prefix state %s is corrupt (no header): computing the prefix again", path.name)
        return None
    differ = [k for k in want if head.get(k) != want[k]]
    if differ:
        log.warning("prefix state %s is stale (%s changed): computing the prefix again", path.name, ", ".join(differ))
        return None
    if hashlib.sha256(payload).hexdigest() != head.get("payload_sha256"):
        log.warning("prefix state %s is corrupt (its payload does not match its hash): computing the prefix again",
                    path.name)
        return None
    return payload


def write(path: Path, header: dict[str, Any], payload: bytes) -> None:
    """Write a state file whole (temporary file, then rename) and keep the newest KEEP; a failure costs only the
    next process's time, so it is logged, not raised."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(json.dumps({**header, "payload_sha256": hashlib.sha256(payload).hexdigest()}).encode())
                f.write(b"\n")
                f.write(payload)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        files = sorted(path.parent.glob("*.state"), key=lambda p: p.stat().st_mtime_ns, reverse=True)
        for old in files[KEEP:]:
            old.unlink(missing_ok=True)
    except OSError as e:
        log.warning("prefix state not saved to %s (%s); the next process computes the prefix again", path, e)
