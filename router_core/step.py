"""The one record that flows from the routing loop to storage, UI, eval and export.

Field names follow the OpenTelemetry GenAI semantic conventions where one fits
(`request_model`, `input_tokens`, `output_tokens`), so exporting to a tracing
backend is a mapping rather than a translation.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any, Literal

StepKind = Literal["think", "route", "answer", "error"]
KINDS: tuple[str, ...] = ("think", "route", "answer", "error")

# ok: the step did what it meant to do. flagged: it completed but the router broke
# the protocol (unknown model, missing tag, ...). error: an engine or endpoint failed.
StepStatus = Literal["ok", "flagged", "error", "stopped"]
STATUSES: tuple[str, ...] = ("ok", "flagged", "error", "stopped")


@dataclass
class Choice:
    """A scored model choice at a route decision, before and after the cost adjustment.

    `logprobs` are the policy's log p(name | context); `probs_before` is their softmax
    over the pool; `probs_after` the softmax of logprob − κ·α·ĉ. The chosen model is the
    arg-max of `probs_after`, so at α = 0 it is the policy's own (sequence-level) choice.
    """

    models: list[str]
    logprobs: list[float]
    probs_before: list[float]
    probs_after: list[float]
    norm_costs: list[float]
    alpha: float
    kappa: float
    chosen: str
    policy_choice: str
    score_seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Choice":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass
class Step:
    """One think / route / answer / error event of a routing session."""

    session_id: str
    index: int
    kind: StepKind
    text: str = ""                      # the router's own text for this step
    request_model: str | None = None    # the candidate that answered (route)
    written_model: str | None = None    # the name the router wrote, before resolution
    query: str | None = None            # the sub-question (route)
    response: str | None = None         # the candidate's reply as inserted (route)
    input_tokens: int = 0               # candidate tokens (route)
    output_tokens: int = 0
    cost_usd: float = 0.0
    router_input_tokens: int = 0        # the policy's own tokens for this step
    router_output_tokens: int = 0
    started_at: float = field(default_factory=time.time)
    ended_at: float | None = None
    call_started_at: float | None = None  # the candidate call inside a route step
    call_ended_at: float | None = None
    status: StepStatus = "ok"
    flags: list[str] = field(default_factory=list)
    error: str | None = None
    choice: Choice | None = None
    decision: dict[str, float] | None = None  # P(search) vs P(answer) where scored
    turn: int = 0                       # route turn this step belongs to (0 = before any route)

    @property
    def latency_s(self) -> float:
        if self.ended_at is None:
            return 0.0
        return max(0.0, self.ended_at - self.started_at)

    @property
    def call_latency_s(self) -> float:
        if self.call_started_at is None or self.call_ended_at is None:
            return 0.0
        return max(0.0, self.call_ended_at - self.call_started_at)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["latency_s"] = round(self.latency_s, 6)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Step":
        names = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in d.items() if k in names}
        if kw.get("choice") is not None and not isinstance(kw["choice"], Choice):
            kw["choice"] = Choice.from_dict(kw["choice"])
        kw["flags"] = list(kw.get("flags") or [])
        return cls(**kw)


@dataclass
class SessionResult:
    """Totals of a finished session, derived from its steps (never stored separately in the loop)."""

    session_id: str
    question: str
    answer: str | None
    steps: list[Step]
    alpha: float
    gold: list[str] = field(default_factory=list)

    @property
    def cost_usd(self) -> float:
        return sum(s.cost_usd for s in self.steps)

    @property
    def calls(self) -> int:
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
