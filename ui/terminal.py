"""What the CLI prints: a step as it finishes, a session summary, the JSON form, a sessions table.

Steps are laid out by the one renderer (`ui.render`), so the terminal shows what the page shows.
"""
from __future__ import annotations

import math
import time
from typing import Any, Sequence

from router_core.session import SessionResult
from router_core.step import Step

from .render import describe, money, text

RULE = "─" * 60


def step_line(s: Step, gold: Sequence[str] = ()) -> str:
    return text(describe(s, gold))


def summary_lines(res: SessionResult, *, wall_s: float, first_step_s: float | None, stored: str | None) -> list[str]:
    lines = [RULE, f"answer   {res.answer if res.answer is not None else '(none)'}"]
    if res.gold:
        lines.append(f"gold     {' | '.join(res.gold)}   EM {res.em:.0f}  F1 {res.f1:.2f}  "
                     f"reward@α {res.reward():+.3f}")
    lines += [f"cost     {money(res.cost_usd)} (${res.cost_usd:.8f}) over {res.calls} call(s)   α {res.alpha:g}",
              f"tokens   router {res.router_tokens}, candidates {res.candidate_tokens}",
              f"time     {wall_s:.1f} s (first step after {first_step_s or 0:.1f} s)   session {res.session_id}"]
    if stored:
        lines.append(f"stored   in {stored}")
    return lines


def step_json(s: Step) -> dict[str, Any]:
    """The Step codec's dict, plus `model` as a documented alias of `request_model`."""
    return {**s.to_dict(), "model": s.request_model}


def session_json(res: SessionResult, *, policy: str, pool: str, wall_s: float, first_step_s: float | None,
                 stored: str | None) -> dict[str, Any]:
    """The `ask --json` object (also one entry of `sweep --json`'s runs)."""
    return {"session_id": res.session_id, "question": res.question, "answer": res.answer, "gold": res.gold,
            "em": res.em, "f1": res.f1, "reward": res.reward(), "status": res.status, "cost_usd": res.cost_usd,
            "alpha": res.alpha, "policy": policy, "pool": pool, "calls": res.calls,
            "router_tokens": res.router_tokens, "candidate_tokens": res.candidate_tokens,
            "wall_s": round(wall_s, 3), "first_step_s": round(first_step_s or 0.0, 3), "stored": stored,
            "steps": [step_json(s) for s in res.steps]}


def when(t: float | None) -> str:
    """A stored timestamp for a table; a damaged one reads as '?' instead of raising."""
    try:
        if t is None or not math.isfinite(t):
            return "?"
        return time.strftime("%Y-%m-%d %H:%M", time.localtime(t))
    except (OverflowError, OSError, ValueError, TypeError):
        return "?"
