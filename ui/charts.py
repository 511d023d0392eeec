"""Plotly figures computed from stored Steps (so a replay draws exactly what the live run drew)
and from session tables (explorer summaries). Text from models is escaped for hover labels."""
from __future__ import annotations

from collections import defaultdict
from typing import Sequence

import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio

from router_core.step import Step

from .render import esc, money
from .rules import flags_text

ROUTER = "router"
KIND_COLOURS = {"think": "#8e9aaf", "route": "#4c78a8", "answer": "#54a24b", "error": "#e45756", "call": "#f58518"}
PALETTE = ("#f58518", "#4c78a8", "#54a24b", "#b279a2", "#e45756", "#72b7b2", "#eeca3b", "#9d755d", "#ff9da6")
LAYOUT = dict(margin=dict(l=10, r=10, t=40, b=10), height=260, font=dict(size=11), legend=dict(orientation="h", y=-0.25))
# Every figure here uses this theme. Plotly shares the default template with each new figure as it is made;
# naming it per figure (`template=` in a layout) copies and validates it every time: ~20 ms of a figure's
# ~25, paid for three figures on every step the page streams.
pio.templates.default = "plotly_white"


def empty(title: str, message: str) -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(text=esc(message), showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    fig.update_layout(title=title, xaxis_visible=False, yaxis_visible=False, **{**LAYOUT, "height": 200})
    return fig


def colour(model: str) -> str:
    """One colour per model name everywhere (every chart, every session, replay and live alike)."""
    h = 0
    for ch in model:
        h = (h * 131 + ord(ch)) % 1_000_003
    return PALETTE[h % len(PALETTE)]


def model_colours(models: Sequence[str]) -> dict[str, str]:
    return {m: colour(m) for m in models}


def micro(usd: float) -> float:
    """Dollars as µ$ for chart axes (small CPU-model calls cost millionths of a dollar)."""
    return usd * 1e6


def _short(text: str | None, n: int = 80) -> str:
    t = (text or "").replace("\n", " ")
    return esc(t if len(t) <= n else t[: n - 1] + "…")


def timeline(steps: Sequence[Step], models: Sequence[str] = ()) -> go.Figure:
    """Gantt: one row for the router, one per candidate; a bar per generation and per call."""
    if not steps:
        return empty("Timeline", "No steps yet.")
    t0 = min(s.started_at for s in steps)
    bars: dict[tuple[str, str], list[tuple[float, float, str]]] = defaultdict(list)
    rows = [ROUTER] + list(models)
    for s in steps:
        end = s.ended_at or s.started_at
        hover_base = f"step {s.index} · {s.kind}"
        if s.kind == "route" and s.call_started_at is not None:
            model = s.request_model or s.written_model or "?"
            if model not in rows:
                rows.append(model)
            call_end = s.call_ended_at or s.call_started_at
            bars[(ROUTER, "route")].append((s.started_at - t0, s.call_started_at - s.started_at,
                                           f"{hover_base}: writing the sub-question<br>{_short(s.query)}<br>"
                                           f"{s.router_output_tokens} router tokens"))
            bars[(model, "call")].append((s.call_started_at - t0, call_end - s.call_started_at,
                                         f"{esc(model)} · step {s.index}<br>{_short(s.query)}<br>"
                                         f"{s.input_tokens} tokens in, {s.output_tokens} out · {money(s.cost_usd)} · "
                                         f"{s.call_latency_s:.2f}s" + (f"<br>error: {_short(s.error)}" if s.error else "")))
            if end > call_end:
                bars[(ROUTER, "route")].append((call_end - t0, end - call_end, f"{hover_base}: reading the reply"))
        else:
            bars[(ROUTER, s.kind)].append((s.started_at - t0, end - s.started_at,
                                          f"{hover_base} · {s.latency_s:.2f}s<br>{s.router_output_tokens} router tokens"
                                          f"<br>{_short(s.text or s.error)}"))
    colours = model_colours([r for r in rows if r != ROUTER])
    fig = go.Figure()
    for (row, kind), items in bars.items():
        fig.add_trace(go.Bar(
            y=[esc(row)] * len(items), x=[max(d, 0.02) for _, d, _ in items], base=[b for b, _, _ in items],
            orientation="h", name=esc(row) if kind == "call" else kind,
            marker_color=colours.get(row, KIND_COLOURS["call"]) if kind == "call" else KIND_COLOURS.get(kind, "#999"),
            hovertext=[h for _, _, h in items], hoverinfo="text", showlegend=True))
    fig.update_layout(title="Timeline (seconds from start)", barmode="overlay", **LAYOUT)
    fig.update_yaxes(categoryorder="array", categoryarray=[esc(r) for r in reversed(rows)])
    fig.update_xaxes(title=None, rangemode="tozero")
    return fig


def cost_by_model(sessions: Sequence[tuple[str, Sequence[Step]]]) -> go.Figure:
    """µ$ per candidate model. One session: a bar per model (with its calls); several: stacked per session."""
    per: dict[str, list[float]] = defaultdict(lambda: [0.0] * len(sessions))
    calls: dict[str, list[int]] = defaultdict(lambda: [0] * len(sessions))
    for i, (_, steps) in enumerate(sessions):
        for s in steps:
            if s.kind == "route" and s.request_model and s.sent:
                per[s.request_model][i] += s.cost_usd
                calls[s.request_model][i] += 1
    if not per:
        return empty("Cost by model", "No candidate calls yet.")
    totals = [sum(s.cost_usd for s in steps) for _, steps in sessions]
    fig = go.Figure()
    if len(sessions) == 1:
        models = list(per)
        fig.add_trace(go.Bar(y=[esc(m) for m in models], x=[micro(per[m][0]) for m in models], orientation="h",
                             marker_color=[colour(m) for m in models], showlegend=False,
                             text=[f"{money(per[m][0])} · {calls[m][0]} call{'s' if calls[m][0] != 1 else ''}"
                                   for m in models], textposition="auto", hoverinfo="text",
                             hovertext=[f"{esc(m)}: {money(per[m][0])} over {calls[m][0]} call(s)" for m in models]))
        fig.update_layout(title=f"Cost by model · total {money(totals[0])}", **LAYOUT)
        fig.update_xaxes(title="µ$", rangemode="tozero")
        return fig
    labels = [esc(lbl) for lbl, _ in sessions]
    for model, costs in per.items():
        fig.add_trace(go.Bar(x=labels, y=[micro(c) for c in costs], name=esc(model), marker_color=colour(model),
                             hovertext=[f"{esc(model)}: {money(c)}" for c in costs], hoverinfo="text"))
    fig.update_layout(title="Cost by model · total " + " / ".join(money(t) for t in totals), barmode="stack", **LAYOUT)
    fig.update_yaxes(title="µ$")
    return fig


def _stacked_rows(titles: Sequence[str], spacing: float) -> dict:
    """Layout for one row per title sharing the bottom x axis, each titled above (what plotly's make_subplots
    writes, built directly: make_subplots costs ~30 ms for three rows, paid on every step the page streams)."""
    n = len(titles)
    height = (1 - spacing * (n - 1)) / n
    bottom = "x" if n == 1 else f"x{n}"
    layout: dict = {"annotations": []}
    for i, title in enumerate(titles, start=1):
        top = 1 - (i - 1) * (height + spacing)
        sx = "" if i == 1 else str(i)
        layout[f"yaxis{sx}"] = dict(domain=[max(0.0, top - height), min(1.0, top)], anchor=f"x{sx}")
        layout[f"xaxis{sx}"] = dict(anchor=f"y{sx}", **({} if i == n else dict(matches=bottom, showticklabels=False)))
        layout["annotations"].append(dict(text=title, x=0.5, y=min(1.0, top), xref="paper", yref="paper",
                                          xanchor="center", yanchor="bottom", showarrow=False, font=dict(size=13)))
    return layout


def choice_title(s: Step) -> str:
    """What α chose at a route step and what was sent, in plain words (names and flags escaped: stored text): a rule
    may send the call elsewhere (a repeat asked one rung up) or not at all, and the title must not contradict the
    graph."""
    assert s.choice is not None
    head = f"step {s.index}: α chose {esc(s.choice.chosen)}"
    why = f" ({esc(flags_text(s.flags))})" if s.flags else ""
    if not s.sent:
        return f"{head} · not sent{why}"
    if s.request_model and s.request_model != s.choice.chosen:
        return f"{head} · sent to {esc(s.request_model)}{why}"
    return f"{head} · sent"


def choices(steps: Sequence[Step]) -> go.Figure:
    """For each scored route decision: P(model) before and after the α adjustment."""
    scored = [s for s in steps if s.kind == "route" and s.choice is not None]
    if not scored:
        return empty("Model choice before / after α", "No scored route decision yet "
                                                       "(free-running policies on unscoring engines have none).")
    # one row per decision (not one column each): titles and model names stay readable for long sessions
    layout = _stacked_rows([choice_title(s) for s in scored], spacing=0.32 / max(1, len(scored)))
    traces = []
    quality_shown = False
    for row, s in enumerate(scored, start=1):
        c = s.choice
        names = [esc(m) for m in c.models]
        axes = dict(xaxis="x" if row == 1 else f"x{row}", yaxis="y" if row == 1 else f"y{row}")
        traces.append(go.Bar(x=names, y=c.probs_before, name="before α", marker_color="#bab0ac", showlegend=False,
                             hovertext=[f"{n}: p={p:.3f} (log p {lp:.2f})" for n, p, lp in
                                        zip(names, c.probs_before, c.logprobs)], hoverinfo="text", **axes))
        hover = [f"{n}: p={p:.3f} · normalised cost {nc:.2f}" for n, p, nc in zip(names, c.probs_after, c.norm_costs)]
        text = None
        if c.quality is not None:  # the utility's three terms per model: on the bar, q; in the tooltip, all three
            t = c.terms()
            quality_shown = True
            text = [f"q {x['estimate']:.2f}" if x["calibrated"] else "q ?" for x in t]
            hover = [f"{n}: p={p:.3f}<br>prior {x['prior']:+.2f} · quality {x['quality']:+.2f} · price penalty "
                     f"{-x['penalty']:+.2f}<br>expected share right {x['estimate']:.2f}"
                     + ("" if x["calibrated"] else " (not calibrated: neutral)")
                     for n, p, x in zip(names, c.probs_after, t)]
        traces.append(go.Bar(x=names, y=c.probs_after, name=f"after α={c.alpha:g}",
                             marker_color=[colour(m) for m in c.models], showlegend=False,
                             marker_line=dict(width=[3 if m == c.chosen else 0 for m in c.models], color="#222"),
                             text=text, textposition="outside", cliponaxis=False,
                             hovertext=hover, hoverinfo="text", **axes))
    fig = go.Figure(data=traces, layout=layout)
    # the key in the title, not a legend: the "after" bars wear each model's colour, which no one swatch shows
    key = ("grey: router's own p · colour: with q and price at α · q: share right"
           if quality_shown else "grey: before α · coloured: after α · outlined: α's pick")
    fig.update_layout(title=f"Model choice before / after α<br><sup>{key}</sup>", barmode="group",
                      **{**LAYOUT, "height": 160 + 110 * len(scored), "margin": dict(l=10, r=10, t=80, b=10)})
    fig.update_yaxes(range=[0, 1], nticks=3)
    return fig


def cost_vs_correct(df: pd.DataFrame) -> go.Figure:
    """Each session as a point: cost against correctness (EM), coloured by α."""
    if df.empty:
        return empty("Cost vs correctness", "No sessions match.")
    outcome = df["em"].map(lambda v: "no gold" if pd.isna(v) else ("correct" if v >= 1 else "wrong"))
    fig = go.Figure(go.Scatter(
        x=[micro(c) for c in df["cost_usd"]], y=outcome, mode="markers",
        marker=dict(color=df["alpha"], colorscale="Viridis", cmin=0, cmax=1, size=8, opacity=0.7,
                    colorbar=dict(title="α", thickness=10)),
        hovertext=[f"{_short(q, 60)}<br>{money(c)} · α {a:g}" for q, c, a in zip(df["question"], df["cost_usd"], df["alpha"])],
        hoverinfo="text"))
    fig.update_layout(title=f"Cost vs correctness ({len(df)} sessions)", **LAYOUT)
    fig.update_yaxes(categoryorder="array", categoryarray=["no gold", "wrong", "correct"])
    fig.update_xaxes(title="µ$ per session")
    return fig


def model_share(usage: dict[str, dict[str, float]]) -> go.Figure:
    """Share of candidate calls (and of dollars) by model: two donuts, each named in its hole (titles above them
    were overlapped by the labels of small slices), percentages inside the slices."""
    if not usage:
        return empty("Model usage share", "No candidate calls in these sessions.")
    models = list(usage)
    colours = model_colours(models)
    fig = go.Figure()
    for (x0, x1), key, name in (((0.0, 0.46), "calls", "calls"), ((0.54, 1.0), "cost_usd", "dollars")):
        fig.add_trace(go.Pie(labels=[esc(m) for m in models], values=[usage[m][key] for m in models], hole=0.5,
                             marker_colors=[colours[m] for m in models], sort=False, textinfo="percent",
                             textposition="inside", insidetextorientation="horizontal", name=name,
                             domain=dict(x=[x0, x1], y=[0.0, 1.0])))
        fig.add_annotation(text=name, x=(x0 + x1) / 2, y=0.5, xref="paper", yref="paper", showarrow=False,
                           font=dict(size=12))
    fig.update_layout(title="Model usage share", **LAYOUT)
    return fig


def em_by_dataset(df: pd.DataFrame) -> go.Figure:
    """Mean exact match per dataset (sessions without gold answers are left out)."""
    graded = df.dropna(subset=["em"]) if not df.empty else df
    if graded.empty:
        return empty("EM by dataset", "No graded sessions (give a gold answer, or run an evaluation).")
    g = graded.assign(dataset=graded["dataset"].fillna("(live)")).groupby("dataset")["em"].agg(["mean", "count"])
    fig = go.Figure(go.Bar(x=[esc(d) for d in g.index], y=g["mean"], marker_color="#54a24b",
                           text=[f"{m:.2f} (n={n})" for m, n in zip(g["mean"], g["count"])], textposition="auto"))
    fig.update_layout(title="Exact match by dataset", **LAYOUT)
    fig.update_yaxes(range=[0, 1])
    return fig
