"""Live tab: ask, watch the steps and charts stream in, stop, re-run at another α and compare."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Iterator

import gradio as gr

from router_core.session import SessionResult
from router_core.step import Step

from . import charts
from .render import esc, money, session_messages
from .studio import Studio, example_questions

TEXT_REFRESH_S = 0.25  # streamed tokens repaint the page at most this often


@dataclass
class LiveView:
    """Everything the live tab shows for one session at one moment."""

    question: str
    models: list[str]
    steps: list[Step] = field(default_factory=list)
    pending: tuple[int, str, str] | None = None  # (step index, kind, text so far)
    status: str = ""
    session_id: str = ""

    def figures(self) -> tuple[Any, Any, Any]:
        return (charts.timeline(self.steps, self.models), charts.cost_by_model([("this session", self.steps)]),
                charts.choices(self.steps))

    golds: list[str] = field(default_factory=list)

    def messages(self) -> list[dict]:
        pend = (self.pending[1], self.pending[2]) if self.pending else None
        return session_messages(self.question, self.steps, pend, self.golds)


def summary_html(question: str, steps: list[Step], alpha: float, golds: list[str], session_id: str) -> str:
    res = SessionResult.of(steps, question, alpha, golds)
    parts = [f"<b>answer</b> {esc(res.answer) if res.answer is not None else '<i>(none)</i>'}"]
    if res.gold:
        parts.append(f'<span class="rs-{"ok" if res.em else "bad"}">EM {res.em:.0f} · F1 {res.f1:.2f}</span>')
    parts += [f"{money(res.cost_usd)}", f"{res.calls} call(s)", f"{res.wall_s:.1f}s", f"α {alpha:g}",
              f'session <a href="?session={esc(session_id)}" target="_blank"><code>{esc(session_id[:12])}</code></a>']
    last = steps[-1] if steps else None
    if last is not None and last.kind == "error":
        parts.append(f'<span class="rs-bad">{esc(last.status)}: {esc(last.error)}</span>')
    return '<div class="rs-summary">' + " · ".join(parts) + "</div>"


def live_updates(studio: Studio, key: str, question: str, gold: str, policy: str | None, pool: str | None,
                 alpha: float, edits: list[dict] | None = None) -> Iterator[LiveView]:
    """The live session as a stream of views: one per finished step, plus throttled token updates."""
    question = (question or "").strip()
    golds = [g.strip() for g in (gold or "").split("|") if g.strip()]
    view = LiveView(question=question, models=[], golds=golds)
    if not question:
        view.status = '<span class="rs-bad">Type a question first.</span>'
        yield view
        return
    try:
        view.models = studio.apply_edits(pool, edits).names
        events = studio.events(key, question, float(alpha), policy=policy, pool=pool, gold=golds, edits=edits)
    except Exception as e:  # noqa: BLE001 — a bad pick must read as a message, not a trace
        view.status = f'<span class="rs-bad">Cannot start: {esc(str(e))}</span>'
        yield view
        return
    t0 = time.perf_counter()
    last_paint = 0.0
    for ev in events:
        if ev.kind == "progress":
            view.session_id = ev.text
            busy = " (waiting for the engine: another session is running)" if studio.engine_lock.locked() else ""
            view.status = f"starting…{busy}"
            yield view
        elif ev.kind == "step":
            view.steps.append(ev.step)
            view.pending = None
            cost = sum(s.cost_usd for s in view.steps)
            view.status = f"running · {len(view.steps)} step(s) · {money(cost)} · {time.perf_counter() - t0:.1f}s"
            yield view
            last_paint = time.perf_counter()
        elif ev.kind == "text":
            if view.pending is None or view.pending[0] != ev.index or view.pending[1] != ev.text_kind:
                view.pending = (ev.index, ev.text_kind, "")
            view.pending = (ev.index, ev.text_kind, view.pending[2] + ev.text)
            if time.perf_counter() - last_paint >= TEXT_REFRESH_S:
                last_paint = time.perf_counter()
                yield view
        elif ev.kind == "end":  # the worker failed outside the loop (e.g. the store)
            view.status = f'<span class="rs-bad">Session failed: {esc(ev.text)}</span>'
            yield view
            return
    view.pending = None
    view.status = summary_html(question, view.steps, float(alpha), golds, view.session_id)
    yield view


def build(studio: Studio, compare_ids: gr.State, tabs: gr.Tabs, edits: gr.State) -> None:
    """The Live tab's components and events (called inside a gr.Tab)."""
    with gr.Row(equal_height=False):
        with gr.Column(scale=3, min_width=360):
            with gr.Row():
                q = gr.Textbox(label="Question", scale=4, min_width=240, elem_id="rs-question",
                               placeholder="e.g. What is the capital of the country where the Eiffel Tower stands?")
                gold = gr.Textbox(label="Gold answer(s), optional; separate aliases with |", scale=2, min_width=160,
                                  elem_id="rs-gold")
            with gr.Row():
                policy = gr.Dropdown(studio.policy_names, value=studio.policies.default, label="Router policy",
                                     min_width=200)
                pool = gr.Dropdown(list(studio.pools), value=studio.default_pool, label="Model pool", min_width=160)
                alpha = gr.Slider(0, 1, value=0.0, step=0.05, label="cost coefficient α", min_width=200,
                                  elem_id="rs-alpha", info="0 = best answer, 1 = cheapest route")
            with gr.Row():
                run = gr.Button("Run", variant="primary", elem_id="rs-run")
                stop = gr.Button("Stop", variant="stop", elem_id="rs-stop")
                again = gr.Button("Compare with the previous run of this question", visible=False,
                                  elem_id="rs-compare-again")
            status = gr.HTML(elem_id="rs-status")
            chat = gr.Chatbot(label="Router steps", height=560, sanitize_html=True, latex_delimiters=[],
                              elem_id="rs-chat", group_consecutive_messages=False)
            examples = example_questions()
            if examples:
                gr.Examples(examples, inputs=[q, gold], label="Examples (single-hop, then multi-hop)",
                            examples_per_page=8)
        with gr.Column(scale=2, min_width=320):
            timeline = gr.Plot(label="Timeline", elem_id="rs-timeline")
            cost = gr.Plot(label="Cost by model", elem_id="rs-cost")
            choice = gr.Plot(label="Choice before / after α", elem_id="rs-choice")
            progress = gr.Textbox(label="Engine log", lines=3, max_lines=6, interactive=False)
    history = gr.State([])  # [{id, question, alpha}] of this browser's runs
    log_timer = gr.Timer(2.0)  # shows model loading progress until the engine is ready

    def on_tick():
        log = studio.progress_log[-4:]
        settled = any("ready" in m or "failed" in m for m in studio.progress_log)
        return "\n".join(log), gr.Timer(active=not settled)

    log_timer.tick(on_tick, None, [progress, log_timer], api_name=False, show_progress="hidden")

    def on_run(question: str, gold_text: str, policy_name: str, pool_name: str, a: float, hist: list,
               model_edits: list, request: gr.Request):
        view = None
        drawn = -1  # charts are redrawn when a step lands, not for every streamed token
        for view in live_updates(studio, request.session_hash or "anon", question, gold_text, policy_name,
                                 pool_name, a, model_edits):
            figs = view.figures() if len(view.steps) != drawn else (gr.update(),) * 3
            drawn = len(view.steps)
            yield (view.messages(), view.status, *figs, hist, gr.update(), "\n".join(studio.progress_log[-4:]))
        if view is None or not view.session_id:
            return
        hist = hist + [{"id": view.session_id, "question": view.question, "alpha": float(a)}]
        same = [h for h in hist if h["question"] == view.question]
        yield (view.messages(), view.status, *view.figures(), hist, gr.update(visible=len(same) >= 2),
               "\n".join(studio.progress_log[-4:]))

    def on_stop(request: gr.Request) -> str:
        return "stopping after the current step…" if studio.stop(request.session_hash or "anon") else "nothing to stop"

    def on_again(hist: list):
        if not hist:
            return gr.update(), gr.update()
        ids = [h["id"] for h in hist if h["question"] == hist[-1]["question"]][-2:]
        return gr.Tabs(selected="compare"), ids

    run.click(on_run, [q, gold, policy, pool, alpha, history, edits],
              [chat, status, timeline, cost, choice, history, again, progress],
              concurrency_limit=1, concurrency_id="engine", api_name="run")
    q.submit(on_run, [q, gold, policy, pool, alpha, history, edits],
             [chat, status, timeline, cost, choice, history, again, progress],
             concurrency_limit=1, concurrency_id="engine", api_name=False)
    stop.click(on_stop, None, status, queue=False, api_name="stop")
    again.click(on_again, history, [tabs, compare_ids], api_name=False)
