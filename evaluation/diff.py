"""Which answers a change gained and lost: two *sides* compared item by item.

A side is (eval run, method, α): the sessions of one method at one α in one run. An item is *gained* when side B
gets it right (EM 1) and side A did not, *lost* the other way round, else the same right or the same wrong. Items
only one side asked are counted, not compared. Sides pair by (dataset, item), so α 0 and α 1 of the same questions
compare (what does α 1 lose?), as do two presets, two runs or a router and a baseline. A side that leaves α open
takes the run's only α; when both sides leave it open and the runs hold several, items pair per shared α. The method
defaults to the run's router policy. A side compared with itself is refused (it would say "0 gained, 0 lost").

Why sides and not runs: a run id comes from the questions, policy and pool, so `eval --alpha 1` over the questions
of an α 0 run joins that run; α, not the run, is what tells the two apart. Everything is read from the store, so
the command line and the Evaluations tab give the same lists.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any, Sequence

import pandas as pd

from storage import TraceStore

from .methods import Method
from .report import load_sessions


class DiffError(ValueError):
    """A diff that cannot be made (an unknown run, no method to compare, a side against itself); the message
    names what is wrong."""


@dataclass(frozen=True)
class Side:
    """One side of a diff: a run's sessions of one method (None: its router policy) at one α (None: open)."""
    run: str
    method: str | None = None
    alpha: float | None = None

    def label(self) -> str:
        at = "every α" if self.alpha is None else f"α {self.alpha:g}"
        return f"{self.run} · {self.method or 'router'} · {at}"


@dataclass
class Pair:
    dataset: str
    item_id: str
    alpha_a: float
    alpha_b: float
    question: str
    gold: list[str]
    answer_a: str
    answer_b: str
    em_a: float | None
    em_b: float | None
    f1_a: float | None
    f1_b: float | None
    cost_a: float
    cost_b: float
    failure_a: str | None
    failure_b: str | None
    session_a: str
    session_b: str


@dataclass
class RunDiff:
    side_a: Side
    side_b: Side
    gained: list[Pair] = field(default_factory=list)
    lost: list[Pair] = field(default_factory=list)
    same_right: list[Pair] = field(default_factory=list)
    same_wrong: list[Pair] = field(default_factory=list)
    only_a: int = 0   # items side A asked and side B did not
    only_b: int = 0

    @property
    def run_a(self) -> str:
        return self.side_a.run

    @property
    def run_b(self) -> str:
        return self.side_b.run

    @property
    def method_a(self) -> str:
        return self.side_a.method or ""

    @property
    def method_b(self) -> str:
        return self.side_b.method or ""

    @property
    def pairs(self) -> list[Pair]:
        return [*self.gained, *self.lost, *self.same_right, *self.same_wrong]

    @property
    def compared(self) -> int:
        return len(self.pairs)

    def totals(self) -> dict[str, float | None]:
        """EM and $ per item of each side over the compared items (None when nothing was compared)."""
        ps = self.pairs
        if not ps:
            return {"em_a": None, "em_b": None, "cost_a": None, "cost_b": None}
        return {"em_a": sum(p.em_a or 0.0 for p in ps) / len(ps), "em_b": sum(p.em_b or 0.0 for p in ps) / len(ps),
                "cost_a": sum(p.cost_a for p in ps) / len(ps), "cost_b": sum(p.cost_b for p in ps) / len(ps)}

    def summary(self) -> str:
        extra = f"; {self.only_a} only in A, {self.only_b} only in B (not compared)" \
            if self.only_a or self.only_b else ""
        t = self.totals()
        figures = "" if t["em_a"] is None else (
            f" · EM {t['em_a']:.3f} → {t['em_b']:.3f}, ${t['cost_a']:.2e} → ${t['cost_b']:.2e} per item")
        return (f"{self.compared} shared item(s): {len(self.gained)} gained, {len(self.lost)} lost, "
                f"{len(self.same_right)} right in both, {len(self.same_wrong)} wrong in both{extra}{figures}")

    def to_json(self) -> dict[str, Any]:
        return {"side_a": asdict(self.side_a), "side_b": asdict(self.side_b),
                "run_a": self.run_a, "run_b": self.run_b, "method_a": self.method_a, "method_b": self.method_b,
                "compared": self.compared, **self.totals(), "gained": [asdict(p) for p in self.gained],
                "lost": [asdict(p) for p in self.lost], "same_right": [asdict(p) for p in self.same_right],
                "same_wrong": [asdict(p) for p in self.same_wrong], "only_a": self.only_a, "only_b": self.only_b}


def router_method(df: pd.DataFrame, run_id: str) -> str:
    """The one router policy of a run's sessions; DiffError naming the run when there is none or several."""
    labels = sorted({p for p in df["policy"] if not Method.parse(p).is_baseline})
    if len(labels) == 1:
        return labels[0]
    if not labels:
        raise DiffError(f"run {run_id} has no router sessions; name the method to compare with --method "
                        f"(it has: {', '.join(sorted(set(df['policy'])))})")
    raise DiffError(f"run {run_id} has several router policies ({', '.join(labels)}); pick one with --method")


def _item(row: dict[str, Any]) -> str:
    return row["item_id"] if isinstance(row["item_id"], str) and row["item_id"] else row["question"]


def _alphas(df: pd.DataFrame) -> list[float]:
    return sorted({round(float(a), 6) for a in df["alpha"]})


def _resolve(sides: list[Side], frames: dict[str, pd.DataFrame]) -> list[tuple[Side, pd.DataFrame]]:
    """Each side with its method named and, where the run has one α only, its α; and that side's sessions."""
    out: list[tuple[Side, pd.DataFrame]] = []
    for side in sides:
        df = frames[side.run]
        method = side.method or router_method(df, side.run)
        mine = df[df["policy"] == method]
        if mine.empty:
            raise DiffError(f"run {side.run} has no finished sessions of method {method} "
                            f"(it has: {', '.join(sorted(set(df['policy'])))})")
        if side.alpha is not None:
            at = mine[(mine["alpha"] - side.alpha).abs() < 1e-9]
            if at.empty:
                raise DiffError(f"run {side.run} has no finished sessions of {method} at α {side.alpha:g} "
                                f"(it has α {', '.join(f'{a:g}' for a in _alphas(mine))})")
            mine = at
        alphas = _alphas(mine)
        out.append((Side(side.run, method, side.alpha if side.alpha is not None or len(alphas) > 1
                         else alphas[0]), mine))
    (a, da), (b, db) = out
    if (a.alpha is None) != (b.alpha is None):  # one side open over several α: the other side's α, if it has it
        fixed, open_i = (b, 0) if a.alpha is None else (a, 1)
        side, df = out[open_i]
        at = df[(df["alpha"] - fixed.alpha).abs() < 1e-9]  # type: ignore[operator]
        if at.empty:
            raise DiffError(f"{side.label()} holds α {', '.join(f'{x:g}' for x in _alphas(df))}; say which with "
                            "--alpha (one value for both sides, or A,B)")
        out[open_i] = (replace(side, alpha=fixed.alpha), at)
    return out


def diff_sides(store: TraceStore, side_a: Side, side_b: Side) -> RunDiff:
    """Side B against side A (see the module's docstring)."""
    frames: dict[str, pd.DataFrame] = {}
    for rid in dict.fromkeys((side_a.run, side_b.run)):
        df = load_sessions(store, [rid])
        if df.empty:
            raise DiffError(f"no finished sessions for run {rid} in {store.where}")
        frames[rid] = df
    (a, da), (b, db) = _resolve([side_a, side_b], frames)
    if a == b:
        raise DiffError(f"both sides are {a.label()}: a side compared with itself gains and loses nothing; change "
                        "the run, the method or α of one side")
    per_alpha = a.alpha is None  # both open over several α: items pair per α the two share

    def keyed(df: pd.DataFrame) -> dict[tuple, dict[str, Any]]:
        return {(row["dataset"] or "", _item(row), *((round(float(row["alpha"]), 6),) if per_alpha else ())): row
                for row in df.to_dict(orient="records")}
    ka, kb = keyed(da), keyed(db)
    out = RunDiff(a, b, only_a=len(ka.keys() - kb.keys()), only_b=len(kb.keys() - ka.keys()))
    for key in sorted(ka.keys() & kb.keys()):
        ra, rb = ka[key], kb[key]
        pair = Pair(dataset=key[0], item_id=key[1], alpha_a=float(ra["alpha"]), alpha_b=float(rb["alpha"]),
                    question=ra["question"], gold=list(ra["gold"] or []), answer_a=ra["answer"] or "",
                    answer_b=rb["answer"] or "", em_a=_num(ra["em"]), em_b=_num(rb["em"]), f1_a=_num(ra["f1"]),
                    f1_b=_num(rb["f1"]), cost_a=_num(ra["cost_usd"]) or 0.0, cost_b=_num(rb["cost_usd"]) or 0.0,
                    failure_a=_kind(ra.get("failure")), failure_b=_kind(rb.get("failure")),
                    session_a=ra["id"], session_b=rb["id"])
        right_a, right_b = pair.em_a == 1.0, pair.em_b == 1.0
        bucket = (out.same_right if right_a and right_b else out.lost if right_a else out.gained if right_b
                  else out.same_wrong)
        bucket.append(pair)
    return out


def sides_from(run_ids: Sequence[str], methods: Sequence[str] = (), alphas: Sequence[float] = ()) -> tuple[Side, Side]:
    """The two sides the command line names: one run (both sides in it) or two; one method (both) or two; one α
    (both) or two. DiffError when a list is too long."""
    for what, xs in (("--run-id", run_ids), ("--method", methods), ("--alpha", alphas)):
        if len(xs) > 2:
            raise DiffError(f"{what}: give one (both sides) or two (side A's, then side B's), got {len(xs)}")
    if not run_ids:
        raise DiffError("--run-id: give the run of side A (and of side B when it is another run)")

    def pick(xs: Sequence[Any], i: int) -> Any:
        return xs[min(i, len(xs) - 1)] if xs else None
    return (Side(run_ids[0], pick(methods, 0), pick(alphas, 0)),
            Side(pick(run_ids, 1), pick(methods, 1), pick(alphas, 1)))


def diff_runs(store: TraceStore, run_a: str, run_b: str, methods: Sequence[str] = (),
              alpha: float | None = None) -> RunDiff:
    """Run B against run A, each with its router policy (or `methods`: one for both, or one each), at `alpha`
    (None: every α both hold, pairing per α)."""
    a, b = sides_from([run_a, run_b], methods, [] if alpha is None else [alpha])
    return diff_sides(store, a, b)


def _kind(v: Any) -> str | None:
    return v if isinstance(v, str) and v else None  # a frame holds NaN where the store holds NULL


def _num(v: Any) -> float | None:
    return None if v is None or v != v else float(v)
