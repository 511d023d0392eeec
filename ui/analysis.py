"""Error analysis across many sessions: why the wrong answers are wrong (kind × method, each cell a way into those
sessions) and which items one eval run gained and lost against another. Gradio-free tables; the Explorer and the
Evaluations tab lay them out."""
from __future__ import annotations

import dataclasses
import json
from collections import Counter

import pandas as pd

from evaluation.diff import RunDiff, Side, diff_sides
from router_core.failures import KIND_TEXT, KINDS
from storage import SessionFilter, TraceStore
from storage.csv_export import method_words
from storage.summary import eval_sides, usage_rows_of

from .render import esc, money, shorten
from .rules import words

BREAKDOWN_MAX = 5000  # the breakdown counts at most this many of the matching sessions (the newest)
KIND_COLUMN = "why wrong"
TOTAL = "all methods"
DIFF_COLUMNS = ["change", "item", "α", "question", "gold", "answer A", "answer B", "$ A", "$ B", "why wrong A",
                "why wrong B"]


method_name = method_words  # a stored method label in words (the CSV's "method" column says the same)


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


def refresh_words(moves: Counter[tuple[str | None, str | None]]) -> str:
    """What `TraceStore.refresh_failures` did, in one line: how many sessions were read, how many changed kind,
    and the commonest moves ("3 wrong fact → wrong kind")."""
    total = sum(moves.values())
    changed = {k: n for k, n in moves.items() if k[0] != k[1]}
    if not changed:
        return f"{total} session(s) read, no failure kind changed"
    top = sorted(changed.items(), key=lambda kv: (-kv[1], str(kv[0])))
    said = ", ".join(f"{n} {words(a) if a else 'none'} → {words(b) if b else 'none'}" for (a, b), n in top[:6])
    more = f", {len(top) - 6} other move(s)" if len(top) > 6 else ""
    return f"{total} session(s) read, {sum(changed.values())} changed kind: {said}{more}"


def side_words(side: Side) -> str:
    """A diff side in words: run · method in words · α."""
    at = "every α" if side.alpha is None else f"α {side.alpha:g}"
    return f"{side.run} · {method_name(side.method or '')} · {at}"


def side_key(side: Side) -> str:
    """A side as a picker value (JSON: names may hold any character but a picker value is one string)."""
    return json.dumps([side.run, side.method, side.alpha])


def parse_side(key: str) -> Side:
    """A picker value back into a side; ValueError naming the value when it is not one."""
    try:
        run, method, alpha = json.loads(key)
        return Side(str(run), str(method) if method else None, None if alpha is None else float(alpha))
    except (ValueError, TypeError) as e:
        raise ValueError(f"not a diff side: {key[:80]!r}") from e


def side_choices(store: TraceStore) -> list[tuple[str, str]]:
    """Every (run, method, α) the store holds finished eval sessions of, as (label, value) picker choices, newest
    run first."""
    return [(f"{side_words(Side(run, method, alpha))} ({n})", side_key(Side(run, method, alpha)))
            for run, method, alpha, n in eval_sides(store)]


def diff_table(d: RunDiff) -> pd.DataFrame:
    """Gained, lost and wrong-in-both items with both answers, gold, cost and suggested failure kind side by side."""
    rows = [{"change": change, "item": p.item_id,
             "α": f"{p.alpha_a:g}" if p.alpha_a == p.alpha_b else f"{p.alpha_a:g} / {p.alpha_b:g}",
             "question": shorten(p.question, 110), "gold": " | ".join(p.gold), "answer A": shorten(p.answer_a, 60),
             "answer B": shorten(p.answer_b, 60), "$ A": money(p.cost_a), "$ B": money(p.cost_b),
             "why wrong A": words(p.failure_a or ""), "why wrong B": words(p.failure_b or "")}
            for change, pairs in (("gained", d.gained), ("lost", d.lost), ("wrong in both", d.same_wrong))
            for p in pairs]
    return pd.DataFrame(rows, columns=DIFF_COLUMNS)


def diff_view(store: TraceStore, key_a: str, key_b: str) -> tuple[str, pd.DataFrame]:
    """The Evaluations tab's diff: a summary and the gained, lost and wrong-in-both items (ValueError when it
    cannot be made, naming why)."""
    if not key_a or not key_b:
        raise ValueError("pick two sides: A, before the change, and B, after it (a side is a run, a method and α)")
    d = diff_sides(store, parse_side(key_a), parse_side(key_b))
    return (f"**B** {esc(side_words(d.side_b))} against **A** {esc(side_words(d.side_a))}: {esc(d.summary())}",
            diff_table(d))
