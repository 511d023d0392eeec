"""What the Training tab and the exported training page show, computed from a stored training run alone.

Gradio-free: a run's row, its points and its trajectories (storage/training.py) in, text, tables and plotly figures
out, so the tab, the exported page and the tests read the same figures.
"""
from __future__ import annotations

import time
from collections import Counter
from typing import Any, Sequence

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from training.trajectories import REASONS

from .charts import LAYOUT, empty
from .render import esc

# a reason in words, short enough for a chart's legend and a table cell
REASON_WORDS = {"kept": "kept", "protocol": "protocol broken", "repeat": "a repeat", "wrong": "wrong answer",
                "too_dear": "too dear at its α", "outranked": "another one scored higher"}
REASON_COLOURS = {"kept": "#54a24b", "protocol": "#e45756", "repeat": "#b279a2", "wrong": "#f58518",
                  "too_dear": "#eeca3b", "outranked": "#9d755d"}
TRAJECTORY_COLUMNS = ["α", "kept?", "why", "question", "answer", "reward", "EM", "R_cost", "models", "ran at α",
                      "round", "dataset", "session"]
TRAJECTORY_WIDTHS = ["3%", "6%", "10%", "24%", "10%", "5%", "4%", "5%", "11%", "5%", "5%", "6%", "6%"]


def rounds_of(run: dict[str, Any] | None, trajs: Sequence[dict[str, Any]]) -> dict[str | None, int]:
    """Round number of each collected run a training run read: its place in the run's sources (round 1 is the
    teacher's; a later round is a trained policy collecting, as expert iteration goes)."""
    order = list((run or {}).get("source_runs") or [])
    for t in trajs:
        if t.get("source_run") not in order:
            order.append(t.get("source_run"))
    return {r: i + 1 for i, r in enumerate(order)}


def run_label(run: dict[str, Any]) -> str:
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(run["created_at"]))
    return f"{run['name']} · {run['status']} · {when}"


def status_line(run: dict[str, Any]) -> str:
    """One line a presenter reads first: what is training, how far, how fast, how long is left."""
    last, total = run.get("last"), run.get("max_steps")
    name = f"**{esc(run['name'])}** ({esc(run['base'])})"
    if run["status"] == "running" and not last:
        return f"⏳ {name}: starting (loading the base model and the kept trajectories)"
    parts = []
    if last:
        steps = f"step {int(last['step'])}" + (f" of {int(total)}" if total else "")
        tps = last["tokens"] / last["seconds"] if last["seconds"] else 0.0
        parts += [steps, f"loss {last['loss']:.3f}", f"{tps:.0f} tokens/s"]
        if run["status"] == "running" and total and last["step"]:
            left = last["seconds"] / last["step"] * (total - last["step"])
            parts.append(f"about {left / 60:.0f} min left")
        else:
            parts.append(f"{last['seconds'] / 60:.1f} min")
    icon = {"running": "⏳", "done": "✓", "error": "✗", "interrupted": "⏸"}.get(run["status"], "")
    tail = f" — {esc(run['error'])}" if run.get("error") else ""
    return f"{icon} {name}: {run['status']}" + (", " + ", ".join(parts) if parts else "") + tail


def curves(points: Sequence[dict[str, Any]]) -> go.Figure:
    """Loss and learning rate against the optimizer step, one above the other."""
    if not points:
        return empty("Loss and learning rate", "No training step stored yet.")
    steps = [p["step"] for p in points]
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.12,
                        subplot_titles=("loss (policy tokens only)", "learning rate"))
    fig.add_trace(go.Scatter(x=steps, y=[p["loss"] for p in points], mode="lines+markers", name="loss",
                             line=dict(color="#4c78a8"), marker=dict(size=4),
                             hovertemplate="step %{x}<br>loss %{y:.3f}<extra></extra>"), row=1, col=1)
    fig.add_trace(go.Scatter(x=steps, y=[p["learning_rate"] for p in points], mode="lines", name="learning rate",
                             line=dict(color="#f58518"), hovertemplate="step %{x}<br>lr %{y:.2e}<extra></extra>"),
                  row=2, col=1)
    fig.update_xaxes(title_text="optimizer step", row=2, col=1)
    fig.update_yaxes(tickformat=".1e", row=2, col=1)
    fig.update_layout(**{**LAYOUT, "height": 320, "showlegend": False, "margin": dict(l=10, r=10, t=30, b=10)})
    return fig


def _alpha(a: float) -> str:
    return f"α {a:g}"


def reasons_chart(trajs: Sequence[dict[str, Any]]) -> go.Figure:
    """How many trajectories were kept and why the others were dropped, per training α (stacked)."""
    if not trajs:
        return empty("Kept and dropped, by reason", "No trajectory stored for this run.")
    alphas = sorted({t["alpha"] for t in trajs})
    counts = Counter((t["alpha"], t["reason"]) for t in trajs)
    fig = go.Figure()
    for reason in REASONS:
        ys = [counts[(a, reason)] for a in alphas]
        if any(ys):
            fig.add_trace(go.Bar(x=[_alpha(a) for a in alphas], y=ys, name=REASON_WORDS[reason],
                                 marker_color=REASON_COLOURS[reason],
                                 hovertemplate=f"{esc(REASON_WORDS[reason])}: %{{y}}<extra>%{{x}}</extra>"))
    fig.update_layout(barmode="stack", title="Kept and dropped, by reason", yaxis_title="trajectories",
                      **{**LAYOUT, "height": 300})
    return fig


def rewards_chart(trajs: Sequence[dict[str, Any]], run: dict[str, Any] | None = None) -> go.Figure:
    """Router-R1's reward of every trajectory at each training α, kept ones apart from dropped ones (and, over
    several rounds, each round apart)."""
    if not trajs:
        return empty("Reward at each α", "No trajectory stored for this run.")
    alphas = sorted({t["alpha"] for t in trajs})
    rounds = rounds_of(run, trajs)
    many = len({rounds[t.get("source_run")] for t in trajs}) > 1
    fig = go.Figure()
    shades = {True: ("#54a24b", "#2f6f2a", "#9fd49a"), False: ("#9aa3ad", "#5f6770", "#c9ced4")}
    for k in sorted(set(rounds.values())) if many else [None]:
        for kept in (True, False):
            sel = [t for t in trajs if bool(t["kept"]) == kept and (k is None or rounds[t.get("source_run")] == k)]
            if not sel:
                continue
            name = ("kept" if kept else "dropped") + (f" · round {k}" if k else "")
            fig.add_trace(go.Box(x=[_alpha(t["alpha"]) for t in sel], y=[t["reward"] for t in sel], name=name,
                                 marker_color=shades[kept][((k or 1) - 1) % 3], boxpoints="all", jitter=0.4,
                                 pointpos=0, hovertemplate="reward %{y:.2f}<extra>" + name + "</extra>"))
    fig.update_layout(boxmode="group", title="Router-R1 reward at each α", yaxis_title="reward",
                      xaxis=dict(categoryorder="array", categoryarray=[_alpha(a) for a in alphas]),
                      **{**LAYOUT, "height": 300})
    return fig


def reasons_words(trajs: Sequence[dict[str, Any]]) -> str:
    """The counts by reason in plain words, per α ("α 0.5: 120 kept; 30 wrong answer; …")."""
    if not trajs:
        return "No trajectory stored for this run yet."
    lines = []
    for a in sorted({t["alpha"] for t in trajs}):
        c = Counter(t["reason"] for t in trajs if t["alpha"] == a)
        kept = [t for t in trajs if t["alpha"] == a and t["kept"]]
        mean = sum(t["reward"] for t in kept) / len(kept) if kept else None
        parts = [f"{c[r]} {REASON_WORDS[r]}" for r in REASONS if c[r]]
        lines.append(f"- **α {a:g}**: " + "; ".join(parts)
                     + (f" (kept: mean reward {mean:.2f})" if mean is not None else ""))
    return "\n".join(lines)


def trajectory_table(trajs: Sequence[dict[str, Any]], run: dict[str, Any] | None = None
                     ) -> tuple[pd.DataFrame, list[str]]:
    """The trajectories as rows (a Dataframe of str cells shows text as text), and their session ids in the same
    order (a click opens one)."""
    rows, ids = [], []
    rounds = rounds_of(run, trajs)
    for t in trajs:
        rows.append({"α": f"{t['alpha']:g}", "kept?": "✓ kept" if t["kept"] else "dropped",
                     "why": REASON_WORDS[t["reason"]], "question": t["question"],
                     "answer": t.get("answer") or "", "EM": f"{t['em']:.0f}", "R_cost": f"{t['r_cost']:.2f}",
                     "reward": f"{t['reward']:.2f}", "models": " → ".join(t.get("models") or []),
                     "ran at α": f"{t['source_alpha']:g}", "round": str(rounds[t.get("source_run")]),
                     "dataset": t.get("dataset") or "",
                     "session": t["session_id"][:12]})
        ids.append(t["session_id"])
    return pd.DataFrame(rows, columns=TRAJECTORY_COLUMNS), ids


def reward_terms(t: dict[str, Any]) -> str:
    """A trajectory's reward in words, beside its answer: which rule of Router-R1's reward applied, and its terms
    (plain text: the caller escapes it for HTML)."""
    a = t["alpha"]
    if not t["format_ok"]:
        return f"reward −1 at α {a:g}: the protocol broke (Router-R1 scores a format error −1)"
    if t["em"] < 1:
        return f"reward 0 at α {a:g}: the answer “{t.get('answer') or ''}” is wrong (exact match 0)"
    return (f"reward {t['reward']:.2f} at α {a:g} = (1 − α) + α · R_cost = {1 - a:.2f} + {a:g} · {t['r_cost']:.2f} "
            f"(R_cost {t['r_cost']:.2f}: its cost against the collection's, 1 = the cheapest); "
            f"{REASONS[t['reason']]}")


def card_summary(run: dict[str, Any]) -> str:
    """The finished run's card in a few lines (data, counts, loss, time, hashes). A card is data (a loaded bundle may
    hold anything): every value is escaped, and one that is not what a card holds says so instead of failing."""
    card = run.get("card")
    if not card:
        cfg = run.get("config") or {}
        return (f"Training on {', '.join(map(esc, map(str, run.get('source_runs') or [])))} at α "
                f"{', '.join(f'{a:g}' for a in run.get('alphas') or [])}; LoRA rank {esc(str(cfg.get('rank', '?')))}, "
                f"lr {esc(str(cfg.get('learning_rate', '?')))}. The card appears when the run ends.")
    try:
        t, d = card["training"], card["data"]
        return (f"{int(d['examples'])} examples from {int(d['questions'])} questions ({int(d['trajectories'])} "
                f"trajectories in {', '.join(map(esc, map(str, d['runs'])))}); α "
                f"{', '.join(f'{float(a):g}' for a in card['alphas'])}; kept when the reward ≥ "
                f"{float(card['min_reward']):g}. {int(t['steps'])} steps, loss {float(t['loss_first']):.3f} → "
                f"{float(t['loss_last']):.3f}, {float(t['seconds']) / 60:.1f} min on {esc(str(t['device']))}, "
                f"{float(t['tokens_per_s']):.0f} tokens/s. Base <code>{esc(str(card['base']))}</code> (sha256 "
                f"{esc(str(card['base_sha256'])[:12])}…), adapter sha256 "
                f"{esc(str(card.get('adapter_sha256') or '')[:12])}…. Made by <code>{esc(str(card['command']))}</code>.")  # a code span would show the escapes
    except (KeyError, TypeError, ValueError) as e:
        return f"⚠ this run's card could not be read ({esc(type(e).__name__)}: {esc(str(e))[:120]})"


def questions_of(trajs: Sequence[dict[str, Any]]) -> list[str]:
    """The run's questions, those with a kept trajectory first (before/after picks one)."""
    kept = {t["question"] for t in trajs if t["kept"]}
    qs = sorted({t["question"] for t in trajs}, key=lambda q: (q not in kept, q))
    return qs

