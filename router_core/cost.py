"""Cost in dollars, Router-R1's cost reward, and the Router-R1 reward of a session at any α.

Router-R1's reward: a format error scores −1; a wrong answer 0; a correct answer
(1−α) + α·R_cost, where raw cost = Σ output_tokens × price over the candidate calls and
R_cost = 1 − clip(normalised √cost) using the 5th–95th percentile of a window of recent
costs. Keeping the window as an object lets a whole eval run (or the stored sessions)
share one normalisation, as the training batches did.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from .metrics import exact_match
from .step import Step


def call_cost_usd(input_tokens: int, output_tokens: int, price_in: float, price_out: float) -> float:
    """Dollars for one call; prices are $ per 1M tokens."""
    return (input_tokens * price_in + output_tokens * price_out) / 1e6


def raw_cost(steps: Iterable[Step], price_out: dict[str, float]) -> float:
    """Router-R1's raw cost: Σ output_tokens × price ($/1M) over answered candidate calls."""
    return sum(s.output_tokens * price_out.get(s.request_model or "", 0.0)
               for s in steps if s.kind == "route" and s.request_model)


def _percentile(sorted_vals: Sequence[float], q: float) -> float:
    if not sorted_vals:
        return 0.0
    k = (len(sorted_vals) - 1) * q
    lo, hi = math.floor(k), math.ceil(k)
    if lo == hi:
        return sorted_vals[int(k)]
    return sorted_vals[lo] + (sorted_vals[hi] - sorted_vals[lo]) * (k - lo)


@dataclass
class CostNormalizer:
    """Sliding window of recent √costs; maps a cost to R_cost ∈ [0, 1] (1 = cheapest)."""

    window: int = 1000
    values: deque = field(default_factory=deque)

    def __post_init__(self) -> None:
        self.values = deque(self.values, maxlen=self.window)

    def observe(self, cost: float) -> None:
        self.values.append(math.sqrt(max(0.0, cost)))

    def reward(self, cost: float) -> float:
        s = math.sqrt(max(0.0, cost))
        vals = sorted(self.values)
        if len(vals) < 2:
            # No spread to normalise against yet: a free session is best, anything else neutral.
            return 1.0 if s == 0 else 0.5
        lo, hi = _percentile(vals, 0.05), _percentile(vals, 0.95)
        if hi - lo <= 1e-12:
            return 1.0 if s <= lo else 0.0
        norm = min(1.0, max(0.0, (s - lo) / (hi - lo)))
        return 1.0 - norm


def router_r1_reward(answer: str | None, golds: Sequence[str], format_ok: bool,
                     cost: float, alpha: float, normalizer: CostNormalizer | None = None) -> float:
    """Router-R1's reward of one session at cost coefficient α (correctness by exact match)."""
    if not format_ok or answer is None:
        return -1.0
    if not golds or exact_match(answer, golds) < 1.0:
        return 0.0
    r_cost = (normalizer or CostNormalizer()).reward(cost)
    return (1.0 - alpha) + alpha * r_cost
