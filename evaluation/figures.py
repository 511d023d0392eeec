"""Plotly figures of an eval report: EM vs $ with each method's Pareto frontier, model usage share
vs α, EM per dataset. Plotly only (no Gradio): the CLI writes them to HTML, the app shows them."""
from __future__ import annotations

import html

import plotly.graph_objects as go

from .curves import pareto_frontier
from .methods import Method, family
from .report import Report

# legends below the plot: beside it they take the plot's width at 1024 px and cut their own names short
# titles short, a second line in <sup>: three charts share a row, ~340 px each at 1024 px
LAYOUT = dict(template="plotly_white", margin=dict(l=10, r=10, t=60, b=10), height=380, font=dict(size=11),
              showlegend=True, legend=dict(orientation="h", y=-0.2, yanchor="top"))
PALETTE = ("#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2", "#eeca3b", "#9d755d", "#ff9da6", "#bab0ac")


def _e(text: str) -> str:
    return html.escape(str(text), quote=True)


def em_vs_cost(rep: Report) -> go.Figure:
    """Each method (and α) as a point; lines join each method family's Pareto-optimal points."""
    fig = go.Figure()
    t = rep.table.assign(family=rep.table["method"].map(family))
    # Baselines repeat per α with the same EM and $: one point each.
    t = t.drop_duplicates(subset=["method", "EM", "$/query"])
    for i, (fam, g) in enumerate(t.groupby("family", sort=False)):
        colour = PALETTE[i % len(PALETTE)]
        labels = [f"{_e(m)} · α {a:g}" if not Method.parse(m).is_baseline else _e(m) for m, a in zip(g["method"], g["α"])]
        micro = [c * 1e6 for c in g["$/query"]]  # µ$: the pool's prices make a query cost millionths of a dollar
        fig.add_trace(go.Scatter(x=micro, y=g["EM"], mode="markers", name=_e(fam), marker=dict(size=9, color=colour),
                                 hovertext=[f"{lbl}<br>EM {e:.3f} · {c:.3g} µ$ a query" for lbl, e, c in
                                            zip(labels, g["EM"], micro)], hoverinfo="text", legendgroup=fam))
        front = pareto_frontier(list(zip(micro, g["EM"])))
        if len(front) > 1:
            fig.add_trace(go.Scatter(x=[p[0] for p in front], y=[p[1] for p in front], mode="lines",
                                     line=dict(color=colour, width=1.5, dash="dot"), showlegend=False,
                                     hoverinfo="skip", legendgroup=fam))
    fig.update_layout(title="EM vs cost<br><sup>dotted: each method's best trade-offs</sup>", **LAYOUT)
    fig.update_xaxes(title="µ$ per query", rangemode="tozero")
    fig.update_yaxes(title="EM", range=[0, 1])
    return fig


def usage_vs_alpha(rep: Report) -> go.Figure:
    """Share of the router's candidate calls going to each model, at each α."""
    fig = go.Figure()
    if rep.usage is None or rep.usage.empty:
        return fig.update_layout(title="Model usage share vs α (no calls)", **LAYOUT)
    routers = rep.sessions[~rep.sessions["policy"].str.startswith("baseline/")]
    u = rep.usage.merge(routers[["id", "alpha", "policy"]], left_on="session_id", right_on="id")
    if u.empty:
        return fig.update_layout(title="Model usage share vs α (no router sessions)", **LAYOUT)
    shares = u.groupby(["policy", "alpha", "model"])["calls"].sum()
    shares = shares / shares.groupby(level=[0, 1]).transform("sum")
    for i, model in enumerate(sorted(u["model"].unique())):
        s = shares.xs(model, level="model")
        xs = [f"{_e(p)} · α {a:g}" for p, a in s.index]
        # each segment names its model: with one model the bar is 100 % and a legend alone is easy to miss
        fig.add_trace(go.Bar(x=xs, y=list(s.values), name=_e(model), marker_color=PALETTE[i % len(PALETTE)],
                             text=[_e(model)] * len(xs), textposition="inside", insidetextanchor="middle"))
    fig.update_layout(title="Calls by model<br><sup>share of the router's calls, per α</sup>", barmode="stack",
                      **LAYOUT)
    fig.update_yaxes(range=[0, 1], title="share of calls")
    return fig


def em_by_dataset(rep: Report) -> go.Figure:
    fig = go.Figure()
    df = rep.sessions
    if df.empty:
        return fig.update_layout(title="EM by dataset", **LAYOUT)
    df = df.assign(label=[m if m.startswith("baseline/") else f"{m} · α {a:g}" for m, a in zip(df["policy"], df["alpha"])])
    g = df.groupby(["label", "dataset"])["em"].mean().unstack("dataset")
    for i, ds in enumerate(g.columns):
        fig.add_trace(go.Bar(x=[_e(x) for x in g.index], y=g[ds], name=_e(ds), marker_color=PALETTE[i % len(PALETTE)]))
    fig.update_layout(title="Exact match per dataset", barmode="group", **LAYOUT)
    fig.update_yaxes(range=[0, 1], title="EM")
    return fig


def all_figures(rep: Report) -> list[go.Figure]:
    return [em_vs_cost(rep), usage_vs_alpha(rep), em_by_dataset(rep)]
