"""Engine registry: build an engine from a descriptor, lazily, and share loaded models.

Backends are imported only when used (vLLM and torch are heavy or absent). Loaded
engines are cached by what they load, so a router policy and a candidate that name
the same weights share one copy in memory and one lock.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable

from .base import CacheHint, Completion, Engine, EngineError, OnText, ScoringUnsupported, Stopped
from .weights import resolve_model_path

__all__ = ["CacheHint", "Completion", "Engine", "EngineError", "OnText", "ScoringUnsupported", "Stopped", "EngineSpec",
           "get_engine", "load_engine", "clear_engines", "loaded_engines", "recomputed_sessions"]


@dataclass(frozen=True)
class EngineSpec:
    engine: str                 # llamacpp | transformers | vllm | openai
    model: str                  # shipped:<id>, a local path, a Hub id, or the endpoint's model id
    gguf_file: str | None = None
    base_url: str | None = None
    api_key_env: str | None = None
    timeout_s: float = 60.0
    role: str = ""              # "router": a separate instance from candidates that load the same weights
    adapter: str | None = None  # a GGUF LoRA adapter on top of the weights (llamacpp), checked against them by hash


_cache: dict[EngineSpec, Engine] = {}
_cache_lock = threading.Lock()
_load_locks: dict[EngineSpec, threading.Lock] = {}


def _llamacpp(spec: EngineSpec, path: str) -> Engine:
    from .llamacpp import LlamaCppEngine
    lora = None
    if spec.adapter:
        from .adapters import AdapterError, check_adapter
        from .weights import WeightsError, weights_sha256
        try:
            lora = check_adapter(spec.adapter, path, weights_sha256(spec.model, path)).path
        except (AdapterError, WeightsError) as e:  # the loop shows an EngineError as a failed step
            raise EngineError(str(e)) from None
        except OSError as e:
            raise EngineError(f"{path}: cannot read the base to check the adapter against it ({e.strerror or e})") \
                from None
    return LlamaCppEngine(path, lora_path=lora)


def _transformers(spec: EngineSpec, path: str) -> Engine:
    from .transformers import TransformersEngine
    return TransformersEngine(path, gguf_file=spec.gguf_file)


def _vllm(spec: EngineSpec, path: str) -> Engine:
    from .vllm import VllmEngine
    return VllmEngine(path)


def _openai(spec: EngineSpec, path: str) -> Engine:
    from .openai_http import OpenAIEngine
    if not spec.base_url:
        raise EngineError(f"model '{spec.model}': engine 'openai' needs base_url")
    return OpenAIEngine(spec.base_url, spec.model, api_key_env=spec.api_key_env, timeout_s=spec.timeout_s)


# engine name → (builder, whether `model` names local weights to resolve first). Backends are
# imported inside their builder, so a missing optional backend only fails when it is asked for.
REGISTRY: dict[str, tuple[Callable[[EngineSpec, str], Engine], bool]] = {
    "llamacpp": (_llamacpp, True),
    "transformers": (_transformers, True),
    "vllm": (_vllm, True),
    "openai": (_openai, False),
}


def _build(spec: EngineSpec, progress: Callable[[str], None] | None) -> Engine:
    if spec.engine not in REGISTRY:
        raise EngineError(f"unknown engine '{spec.engine}' (known: {', '.join(REGISTRY)})")
    if spec.adapter and spec.engine != "llamacpp":
        raise EngineError(f"model '{spec.model}': a GGUF LoRA adapter ({spec.adapter}) loads with engine 'llamacpp' "
                          f"only, not '{spec.engine}'")
    build, local = REGISTRY[spec.engine]
    path = resolve_model_path(spec.model, progress) if local else spec.model
    if progress and local:
        progress(f"loading {spec.model} with {spec.engine}")
    return build(spec, path)


def load_engine(spec: EngineSpec, progress: Callable[[str], None] | None = None) -> Engine:
    """A new instance of its own, not shared (tests and benchmarks that need a cold cache)."""
    return _build(spec, progress)


def get_engine(spec: EngineSpec, progress: Callable[[str], None] | None = None) -> Engine:
    """Return the shared engine for `spec`, loading it once (concurrent callers wait)."""
    with _cache_lock:
        if spec in _cache:
            return _cache[spec]
        lock = _load_locks.setdefault(spec, threading.Lock())
    with lock:
        with _cache_lock:
            if spec in _cache:
                return _cache[spec]
        t0 = time.perf_counter()
        engine = _build(spec, progress)
        if progress:
            role = "router policy" if spec.role == "router" else "candidate"
            progress(f"{role} {spec.model} ready ({time.perf_counter() - t0:.1f} s)")
        with _cache_lock:
            _cache[spec] = engine
        return engine


def loaded_engines() -> list[Engine]:
    """The shared engines loaded so far (for counters read across a whole run)."""
    with _cache_lock:
        return list(_cache.values())


def recomputed_sessions() -> int:
    """Sessions the shared engines computed again after their parked cache was dropped (llama.cpp): the one case
    in which a session's text may differ from the same session run alone on this host."""
    return sum(int(e.stats().get("recomputed_sessions", 0)) for e in loaded_engines() if hasattr(e, "stats"))


def clear_engines() -> None:
    with _cache_lock:
        for e in _cache.values():
            e.close()
        _cache.clear()
