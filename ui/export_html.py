"""A stored session as one self-contained HTML page: graph, steps with captions, charts, the facts.

The page opens from disk with no network: the CSS, the page script and plotly.js are inlined (no CDN,
no web fonts). Model text goes through the same one-pass escaping as the app (`render.esc`) and the
charts' texts are escaped before they reach plotly's JSON, so no tag or script can be built from it;
the only scripts are our static studio.js and plotly's own.
"""
from __future__ import annotations

import time
from typing import Any, Sequence

from router_core.paths import CSS_FILE, JS_FILE
from router_core.session import SessionResult
from router_core.step import Step

from . import charts
from .captions import captions
from .graph import graph_html, graph_of
from .render import anchor, describe, esc, html, money, rules_html
from .rules import words

PLOT_CONFIG = {"displaylogo": False, "responsive": True}  # no link to plotly.com in the page


def _facts(session: dict[str, Any], res: SessionResult) -> str:
    gold = " | ".join(session.get("gold") or []) or "—"
    em = "—" if res.em is None else f"{res.em:.0f}"
    created = session.get("created_at")
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(created)) if isinstance(created, (int, float)) else "?"
    rows = [("answer", res.answer or "(none)"), ("gold", gold), ("exact match", em),
            ("cost", f"{money(res.cost_usd)} over {res.calls} call(s)"), ("α", f"{float(session.get('alpha') or 0):g}"),
            ("policy", session.get("policy") or ""), ("pool", session.get("pool_name") or ""),
            ("status", session.get("status") or ""), ("recorded", when), ("session", session.get("id") or "")]
    return "<table class=\"rs-facts\">" + "".join(f"<tr><th>{esc(k)}</th><td>{esc(str(v))}</td></tr>"
                                                 for k, v in rows) + "</table>"


def _steps(steps: Sequence[Step], caps: Sequence[str], gold: Sequence[str]) -> str:
    items = []
    for s, cap in zip(steps, caps):
        v = describe(s, gold)
        body = html(v)
        if v.kind == "think":
            body = f"<b>💭 think</b> · step {v.index}<br>{body}"
        items.append(f'<li class="rs-page-step">{anchor("page", s.index)}<div class="rs-caption">{esc(cap)}</div>'
                     f'<div class="rs-page-body">{body}</div></li>')
    # not numbered: each caption already says "Step N" (the step's own index, as the page and the graph say it)
    return f'<ul class="rs-page-steps">{"".join(items)}</ul>'


def session_page(session: dict[str, Any], steps: Sequence[Step], annotations: Sequence[dict[str, Any]] = ()) -> str:
    """The whole page as one string."""
    question = session.get("question") or ""
    gold = list(session.get("gold") or [])
    alpha = float(session.get("alpha") or 0.0)
    res = SessionResult.of(steps, question, alpha, gold)
    models = [m.get("name", "") for m in (session.get("pool") or {}).get("models", []) if isinstance(m, dict)]
    figs = [charts.timeline(steps, models), charts.cost_by_model([("this session", steps)]), charts.choices(steps)]
    plots = "".join(f'<div class="rs-page-chart">{f.to_html(full_html=False, include_plotlyjs=(i == 0), config=PLOT_CONFIG)}'
                    "</div>" for i, f in enumerate(figs))
    notes = ""
    if annotations:
        notes = "<h2>Annotations</h2><ul>" + "".join(
            f"<li>{esc(words(str(a.get('label', ''))))}"
            + (f" (step {a['step_idx']})" if a.get("step_idx") is not None else "")
            + f": {esc(a.get('note') or '')}</li>" for a in annotations) + "</ul>"
    css = CSS_FILE.read_text(encoding="utf-8")
    js = JS_FILE.read_text(encoding="utf-8")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Router-R1 Studio · {esc(question[:80])}</title>
<style>
body {{ font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 16px auto; max-width: 1200px;
  padding: 0 12px; color: #222; }}
h1 {{ font-size: 1.4em; }} h2 {{ font-size: 1.15em; margin-top: 1.4em; }}
table.rs-facts th {{ text-align: left; padding-right: 12px; color: #555; font-weight: 600; }}
.rs-page-steps {{ list-style: none; padding-left: 0; }} .rs-page-step {{ margin-bottom: 12px; }}
.rs-page-body {{ margin-top: 4px; }} .rs-page-charts {{ display: flex; flex-wrap: wrap; gap: 8px; }}
.rs-page-chart {{ flex: 1 1 360px; min-width: 300px; }}
{css}
</style>
<script>{js}</script>
</head><body>
<h1>{esc(question)}</h1>
{_facts(session, res)}
<h2>How the question was decomposed</h2>
<div id="decomposition">{graph_html(graph_of(question, steps, gold, alpha), target="page")}</div>
<h2>Rules the studio applied around the router</h2>
{rules_html(session, steps)}
<h2>Step by step</h2>
{_steps(steps, captions(steps, session), gold)}
<h2>Charts</h2>
<div class="rs-page-charts">{plots}</div>
{notes}
<p class="rs-muted">Exported from Router-R1 Studio. Model text is shown as the characters it is.</p>
</body></html>
"""
