"""The one record that flows from the routing loop to storage, UI, eval and export — and its codec.

Field names follow the OpenTelemetry GenAI semantic conventions where one fits
(`request_model`, `input_tokens`, `output_tokens`), so exporting to a tracing
backend is a mapping rather than a translation.

`Step.to_dict()` / `Step.from_dict()` are the only place a Step becomes a dict and back:
the store's rows, the JSONL export and `ask --json` are all built from them, so a new field
is one edit here. `Step.parse()` is the strict variant for untrusted input (imports): every
field is checked against its type and the range declared in its metadata, and the first
problem raises `StepError` naming the field.
"""
from __future__ import annotations

import dataclasses
import functools
import math
import time
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal

StepKind = Literal["think", "route", "answer", "error"]
KINDS: tuple[str, ...] = ("think", "route", "answer", "error")

# ok: the step did what it meant to do. flagged: it completed but the router broke
# the protocol (unknown model, missing tag, ...). error: an engine or endpoint failed.
StepStatus = Literal["ok", "flagged", "error", "stopped"]
STATUSES: tuple[str, ...] = ("ok", "flagged", "error", "stopped")

MAX_TEXT = 1_000_000        # characters in one text field (a reply is cut to ~600 tokens long before this)
MAX_TOKENS = 10 ** 12       # a token count; also keeps integers inside SQLite's 64 bits
MAX_COST = 10 ** 6          # dollars for one step
MAX_LIST = 10_000           # flags, models
MAX_INDEX = 10 ** 6         # step index and turn

# route flags of a sub-question the rollout wrote, not the router: a choice question's comparison with the facts
# read (comparison_hop), the question for the first fact a question hides (fact_hop)
COMPOSED_FLAGS: frozenset[str] = frozenset({"comparison_hop", "fact_hop"})
QUALITY_FIELDS = ("quality", "prior_weight", "quality_weight")  # Choice fields stored only with a quality estimate


class StepError(ValueError):
    """A step (or choice) dict that does not fit the schema; the message names the field."""


def _range(lo: float | None = None, hi: float | None = None, **more: Any) -> dict[str, Any]:
    return {"min": lo, "max": hi, **more}


@dataclass
class Choice:
    """A scored model choice at a route decision, before and after the cost adjustment.

    `logprobs` are the policy's log p(name | context); `probs_before` is their softmax
    over the pool; `probs_after` the softmax of the utility
    prior_weight·logprob + quality_weight·q − κ·α·ĉ. The chosen model is the arg-max of
    `probs_after`; without a quality estimate (`quality` None, the default, and for trained
    checkpoints) that is logprob − κ·α·ĉ, so at α = 0 it is the policy's own choice.
    `quality` holds q(model | this sub-question) from router_core.quality, None for a model
    that was not calibrated (its utility used a neutral value, see `terms`).
    """

    models: list[str]
    logprobs: list[float] = field(metadata=_range(-1e6, 0.0))
    probs_before: list[float] = field(metadata=_range(0.0, 1.0))
    probs_after: list[float] = field(metadata=_range(0.0, 1.0))
    norm_costs: list[float] = field(metadata=_range(0.0, 1.0))
    alpha: float = field(metadata=_range(0.0, 1.0))
    kappa: float = field(metadata=_range(0.0, 1e6))
    chosen: str
    policy_choice: str
    score_seconds: float = field(default=0.0, metadata=_range(0.0, 1e7))
    quality: list[float | None] | None = field(default=None, metadata=_range(0.0, 1.0))
    prior_weight: float = field(default=1.0, metadata=_range(0.0, 1e3))
    quality_weight: float = field(default=0.0, metadata=_range(0.0, 1e3))

    def to_dict(self) -> dict[str, Any]:
        d = _plain(self)
        if self.quality is None:  # a choice without the quality term stores what it always stored
            for k in QUALITY_FIELDS:
                d.pop(k, None)
        return d

    def terms(self) -> list[dict[str, float | bool]]:
        """Per model, the three terms of its utility: the router's prior, the quality estimate and the price
        penalty (`calibrated` False where the estimate was the neutral stand-in)."""
        q = self.quality or [None] * len(self.models)
        known = [v for v in q if v is not None]
        fill = sum(known) / len(known) if known else 0.5
        return [{"prior": self.prior_weight * lp,
                 "quality": self.quality_weight * (fill if v is None else v) if self.quality is not None else 0.0,
                 "estimate": fill if v is None else v, "calibrated": v is not None,
                 "penalty": self.kappa * self.alpha * c}
                for lp, v, c in zip(self.logprobs, q, self.norm_costs)]

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Choice":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    @classmethod
    def parse(cls, d: Any, where: str = "choice") -> "Choice":
        c = cls(**_checked(cls, d, where))
        n = len(c.models)
        if n == 0:
            raise StepError(f"{where}.models: must not be empty")
        per_model = ("logprobs", "probs_before", "probs_after", "norm_costs")
        for name in per_model + (("quality",) if c.quality is not None else ()):
            if len(getattr(c, name)) != n:
                raise StepError(f"{where}.{name}: has {len(getattr(c, name))} values for {n} models")
        for name in ("chosen", "policy_choice"):
            if getattr(c, name) not in c.models:
                raise StepError(f"{where}.{name}: '{getattr(c, name)}' is not one of the models")
        return c


@dataclass
class Step:
    """One think / route / answer / error event of a routing session."""

    session_id: str = field(metadata=_range(min_len=1, max_len=64))
    index: int = field(metadata=_range(0, MAX_INDEX))
    kind: StepKind
    text: str = ""                      # the router's own text for this step
    request_model: str | None = None    # the candidate that answered (route)
    written_model: str | None = None    # the name the router wrote, before resolution
    query: str | None = None            # the sub-question (route)
    response: str | None = None         # the candidate's reply as inserted (route)
    input_tokens: int = field(default=0, metadata=_range(0, MAX_TOKENS))   # candidate tokens (route)
    output_tokens: int = field(default=0, metadata=_range(0, MAX_TOKENS))
    cost_usd: float = field(default=0.0, metadata=_range(0.0, MAX_COST))
    router_input_tokens: int = field(default=0, metadata=_range(0, MAX_TOKENS))  # the policy's own tokens
    router_output_tokens: int = field(default=0, metadata=_range(0, MAX_TOKENS))
    started_at: float = field(default_factory=time.time, metadata=_range(0.0, 1e11))
    ended_at: float | None = field(default=None, metadata=_range(0.0, 1e11))
    call_started_at: float | None = field(default=None, metadata=_range(0.0, 1e11))  # the candidate call
    call_ended_at: float | None = field(default=None, metadata=_range(0.0, 1e11))
    status: StepStatus = "ok"
    flags: list[str] = field(default_factory=list)
    error: str | None = None
    choice: Choice | None = None
    decision: dict[str, float] | None = None  # P(search) vs P(answer) where scored
    turn: int = field(default=0, metadata=_range(0, MAX_INDEX))  # route turn (0 = before any route)
    draft: str | None = None  # route: the answer the router had written, found in no reply, before this hop
    lead: str | None = None   # think: the words the rollout wrote first (a run setting), which `text` starts with
    # answer to a choice question (choice_answer): each thing it names, with the router's probability for it
    options: dict[str, float] | None = field(default=None, metadata=_range(0.0, 1.0))
    # route: the sub-question the router wrote when the rollout sent another in its place (fact_hop)
    written_query: str | None = None

    def split_lead(self) -> tuple[str, str]:
        """(the rollout's lead, the router's own words) of a think block; the lead is "" unless `text` starts with
        it (an edited import may not), so the page, the captions and the think-quality measure agree."""
        if self.lead and self.text.startswith(self.lead):
            return self.lead, self.text[len(self.lead):]
        return "", self.text

    @property
    def composed(self) -> bool:
        """A route step whose sub-question the rollout wrote, not the router (see COMPOSED_FLAGS): measures of the
        router's own decomposition leave it out."""
        return any(f in COMPOSED_FLAGS for f in self.flags)

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

    @property
    def sent(self) -> bool:
        """A route step whose sub-question actually reached a candidate (not refused, not a repeat)."""
        return self.kind == "route" and self.call_started_at is not None

    def to_dict(self) -> dict[str, Any]:
        """Every field as plain JSON types, plus the derived `latency_s` (ignored by from_dict)."""
        d = _plain(self)
        d["latency_s"] = round(self.latency_s, 6)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Step":
        """Trusted input (our own rows and exports): unknown and derived keys are dropped."""
        kw = {k: v for k, v in d.items() if k in _STEP_FIELDS}
        if kw.get("choice") is not None and not isinstance(kw["choice"], Choice):
            kw["choice"] = Choice.from_dict(kw["choice"])
        kw["flags"] = list(kw.get("flags") or [])
        return cls(**kw)

    @classmethod
    def parse(cls, d: Any, where: str = "step") -> "Step":
        """Untrusted input: check every field's type and range; StepError names the first bad one."""
        if isinstance(d, dict):
            d = {k: v for k, v in d.items() if k not in DERIVED}
        kw = _checked(cls, d, where)
        if kw.get("choice") is not None:
            kw["choice"] = Choice.parse(kw["choice"], f"{where}.choice")
        return cls(**kw)


def _plain(obj: Any) -> dict[str, Any]:
    """A dataclass's fields as a new dict of plain JSON values; lists and dicts are copied one level deep,
    nested records turned into dicts. What `dataclasses.asdict` gives, without its deep copy of every
    value (it made writing steps to the store several times slower)."""
    out: dict[str, Any] = {}
    for name in _field_names(type(obj)):
        v = getattr(obj, name)
        t = type(v)
        if t in _SCALARS:  # most fields: checked first, by exact type (the bulk writer's hot loop)
            pass
        elif isinstance(v, list):
            v = list(v)
        elif isinstance(v, dict):
            v = dict(v)
        elif dataclasses.is_dataclass(v):
            v = _plain(v)
        out[name] = v
    return out


_SCALARS = frozenset({str, int, float, bool, type(None)})


@functools.cache
def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


DERIVED = ("latency_s",)  # written by to_dict for readers, never read back
_STEP_FIELDS = {f.name for f in dataclasses.fields(Step)}


# ---------------------------------------------------------------- validation from the type hints

def _checked(cls: type, d: Any, where: str) -> dict[str, Any]:
    """Keyword arguments for `cls` from `d`, each checked against its annotation and metadata."""
    if not isinstance(d, dict):
        raise StepError(f"{where}: expected an object, got {_tname(d)}")
    hints, fields = _schema(cls)
    unknown = sorted(str(k) for k in d if k not in fields)
    if unknown:
        raise StepError(f"{where}: unknown field(s) {', '.join(unknown[:5])}")
    out: dict[str, Any] = {}
    for name, f in fields.items():
        if name not in d:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise StepError(f"{where}.{name}: missing")
            continue
        out[name] = _value(hints[name], d[name], f"{where}.{name}", f.metadata)
    return out


@functools.cache
def _schema(cls: type) -> tuple[dict[str, Any], dict[str, dataclasses.Field]]:
    return typing.get_type_hints(cls), {f.name: f for f in dataclasses.fields(cls)}


def _tname(v: Any) -> str:
    return "null" if v is None else type(v).__name__


def _value(hint: Any, v: Any, where: str, meta: Any) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if v is None and type(None) in args:
            return None
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1:
            return _value(rest[0], v, where, meta)
        raise StepError(f"{where}: unsupported type")  # pragma: no cover - not used by Step
    if v is None:
        raise StepError(f"{where}: must not be null")
    if origin is Literal:
        if v not in args:
            raise StepError(f"{where}: '{str(v)[:40]}' is not one of {', '.join(map(str, args))}")
        return v
    if hint is str:
        if not isinstance(v, str):
            raise StepError(f"{where}: must be a string, got {_tname(v)}")
        lo, hi = meta.get("min_len", 0), meta.get("max_len", MAX_TEXT)
        if not lo <= len(v) <= hi:
            raise StepError(f"{where}: length {len(v)} is outside {lo}..{hi}")
        return v
    if hint is int:
        if isinstance(v, bool) or not isinstance(v, int):
            raise StepError(f"{where}: must be an integer, got {_tname(v)}")
        return _in_range(v, where, meta)
    if hint is float:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise StepError(f"{where}: must be a number, got {_tname(v)}")
        if not math.isfinite(v):
            raise StepError(f"{where}: must be a finite number, got {v}")
        return float(_in_range(v, where, meta)) + 0.0  # -0.0 → 0.0: one value, one stored form
    if origin is list:
        if not isinstance(v, list):
            raise StepError(f"{where}: must be a list, got {_tname(v)}")
        if len(v) > MAX_LIST:
            raise StepError(f"{where}: more than {MAX_LIST} entries")
        return [_value(args[0], x, f"{where}[{i}]", meta) for i, x in enumerate(v)]
    if origin is dict:
        if not isinstance(v, dict):
            raise StepError(f"{where}: must be an object, got {_tname(v)}")
        if len(v) > MAX_LIST:
            raise StepError(f"{where}: more than {MAX_LIST} entries")
        return {_value(args[0], k, f"{where} key", {}): _value(args[1], x, f"{where}.{k}", meta) for k, x in v.items()}
    if dataclasses.is_dataclass(hint):
        return v  # nested records are parsed by their own class (Choice.parse)
    raise StepError(f"{where}: unsupported type {hint}")  # pragma: no cover


def _in_range(v: float, where: str, meta: Any) -> float:
    lo, hi = meta.get("min"), meta.get("max")
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        span = f"{'' if lo is None else f'{lo:g}'}..{'' if hi is None else f'{hi:g}'}"
        raise StepError(f"{where}: {v:g} is outside {span}")
    return v
