"""Compare tab: sessions side by side, aligned by route turn, with the Router-R1 reward at a chosen α."""
from __future__ import annotations

from typing import Any

import gradio as gr
import pandas as pd

from router_core.cost import CostNormalizer
from router_core.session import SessionResult
from router_core.step import Step
from storage import SessionFilter, TraceStore

from . import charts
from .explorer import Replay
from .render import describe, err_text, esc, html, money

WINDOW = 1000  # recent stored sessions that set the cost normaliser, like Router-R1's sliding window


def _cell(steps: list[Step], gold: list[str]) -> str:
    return "".join(html(describe(s, gold), compact=True) for s in steps) or "—"


def aligned_html(replays: list[Replay]) -> str:
    """A table with one column per session and one row per route turn (0 = before the first route)."""
    turns = sorted({s.turn for r in replays for s in r.steps})
    head = "".join(f"<th>α {r.session['alpha']:g} · <code>{esc(r.session['id'][:8])}</code><br>"
                   f"<small>{esc(r.session['policy'])}</small></th>" for r in replays)
    rows = []
    for t in turns:
        cells = "".join(f"<td>{_cell([s for s in r.steps if s.turn == t], list(r.session.get('gold') or []))}</td>"
                        for r in replays)
        rows.append(f"<tr><th>turn {t}</th>{cells}</tr>")
    q = {r.session["question"] for r in replays}
    note = "" if len(q) == 1 else "<p><b>Note:</b> these sessions answer different questions.</p>"
    return (f'{note}<table class="rs-compare"><thead><tr><th></th>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>')


def normaliser(store: TraceStore) -> CostNormalizer:
    rows = store.list_sessions(SessionFilter(status="done"), page_size=WINDOW, count_limit=1).rows
    n = CostNormalizer(window=WINDOW)
    for c in reversed(list(rows["cost_usd"])):
        n.observe(float(c))
    return n


def summary_table(replays: list[Replay], alpha: float, norm: CostNormalizer) -> pd.DataFrame:
    rows = []
    for r in replays:
        s = r.session
        res = SessionResult.of(r.steps, s["question"], s["alpha"], list(s.get("gold") or []))
        own, reward = res.reward(float(s["alpha"]), norm), res.reward(alpha, norm)
        models = sorted({st.request_model for st in r.steps if st.kind == "route" and st.request_model})
        # each run's reward at the α it ran with, and all of them at one α (the slider) to compare like with like
        rows.append({"session": s["id"][:12], "policy": s.get("policy") or "", "α (run)": s["alpha"], "status": s["status"], "answer": s.get("answer") or "",
                     "EM": s.get("em"), "F1": s.get("f1"), "$": money(s.get("cost_usd") or 0.0), "calls": s.get("calls"),
                     "models": ", ".join(models), "reward at its α": None if own is None else round(own, 3),
                     f"reward if α were {alpha:g}": None if reward is None else round(reward, 3)})
    return pd.DataFrame(rows)


def compare(store: TraceStore, ids: list[str], alpha: float) -> tuple[str, pd.DataFrame, Any]:
    picked = [i.split(" ", 1)[0] for i in (ids or []) if i]
    if len(picked) < 2:
        raise ValueError("pick at least two sessions to compare")
    replays = [Replay.load(store, i) for i in picked]
    fig = charts.cost_by_model([(f"α {r.session['alpha']:g} · {r.session['id'][:6]}", r.steps) for r in replays])
    return aligned_html(replays), summary_table(replays, float(alpha), normaliser(store)), fig


def recent_choices(store: TraceStore, n: int = 200) -> list[tuple[str, str]]:
    df = store.list_sessions(page_size=n, count_limit=1).rows
    return [(f"{i[:8]} · α {a:g} · {q[:60]}", i) for i, a, q in zip(df["id"], df["alpha"], df["question"])]


def build(store: TraceStore, picked: gr.State) -> gr.Dropdown:
    """The Compare tab (inside a gr.Tab); returns the picker so the live tab can fill it."""
    gr.Markdown("Pick two or more sessions — e.g. the same question at α = 0 and α = 0.8. Steps line up by route "
                "turn. The reward is Router-R1's: −1 for a format error, 0 if wrong, (1−α) + α·R_cost if right, with "
                f"R_cost normalised over the last {WINDOW} finished sessions in this store.")
    with gr.Row():
        pick = gr.Dropdown(recent_choices(store), multiselect=True, allow_custom_value=True, label="Sessions",
                           elem_id="rs-compare-pick", scale=4, min_width=260)
        refresh = gr.Button("↻ Refresh list", size="sm", min_width=110)
        alpha = gr.Slider(0, 1, value=0.5, step=0.05, label="α to compare the rewards at", min_width=200, scale=2)
        go_btn = gr.Button("Compare", variant="primary", elem_id="rs-compare-go", min_width=90)
    msg = gr.Markdown()
    aligned = gr.HTML(elem_id="rs-compare-table")
    table = gr.Dataframe(interactive=False, datatype="str", elem_id="rs-compare-summary")
    cost = gr.Plot()

    def do_compare(ids: list[str], a: float):
        try:
            html, tbl, fig = compare(store, ids, a)
        except (ValueError, KeyError) as e:
            return f"⚠ {esc(err_text(e))}", gr.update(), gr.update(), gr.update()
        return "", html, tbl, fig

    go_btn.click(do_compare, [pick, alpha], [msg, aligned, table, cost], api_name="compare")
    alpha.release(do_compare, [pick, alpha], [msg, aligned, table, cost], api_name=False)
    refresh.click(lambda: gr.update(choices=recent_choices(store)), None, pick, api_name=False)
    picked.change(lambda ids: gr.update(choices=recent_choices(store), value=ids), picked, pick, api_name=False).then(
        do_compare, [pick, alpha], [msg, aligned, table, cost], api_name=False)
    return pick
