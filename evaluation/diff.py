"""Which answers a change gained and lost: two eval runs compared item by item.

Each run's sessions of one method are paired by (dataset, item, α); an item is *gained* when run B gets it right
(EM 1) and run A did not, *lost* the other way round, else the same right or the same wrong. Items only one run
asked are counted, not compared. The method defaults to each run's router policy, so two presets (two policy
names) compare as they should; `methods` names them (one for both runs, or one per run) to compare baselines.
Everything is read from the store, so the command line and the Evaluations tab give the same lists.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import pandas as pd

from storage import TraceStore

from .methods import Method
from .report import load_sessions


class DiffError(ValueError):
    """A diff that cannot be made (an unknown run, no method to compare); the message names what is wrong."""


@dataclass
class Pair:
    dataset: str
    item_id: str
    alpha: float
    question: str
    gold: list[str]
    answer_a: str
    answer_b: str
    em_a: float | None
    em_b: float | None
    f1_a: float | None
    f1_b: float | None
    session_a: str
    session_b: str


@dataclass
class RunDiff:
    run_a: str
    run_b: str
    method_a: str
    method_b: str
    gained: list[Pair] = field(default_factory=list)
    lost: list[Pair] = field(default_factory=list)
    same_right: list[Pair] = field(default_factory=list)
    same_wrong: list[Pair] = field(default_factory=list)
    only_a: int = 0   # items run A asked and run B did not
    only_b: int = 0

    @property
    def compared(self) -> int:
        return len(self.gained) + len(self.lost) + len(self.same_right) + len(self.same_wrong)

    def summary(self) -> str:
        extra = f"; {self.only_a} only in {self.run_a}, {self.only_b} only in {self.run_b} (not compared)" \
            if self.only_a or self.only_b else ""
        return (f"{self.compared} shared item(s): {len(self.gained)} gained, {len(self.lost)} lost, "
                f"{len(self.same_right)} right in both, {len(self.same_wrong)} wrong in both{extra}")

    def to_json(self) -> dict[str, Any]:
        return {"run_a": self.run_a, "run_b": self.run_b, "method_a": self.method_a, "method_b": self.method_b,
                "compared": self.compared, "gained": [asdict(p) for p in self.gained],
                "lost": [asdict(p) for p in self.lost], "same_right": len(self.same_right),
                "same_wrong": len(self.same_wrong), "only_a": self.only_a, "only_b": self.only_b}


def router_method(df: pd.DataFrame, run_id: str) -> str:
    """The one router policy of a run's sessions; DiffError naming the run when there is none or several."""
    labels = sorted({p for p in df["policy"] if not Method.parse(p).is_baseline})
    if len(labels) == 1:
        return labels[0]
    if not labels:
        raise DiffError(f"run {run_id} has no router sessions; name the method to compare with --method "
                        f"(it has: {', '.join(sorted(set(df['policy'])))})")
    raise DiffError(f"run {run_id} has several router policies ({', '.join(labels)}); pick one with --method")


def _keyed(df: pd.DataFrame) -> dict[tuple[str, str, float], dict[str, Any]]:
    out: dict[tuple[str, str, float], dict[str, Any]] = {}
    for row in df.to_dict(orient="records"):
        item = row["item_id"] if isinstance(row["item_id"], str) and row["item_id"] else row["question"]
        out[(row["dataset"] or "", item, round(float(row["alpha"]), 6))] = row
    return out


def diff_runs(store: TraceStore, run_a: str, run_b: str, methods: Sequence[str] = (),
              alpha: float | None = None) -> RunDiff:
    """Run B against run A (see the module's docstring); `alpha` keeps one α only."""
    if len(methods) > 2:
        raise DiffError("--method: give one method (both runs) or two (run A's, then run B's)")
    frames = {}
    for rid in (run_a, run_b):
        df = load_sessions(store, [rid])
        if df.empty:
            raise DiffError(f"no finished sessions for run {rid} in {store.where}")
        frames[rid] = df
    chosen = list(methods) or [router_method(frames[run_a], run_a), router_method(frames[run_b], run_b)]
    method_a, method_b = (chosen[0], chosen[0]) if len(chosen) == 1 else (chosen[0], chosen[1])
    sides = []
    for rid, method in ((run_a, method_a), (run_b, method_b)):
        df = frames[rid]
        df = df[df["policy"] == method]
        if alpha is not None:
            df = df[(df["alpha"] - alpha).abs() < 1e-9]
        if df.empty:
            at = f" at α {alpha:g}" if alpha is not None else ""
            raise DiffError(f"run {rid} has no finished sessions of method {method}{at} "
                            f"(it has: {', '.join(sorted(set(frames[rid]['policy'])))})")
        sides.append(_keyed(df))
    a, b = sides
    out = RunDiff(run_a, run_b, method_a, method_b, only_a=len(a.keys() - b.keys()), only_b=len(b.keys() - a.keys()))
    for key in sorted(a.keys() & b.keys(), key=lambda k: (k[0], k[1], k[2])):
        ra, rb = a[key], b[key]
        pair = Pair(dataset=key[0], item_id=key[1], alpha=key[2], question=ra["question"],
                    gold=list(ra["gold"] or []), answer_a=ra["answer"] or "", answer_b=rb["answer"] or "",
                    em_a=_num(ra["em"]), em_b=_num(rb["em"]), f1_a=_num(ra["f1"]), f1_b=_num(rb["f1"]),
                    session_a=ra["id"], session_b=rb["id"])
        right_a, right_b = pair.em_a == 1.0, pair.em_b == 1.0
        if right_a and right_b:
            bucket = out.same_right
        elif right_a:
            bucket = out.lost
        elif right_b:
            bucket = out.gained
        else:
            bucket = out.same_wrong
        bucket.append(pair)
    return out


def _num(v: Any) -> float | None:
    return None if v is None or v != v else float(v)

