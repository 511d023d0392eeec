"""Per-hop quality estimates: the chance that a candidate answers *this* sub-question correctly.

The router's name log-probabilities know model names, not model quality: the prompted 1.5B router ranks
Qwen2.5-0.5B below SmolLM2-135M, so α could only switch between the two ends of the price ladder. A quality
estimate per hop lets the choice give up accuracy hop by hop, starting with the hops a cheap model answers well.

Labels come from `app.py calibrate` (each pool model asked each question of a public training split once, its
reply scored against the gold answers) and live in one JSON-lines file per pool: a header line, then one line per
(question, model). The estimate for a new sub-question is a k-nearest-neighbour vote over those questions in a
sentence-embedding space (the shipped MiniLM, injected as `encode`: router_core loads no embedder itself),
weighted by similarity and shrunk toward the model's overall rate, so a hop far from every labelled question gets
the model's average rather than a guess from one neighbour. A model of the pool without labels gets no estimate
(None: "not calibrated"); the choice then uses a neutral value for it.
"""
from __future__ import annotations

import contextlib
import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from .paths import CALIBRATION_DIR

HEADER_KIND = "router-studio-calibration"
DEFAULT_K = 20
SHRINK = 3.0          # pseudo-neighbours at the model's overall rate (a hop with no close neighbour gets that rate)
SIMILARITY_POWER = 4  # cosine similarity raised to this power: the closest questions count most

Encode = Callable[[list[str]], np.ndarray]


class CalibrationError(ValueError):
    """A labels file that cannot be read; the message names the file and line."""


def labels_path(pool_name: str, folder: Path | None = None) -> Path:
    """Where the labels of a pool are kept (the shipped ones for `local`)."""
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in pool_name)
    return (folder or CALIBRATION_DIR) / f"{safe}.jsonl"


@dataclass
class Label:
    id: str
    question: str
    model: str
    correct: float
    reply: str = ""
    f1: float = 0.0


@dataclass
class Labels:
    """What the calibration file holds: its header and one label per (question, model)."""

    header: dict[str, Any]
    items: list[Label] = field(default_factory=list)

    @property
    def models(self) -> list[str]:
        return sorted({x.model for x in self.items})

    def done(self) -> set[tuple[str, str]]:
        return {(x.id, x.model) for x in self.items}


def read_labels(path: str | Path) -> Labels:
    """Read a labels file; a bad line raises CalibrationError naming it (the file is ours: it must be whole)."""
    p = Path(path)
    header: dict[str, Any] | None = None
    items: list[Label] = []
    with p.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                d = json.loads(line)
            except json.JSONDecodeError as e:
                raise CalibrationError(f"{p} line {n}: not valid JSON ({e.msg})") from None
            if header is None:
                if not isinstance(d, dict) or d.get("kind") != HEADER_KIND:
                    raise CalibrationError(f"{p} line {n}: not a calibration file (no '{HEADER_KIND}' header)")
                header = d
                continue
            try:
                items.append(Label(id=str(d["id"]), question=str(d["question"]), model=str(d["model"]),
                                   correct=float(d["correct"]), reply=str(d.get("reply", "")),
                                   f1=float(d.get("f1", 0.0))))
            except (KeyError, TypeError, ValueError) as e:
                raise CalibrationError(f"{p} line {n}: bad label ({e})") from None
    if header is None:
        raise CalibrationError(f"{p}: empty file")
    return Labels(header, items)


def append_label(path: str | Path, header: dict[str, Any], label: Label) -> None:
    """Add one label (the header first if the file is new); each line is flushed as written, so an interrupted
    calibration resumes where it stopped."""
    p = Path(path)
    new = not p.exists() or p.stat().st_size == 0
    p.parent.mkdir(parents=True, exist_ok=True)
    with p.open("a", encoding="utf-8") as fh:
        if new:
            fh.write(json.dumps({"kind": HEADER_KIND, **header}, ensure_ascii=False) + "\n")
        fh.write(json.dumps({"id": label.id, "question": label.question, "model": label.model,
                             "correct": label.correct, "f1": round(label.f1, 4), "reply": label.reply},
                            ensure_ascii=False) + "\n")


class QualityEstimator:
    """q(model | sub-question) for the models of a pool, from the labels of that pool.

    Thread-safe; the labelled questions are embedded on the first estimate (or `prepare()`). `vectors`: a .npy
    file to keep those vectors in between processes (its name must change with the labels and the embedder; the
    caller picks it): read when it holds one row per labelled question, else written after embedding."""

    def __init__(self, labels: Labels, encode: Encode, *, k: int = DEFAULT_K, shrink: float = SHRINK,
                 source: str = "", vectors: Path | None = None):
        self.labels, self.encode, self.k, self.shrink, self.source = labels, encode, k, shrink, source
        self.vectors = vectors
        self._lock = threading.Lock()
        self._ready = False
        self._questions: list[str] = []
        self._vecs: np.ndarray | None = None
        self._y: dict[str, np.ndarray] = {}      # per model: correctness per question (NaN where not labelled)
        self._rate: dict[str, float] = {}

    @property
    def models(self) -> list[str]:
        return self.labels.models

    def prepare(self) -> "QualityEstimator":
        with self._lock:
            if not self._ready:
                order: dict[str, int] = {}
                for x in self.labels.items:
                    order.setdefault(x.id, len(order))
                self._questions = [""] * len(order)
                for x in self.labels.items:
                    self._questions[order[x.id]] = x.question
                for m in self.labels.models:
                    y = np.full(len(order), np.nan)
                    for x in self.labels.items:
                        if x.model == m:
                            y[order[x.id]] = x.correct
                    self._y[m] = y
                    self._rate[m] = float(np.nanmean(y))
                self._vecs = self._embed_labelled() if self._questions else np.zeros((0, 1))
                self._ready = True
        return self

    def _embed_labelled(self) -> np.ndarray:
        if self.vectors is not None and self.vectors.is_file():
            try:
                kept = np.load(self.vectors, allow_pickle=False)
                if kept.ndim == 2 and kept.shape[0] == len(self._questions):
                    return _unit(kept)
            except (OSError, ValueError):
                pass  # unreadable: embed again and write it anew
        vecs = _unit(self.encode(self._questions))
        if self.vectors is not None:
            tmp = self.vectors.with_name(f"{self.vectors.name}.{os.getpid()}.{threading.get_ident()}.tmp")
            try:
                self.vectors.parent.mkdir(parents=True, exist_ok=True)
                with tmp.open("wb") as fh:
                    np.save(fh, vecs, allow_pickle=False)
                tmp.replace(self.vectors)  # whole or not at all: a reader never sees half a file
            except OSError:  # a read-only cache costs the next process one embedding, nothing else
                with contextlib.suppress(OSError):
                    tmp.unlink(missing_ok=True)
        return vecs

    def rate(self, model: str) -> float | None:
        """The model's overall share correct on the labelled questions (None: no labels)."""
        self.prepare()
        return self._rate.get(model)

    def estimate(self, text: str, models: Sequence[str], *, exclude: str | None = None) -> list[float | None]:
        """q for each of `models` (None for a model without labels); `exclude` leaves one labelled question out
        (for leave-one-out fits)."""
        self.prepare()
        if not self._questions:
            return [None for _ in models]
        v = _unit(self.encode([text]))[0]
        sims = self._vecs @ v
        if exclude is not None:
            sims = np.where(np.array([q == exclude for q in self._questions]), -np.inf, sims)
        return [self._vote(m, sims) for m in models]

    def _vote(self, model: str, sims: np.ndarray) -> float | None:
        y = self._y.get(model)
        if y is None:
            return None
        ok = ~np.isnan(y) & np.isfinite(sims)
        idx = np.flatnonzero(ok)
        if idx.size == 0:
            return self._rate[model]
        top = idx[np.argsort(-sims[idx])[: self.k]]
        w = np.clip(sims[top], 0.0, 1.0) ** SIMILARITY_POWER
        return float((np.dot(w, y[top]) + self.shrink * self._rate[model]) / (w.sum() + self.shrink))


def neutral(values: Sequence[float | None]) -> list[float]:
    """Estimates with a neutral value (the mean of the known ones, else 0.5) for models not calibrated."""
    known = [v for v in values if v is not None]
    fill = sum(known) / len(known) if known else 0.5
    return [fill if v is None else float(v) for v in values]


def load_estimator(pool_name: str, encode: Encode, folder: Path | None = None) -> QualityEstimator | None:
    """The estimator of a pool from its labels file, or None when the pool has none."""
    p = labels_path(pool_name, folder)
    if not p.is_file():
        return None
    return QualityEstimator(read_labels(p), encode, source=str(p))


def _unit(x: Iterable) -> np.ndarray:
    a = np.asarray(x, dtype=np.float32)
    if a.ndim == 1:
        a = a[None, :]
    n = np.linalg.norm(a, axis=1, keepdims=True)
    return a / np.where(n == 0, 1.0, n)
