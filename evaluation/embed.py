"""Sentence embeddings for routing: all-MiniLM-L6-v2 from the shipped model directory.

The model is the one `sentence-transformers/all-MiniLM-L6-v2` specifies in its own files:
a 6-layer BERT (transformers AutoModel), mean pooling of the last hidden states over the
attention mask (1_Pooling/config.json), then L2 normalisation (modules.json lists Normalize),
inputs truncated at max_seq_length=256 (sentence_bert_config.json). Only local files are
read (`local_files_only=True`), so it works with HF_HUB_OFFLINE=1 and without a network.

`get_embedder()` gives one Embedder per process and model; the weights load on the first
`encode`, and a lock makes loading and encoding safe from several threads.

Threads: torch's intra-op pool is process-wide, so it is left alone unless asked
(`num_threads=` or ROUTER_STUDIO_EMBED_THREADS). On a small machine shared with other busy
processes, 1 thread can be many times faster than torch's default (OpenMP threads
spin-waiting for a busy core).
"""
from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import numpy as np

from router_core.engines.weights import shipped_dir

DEFAULT_MODEL = "all-minilm-l6-v2"


class Embedder:
    """Unit-length sentence vectors, `encode(texts) -> float32 [n, dim]`.

    `model` is a shipped model directory id (default all-MiniLM-L6-v2) or a local directory
    with the same layout. Nothing is loaded until the first `encode` (or `load`).
    """

    def __init__(self, model: str | Path = DEFAULT_MODEL, *, max_length: int | None = None,
                 num_threads: int | None = None):
        self.model = str(model)
        self._max_length_override = max_length
        env = os.environ.get("ROUTER_STUDIO_EMBED_THREADS", "").strip()
        self.num_threads = num_threads if num_threads is not None else (int(env) if env else None)
        self._lock = threading.Lock()
        self._tokenizer = None
        self._net = None
        self._torch = None
        self.dim: int | None = None
        self.max_length: int | None = None
        self.normalize = True
        self.path: Path | None = None

    # -- loading -----------------------------------------------------------------------------
    def _directory(self) -> Path:
        p = Path(self.model)
        if p.is_dir():
            return p
        return shipped_dir(self.model)

    def load(self) -> "Embedder":
        with self._lock:
            self._load_locked()
        return self

    def _load_locked(self) -> None:
        if self._net is not None:
            return
        import torch
        from transformers import AutoModel, AutoTokenizer

        path = self._directory()
        pooling = _read_json(path / "1_Pooling" / "config.json", {})
        if pooling and not pooling.get("pooling_mode_mean_tokens", False):
            raise ValueError(f"{path}: only mean pooling is implemented, got {pooling}")
        modules = _read_json(path / "modules.json", [])
        if modules:
            self.normalize = any(str(m.get("type", "")).endswith("Normalize") for m in modules)
        st_cfg = _read_json(path / "sentence_bert_config.json", {})
        tok = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        net = AutoModel.from_pretrained(str(path), local_files_only=True, dtype=torch.float32)
        net.eval()
        if self.num_threads:
            torch.set_num_threads(int(self.num_threads))   # process-wide: only when asked
        self.max_length = int(self._max_length_override or st_cfg.get("max_seq_length")
                              or min(tok.model_max_length, 512))
        self.dim = int(pooling.get("word_embedding_dimension") or net.config.hidden_size)
        self._torch, self._tokenizer, self.path = torch, tok, path
        self._net = net  # last: marks the embedder loaded

    @property
    def loaded(self) -> bool:
        return self._net is not None

    # -- encoding ----------------------------------------------------------------------------
    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        """float32 array [len(texts), dim], rows L2-normalised (cosine = dot product).

        Texts are batched by length (less padding), results come back in input order.
        """
        if isinstance(texts, str):
            raise TypeError("encode takes a list of strings, not a string")
        texts = [str(t) for t in texts]
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        with self._lock:
            self._load_locked()
            out = np.zeros((len(texts), self.dim), dtype=np.float32)
            if not texts:
                return out
            order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
            torch = self._torch
            with torch.inference_mode():
                for start in range(0, len(order), batch_size):
                    idx = order[start:start + batch_size]
                    batch = self._tokenizer([texts[i] for i in idx], padding=True, truncation=True,
                                            max_length=self.max_length, return_tensors="pt")
                    hidden = self._net(**batch).last_hidden_state            # [b, t, h]
                    mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                    summed = (hidden * mask).sum(dim=1)
                    counts = mask.sum(dim=1).clamp(min=1e-9)
                    vecs = summed / counts
                    if self.normalize:
                        vecs = torch.nn.functional.normalize(vecs, p=2, dim=1)
                    out[idx] = vecs.float().cpu().numpy()
        return out


def _read_json(path: Path, default):
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return default


_CACHE: dict[str, Embedder] = {}
_CACHE_LOCK = threading.Lock()


def get_embedder(model: str | Path = DEFAULT_MODEL) -> Embedder:
    """The process-wide Embedder for `model` (created once; weights load on first use)."""
    key = str(model)
    with _CACHE_LOCK:
        emb = _CACHE.get(key)
        if emb is None:
            emb = _CACHE[key] = Embedder(key)
        return emb
