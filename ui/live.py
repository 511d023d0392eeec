"""Live tab: ask, watch the decomposition graph and the steps stream in, stop, sweep α and compare.

Everything shown is computed from the Steps as they arrive (the same renderers the replay uses), so
what a presenter sees live is what the replay and the exported page show later.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Iterator

import gradio as gr

from router_core.choice import parse_alphas as choice_alphas
from router_core.question import QUESTION_MAX_CHARS, question_problem
from router_core.session import SessionResult
from router_core.step import Step

from . import charts
from .graph import empty_graph_html, graph_html, graph_of
from .render import esc, money, session_messages
from .rules import rules_used
from .studio import Studio, example_questions
from .widgets import steps_and_charts

TEXT_REFRESH_S = 0.25  # streamed tokens repaint the page at most this often (the first piece at once)
SWEEP_DEFAULT = "0, 0.5, 1"
MAX_SWEEP = 6


@dataclass
class LiveView:
    """Everything the live tab shows for one session at one moment."""

    question: str
    models: list[str]
    steps: list[Step] = field(default_factory=list)
    pending: tuple[int, str, str] | None = None  # (step index, kind, text so far)
    status: str = ""
    session_id: str = ""
    golds: list[str] = field(default_factory=list)
    alpha: float = 0.0

    def figures(self) -> tuple[Any, Any, Any]:
        return (charts.timeline(self.steps, self.models), charts.cost_by_model([("this session", self.steps)]),
                charts.choices(self.steps))

    def messages(self) -> list[dict]:
        pend = (self.pending[1], self.pending[2]) if self.pending else None
        return session_messages(self.question, self.steps, pend, self.golds, target="live")

    def finished(self) -> bool:
        """Whether the session has ended: answered, failed or stopped (its last step says so)."""
        last = self.steps[-1] if self.steps else None
        return last is not None and (last.kind == "answer" or last.status in ("error", "stopped"))

    def graph(self, target: str | None = "live") -> str:
        if not self.steps and not self.question:
            return empty_graph_html()
        return graph_html(graph_of(self.question, self.steps, self.golds, self.alpha), target)


def summary_html(question: str, steps: list[Step], alpha: float, golds: list[str], session_id: str) -> str:
    res = SessionResult.of(steps, question, alpha, golds)
    parts = [f"<b>answer</b> {esc(res.answer) if res.answer is not None else '<i>(none)</i>'}"]
    if res.gold:
        verdict = "✓ correct" if res.em else "✗ wrong"
        parts.append(f'<span class="rs-{"ok" if res.em else "bad"}">{verdict} · EM {res.em:.0f} · F1 {res.f1:.2f}'
                     "</span>")
    parts += [f"{money(res.cost_usd)}", f"{res.calls} call(s)", f"{res.wall_s:.1f}s", f"α {alpha:g}",
              f'session <a href="?session={esc(session_id)}" target="_blank"><code>{esc(session_id[:12])}</code></a>']
    acted = [r for r in rules_used({}, steps) if r["steps"]]
    if acted:
        parts.append("rules that acted: " + "; ".join(
            f'<span title="{esc(r["caption"])}">{esc(r["label"])} (step {", ".join(map(str, r["steps"]))})</span>'
            for r in acted))
    last = steps[-1] if steps else None
    if last is not None and last.kind == "error":
        parts.append(f'<span class="rs-bad">{esc(last.status)}: {esc(last.error)}</span>')
    return '<div class="rs-summary">' + " · ".join(parts) + "</div>"


def parse_golds(gold: str | None) -> list[str]:
    return [g.strip() for g in (gold or "").split("|") if g.strip()]


def live_updates(studio: Studio, key: str, question: str, gold: str, policy: str | None, pool: str | None,
                 alpha: float, edits: list[dict] | None = None) -> Iterator[LiveView]:
    """The live session as a stream of views: one per finished step, plus throttled token updates."""
    question = (question or "").strip()
    golds = parse_golds(gold)
    view = LiveView(question=question, models=[], golds=golds, alpha=float(alpha))
    if not question:
        view.status = '<span class="rs-bad">Type a question first.</span>'
        yield view
        return
    if problem := question_problem(question):  # the rule the API and the CLI apply: refused, nothing stored
        view.question = ""
        view.status = f'<span class="rs-bad">Cannot run this question: {esc(problem)}.</span>'
        yield view
        return
    try:
        view.models = studio.apply_edits(pool, edits).names
        events = studio.events(key, question, float(alpha), policy=policy, pool=pool, gold=golds, edits=edits,
                               client=f"page:{key}")
    except Exception as e:  # noqa: BLE001 — a bad pick must read as a message, not a trace
        view.status = f'<span class="rs-bad">Cannot start: {esc(str(e))}</span>'
        yield view
        return
    t0 = time.perf_counter()
    last_paint = 0.0
    for ev in events:
        if ev.kind == "progress" and ev.text_kind == "waiting":
            view.status = (f"waiting for the router: {ev.index} session(s) ahead of this one "
                           "(Stop leaves the line; nothing is stored until it starts)")
            yield view
        elif ev.kind == "progress":
            view.session_id = ev.text
            view.status = "starting…"
            yield view
        elif ev.kind == "step":
            view.steps.append(ev.step)
            view.pending = None
            cost = sum(s.cost_usd for s in view.steps)
            view.status = f"running · {len(view.steps)} step(s) · {money(cost)} · {time.perf_counter() - t0:.1f}s"
            yield view
            last_paint = time.perf_counter()
        elif ev.kind == "text":
            first = view.pending is None or view.pending[0] != ev.index or view.pending[1] != ev.text_kind
            if first:
                view.pending = (ev.index, ev.text_kind, "")
            view.pending = (ev.index, ev.text_kind, view.pending[2] + ev.text)
            if first or time.perf_counter() - last_paint >= TEXT_REFRESH_S:
                last_paint = time.perf_counter()
                yield view
        elif ev.kind == "end":  # the worker failed outside the loop (e.g. the store)
            view.status = f'<span class="rs-bad">Session failed: {esc(ev.text)}</span>'
            yield view
            return
    view.pending = None
    if not view.session_id:  # stopped while waiting in line: nothing ran
        view.status = "Left the line before the session started; nothing was run or stored."
        yield view
        return
    view.status = summary_html(question, view.steps, float(alpha), golds, view.session_id)
    yield view


def parse_alphas(text: str) -> list[float]:
    """The sweep box: comma-separated α values in [0, 1] (at most MAX_SWEEP); ValueError names the bad one."""
    return choice_alphas(text, "α values", limit=MAX_SWEEP)


def sweep_html(views: list[LiveView]) -> str:
    """The graphs of a sweep side by side, each headed by its α, cost, calls and correctness."""
    cols = []
    for i, v in enumerate(views):
        res = SessionResult.of(v.steps, v.question, v.alpha, v.golds)
        if not v.finished():  # no answer yet is not a wrong answer
            verdict = ' · <span class="rs-running">running</span>'
        else:
            verdict = "" if res.em is None else (' · <span class="rs-ok">✓</span>' if res.em else
                                                 ' · <span class="rs-bad">✗</span>')
        head = (f'<div class="rs-sweep-head"><b>α {v.alpha:g}</b> · {money(res.cost_usd)} · {res.calls} call(s)'
                f' · {esc(res.answer or "…")}{verdict}</div>')
        # the step list beside the sweep shows the last run's steps, so only its graph selects a step there
        cols.append(f'<div class="rs-sweep-col">{head}{v.graph(target="live" if i == len(views) - 1 else None)}</div>')
    return f'<div class="rs-sweep" id="rs-sweep">{"".join(cols)}</div>'


def build(studio: Studio, compare_ids: gr.State, tabs: gr.Tabs, edits: gr.State) -> gr.Plot:
    """The Live tab's components and events (called inside a gr.Tab); returns its timeline chart."""
    with gr.Row(equal_height=False):
        with gr.Column(scale=3, min_width=340):
            with gr.Row():
                # capped where the limit is enforced (router_core/question.py), and a few lines high: a pasted page
                # once grew the box to 20 lines and pushed its refusal out of sight
                q = gr.Textbox(label="Question", scale=4, min_width=240, elem_id="rs-question", max_lines=4,
                               max_length=QUESTION_MAX_CHARS,
                               placeholder="e.g. Which country is the birthplace of the director of Interstellar?")
                gold = gr.Textbox(label="Gold answer(s), optional; separate aliases with |", scale=2, min_width=160,
                                  elem_id="rs-gold")
            with gr.Row():
                policy = gr.Dropdown(studio.policy_names, value=studio.policies.default, label="Router policy",
                                     min_width=200, elem_id="rs-policy")
                pool = gr.Dropdown(list(studio.pools), value=studio.default_pool, label="Model pool", min_width=160)
            # α on a row of its own: beside the pickers at 1024 px its label and hint wrapped to five lines
            alpha = gr.Slider(0, 1, value=0.0, step=0.05, label="cost coefficient α", elem_id="rs-alpha",
                              info="0 = best answer, 1 = cheapest route")
            with gr.Row():
                run = gr.Button("Run", variant="primary", elem_id="rs-run", min_width=80)
                stop = gr.Button("Stop", variant="stop", elem_id="rs-stop", min_width=80)
            with gr.Row(equal_height=True):
                sweep_alphas = gr.Textbox(value=SWEEP_DEFAULT, label="α values to sweep", elem_id="rs-sweep-alphas",
                                          min_width=160, scale=2, placeholder="e.g. 0, 0.5, 1")
                sweep = gr.Button("Run at each α", elem_id="rs-sweep-run", min_width=140, scale=1)
                again = gr.Button("Compare these runs", visible=False, elem_id="rs-compare-again", min_width=120)
        with gr.Column(scale=2, min_width=300):
            progress = gr.Textbox(label="Engine log", lines=4, max_lines=6, interactive=False, elem_id="rs-log")
            examples = example_questions()
            if examples:  # folded: open, its wrapped questions would push the status below a projector's fold
                with gr.Accordion("Example questions (single-hop, then multi-hop)", open=False,
                                  elem_id="rs-examples"):
                    gr.Examples(examples, inputs=[q, gold], label=None, examples_per_page=6)
    status = gr.HTML(elem_id="rs-status")
    # the decomposition spans the page: on a projector the whole chain of hops is readable at once
    graph = gr.HTML(empty_graph_html(), elem_id="decomposition")
    sweep_out = gr.HTML(elem_id="rs-sweep-out")
    chat, timeline, cost, choice = steps_and_charts("Router steps", "rs-chat",
                                                    ("rs-timeline", "rs-cost", "rs-choice"))
    history = gr.State([])  # [{id, question, alpha}] of this browser's runs
    log_timer = gr.Timer(2.0)  # shows model loading progress until the engine is ready

    def on_tick():
        log = studio.progress_log[-4:]
        settled = any("router policy ready" in m or "failed" in m for m in studio.progress_log)
        return "\n".join(log), gr.Timer(active=not settled)

    log_timer.tick(on_tick, None, [progress, log_timer], api_name=False, show_progress="hidden")
    outputs = [chat, status, graph, timeline, cost, choice, history, again, progress, sweep_out]

    # Streaming: charts, graph and sweep are rebuilt only when a step lands; while tokens stream they
    # are skipped (not even serialised), so a token costs the page one small diff of the step list.
    def stream(view_iter, hist: list, label: str = "", done: list | None = None):
        drawn = -1
        for view in view_iter:
            if len(view.steps) != drawn:
                drawn = len(view.steps)
                figs, graph_out = view.figures(), view.graph()
                sweep_out = sweep_html(done + [view]) if done is not None else ""
            else:
                figs, graph_out, sweep_out = (gr.skip(),) * 3, gr.skip(), gr.skip()
            yield view, (view.messages(), label + view.status, graph_out, *figs, hist, gr.skip(),
                         "\n".join(studio.progress_log[-4:]), sweep_out)

    def on_run(question: str, gold_text: str, policy_name: str, pool_name: str, a: float, hist: list,
               model_edits: list, request: gr.Request):
        view = None
        for view, out in stream(live_updates(studio, request.session_hash or "anon", question, gold_text,
                                             policy_name, pool_name, a, model_edits), hist):
            yield out
        if view is None or not view.session_id:
            return
        hist = hist + [{"id": view.session_id, "question": view.question, "alpha": float(a)}]
        same = [h for h in hist if h["question"] == view.question]
        yield (view.messages(), view.status, view.graph(), *view.figures(), hist,
               gr.update(visible=len(same) >= 2), "\n".join(studio.progress_log[-4:]), "")

    def on_sweep(question: str, gold_text: str, policy_name: str, pool_name: str, alphas_text: str, hist: list,
                 model_edits: list, request: gr.Request):
        try:
            alphas = parse_alphas(alphas_text)
        except ValueError as e:
            yield (gr.skip(), f'<span class="rs-bad">{esc(str(e))}</span>', *(gr.skip(),) * 8)
            return
        done: list[LiveView] = []
        for i, a in enumerate(alphas):
            view = None
            for view, out in stream(live_updates(studio, request.session_hash or "anon", question, gold_text,
                                                 policy_name, pool_name, a, model_edits), hist,
                                    f"α {a:g} ({i + 1} of {len(alphas)}) · ", done):
                yield out
            if view is None or not view.session_id:
                return
            done.append(view)
            hist = hist + [{"id": view.session_id, "question": view.question, "alpha": float(a)}]
            if SessionResult.of(view.steps, view.question, a).status == "stopped":
                break  # Stop ends the sweep, not only the α that was running
        yield (done[-1].messages(), "swept: " + " · ".join(
                   f"α {v.alpha:g} → {money(sum(s.cost_usd for s in v.steps))}" for v in done),
               done[-1].graph(), *done[-1].figures(), hist, gr.update(visible=len(done) >= 2),
               "\n".join(studio.progress_log[-4:]), sweep_html(done))

    def on_stop(request: gr.Request):
        if studio.stop(request.session_hash or "anon"):
            return "stopping after the current step…"
        gr.Info("Nothing is running.")
        return gr.skip()  # a finished run's summary stays

    def on_again(hist: list):
        if not hist:
            return gr.skip(), gr.skip()
        same = [h["id"] for h in hist if h["question"] == hist[-1]["question"]]
        return gr.Tabs(selected="compare"), same[-MAX_SWEEP:]

    inputs = [q, gold, policy, pool, alpha, history, edits]
    # Gradio runs up to this many page sessions' handlers at once; which of them run and which wait in line
    # (shared with the API) is the studio's admission, so the status can say how many are ahead
    limit = studio.admission.server_slots
    run.click(on_run, inputs, outputs, concurrency_limit=limit, concurrency_id="engine", api_name="run",
              show_progress="hidden")
    q.submit(on_run, inputs, outputs, concurrency_limit=limit, concurrency_id="engine", api_name=False,
             show_progress="hidden")
    sweep.click(on_sweep, [q, gold, policy, pool, sweep_alphas, history, edits], outputs, concurrency_limit=limit,
                concurrency_id="engine", api_name="sweep", show_progress="hidden")
    stop.click(on_stop, None, status, queue=False, api_name="stop")
    again.click(on_again, history, [tabs, compare_ids], api_name=False)
    return timeline
