"""What a session amounts to, derived from its steps: answer, status, totals, EM/F1, reward.

Everything that judges a session asks this record (the recorder when it closes a session, the
terminal, the live page, compare, evaluation), so the rules — which status a step list ends in,
how EM and the Router-R1 reward are computed — live in one place.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from .cost import CostNormalizer, router_r1_reward
from .metrics import exact_match, f1_score
from .step import Step

SESSION_STATUSES: tuple[str, ...] = ("running", "done", "stopped", "error", "interrupted")


@dataclass
class SessionResult:
    """Totals of a finished (or partial) session; never stored separately by the loop."""

    session_id: str
    question: str
    steps: list[Step]
    alpha: float
    gold: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, steps: Sequence[Step], question: str, alpha: float, gold: Sequence[str] = ()) -> "SessionResult":
        return cls(session_id=steps[0].session_id if steps else "", question=question, steps=list(steps),
                   alpha=alpha, gold=[g for g in gold if g])

    @property
    def answer(self) -> str | None:
        """The last answer step's text, as in Router-R1 (the last answer counts)."""
        answers = [s for s in self.steps if s.kind == "answer"]
        return answers[-1].text if answers else None

    @property
    def status(self) -> str:
        """done | stopped | error: how a session with these steps ended.

        A flagged ending (no answer, a format error) is a finished session with a format
        error, not an engine failure; only an `error` step with status `error` is one.
        """
        if not self.steps:
            return "error"
        last = self.steps[-1]
        if last.status == "stopped":
            return "stopped"
        if last.kind == "error" and last.status == "error":
            return "error"
        return "done"

    @property
    def error(self) -> str | None:
        """The last error message, for sessions that did not finish normally."""
        if self.status == "done":
            return None
        err = next((s.error for s in reversed(self.steps) if s.error), None)
        if self.status == "stopped" and err is None:
            return "stopped before the session finished"
        return err

    @property
    def cost_usd(self) -> float:
        return sum(s.cost_usd for s in self.steps)

    @property
    def calls(self) -> int:
        """Candidate calls that were made (refused and repeated sub-questions are not calls)."""
        return sum(1 for s in self.steps if s.kind == "route" and s.request_model and s.status != "flagged")

    @property
    def candidate_tokens(self) -> int:
        return sum(s.input_tokens + s.output_tokens for s in self.steps)

    @property
    def router_tokens(self) -> int:
        return sum(s.router_input_tokens + s.router_output_tokens for s in self.steps)

    @property
    def format_ok(self) -> bool:
        return self.answer is not None and not any("format" in f for s in self.steps for f in s.flags)

    @property
    def wall_s(self) -> float:
        if not self.steps:
            return 0.0
        end = max((s.ended_at or s.started_at) for s in self.steps)
        return max(0.0, end - min(s.started_at for s in self.steps))

    @property
    def em(self) -> float | None:
        """Exact match against the gold answers; None when no gold is known."""
        return exact_match(self.answer, self.gold) if self.gold else None

    @property
    def f1(self) -> float | None:
        return f1_score(self.answer, self.gold) if self.gold else None

    def reward(self, alpha: float | None = None, normalizer: CostNormalizer | None = None) -> float | None:
        """Router-R1's reward at `alpha` (default: the session's own α); None without gold."""
        if not self.gold:
            return None
        a = self.alpha if alpha is None else alpha
        return router_r1_reward(self.answer, self.gold, self.format_ok, self.cost_usd, a, normalizer)

    @staticmethod
    def reward_of(em: float | None, format_ok: bool | None, cost_usd: float, alpha: float,
                  normalizer: CostNormalizer | None = None) -> float | None:
        """The same reward from a stored session's outcome (EM, format flag, cost), without its steps.

        For tables of many sessions (reports, compare); None when the session had no gold answer.
        """
        if em is None or em != em:  # no gold (NaN from a DataFrame)
            return None
        if format_ok is False:
            return -1.0
        if em < 1:
            return 0.0
        return (1.0 - alpha) + alpha * (normalizer or CostNormalizer()).reward(cost_usd)
