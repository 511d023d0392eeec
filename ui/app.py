"""A first live view: ask a question, slide α, watch the steps stream in.

The full product (charts, explorer, compare, models tab) grows from here; this page
already runs the real loop on the embedded default and renders every Step as it arrives.
"""
from __future__ import annotations

import argparse
import threading
import uuid
from typing import Iterator

import gradio as gr

from router_core.loop import Router, collect
from router_core.metrics import exact_match, f1_score
from storage import TraceStore
from storage.recorder import recorded

from .render import esc, step_message

EXAMPLES = ["Who directed the film Interstellar?",
            "What is the capital of the country where the Eiffel Tower stands?",
            "Which planet is known as the Red Planet?"]


def build(router: Router, store: TraceStore | None = None) -> gr.Blocks:
    lock = threading.Lock()  # one rollout at a time per engine; the queue orders visitors

    def run(question: str, alpha: float, gold: str) -> Iterator[tuple[list, str]]:
        question = (question or "").strip()
        if not question:
            yield [], "Type a question first."
            return
        msgs: list[dict] = [{"role": "user", "content": esc(question)}]
        yield msgs, "running…"
        steps = []
        golds = [gold] if gold else []
        sid = uuid.uuid4().hex
        stream = router.run(question, float(alpha), session_id=sid)
        if store is not None:
            stream = recorded(store, stream, session_id=sid, question=question, alpha=float(alpha),
                              policy=router.policy.name, engine=router.policy.engine, pool=router.pool.snapshot(),
                              gold=golds)
        with lock:
            for step in stream:
                steps.append(step)
                msgs.append(step_message(step))
                yield msgs, f"{len(steps)} step(s)…"
        res = collect(steps, question, float(alpha), golds)
        summary = f"answer: **{esc(res.answer or '(none)')}** · ${res.cost_usd:.8f} · {res.calls} call(s) · {res.wall_s:.1f}s"
        if gold:
            summary += f" · EM {exact_match(res.answer, [gold]):.0f} · F1 {f1_score(res.answer, [gold]):.2f}"
        yield msgs, summary + f" · session `{sid[:12]}`"

    with gr.Blocks(title="Router-R1 Studio") as demo:
        gr.Markdown("# Router-R1 Studio\nWatch a multi-round router think, pick models and answer. "
                    f"Policy **{esc(router.policy.name)}**, pool **{esc(router.pool.name)}** "
                    f"({esc(', '.join(router.pool.names))}).")
        with gr.Row():
            q = gr.Textbox(label="Question", scale=4)
            gold = gr.Textbox(label="Gold answer (optional)", scale=2)
        alpha = gr.Slider(0, 1, value=0.0, step=0.05, label="cost coefficient α")
        btn = gr.Button("Run", variant="primary")
        gr.Examples(EXAMPLES, inputs=q)
        chat = gr.Chatbot(label="Steps", height=520, sanitize_html=True)
        status = gr.Markdown()
        btn.click(run, [q, alpha, gold], [chat, status], concurrency_limit=1)
    return demo


def serve(args: argparse.Namespace) -> int:
    from app import build_router
    router = build_router(args, progress=lambda m: print(f"· {m}", flush=True))
    print("· loading the router policy (first start joins and checks the model files)", flush=True)
    router.policy_engine()
    store = TraceStore(args.db)
    print(f"· storing sessions in {store.where}", flush=True)
    demo = build(router, store)
    demo.queue(default_concurrency_limit=1, max_size=32)
    demo.launch(server_name=args.host, server_port=args.port, show_error=False)
    return 0
