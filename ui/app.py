"""The Gradio app: Live, Explorer, Compare, Evaluations and Models tabs over one Studio.

`build()` makes the Blocks; `launch()` applies the queue limits and CSS the app always runs
with (tests launch through it too); `serve()` is `python app.py`.
"""
from __future__ import annotations

import argparse
import sys
from typing import Any

import gradio as gr

from router_core.paths import CSS_FILE as CSS_PATH
from storage import TraceStore

from . import compare, evals, explorer, live, models_tab
from .render import esc
from .studio import Studio

QUEUE_MAX = 64          # visitors waiting beyond this get "queue full" instead of an endless wait
EXPOSED_WARNING = ("This server listens beyond this machine without a login (--auth): anyone who can reach it "
                   "can run sessions, read every stored session and annotate them.")
LOOPBACK = ("127.0.0.1", "localhost", "::1")
READ_CONCURRENCY = 4    # explorer/compare reads run side by side; rollouts share one engine slot


def build(studio: Studio) -> gr.Blocks:
    pol = studio.policy(None)
    with gr.Blocks(title="Router-R1 Studio") as demo:
        gr.Markdown(f"# Router-R1 Studio\nA router LLM thinks, sends sub-questions to candidate models, reads their "
                    f"replies and answers; slide **α** to make it care about cost. Default policy "
                    f"**{esc(pol.name)}** over pool **{esc(studio.default_pool)}**. Every session is stored in "
                    f"`{esc(studio.store.where)}`.")
        if studio.exposed_without_auth:
            gr.HTML(f'<div class="rs-warning" id="rs-exposed">⚠ {esc(EXPOSED_WARNING)}</div>')
        compare_ids = gr.State([])
        model_edits = gr.State([])  # this visitor's own model edits (Models tab), used by their runs
        with gr.Tabs(selected="live") as tabs:
            with gr.Tab("Live", id="live"):
                live.build(studio, compare_ids, tabs, model_edits)
            with gr.Tab("Explorer", id="explorer"):
                ex = explorer.build(studio.store)
            with gr.Tab("Compare", id="compare"):
                compare.build(studio.store, compare_ids)
            with gr.Tab("Evaluations", id="evals"):
                evals.build(studio.store, tabs, ex)
            with gr.Tab("Models", id="models"):
                models_tab.build(studio, model_edits)

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


def is_loopback(host: str) -> bool:
    return host in LOOPBACK or host.startswith("127.")


def serve(args: argparse.Namespace) -> int:
    from .cli import CliError, overrides, policy_from
    auth = parse_auth(getattr(args, "auth", None))
    edits = bool(getattr(args, "allow_model_edits", False))
    if edits and not auth:
        raise CliError("--allow-model-edits needs --auth: a model edit makes the server call an endpoint with "
                       "one of its keys, so only logged-in visitors may make one")
    if not edits and (getattr(args, "allow_key_env", None) or getattr(args, "allow_endpoint", None)):
        raise CliError("--allow-key-env and --allow-endpoint apply to model edits: add --allow-model-edits")
    store = TraceStore(args.db)
    book, pol = policy_from(args)
    book = book.model_copy(update={"default": pol.name,
                                   "policies": [pol if p.name == pol.name else p for p in book.policies]})
    studio = Studio.from_files(store, book, args.pool, overrides(args))
    studio.allow_model_edits = edits
    studio.allow_key_envs = tuple(getattr(args, "allow_key_env", None) or ())
    studio.allow_endpoints = tuple(getattr(args, "allow_endpoint", None) or ())
    studio.exposed_without_auth = not auth and not is_loopback(args.host)
    studio.echo = True
    if studio.exposed_without_auth:
        print(f"WARNING: {EXPOSED_WARNING} Add --auth USER:PASSWORD, or serve on 127.0.0.1.", file=sys.stderr,
              flush=True)
    print(f"· storing sessions in {store.where}", flush=True)
    demo = build(studio)
    studio.warm_up()  # models load in the background; the page shows the engine log
    launch(demo, server_name=args.host, server_port=args.port, auth=auth, share=bool(getattr(args, "share", False)),
           prevent_thread_lock=False)
    return 0
