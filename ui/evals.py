"""Evaluations tab: pick stored eval runs, see the results table and charts, open any item's replay."""
from __future__ import annotations

from collections import Counter
from typing import Any

import gradio as gr
import pandas as pd

from evaluation.figures import all_figures
from evaluation.paper import SOURCE, TABLE1
from evaluation.report import COLUMNS, Report, build_report
from storage import SessionFilter, StoreError, TraceStore
from storage.summary import distinct_values, newest_run

from .analysis import DIFF_COLUMNS, diff_view, refresh_words, side_choices
from .render import err_text, esc, money
from .rules import words

ITEM_COLUMNS = ["dataset", "item", "method", "α", "EM", "why wrong", "$", "calls", "answer", "gold", "question",
                "session"]


def results_table(rep: Report) -> pd.DataFrame:
    t = rep.table.copy()
    for c in ("EM", "F1", "reward", "strong share", "PGR", "calls/query"):
        t[c] = t[c].map(lambda v: "—" if v is None or pd.isna(v) else f"{v:.3f}")
    t["$/query"] = t["$/query"].map(money)
    t["tokens/query"] = t["tokens/query"].map(lambda v: f"{v:.0f}")
    t["α"] = t["α"].map(lambda v: f"{v:g}")
    return t[COLUMNS]


def decomposition_table(rep: Report) -> pd.DataFrame:
    t = rep.decomposition.copy()
    for c in ("EM", "think quality", "chain rate", "chain rate (not choice)", "choice split", "repeat rate", "grounded"):
        t[c] = t[c].map(lambda v: "—" if v is None or pd.isna(v) else f"{v:.3f}")
    t["α"] = t["α"].map(lambda v: f"{v:g}")
    return t


def dataset_table(rep: Report) -> pd.DataFrame:
    """Per dataset, method and α, with Router-R1's published EM for the benchmark beside (the paper's pool)."""
    t = rep.by_dataset.copy()
    for c in ("EM", "F1", "calls/query", *TABLE1):
        t[c] = t[c].map(lambda v: "—" if v is None or pd.isna(v) else f"{v:.3f}")
    t["$/query"] = t["$/query"].map(money)
    t["α"] = t["α"].map(lambda v: f"{v:g}")
    return t


def curves_markdown(rep: Report) -> str:
    if not (rep.strong and rep.weak) or rep.table["PGR"].isna().all():
        return ("No strong/weak baseline results in these runs (run the `largest` and `cheapest` baselines, "
                "or `only`, for PGR, APGR and CPT).")
    head = f"Strong / weak pair for PGR: **{esc(rep.strong)}** / **{esc(rep.weak)}**."
    if not rep.curves:
        return head + " No curve with two or more points of different strong-call share."
    rows = ["| curve | APGR | CPT(50%) | CPT(80%) |", "|---|---|---|---|"]
    for fam, c in rep.curves.items():
        cells = ["—" if c[k] is None else f"{c[k]:.3f}" for k in ("APGR", "CPT(50%)", "CPT(80%)")]
        rows.append(f"| {esc(fam)} | " + " | ".join(cells) + " |")
    return head + "\n\n" + "\n".join(rows)


def items_table(rep: Report, method: str | None) -> tuple[pd.DataFrame, list[str]]:
    df = rep.sessions if not method else rep.sessions[rep.sessions["policy"] == method]
    df = df.sort_values(["dataset", "item_id", "policy", "alpha"])
    out = pd.DataFrame({"dataset": df["dataset"], "item": df["item_id"], "method": df["policy"],
                        "α": df["alpha"].map(lambda v: f"{v:g}"), "EM": df["em"].map(lambda v: f"{v:.0f}"),
                        "why wrong": df["failure"].fillna("").map(words), "$": df["cost_usd"].map(money), "calls": df["calls"],
                        "answer": df["answer"].fillna(""), "gold": df["gold"].map(lambda g: " | ".join(g or [])),
                        "question": df["question"].str.slice(0, 100), "session": df["id"].str.slice(0, 12)},
                       columns=ITEM_COLUMNS)
    return out, list(df["id"])


EMPTY = ("No evaluation run in this store yet. Make one from a terminal, for example\n\n"
         "`python app.py eval --dataset bundled --alpha 0,0.5,1 --baselines all`\n\n"
         "(every question × method × α is stored as a session; the same command resumes), then press “↻ Refresh runs”.")


def build(store: TraceStore, tabs: gr.Tabs, explorer: dict[str, Any], tab: gr.Tab | None = None) -> None:
    """The Evaluations tab; opened (`tab` selected) with no run picked, it shows the newest run at once."""
    run_ids = distinct_values(store)["run_ids"]
    gr.Markdown("Eval runs stored by `python app.py eval …`. Pick one or more runs; click an item row to open its "
                "replay in the Explorer.")
    with gr.Row():
        runs = gr.Dropdown(run_ids, multiselect=True, label="Eval runs", scale=4,
                           elem_id="rs-e-runs", allow_custom_value=True)
        refresh = gr.Button("↻ Refresh runs", size="sm", min_width=110)
        show = gr.Button("Show", variant="primary", elem_id="rs-e-show", min_width=80)
    msg = gr.Markdown("" if run_ids else EMPTY, elem_id="rs-e-msg")
    # the result blocks appear once a run is shown (empty tables with numbered headers help nobody)
    with gr.Column(visible=False) as results:
        table = gr.Dataframe(interactive=False, datatype="str", wrap=True, elem_id="rs-e-table")
        curves = gr.Markdown()
        gr.Markdown("**Decomposition** of the router's sessions: think quality (share of the router's think blocks "
                    "with a real thought; one the studio wrote whole is left out), chain rate (share of sessions "
                    "where a later sub-question reuses what an earlier reply found; then over the questions that "
                    "are not choice questions), choice split (choice questions, '…, A or B?', whose two things were "
                    "each asked about on their own: a comparison decomposes side by side), repeat rate (sessions "
                    "that ask a sub-question twice), grounded (answers found in a reply).")
        decomp = gr.Dataframe(interactive=False, datatype="str", wrap=True, elem_id="rs-e-decomp")
        gr.Markdown(f"**By dataset.** The last two columns are *the paper's figures, not ours* — {SOURCE}; shown for "
                    "the benchmark a dataset names, with a far larger pool than this one.")
        by_ds = gr.Dataframe(interactive=False, datatype="str", wrap=True, elem_id="rs-e-datasets")
        gr.Markdown("**Why the wrong answers are wrong** (suggested kinds, per method; the Explorer's *Why wrong* "
                    "filter lists them).")
        fails = gr.Dataframe(interactive=False, datatype="str", wrap=True, elem_id="rs-e-failures")
        with gr.Row():
            refail = gr.Button("↻ Recompute 'why wrong' under today's rules", size="sm", elem_id="rs-e-refail",
                               scale=0, min_width=280)
            refail_msg = gr.Markdown(elem_id="rs-e-refail-msg")
        with gr.Row():
            f1, f2, f3 = (gr.Plot(min_width=300, show_label=False), gr.Plot(min_width=300, show_label=False),
                          gr.Plot(min_width=300, show_label=False))
        with gr.Row():
            method = gr.Dropdown([""], value="", label="Items of method", allow_custom_value=True, min_width=200)
        items = gr.Dataframe(headers=ITEM_COLUMNS, interactive=False, datatype="str", wrap=True, max_height=420,
                             elem_id="rs-e-items")
    ids = gr.State([])
    with gr.Accordion("Compare two sides: which items a change of run, method or α gained and lost",
                      open=bool(run_ids)):
        gr.Markdown("A side is one method of one run at one α (a run holds every α it was evaluated at: "
                    "`eval --alpha 1` over the questions of an α 0 run joins that run).")
        with gr.Row():
            run_a = gr.Dropdown([], value=None, label="Side A (before)", elem_id="rs-e-run-a", scale=3)
            run_b = gr.Dropdown([], value=None, label="Side B (after)", elem_id="rs-e-run-b", scale=3)
            diff_btn = gr.Button("Compare", elem_id="rs-e-diff", min_width=90)
        diff_msg = gr.Markdown(elem_id="rs-e-diff-msg")
        diff_items = gr.Dataframe(headers=DIFF_COLUMNS, interactive=False, datatype="str", wrap=True,
                                  elem_id="rs-e-diff-items", max_height=420)

    def do_diff(a: str | None, b: str | None):
        try:
            text, tbl = diff_view(store, a or "", b or "")
        except (ValueError, KeyError, StoreError) as e:
            return f"⚠ {esc(err_text(e))}", gr.update()
        return text, tbl
    diff_btn.click(do_diff, [run_a, run_b], [diff_msg, diff_items], api_name="eval_diff")

    def sides_update(a: str | None, b: str | None):
        """Both side pickers filled from the store as it is now (a run stored since the page opened is there);
        a pick that still exists is kept."""
        choices = side_choices(store)
        keys = {v for _, v in choices}
        return (gr.update(choices=choices, value=a if a in keys else None),
                gr.update(choices=choices, value=b if b in keys else None))

    def do_show(run_ids: list[str], m: str):
        keep = (gr.update(),) * 10
        if not run_ids:
            return "⚠ pick at least one run", gr.update(), *keep, []
        try:
            rep = build_report(store, run_ids)
        except (ValueError, KeyError, StoreError) as e:
            return f"⚠ {esc(err_text(e))}", gr.update(), *keep, []
        if rep.empty:
            return "no finished sessions in these runs", gr.update(visible=False), *keep, []
        figs = all_figures(rep)
        methods = sorted(rep.sessions["policy"].unique())
        tbl, sids = items_table(rep, m if m in methods else None)
        return (f"{len(rep.sessions)} finished sessions", gr.update(visible=True), results_table(rep),
                curves_markdown(rep), decomposition_table(rep), dataset_table(rep), rep.failures.astype(str).rename(columns=words), *figs,
                gr.update(choices=[""] + methods), tbl, sids)

    def do_open(sids: list[str], evt: gr.SelectData):
        row = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
        if row is None or row >= len(sids):
            return gr.update(), gr.update()
        return gr.Tabs(selected="explorer"), sids[row]

    def do_refail(run_ids: list[str], m: str):
        """The kinds of the shown runs' sessions recomputed and stored; the tables shown again with them."""
        if not run_ids:
            return "⚠ pick at least one run", *(gr.update(),) * len(outs)
        moves: Counter[tuple[str | None, str | None]] = Counter()
        for rid in run_ids:
            moves += store.refresh_failures(SessionFilter(run_id=rid))
        return refresh_words(moves), *do_show(run_ids, m)

    outs = [msg, results, table, curves, decomp, by_ds, fails, f1, f2, f3, method, items, ids]
    show.click(do_show, [runs, method], outs, api_name="eval_report")
    refail.click(do_refail, [runs, method], [refail_msg, *outs], api_name=False)
    method.change(do_show, [runs, method], outs, api_name=False)
    def do_refresh(a: str | None, b: str | None):
        found = distinct_values(store)["run_ids"]
        return (gr.update(choices=found), ("" if found else EMPTY), *sides_update(a, b))
    refresh.click(do_refresh, [run_a, run_b], [runs, msg, run_a, run_b], api_name=False)
    def on_open(picked: list[str], m: str, a: str | None, b: str | None):
        """Every visit fills the side pickers; the first shows the newest run (a tab that opens blank looks
        broken); later visits keep the pick."""
        sides = sides_update(a, b)
        if picked:
            return (gr.update(),) * (len(outs) + 1) + sides
        newest = newest_run(store)
        if newest is None:
            return (gr.update(), EMPTY, *(gr.update(),) * (len(outs) - 1), *sides)
        return (gr.update(choices=distinct_values(store)["run_ids"], value=[newest]), *do_show([newest], m), *sides)
    if tab is not None:
        tab.select(on_open, [runs, method, run_a, run_b], [runs, *outs, run_a, run_b], api_name=False)
    items.select(do_open, ids, [tabs, explorer["open_id"]], api_name=False).then(
        explorer["do_open"], explorer["open_ins"], explorer["open_outs"], api_name=False).then(  # lesson as ticked
        None, None, None, js=explorer["scroll_to_replay"])  # the replay is ~1,700 px down the Explorer
