"""The Gradio app: Live, Explorer, Compare, Evaluations and Models tabs over one Studio.

`build()` makes the Blocks; `launch()` applies the queue limits and CSS the app always runs
with (tests launch through it too); `serve()` is `python app.py`.
"""
from __future__ import annotations

import argparse
from typing import Any

import gradio as gr

from router_core.paths import CSS_FILE as CSS_PATH
from storage import TraceStore

from . import compare, evals, explorer, live, models_tab
from .render import esc
from .studio import Studio

QUEUE_MAX = 64          # visitors waiting beyond this get "queue full" instead of an endless wait
READ_CONCURRENCY = 4    # explorer/compare reads run side by side; rollouts share one engine slot


def build(studio: Studio) -> gr.Blocks:
    pol = studio.policy(None)
    with gr.Blocks(title="Router-R1 Studio") as demo:
        gr.Markdown(f"# Router-R1 Studio\nA router LLM thinks, sends sub-questions to candidate models, reads their "
                    f"replies and answers; slide **α** to make it care about cost. Default policy "
                    f"**{esc(pol.name)}** over pool **{esc(studio.default_pool)}**. Every session is stored in "
                    f"`{esc(studio.store.where)}`.")
        compare_ids = gr.State([])
        with gr.Tabs(selected="live") as tabs:
            with gr.Tab("Live", id="live"):
                live.build(studio, compare_ids, tabs)
            with gr.Tab("Explorer", id="explorer"):
                ex = explorer.build(studio.store)
            with gr.Tab("Compare", id="compare"):
                compare.build(studio.store, compare_ids)
            with gr.Tab("Evaluations", id="evals"):
                evals.build(studio.store, tabs, ex)
            with gr.Tab("Models", id="models"):
                models_tab.build(studio)

        def on_load(request: gr.Request):
            """Deep link: ?session=<id> opens that session's replay in the Explorer."""
            sid = (request.query_params.get("session") or "").strip() if request else ""
            if not sid:
                return (gr.update(), gr.update(), *[gr.update() for _ in ex["open_outs"]])
            return (gr.Tabs(selected="explorer"), sid, *ex["do_open"](sid))

        demo.load(on_load, None, [tabs, ex["open_id"], *ex["open_outs"]], api_name=False)
    return demo


def launch(demo: gr.Blocks, **kw: Any) -> tuple[Any, str, Any]:
    demo.queue(default_concurrency_limit=READ_CONCURRENCY, max_size=QUEUE_MAX)
    kw.setdefault("show_error", False)  # failures are shown as messages by the handlers, never as traces
    return demo.launch(css_paths=[CSS_PATH], **kw)


def parse_auth(values: list[str] | None) -> list[tuple[str, str]] | None:
    if not values:
        return None
    out = []
    for v in values:
        user, sep, pw = v.partition(":")
        if not sep or not user or not pw:
            raise ValueError(f"--auth must be user:password, got '{user}{sep}…'")
        out.append((user, pw))
    return out


def serve(args: argparse.Namespace) -> int:
    from router_core.policy import customise, load_policies
    auth = parse_auth(getattr(args, "auth", None))
    store = TraceStore(args.db)
    overrides = {"max_turns": args.max_turns} if getattr(args, "max_turns", None) is not None else None
    book = load_policies(args.policies)
    pol = customise(book.get(args.policy), model=args.policy_model, engine=args.policy_engine, template=args.template)
    book = book.model_copy(update={"default": pol.name,
                                   "policies": [pol if p.name == pol.name else p for p in book.policies]})
    studio = Studio.from_files(store, book, args.pool, overrides)
    studio.echo = True
    print(f"· storing sessions in {store.where}", flush=True)
    demo = build(studio)
    studio.warm_up()  # models load in the background; the page shows the engine log
    launch(demo, server_name=args.host, server_port=args.port, auth=auth, share=bool(getattr(args, "share", False)),
           prevent_thread_lock=False)
    return 0
