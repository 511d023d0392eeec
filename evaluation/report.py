"""Results of stored eval runs: per method and α — EM, F1, $, calls, tokens, Router-R1 reward —
and, where a strong/weak pair exists, PGR per row and APGR / CPT(50 %, 80 %) per curve.

Everything is computed from the stored sessions, so a report can be rebuilt at any time and the
web app shows the same numbers as the command line.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from html import escape as esc_html
from pathlib import Path
from typing import Sequence

import pandas as pd

from router_core.cost import CostNormalizer
from router_core.failures import KIND_TEXT, KINDS
from router_core.session import SessionResult
from storage import SessionFilter, TraceStore
from storage.summary import usage_rows_of

from .curves import apgr, cpt, pgr
from .decomposition import measure
from .methods import KNN_FAMILY, Method, family
from .paper import BENCHMARK_NAMES, SOURCE, TABLE1, benchmark_of, paper_row

COLUMNS = ["method", "α", "n", "EM", "F1", "$/query", "calls/query", "tokens/query", "reward", "strong share", "PGR"]
DECOMPOSITION_COLUMNS = ["method", "α", "dataset", "n", "EM", "think quality", "chain rate", "chain rate (not choice)",
                         "choice split", "repeat rate", "grounded"]
DATASET_COLUMNS = ["dataset", "benchmark", "method", "α", "n", "EM", "F1", "$/query", "calls/query", *TABLE1]
FAILURE_COLUMNS = ["method", "α", "wrong", *KINDS]


@dataclass
class Report:
    run_ids: list[str]
    sessions: pd.DataFrame                 # one row per finished session (with strong_calls, calls_total)
    table: pd.DataFrame                    # COLUMNS, one row per method and α
    strong: str | None = None
    weak: str | None = None
    curves: dict[str, dict[str, float | None]] = field(default_factory=dict)  # family → APGR, CPT50, CPT80
    usage: pd.DataFrame | None = None      # session_id, model, calls, cost
    decomposition: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=DECOMPOSITION_COLUMNS))
    by_dataset: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=DATASET_COLUMNS))
    failures: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=FAILURE_COLUMNS))

    @property
    def empty(self) -> bool:
        return self.sessions.empty


def load_sessions(store: TraceStore, run_ids: Sequence[str]) -> pd.DataFrame:
    frames = [store.sessions_frame(SessionFilter(run_id=rid, status="done")) for rid in run_ids]
    if not frames:
        return pd.DataFrame(columns=list(TraceStore.LIST_COLUMNS))
    df = pd.concat(frames, ignore_index=True)
    # Re-runs after an interruption may leave two finished sessions for one key; the newest counts.
    keyed = df["item_id"].notna()
    return pd.concat([df[keyed].drop_duplicates(subset=["run_id", "dataset", "item_id", "policy", "alpha"], keep="last"),
                      df[~keyed]], ignore_index=True)


def reward_at(em: float | None, format_ok: bool | None, cost: float, alpha: float, norm: CostNormalizer) -> float:
    """Router-R1's reward of a stored session at any α (SessionResult's rule); a session without gold scores 0."""
    r = SessionResult.reward_of(em, None if format_ok is None or format_ok != format_ok else bool(format_ok),
                                cost, alpha, norm)
    return 0.0 if r is None else r


def build_report(store: TraceStore, run_ids: Sequence[str], alphas: Sequence[float] | None = None,
                 strong: str | None = None, weak: str | None = None) -> Report:
    df = load_sessions(store, run_ids)
    if df.empty:
        return Report(list(run_ids), df, pd.DataFrame(columns=COLUMNS))
    usage = pd.DataFrame(usage_rows_of(store, list(df["id"])), columns=["session_id", "model", "calls", "cost"])
    if strong is None or weak is None:
        strong, weak = strong_weak(store, df)
    calls_by = usage.groupby("session_id")["calls"].sum()
    strong_by = usage[usage["model"] == strong].groupby("session_id")["calls"].sum() if strong else pd.Series(dtype=float)
    df = df.assign(calls_total=df["id"].map(calls_by).fillna(0), strong_calls=df["id"].map(strong_by).fillna(0))
    norm = CostNormalizer(window=max(2, len(df)))
    for c in df["cost_usd"]:
        norm.observe(float(c))
    is_baseline = df["policy"].map(lambda p: Method.parse(p).is_baseline)
    router_alphas = sorted({float(a) for a in df.loc[~is_baseline, "alpha"]})
    alphas = list(alphas) if alphas else (router_alphas or [0.0])
    q_weak = _em_of(df, Method.only(weak).label) if weak else None
    q_strong = _em_of(df, Method.only(strong).label) if strong else None
    has_pair = q_weak is not None and q_strong is not None and q_weak != q_strong
    rows = []
    for (method, a), g in df.groupby(["policy", "alpha"], sort=False):
        row_alphas = alphas if Method.parse(method).is_baseline else [float(a)]
        for ra in row_alphas:
            em = float(g["em"].mean())
            calls = float(g["calls_total"].sum())
            rows.append({
                "method": method, "α": ra, "n": len(g), "EM": em, "F1": float(g["f1"].mean()),
                "$/query": float(g["cost_usd"].mean()), "calls/query": float(g["calls"].mean()),
                "tokens/query": float((g["input_tokens"] + g["output_tokens"] + g["router_tokens"]).mean()),
                "reward": float(sum(reward_at(e, ok, c, ra, norm) for e, ok, c in zip(g["em"], g["format_ok"], g["cost_usd"]))
                                / len(g)),
                "strong share": float(g["strong_calls"].sum() / calls) if calls else 0.0,
                "PGR": pgr(em, q_weak, q_strong) if has_pair else None})
    table = pd.DataFrame(rows, columns=COLUMNS).sort_values(["method", "α"], kind="stable").reset_index(drop=True)
    curves: dict[str, dict[str, float | None]] = {}
    if has_pair:
        for fam, g in table.assign(family=table["method"].map(family)).groupby("family"):
            if fam != KNN_FAMILY and not Method.parse(str(g["method"].iloc[0])).is_curve:
                continue  # a fixed single-round choice is one point, not a curve
            pts = sorted({(float(s), float(e)) for s, e in zip(g["strong share"], g["EM"])})
            curves[fam] = {"APGR": apgr(pts, q_weak, q_strong, add_endpoints=True),
                           "CPT(50%)": cpt(pts, q_weak, q_strong, 0.5, add_endpoints=True),
                           "CPT(80%)": cpt(pts, q_weak, q_strong, 0.8, add_endpoints=True)}
    return Report(list(run_ids), df, table, strong, weak, curves, usage, decomposition_table(store, df),
                  dataset_table(df), failure_table(df))


def dataset_table(df: pd.DataFrame) -> pd.DataFrame:
    """EM, F1 and cost per dataset, method and α, with Router-R1's published figures for the benchmark the dataset
    names beside them (evaluation/paper.py: the paper's pool, not ours)."""
    rows = []
    for (ds, method, a), g in df.groupby([df["dataset"].fillna("(none)"), "policy", "alpha"], sort=True):
        rows.append({"dataset": ds, "benchmark": BENCHMARK_NAMES.get(benchmark_of(ds) or "", ""), "method": method,
                     "α": float(a), "n": len(g), "EM": float(g["em"].mean()), "F1": float(g["f1"].mean()),
                     "$/query": float(g["cost_usd"].mean()), "calls/query": float(g["calls"].mean()),
                     **paper_row(ds)})
    return pd.DataFrame(rows, columns=DATASET_COLUMNS)


def failure_table(df: pd.DataFrame) -> pd.DataFrame:
    """How many wrong sessions of each method and α fall under each suggested failure kind (router_core.failures)."""
    wrong = df[df["em"].notna() & (df["em"] < 1)]
    rows = []
    for (method, a), g in wrong.groupby(["policy", "alpha"], sort=True):
        counts = g["failure"].fillna("").value_counts()
        rows.append({"method": method, "α": float(a), "wrong": len(g), **{k: int(counts.get(k, 0)) for k in KINDS}})
    return pd.DataFrame(rows, columns=FAILURE_COLUMNS)


def to_json(rep: Report) -> dict[str, object]:
    """The report as one object (`report --json`): the results table, per-dataset figures with the paper's beside
    them, and the failure breakdown."""
    def records(frame: pd.DataFrame) -> list[dict[str, object]]:
        return [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}
                for r in frame.to_dict(orient="records")]
    return {"run_ids": rep.run_ids, "sessions": len(rep.sessions), "strong": rep.strong, "weak": rep.weak,
            "table": records(rep.table), "curves": rep.curves, "datasets": records(rep.by_dataset),
            "paper": {"source": SOURCE, "em": TABLE1}, "failures": records(rep.failures),
            "failure_kinds": KIND_TEXT}


def decomposition_table(store: TraceStore, df: pd.DataFrame) -> pd.DataFrame:
    """Think quality, chain rate, repeats and grounding of the router's sessions, per method, α and dataset
    (single-round baselines have no thoughts or hops to measure)."""
    routed = df[~df["policy"].map(lambda p: Method.parse(p).is_baseline)]
    rows = []
    for (method, a, ds), g in routed.groupby(["policy", "alpha", routed["dataset"].fillna("(none)")], sort=True):
        names = _pool_names(store, g["id"].iloc[0])
        d = measure([(q, store.load_steps(sid)) for q, sid in zip(g["question"], g["id"])], names)
        rows.append({"method": method, "α": float(a), "dataset": ds, "n": len(g), "EM": float(g["em"].mean()),
                     **d.as_row()})
    return pd.DataFrame(rows, columns=DECOMPOSITION_COLUMNS)


def _pool_names(store: TraceStore, session_id: str) -> list[str]:
    snap = store.get_session(session_id).get("pool") or {}
    return [m.get("name", "") for m in snap.get("models", []) if isinstance(m, dict)]


def _em_of(df: pd.DataFrame, method: str) -> float | None:
    rows = df[df["policy"] == method]
    return None if rows.empty else float(rows["em"].mean())


def strong_weak(store: TraceStore, df: pd.DataFrame) -> tuple[str | None, str | None]:
    """The pool's largest and cheapest models (as the runner's baselines define them)."""
    from router_core.pool import Pool

    from .single_round import cheapest, largest
    sid = df["id"].iloc[0]
    snap = store.get_session(sid).get("pool") or {}
    try:
        pool = Pool.model_validate({k: v for k, v in snap.items()})
    except Exception:  # noqa: BLE001 — an old or foreign snapshot: no pair, no PGR
        return None, None
    if len(pool.models) < 2:
        return None, None
    return largest(pool).name, cheapest(pool).name


def _fmt(v: object) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    if isinstance(v, float):
        return f"{v:.2e}" if 0 < abs(v) < 1e-3 else f"{v:.3f}".rstrip("0").rstrip(".") if v != int(v) else f"{v:g}"
    return str(v)


def markdown(rep: Report) -> str:
    """The results table (and curve summaries) as GitHub-flavoured Markdown."""
    lines = [f"Runs: {', '.join(rep.run_ids)} · {len(rep.sessions)} finished sessions"]
    if rep.strong and rep.weak:
        lines.append(f"Strong/weak pair for PGR: {rep.strong} / {rep.weak}")
    lines += ["", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for _, r in rep.table.iterrows():
        lines.append("| " + " | ".join(_fmt(r[c]) for c in COLUMNS) + " |")
    if rep.curves:
        lines += ["", "| curve | APGR | CPT(50%) | CPT(80%) |", "|---|---|---|---|"]
        for fam, c in rep.curves.items():
            lines.append(f"| {fam} | {_fmt(c['APGR'])} | {_fmt(c['CPT(50%)'])} | {_fmt(c['CPT(80%)'])} |")
    if not rep.decomposition.empty:
        lines += ["", "Decomposition (router sessions): think quality = share of the router's think blocks "
                  "with a real thought (one the rollout wrote whole is left out); chain rate = share of sessions "
                  "where a later sub-question reuses a span of an earlier reply, also over the questions that are "
                  "not choice questions ('…, A or B?'), which have no bridge to "
                  "chain; choice split = share of choice questions whose two things were each asked about on their "
                  "own; "
                  "repeat rate = share of sessions that ask a sub-question twice; grounded = share of answers "
                  "found in a reply.", "",
                  "| " + " | ".join(DECOMPOSITION_COLUMNS) + " |", "|" + "---|" * len(DECOMPOSITION_COLUMNS)]
        for _, r in rep.decomposition.iterrows():
            lines.append("| " + " | ".join(_fmt(r[c]) for c in DECOMPOSITION_COLUMNS) + " |")
    if not rep.by_dataset.empty:
        lines += ["", f"By dataset. The last two columns are the paper's figures, not ours — {SOURCE}; shown for the "
                  "benchmark the dataset names, a far larger pool than this one.", "",
                  "| " + " | ".join(DATASET_COLUMNS) + " |", "|" + "---|" * len(DATASET_COLUMNS)]
        for _, r in rep.by_dataset.iterrows():
            lines.append("| " + " | ".join(_fmt(r[c]) for c in DATASET_COLUMNS) + " |")
    if not rep.failures.empty:
        lines += ["", "Why the wrong answers are wrong (suggested kinds, router_core/failures.py): "
                  + "; ".join(f"{k} = {t}" for k, t in KIND_TEXT.items()) + ".", "",
                  "| " + " | ".join(FAILURE_COLUMNS) + " |", "|" + "---|" * len(FAILURE_COLUMNS)]
        for _, r in rep.failures.iterrows():
            lines.append("| " + " | ".join(_fmt(r[c]) for c in FAILURE_COLUMNS) + " |")
    return "\n".join(lines) + "\n"


def write(rep: Report, out_dir: Path) -> list[Path]:
    """results.md, results.csv, decomposition.csv and figures.html (plotly, self-contained) in `out_dir`,
    each written as a new regular file (storage.files)."""
    from storage.files import FileWriteError, write_new_file

    from .figures import all_figures
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise FileWriteError(f"{out_dir}: cannot create the report folder ({e.strerror or e})") from None
    figs = all_figures(rep)
    parts = [f.to_html(full_html=False, include_plotlyjs=(i == 0)) for i, f in enumerate(figs)]
    tables = ""
    if not rep.by_dataset.empty:
        tables += (f"<h3>By dataset</h3><p>The last two columns are the paper's figures, not ours: {esc_html(SOURCE)}"
                   "; shown for the benchmark the dataset names, with a far larger pool than this one.</p>"
                   + rep.by_dataset.to_html(index=False, escape=True, float_format=lambda v: f"{v:.3g}", na_rep="—"))
    if not rep.failures.empty:
        tables += ("<h3>Why the wrong answers are wrong (suggested kinds)</h3>"
                   + rep.failures.to_html(index=False, escape=True))
    html = ("<html><head><meta charset='utf-8'><title>Router-R1 Studio evaluation</title></head><body>"
            + "".join(parts) + tables + "</body></html>")
    files = {"results.md": lambda f: f.write(markdown(rep)), "results.csv": lambda f: rep.table.to_csv(f, index=False),
             "decomposition.csv": lambda f: rep.decomposition.to_csv(f, index=False),
             "figures.html": lambda f: f.write(html)}
    return [write_new_file(out_dir / name, fn)[1] for name, fn in files.items()]
