"""Cost-aware model choice: the live α knob over a policy's scored model distribution.

u(m) = w_p·log p(m | context) + w_q·q(m | sub-question) − κ·α·ĉ(m), with ĉ the model's normalised cost in
[0, 1] and q the per-hop quality estimate (router_core.quality; the term is absent, w_q = 0, unless the run
turns it on). The choice is the arg-max of u. Without the quality term (w_p = 1) α = 0 is exactly the policy's
own choice. Raising α can never raise the chosen model's price, whatever the prior and quality terms are, as
long as they do not depend on α (the rollout writes the sub-question before it chooses, so q does not): if m1
wins at α1 and m2 at α2 > α1, adding the two optimality inequalities gives κ(α2−α1)(ĉ1−ĉ2) ≥ 0. The softmax's
expected ĉ is non-increasing too (its derivative in α is −κ·Var(ĉ)).
"""
from __future__ import annotations

import math
from typing import Sequence

from .quality import neutral
from .step import Choice

DEFAULT_KAPPA = 8.0


def parse_alpha(value: object, what: str = "alpha") -> float:
    """One α from text or a number; ValueError names `what` and the bad value (NaN, ±inf and values outside
    [0, 1] are refused)."""
    if isinstance(value, bool):
        raise ValueError(f"{what}: α must be a number in [0, 1], got {value}")
    try:
        a = float(str(value).strip()) if not isinstance(value, (int, float)) else float(value)
    except ValueError:
        raise ValueError(f"{what}: '{str(value)[:20]}' is not a number (α is in [0, 1])") from None
    if not (math.isfinite(a) and 0.0 <= a <= 1.0):
        raise ValueError(f"{what}: {str(value)[:20]} is outside [0, 1]")
    return a


def parse_alphas(text: str, what: str = "alpha", *, limit: int | None = None) -> list[float]:
    """Comma- (or semicolon-) separated α values, in the order given; at least one, at most `limit`."""
    out = [parse_alpha(part, what) for part in str(text or "").replace(";", ",").split(",") if part.strip()]
    if not out:
        raise ValueError(f"{what}: give at least one α, e.g. 0,0.5,1")
    if limit is not None and len(out) > limit:
        raise ValueError(f"{what}: at most {limit} values at once")
    return out


def softmax(xs: Sequence[float]) -> list[float]:
    m = max(xs)
    ex = [math.exp(x - m) for x in xs]
    z = sum(ex)
    return [e / z for e in ex]


def adjust(models: Sequence[str], logprobs: Sequence[float], norm_costs: Sequence[float],
           alpha: float, kappa: float = DEFAULT_KAPPA, score_seconds: float = 0.0, *,
           quality: Sequence[float | None] | None = None, prior_weight: float = 1.0,
           quality_weight: float = 0.0) -> Choice:
    """Apply the utility and pick. Ties go to the cheaper model, then pool order. `quality` (one estimate per
    model, None where a model was not calibrated: it gets the neutral value) switches the quality term on."""
    if not (0.0 <= alpha <= 1.0):
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    if len(models) != len(logprobs) or len(models) != len(norm_costs) or not models:
        raise ValueError("models, logprobs and norm_costs must be non-empty and of equal length")
    if quality is not None and len(quality) != len(models):
        raise ValueError("quality must have one estimate (or None) per model")
    if quality is None:
        base = [float(lp) for lp in logprobs]
    else:
        q = neutral(quality)
        base = [prior_weight * lp + quality_weight * v for lp, v in zip(logprobs, q)]
    adjusted = [b - kappa * alpha * c for b, c in zip(base, norm_costs)]

    def pick(scores: Sequence[float]) -> int:
        return max(range(len(models)), key=lambda i: (scores[i], -norm_costs[i], -i))

    extra = {} if quality is None else {"quality": [None if v is None else float(v) for v in quality],
                                        "prior_weight": float(prior_weight), "quality_weight": float(quality_weight)}
    return Choice(models=list(models), logprobs=[float(x) for x in logprobs],
                  probs_before=softmax(logprobs), probs_after=softmax(adjusted),
                  norm_costs=[float(c) for c in norm_costs], alpha=float(alpha), kappa=float(kappa),
                  chosen=models[pick(adjusted)], policy_choice=models[pick(logprobs)],
                  score_seconds=score_seconds, **extra)


def expected_norm_cost(choice: Choice) -> float:
    return sum(p * c for p, c in zip(choice.probs_after, choice.norm_costs))
