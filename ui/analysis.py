"""Error analysis across many sessions: why the wrong answers are wrong (kind × method, each cell a way into those
sessions) and which items one eval run gained and lost against another. Gradio-free tables; the Explorer and the
Evaluations tab lay them out."""
from __future__ import annotations

import dataclasses

import pandas as pd

from evaluation.diff import RunDiff, diff_runs
from router_core.failures import KIND_TEXT, KINDS
from storage import SessionFilter, TraceStore
from storage.summary import usage_rows_of

from .render import shorten
from .rules import words

BREAKDOWN_MAX = 5000  # the breakdown counts at most this many of the matching sessions (the newest)
KIND_COLUMN = "why wrong"
TOTAL = "all methods"
DIFF_COLUMNS = ["change", "dataset", "item", "α", "question", "gold", "answer A", "answer B"]


def method_name(policy: str) -> str:
    """A stored method label in words: a baseline by its name, a router by its policy."""
    return policy.removeprefix("baseline/") if policy.startswith("baseline/") else f"router ({policy})"


BY = ("method", "model", "hops", "dataset")  # what the breakdown's columns can be


def breakdown(store: TraceStore, f: SessionFilter, by: str = "method") -> tuple[pd.DataFrame, list[str], int]:
    """Wrong sessions of the filtered set counted by suggested failure kind (rows) and `by` (columns: the method,
    each model the session called, its number of calls, or its dataset), the filter value of each column in order,
    and how many wrong sessions were counted."""
    if by not in BY:
        raise ValueError(f"break down by: '{by}' is not one of {', '.join(BY)}")
    wrong = dataclasses.replace(f, correct=False)
    df = store.list_sessions(wrong, page_size=BREAKDOWN_MAX, count_limit=BREAKDOWN_MAX + 1).rows
    if df.empty:
        return pd.DataFrame(columns=[KIND_COLUMN, TOTAL]), [], 0
    if by == "model":  # a session counts under each model it called
        usage = pd.DataFrame(usage_rows_of(store, list(df["id"])), columns=["id", "value", "calls", "cost"])
        long = df[["id", "failure"]].merge(usage[["id", "value"]], on="id")
    else:
        column = {"method": "policy", "hops": "calls", "dataset": "dataset"}[by]
        long = df[["id", "failure"]].assign(value=df[column].fillna("").astype(str))
    values = sorted(set(long["value"]), key=lambda v: (len(v), v) if by == "hops" else (0, v))
    rows = []
    for kind in KINDS:
        of_kind = long[long["failure"] == kind]
        if of_kind.empty:
            continue
        counts = of_kind["value"].value_counts()
        rows.append({KIND_COLUMN: f"{words(kind)}: {KIND_TEXT[kind]}", TOTAL: int(of_kind["id"].nunique()),
                     **{_head(by, v): int(counts.get(v, 0)) for v in values}})
    return pd.DataFrame(rows, columns=[KIND_COLUMN, TOTAL, *(_head(by, v) for v in values)]), values, len(df)


def _head(by: str, value: str) -> str:
    if by == "method":
        return method_name(value)
    if by == "hops":
        return f"{value} call(s)"
    return value or "(none)"


def cell_filter(table: pd.DataFrame, values: list[str], row: int, col: int) -> tuple[str, str] | None:
    """The (failure kind, column value) a clicked breakdown cell stands for; the total column means any value."""
    if not 0 <= row < len(table) or col < 0:
        return None
    kind = {words(k): k for k in KINDS}.get(str(table.iloc[row][KIND_COLUMN]).split(":", 1)[0])
    if kind is None:
        return None
    value = values[col - 2] if 2 <= col < len(values) + 2 else ""
    return kind, value


def diff_table(d: RunDiff) -> pd.DataFrame:
    rows = [{"change": change, "dataset": p.dataset, "item": p.item_id, "α": f"{p.alpha:g}",
             "question": shorten(p.question, 110), "gold": " | ".join(p.gold), "answer A": shorten(p.answer_a, 60),
             "answer B": shorten(p.answer_b, 60)}
            for change, pairs in (("gained", d.gained), ("lost", d.lost)) for p in pairs]
    return pd.DataFrame(rows, columns=DIFF_COLUMNS)


def diff_view(store: TraceStore, run_a: str, run_b: str) -> tuple[str, pd.DataFrame]:
    """The Evaluations tab's run diff: a one-line summary and the gained and lost items (ValueError when it cannot
    be made, naming why)."""
    if not run_a or not run_b:
        raise ValueError("pick two runs: A, the one before the change, and B, the one after")
    d = diff_runs(store, run_a, run_b)
    return f"**{run_b}** ({d.method_b}) against **{run_a}** ({d.method_a}): {d.summary()}", diff_table(d)
