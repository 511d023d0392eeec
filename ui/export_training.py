"""A stored training run as one self-contained HTML page: the Training tab's view, opened from disk with no network.

The same figures and words as the tab (ui/training_view.py); plotly.js and the CSS are inlined, and every text that
came from a model or a question goes through the one escaping (`render.esc`) before it reaches the page; the only
scripts are the studio's static page script (it fits each chart to its box) and plotly's own.
"""
from __future__ import annotations

import re
from typing import Any, Sequence

from router_core.paths import CSS_FILE, JS_FILE

from . import training_view as view
from .export_html import PLOT_CONFIG
from .render import esc


def _md(text: str) -> str:
    """The view's short Markdown (bold, code, list items) as HTML; its inputs are escaped already."""
    text = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", text)
    text = re.sub(r"`(.+?)`", r"<code>\1</code>", text)
    lines = text.splitlines()
    if lines and all(line.startswith("- ") for line in lines):
        return "<ul>" + "".join(f"<li>{line[2:]}</li>" for line in lines) + "</ul>"
    return "<p>" + "<br>".join(lines) + "</p>"


def training_page(run: dict[str, Any], points: Sequence[dict[str, Any]], trajs: Sequence[dict[str, Any]]) -> str:
    figs = [view.curves(points), view.reasons_chart(trajs), view.rewards_chart(trajs, run)]
    plots = "".join('<div class="rs-page-chart">'
                    + f.to_html(full_html=False, include_plotlyjs=(i == 0), config=PLOT_CONFIG) + "</div>"
                    for i, f in enumerate(figs))
    tbl, _ = view.trajectory_table(trajs, run)
    head = "".join(f"<th>{esc(c)}</th>" for c in tbl.columns)
    body = "".join("<tr>" + "".join(f"<td>{esc(str(v))}</td>" for v in row) + "</tr>"
                   for row in tbl.itertuples(index=False))
    terms = "".join(f"<li>{esc(t['question'])} — α {t['alpha']:g}: {esc(view.reward_terms(t))}</li>"
                    for t in trajs if t["kept"])
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Router-R1 Studio · training run {esc(run['name'])}</title>
<style>
body {{ font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 16px auto; max-width: 1200px;
  padding: 0 12px; color: #222; }}
h1 {{ font-size: 1.4em; }} h2 {{ font-size: 1.15em; margin-top: 1.4em; }}
.rs-page-charts {{ display: flex; flex-wrap: wrap; gap: 8px; }} .rs-page-chart {{ flex: 1 1 340px; min-width: 300px; }}
table.rs-t {{ border-collapse: collapse; font-size: 0.85em; width: 100%; }}
table.rs-t th, table.rs-t td {{ border-bottom: 1px solid #ddd; padding: 4px 6px; text-align: left; vertical-align: top; }}
.rs-t-wrap {{ overflow-x: auto; }}
{CSS_FILE.read_text(encoding="utf-8")}
</style>
<script>{JS_FILE.read_text(encoding="utf-8")}</script>
</head><body>
<h1>Training run {esc(run['name'])}</h1>
<div id="rs-t-status">{_md(view.status_line(run))}</div>
<div id="rs-t-card">{_md(view.card_summary(run))}</div>
<h2>Curves, and what the reward kept</h2>
<div class="rs-page-charts">{plots}</div>
<div id="rs-t-words">{_md(view.reasons_words(trajs))}</div>
<h2>Kept trajectories: their reward's terms</h2>
<ul>{terms}</ul>
<h2>Every trajectory at each training α</h2>
<div class="rs-t-wrap"><table class="rs-t" id="rs-t-table"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>
<p>Exported from Router-R1 Studio. Model text is shown as the characters it is.</p>
</body></html>
"""
