"""Answer metrics: exact match and token F1 with the standard QA answer normalisation.

Normalisation follows SQuAD / FlashRAG / Router-R1: lower-case, drop punctuation,
drop the articles a/an/the, collapse whitespace. EM and F1 take the best gold alias.
"""
from __future__ import annotations

import re
import string
from collections import Counter
from typing import Iterable

_PUNCT = set(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(s: str) -> str:
    s = s.lower()
    s = "".join(ch for ch in s if ch not in _PUNCT)
    s = _ARTICLES.sub(" ", s)
    return " ".join(s.split())


def _golds(golds: str | Iterable[str]) -> list[str]:
    return [golds] if isinstance(golds, str) else [g for g in golds if g is not None]


def exact_match(prediction: str | None, golds: str | Iterable[str]) -> float:
    """1.0 if the normalised prediction equals any normalised gold answer, else 0.0."""
    if prediction is None:
        return 0.0
    p = normalize_answer(prediction)
    return float(any(p == normalize_answer(g) for g in _golds(golds)))


def _f1_one(pred: str, gold: str) -> float:
    p, g = normalize_answer(pred), normalize_answer(gold)
    # Yes/no answers get no partial credit (as in HotpotQA's official scorer).
    if (p in ("yes", "no", "noanswer") or g in ("yes", "no", "noanswer")) and p != g:
        return 0.0
    pt, gt = p.split(), g.split()
    common = Counter(pt) & Counter(gt)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pt), same / len(gt)
    return 2 * precision * recall / (precision + recall)


def f1_score(prediction: str | None, golds: str | Iterable[str]) -> float:
    """Best token-level F1 of the prediction against any gold answer."""
    if prediction is None:
        return 0.0
    scores = [_f1_one(prediction, g) for g in _golds(golds)]
    return max(scores) if scores else 0.0


_NUMBER_WORDS = {w: str(i) for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty".split())}
_NUMBER_WORDS.update({w: str(10 * i) for i, w in enumerate("thirty forty fifty sixty seventy eighty ninety".split(),
                                                            start=3)})


def _digits(normalised: str) -> str:
    """Number words as digits ("seven continents" → "7 continents"), so "7" is found where a reply says seven."""
    return " ".join(_NUMBER_WORDS.get(w, w) for w in normalised.split())


def found_in(answer: str | None, texts: Iterable[str | None]) -> bool:
    """Whether the answer's normalised words occur, as whole words, in one of the texts (normalised alike,
    number words read as digits).

    This is "the answer is grounded in what the router was told": the loop uses it to send an answer that
    no reply contains back for one more hop, and evaluation to measure how often answers are grounded.
    """
    a = _digits(normalize_answer(answer or ""))
    return bool(a) and any(f" {a} " in f" {_digits(normalize_answer(t or ''))} " for t in texts if t)
