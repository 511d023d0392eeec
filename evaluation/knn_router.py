"""RouteLLM-style single-round router: a strong-model win rate from similar past questions.

History: records of (question, strong score, weak score), scores in [0, 1] (a bool for
correct / wrong, or a float such as F1). For a new question we take its k nearest past
questions by cosine similarity of their sentence embeddings and estimate the probability
that the strong model beats the weak one on it; the router calls the strong model when that
estimate is at least a threshold, and thresholds are calibrated to a target share of strong
calls (RouteLLM's `thresholds_for_shares`).

Pure numpy: the embedder is any object with `encode(list[str]) -> float array [n, d]` whose
rows are L2-normalised (evaluation.embed.Embedder is one; it is only imported when no
embedder is given).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

import numpy as np


class TextEmbedder(Protocol):
    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray: ...


def win_label(strong: float, weak: float, tie: float = 0.5) -> float:
    """Label of one past outcome: how much the strong model won, in [0, 1].

    1 = strong right and weak wrong, 0 = weak right and strong wrong, `tie` when both scored
    the same; fractional scores interpolate linearly on each side of the tie (with the
    default tie=0.5 the label is simply (1 + strong - weak) / 2).
    """
    d = float(strong) - float(weak)
    return tie + d * (1.0 - tie) if d >= 0 else tie + d * tie


@dataclass
class Neighbour:
    question: str
    similarity: float
    weight: float
    label: float
    strong: float
    weak: float


class KnnRouter:
    """Nearest-neighbour estimate of P(strong beats weak) for a question.

    Label per past question (`win_label`): 1 if the strong model was right and the weak one
    wrong, 0 for the reverse, and 0.5 for a tie (both right or both wrong); fractional
    scores interpolate. Ties count half, as wins/ties are counted in RouteLLM's win-rate
    (Bradley–Terry with ties). Why 0.5 and not 0 ("strong not needed"): the score is then
    (1 + E[strong - weak]) / 2, an affine function of the expected quality gain from calling
    the strong model, which is exactly what should order questions for routing. With tie=0
    a neighbourhood of ties (gain 0) would rank below one that is half strong-wins and half
    weak-wins (also gain 0). Pass `tie=0.0` to get "P(only the strong model is right)".

    Score of a query from its k nearest past questions (cosine similarity s_i, negatives
    clipped to 0):

        w_i   = max(s_i, 0) ** power
        score = (sum_i w_i * label_i + prior_weight * prior) / (sum_i w_i + prior_weight)

    i.e. a similarity-weighted mean shrunk towards a prior worth `prior_weight` neighbours of
    similarity 1. The prior is the history's own mean label, itself shrunk to `prior` (0.5 by
    default) with the same weight, so an empty history gives `prior`, a tiny or far-away one
    stays near the global win rate, and a close, consistent neighbourhood dominates.

    Leave-one-out: `win_rate(..., exclude_self=True)` ignores every past record whose
    question text is identical (after stripping whitespace) to the query as a neighbour, so
    an eval can score item i without its own outcome; `loo_scores()` does that for the fitted
    questions. The global prior is deliberately *not* recomputed without item i: it is one
    constant for every query, so it says nothing about item i in particular, whereas a
    per-item leave-one-out mean would be lower exactly for the items the strong model won
    (and so rank them *below* the others whenever the neighbourhood is weak). An empty
    neighbourhood after exclusion scores the global prior.
    """

    def __init__(self, k: int = 10, *, power: float = 2.0, prior: float = 0.5,
                 prior_weight: float = 1.0, tie: float = 0.5):
        if k < 1:
            raise ValueError("k must be >= 1")
        if not 0.0 <= prior <= 1.0 or not 0.0 <= tie <= 1.0:
            raise ValueError("prior and tie must be in [0, 1]")
        if prior_weight < 0 or power < 0:
            raise ValueError("prior_weight and power must be >= 0")
        self.k, self.power, self.prior, self.prior_weight, self.tie = k, power, prior, prior_weight, tie
        self.embedder: TextEmbedder | None = None
        self.questions: list[str] = []
        self.strong = np.zeros(0, dtype=np.float64)
        self.weak = np.zeros(0, dtype=np.float64)
        self.labels = np.zeros(0, dtype=np.float64)
        self.vectors: np.ndarray | None = None

    # -- history -----------------------------------------------------------------------------
    def fit(self, questions: Sequence[str], strong_scores: Sequence[float], weak_scores: Sequence[float],
            embedder: TextEmbedder | None = None, *, embeddings: np.ndarray | None = None) -> "KnnRouter":
        """Replace the history. `embeddings` (rows aligned with `questions`) skips encoding."""
        if embedder is not None:
            self.embedder = embedder
        self.questions, self.vectors = [], None
        self.strong = self.weak = self.labels = np.zeros(0, dtype=np.float64)
        return self.add(questions, strong_scores, weak_scores, embeddings=embeddings)

    def add(self, questions: Sequence[str], strong_scores: Sequence[float], weak_scores: Sequence[float],
            *, embeddings: np.ndarray | None = None) -> "KnnRouter":
        """Append outcomes to the history."""
        questions = [str(q) for q in questions]
        s = _scores(strong_scores, "strong_scores")
        w = _scores(weak_scores, "weak_scores")
        if not (len(questions) == len(s) == len(w)):
            raise ValueError(f"questions, strong_scores and weak_scores differ in length: "
                             f"{len(questions)}, {len(s)}, {len(w)}")
        vecs = self._embed(questions, embeddings)
        self.questions += questions
        self.strong = np.concatenate([self.strong, s])
        self.weak = np.concatenate([self.weak, w])
        self.labels = np.concatenate([self.labels, [win_label(a, b, self.tie) for a, b in zip(s, w)]])
        self.vectors = vecs if self.vectors is None or not len(self.vectors) else np.vstack([self.vectors, vecs])
        return self

    def __len__(self) -> int:
        return len(self.questions)

    # -- scoring -----------------------------------------------------------------------------
    def win_rate(self, questions: Sequence[str], k: int | None = None, exclude_self: bool = False, *,
                 embeddings: np.ndarray | None = None) -> np.ndarray:
        """Predicted P(strong beats weak) for each question, float64 in [0, 1]."""
        return self._score(list(map(str, questions)), self._k(k), exclude_self, embeddings)[0]

    def loo_scores(self, k: int | None = None) -> np.ndarray:
        """Leave-one-out win rates of the fitted questions (each without its own outcome)."""
        return self.win_rate(self.questions, k, exclude_self=True, embeddings=self.vectors)

    def neighbours(self, question: str, k: int | None = None, exclude_self: bool = False) -> list[Neighbour]:
        """The past questions behind a score, nearest first (for explanations in the UI)."""
        _, idx, sims = self._score([str(question)], self._k(k), exclude_self, None, want_neighbours=True)
        out = []
        for j, s in zip(idx[0], sims[0]):
            out.append(Neighbour(self.questions[j], float(s), float(max(s, 0.0) ** self.power),
                                 float(self.labels[j]), float(self.strong[j]), float(self.weak[j])))
        return out

    def _k(self, k: int | None) -> int:
        k = self.k if k is None else int(k)
        if k < 1:
            raise ValueError("k must be >= 1")
        return k

    def _score(self, questions: list[str], k: int, exclude_self: bool, embeddings, want_neighbours=False):
        n, h = len(questions), len(self.questions)
        empty_idx = [[] for _ in range(n)]
        if n == 0:
            return np.zeros(0), empty_idx, empty_idx
        if h == 0:
            return np.full(n, self.prior), empty_idx, empty_idx
        q = self._embed(questions, embeddings)
        by_text: dict[str, list[int]] = {}
        if exclude_self:
            for j, text in enumerate(self.questions):
                by_text.setdefault(text.strip(), []).append(j)
        g_prior = (float(self.labels.sum()) + self.prior_weight * self.prior) / (h + self.prior_weight) \
            if (h + self.prior_weight) > 0 else self.prior
        scores = np.empty(n)
        all_idx, all_sims = [], []
        for lo in range(0, n, 1024):                       # bounded memory: 1024 x history at a time
            sims = q[lo:lo + 1024] @ self.vectors.T
            for r in range(sims.shape[0]):
                i = lo + r
                row = sims[r].astype(np.float64)
                excl = by_text.get(questions[i].strip(), []) if exclude_self else []
                if excl:
                    row[excl] = -np.inf
                avail = h - len(excl)
                kk = min(k, avail)
                if kk <= 0:
                    scores[i] = g_prior
                    all_idx.append([]); all_sims.append([])
                    continue
                top = np.argpartition(-row, kk - 1)[:kk] if kk < h else np.arange(h)
                top = top[np.isfinite(row[top])]
                top = top[np.argsort(-row[top], kind="stable")]
                wts = np.clip(row[top], 0.0, None) ** self.power
                num = float(wts @ self.labels[top]) + self.prior_weight * g_prior
                den = float(wts.sum()) + self.prior_weight
                scores[i] = num / den if den > 0 else g_prior
                if want_neighbours:
                    all_idx.append(top.tolist()); all_sims.append(row[top].tolist())
        return np.clip(scores, 0.0, 1.0), all_idx, all_sims

    def _embed(self, questions: list[str], embeddings) -> np.ndarray:
        if embeddings is not None:
            v = np.asarray(embeddings, dtype=np.float32)
            if v.ndim != 2 or v.shape[0] != len(questions):
                raise ValueError(f"embeddings must be [{len(questions)}, d], got {v.shape}")
        elif not questions:
            d = self.vectors.shape[1] if self.vectors is not None and self.vectors.ndim == 2 else 0
            return np.zeros((0, d), dtype=np.float32)
        else:
            if self.embedder is None:
                from .embed import get_embedder  # torch/transformers only when needed
                self.embedder = get_embedder()
            v = np.asarray(self.embedder.encode(questions), dtype=np.float32)
        if self.vectors is not None and len(self.vectors) and v.shape[1] != self.vectors.shape[1]:
            raise ValueError(f"embedding size {v.shape[1]} differs from the history's {self.vectors.shape[1]}")
        norms = np.linalg.norm(v, axis=1, keepdims=True)
        return v / np.where(norms > 0, norms, 1.0)      # cosine even if an embedder does not normalise


def route(score: float, threshold: float) -> str:
    """"strong" when score >= threshold, else "weak"."""
    score = float(score)
    if np.isnan(score):
        raise ValueError("score is NaN")
    return "strong" if score >= float(threshold) else "weak"


def thresholds_for_shares(scores: Sequence[float], shares: Sequence[float]) -> list[float]:
    """A threshold per target share of strong calls, calibrated on `scores` (RouteLLM-style).

    For each share p in [0, 1] the threshold t is chosen among the distinct scores (plus one
    just above the largest, for "never strong") so that mean(scores >= t) is as close to p
    as possible; with tied scores the exact share may be unreachable, and an equally close
    pair resolves to the higher threshold (fewer strong calls). Share 1 gives min(scores).
    """
    s = np.asarray(scores, dtype=np.float64).ravel()
    if s.size == 0:
        raise ValueError("thresholds_for_shares needs at least one score")
    if np.isnan(s).any():
        raise ValueError("scores contain NaN")
    cands = np.unique(s)                                            # ascending
    above = np.nextafter(cands[-1], np.inf)
    cands = np.append(cands, above)
    srt = np.sort(s)
    strong_share = (s.size - np.searchsorted(srt, cands, side="left")) / s.size   # mean(s >= c), descending
    out = []
    for p in shares:
        p = float(p)
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"share {p} is not in [0, 1]")
        err = np.abs(strong_share - p)
        best = np.flatnonzero(err <= err.min() + 1e-12)[-1]          # ties → highest threshold
        out.append(float(cands[best]))
    return out


def _scores(values: Sequence[float], name: str) -> np.ndarray:
    a = np.asarray([float(v) for v in values], dtype=np.float64)
    if a.size and (np.isnan(a).any() or a.min() < 0.0 or a.max() > 1.0):
        raise ValueError(f"{name} must be in [0, 1] (bools or fractions)")
    return a
