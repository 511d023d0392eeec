"""Sessions as JSON lines: export (strict JSON, one session per line) and a validating import.

An import line is untrusted: it is checked against one schema (the session fields with their
types and ranges, each step through the Step codec's strict `Step.parse`, annotations and the
steps they point at, the pool snapshot free of keys) before anything is written, and a session
is written in one transaction or not at all. Bad lines are reported by number and reason and
the import goes on. A session id that is already stored is "already present" when its content
is the same and "conflicting" when it differs; a conflict is refused unless `replace=True`.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any, Iterable

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from router_core.pool import find_secrets
from router_core.session import SESSION_STATUSES
from router_core.step import MAX_TEXT, MAX_TOKENS, Step, StepError

from .models import LABELS, SESSION_LOCAL_COLUMNS, SessionRow

if TYPE_CHECKING:
    from .store import TraceStore

EXPORT_FORMAT = "router-r1-studio/session@1"
HEADER_FORMAT = "router-r1-studio/header@1"  # an optional line describing the file (who made it, how); skipped
MAX_LINE_BYTES = 64 << 20          # one session per line; a longer line is refused unread
MAX_STEPS = 10_000
MAX_NESTING = 64
_T = 1e11                          # timestamps: seconds since 1970, up to the year 5138


@dataclass
class ImportReport:
    imported: int = 0
    skipped: int = 0                     # already present with the same content
    replaced: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)      # bad lines: (line number, reason)
    conflicting: list[tuple[int, str]] = field(default_factory=list)  # same id, different content

    @property
    def bad(self) -> int:
        return len(self.errors)

    @property
    def conflicts(self) -> int:
        return len(self.conflicting)

    def summary(self) -> str:
        parts = [f"imported {self.imported}", f"already present {self.skipped}",
                 f"conflicting {self.conflicts}" + (" (refused; --replace to overwrite)" if self.conflicts else ""),
                 f"bad lines {self.bad}"]
        if self.replaced:
            parts.insert(1, f"replaced {self.replaced}")
        return ", ".join(parts)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


Text = Field(max_length=MAX_TEXT)
Count = Field(default=0, ge=0, le=MAX_TOKENS)


class SessionFields(_Strict):
    """The `session` object of an export line (the store's own bookkeeping columns excluded)."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")
    created_at: float = Field(ge=0, le=_T)
    updated_at: float | None = Field(default=None, ge=0, le=_T)
    question: str = Field(min_length=1, max_length=MAX_TEXT)
    gold: list[str] = Field(default_factory=list, max_length=1000)
    dataset: str | None = Field(default=None, max_length=200)
    item_id: str | None = Field(default=None, max_length=200)
    run_id: str | None = Field(default=None, max_length=64)
    policy: str = Field(min_length=1, max_length=200)
    engine: str = Field(min_length=1, max_length=40)
    pool_name: str | None = Field(default=None, max_length=200)
    pool: dict[str, Any]
    alpha: float = Field(ge=0, le=1)
    status: str
    answer: str | None = Text
    em: float | None = Field(default=None, ge=0, le=1)
    f1: float | None = Field(default=None, ge=0, le=1)
    reward: float | None = Field(default=None, ge=-1, le=1)
    format_ok: bool | None = None
    cost_usd: float = Field(default=0.0, ge=0, le=1e9)
    input_tokens: int = Count
    output_tokens: int = Count
    router_tokens: int = Count
    latency_s: float = Field(default=0.0, ge=0, le=_T)
    calls: int = Count
    n_steps: int = Count
    error: str | None = Text
    settings: SettingsFields | None = None
    failure: str | None = Field(default=None, max_length=32)  # derived: recomputed from the steps on import


class SettingsFields(_Strict):
    """The run settings a session ran with (router_core.policy.recorded_settings)."""

    interventions: list[str] = Field(default_factory=list, max_length=100)
    run: dict[str, str | bool | int | float] = Field(default_factory=dict, max_length=200)


class AnnotationFields(_Strict):
    step_idx: int | None = Field(default=None, ge=0, le=MAX_STEPS)
    label: str
    note: str = Field(default="", max_length=100_000)
    created_at: float | None = Field(default=None, ge=0, le=_T)
    id: int | None = None             # the exporting store's row id: not kept
    session_id: str | None = None     # implied by the line (a copy under a new id keeps its notes)


@dataclass
class Parsed:
    """One validated line, ready to insert."""

    session: dict[str, Any]        # SessionRow columns (without local ones) plus "pool"
    steps: list[Step]
    annotations: list[dict[str, Any]]


# ---------------------------------------------------------------------- export

def _finite(obj: Any) -> Any:
    """Non-finite floats (possible in stores written before import validated them) become null."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    return obj


def record(session: dict[str, Any], steps: list[Step], annotations: list[dict[str, Any]],
           usage: dict[str, Any]) -> dict[str, Any]:
    return {"format": EXPORT_FORMAT, "session": session, "model_usage": usage,
            "steps": [s.to_dict() for s in steps], "annotations": annotations}


def dumps(rec: dict[str, Any]) -> str:
    """Strict JSON (no NaN/Infinity), one line."""
    return json.dumps(_finite(rec), ensure_ascii=False, allow_nan=False, default=str)


def export_jsonl(store: "TraceStore", out: IO[str], filters: Any = None) -> int:
    n = 0
    for sid in store.iter_ids(filters):
        sess, steps, notes = store.load_session(sid)
        out.write(dumps(record(sess, steps, notes, store.model_usage(sid))) + "\n")
        n += 1
    return n


# ---------------------------------------------------------------------- import

class LineError(ValueError):
    """Why one line cannot be imported."""


def _no_constants(name: str) -> float:
    raise LineError(f"{name} is not valid JSON (numbers must be finite)")


def _depth(obj: Any, limit: int = MAX_NESTING) -> None:
    stack = [(obj, 0)]
    while stack:
        o, d = stack.pop()
        if d > limit:
            raise LineError(f"nested more than {limit} levels deep")
        if isinstance(o, dict):
            stack.extend((v, d + 1) for v in o.values())
        elif isinstance(o, list):
            stack.extend((v, d + 1) for v in o)


def _pydantic_error(e: ValidationError, prefix: str) -> str:
    err = e.errors()[0]
    loc = ".".join(str(x) for x in err["loc"])
    msg = err["msg"].removeprefix("Value error, ")
    more = f" (and {len(e.errors()) - 1} more)" if len(e.errors()) > 1 else ""
    return f"{prefix}.{loc}: {msg}{more}" if loc else f"{prefix}: {msg}{more}"


def parse_line(raw: bytes | str) -> Parsed:
    """Validate one export line; raises LineError with the reason."""
    if isinstance(raw, bytes):
        if len(raw) > MAX_LINE_BYTES:
            raise LineError(f"line is longer than {MAX_LINE_BYTES >> 20} MiB")
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise LineError(f"not valid UTF-8 (byte {e.start})") from None
    if "\x00" in raw:
        raise LineError("contains a NUL character")
    try:
        rec = json.loads(raw, parse_constant=_no_constants)
    except RecursionError:
        raise LineError(f"nested more than {MAX_NESTING} levels deep") from None
    except ValueError as e:
        if isinstance(e, LineError):
            raise
        raise LineError(f"not JSON ({e})") from None
    _depth(rec)
    if not isinstance(rec, dict) or rec.get("format") != EXPORT_FORMAT:
        raise LineError(f"not a session record (expected format '{EXPORT_FORMAT}')")
    extra = sorted(set(rec) - {"format", "session", "steps", "annotations", "model_usage"})
    if extra:
        raise LineError(f"unknown field(s) {', '.join(extra)}")
    sess_in = rec.get("session")
    if not isinstance(sess_in, dict):
        raise LineError("session: missing or not an object")
    missing = [k for k in ("id", "question", "alpha", "status", "created_at", "policy", "engine", "pool")
               if k not in sess_in]
    if missing:
        raise LineError(f"session lacks field(s) {', '.join(missing)}")
    try:
        sess = SessionFields.model_validate(sess_in)
    except ValidationError as e:
        raise LineError(_pydantic_error(e, "session")) from None
    if sess.status not in SESSION_STATUSES:
        raise LineError(f"session.status: '{sess.status[:40]}' is not one of {', '.join(SESSION_STATUSES)}")
    if not isinstance(sess.pool.get("name", ""), str):
        raise LineError("session.pool.name: must be a string")
    secret = find_secrets(sess.pool)
    if secret:
        raise LineError(f"session.pool.{secret}: a key or credential must not be stored; "
                        "name the environment variable in api_key_env instead")
    steps_in = rec.get("steps")
    if not isinstance(steps_in, list) or len(steps_in) > MAX_STEPS:
        raise LineError(f"steps: must be a list of at most {MAX_STEPS} steps")
    steps: list[Step] = []
    for i, s in enumerate(steps_in):
        if not isinstance(s, dict):
            raise LineError(f"steps[{i}]: must be an object")
        try:
            # the line's session id wins: a session copied under a new id keeps its steps
            steps.append(Step.parse({**s, "session_id": sess.id}, f"steps[{i}]"))
        except StepError as e:
            raise LineError(str(e)) from None
    if [s.index for s in steps] != list(range(len(steps))):
        raise LineError("steps must be numbered 0..n-1 in order")
    _check_rollups(sess, steps)
    notes_in = rec.get("annotations", [])
    if not isinstance(notes_in, list):
        raise LineError("annotations: must be a list")
    notes: list[dict[str, Any]] = []
    for i, n in enumerate(notes_in):
        if not isinstance(n, dict):
            raise LineError(f"annotations[{i}]: must be an object")
        try:
            a = AnnotationFields.model_validate(n)
        except ValidationError as e:
            raise LineError(_pydantic_error(e, f"annotations[{i}]")) from None
        if a.label not in LABELS:
            raise LineError(f"annotation label '{a.label[:40]}' is not one of {', '.join(LABELS)}")
        if a.step_idx is not None and a.step_idx >= len(steps):
            raise LineError(f"annotations[{i}].step_idx: the session has no step {a.step_idx}")
        notes.append({"step_idx": a.step_idx, "label": a.label, "note": a.note,
                      "created_at": a.created_at if a.created_at is not None else time.time()})
    row = {k: (v + 0.0 if isinstance(v, float) else v) for k, v in sess.model_dump().items()}  # -0.0 → 0.0
    row["updated_at"] = row["updated_at"] if row["updated_at"] is not None else row["created_at"]
    row["pool_name"] = row["pool_name"] if row["pool_name"] is not None else str(sess.pool.get("name", ""))
    return Parsed(row, steps, notes)


def _check_rollups(sess: SessionFields, steps: list[Step]) -> None:
    """The session's totals must be what its steps add up to (as the store computes them when it writes)."""
    calls = sum(1 for s in steps if s.kind == "route" and s.request_model)
    sums = {"n_steps": len(steps), "calls": calls,
            "input_tokens": sum(s.input_tokens for s in steps), "output_tokens": sum(s.output_tokens for s in steps),
            "router_tokens": sum(s.router_input_tokens + s.router_output_tokens for s in steps)}
    for name, want in sums.items():
        if getattr(sess, name) != want:
            raise LineError(f"session.{name}: {getattr(sess, name)} does not match its steps ({want})")
    cost = sum(s.cost_usd for s in steps)
    if not math.isclose(sess.cost_usd, cost, rel_tol=1e-9, abs_tol=1e-12):
        raise LineError(f"session.cost_usd: {sess.cost_usd:g} does not match its steps ({cost:g})")


_COMPARE_SKIP = {"updated_at", "failure"}  # failure is derived from the steps, compared through them


def same_content(a: Parsed, stored: tuple[dict[str, Any], list[Step], list[dict[str, Any]]]) -> bool:
    """Whether a parsed line holds the same session as one already stored (ids, steps, notes)."""
    sess, steps, notes = stored
    cols = {c.name for c in SessionRow.__table__.columns} - set(SESSION_LOCAL_COLUMNS) - _COMPARE_SKIP
    left = {k: a.session.get(k) for k in cols} | {"pool": a.session.get("pool")}
    right = {k: sess.get(k) for k in cols} | {"pool": sess.get("pool")}

    def norm(x: Any) -> str:
        return json.dumps(_finite(x), sort_keys=True, default=str)

    if norm(left) != norm(right):
        return False
    if [s.to_dict() for s in a.steps] != [s.to_dict() for s in steps]:
        return False
    key = lambda n: (n.get("step_idx"), n["label"], n.get("note") or "")  # noqa: E731
    return sorted(map(key, a.annotations), key=str) == sorted(map(key, notes), key=str)


def _is_header(text: str) -> bool:
    try:
        rec = json.loads(text)
    except ValueError:
        return False
    return isinstance(rec, dict) and rec.get("format") == HEADER_FORMAT


def import_lines(store: "TraceStore", lines: Iterable[bytes | str], source: str = "<input>",
                 replace: bool = False) -> ImportReport:
    """Validate and import each line; see the module docstring for what is counted how."""
    rep = ImportReport()
    for no, raw in enumerate(lines, 1):
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        if not text.strip() or (no == 1 and HEADER_FORMAT in text and _is_header(text)):
            continue
        try:
            parsed = parse_line(raw)
        except LineError as e:
            rep.errors.append((no, f"{source}:{no}: {e}"))
            continue
        try:
            outcome = store.insert_parsed(parsed, replace=replace)
        except Exception as e:  # noqa: BLE001 — a database refusal is reported for this line only
            from .connection import short
            rep.errors.append((no, f"{source}:{no}: rejected by the database ({short(e)})"))
            continue
        if outcome == "imported":
            rep.imported += 1
        elif outcome == "replaced":
            rep.replaced += 1
        elif outcome == "same":
            rep.skipped += 1
        else:
            rep.conflicting.append((no, f"{source}:{no}: session {parsed.session['id']} is already stored with "
                                   "different content (use --replace to overwrite it)"))
    return rep
