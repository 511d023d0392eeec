"""The Gradio app: Live, Explorer, Compare, Evaluations, Training and Models tabs over one Studio.

`build()` makes the Blocks; `launch()` applies the queue limits and CSS the app always runs
with (tests launch through it too); `serve()` is `python app.py`.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import gradio as gr

from router_core.paths import CSS_FILE as CSS_PATH
from router_core.paths import JS_FILE
from storage import TraceStore

from . import charts, compare, evals, explorer, live, models_tab, training_tab
from .admission import Admission
from .render import esc
from .studio import Studio

QUEUE_MAX = 64          # visitors waiting beyond this get "queue full" instead of an endless wait
EXPOSED_WARNING = ("This server listens beyond this machine without a login (--auth): anyone who can reach it "
                   "can run sessions, read every stored session and annotate them.")
LOOPBACK = ("127.0.0.1", "localhost", "::1")
READ_CONCURRENCY = 4    # explorer/compare reads run side by side; rollouts share one engine slot


def build(studio: Studio) -> gr.Blocks:
    pol = studio.policy(None)
    # Gradio keeps a copy of every file a handler returns (exports): delete copies older than 10 minutes.
    with gr.Blocks(title="Router-R1 Studio", delete_cache=(600, 600)) as demo:
        gr.Markdown(f"# Router-R1 Studio\nA router LLM thinks, sends sub-questions to candidate models, reads their "
                    f"replies and answers; slide **α** to make it care about cost. Default policy "
                    f"**{esc(pol.name)}** over pool **{esc(studio.default_pool)}**; every session is stored for "
                    "replay in the Explorer.")
        if studio.exposed_without_auth:
            gr.HTML(f'<div class="rs-warning" id="rs-exposed">⚠ {esc(EXPOSED_WARNING)}</div>')
        compare_ids = gr.State([])
        model_edits = gr.State([])  # this visitor's own model edits (Models tab), used by their runs
        with gr.Tabs(selected="live") as tabs:
            with gr.Tab("Live", id="live"):
                live_timeline = live.build(studio, compare_ids, tabs, model_edits)
            with gr.Tab("Explorer", id="explorer") as explorer_tab:
                ex = explorer.build(studio.store)
            with gr.Tab("Compare", id="compare"):
                pick = compare.build(studio.store, compare_ids)
            with gr.Tab("Evaluations", id="evals") as evals_tab:
                evals.build(studio.store, tabs, ex, evals_tab)
            with gr.Tab("Training", id="training") as train_tab:
                training_tab.build(studio, tabs, ex, compare_ids, train_tab)
            with gr.Tab("Models", id="models"):
                models_tab.build(studio, model_edits)

        def on_load(request: gr.Request):
            """Deep link: ?session=<id> opens that session's replay in the Explorer."""
            sid = (request.query_params.get("session") or "").strip() if request else ""
            if not sid:
                return (gr.update(), gr.update(), *[gr.update() for _ in ex["open_outs"]])
            return (gr.Tabs(selected="explorer"), sid, *ex["do_open"](sid, False))

        # a link to a session (the Live summary's) lands on its replay, not on the filters above it
        demo.load(on_load, None, [tabs, ex["open_id"], *ex["open_outs"]], api_name=False).then(
            None, None, None, js=f"() => {{ if (new URLSearchParams(location.search).get('session')) "
                                f"({ex['scroll_to_replay']})(); }}")
        # An empty timeline drawn once the page is interactive: the browser loads plotly.js (about 2 s on a
        # slow CPU) while the visitor reads, not when the first step or replay must be drawn (a replay opened
        # in a fresh page took 2.9 s, 0.65 s with plotly loaded). An initial value would delay the Run button.
        # A run started within that second has drawn its own timeline already: it is left as it is.
        demo.load(lambda shown: gr.skip() if shown is not None else charts.timeline([]), live_timeline,
                  live_timeline, api_name=False, show_progress="hidden",
                  js="(shown) => new Promise(done => setTimeout(() => done(shown), 1000))")  # once settled
        # the Explorer's first page and the Compare list are filled as the page opens, not on a click
        demo.load(ex["do_search"], ex["search_inputs"], ex["search_outs"], api_name=False, show_progress="hidden")
        demo.load(lambda: gr.update(choices=compare.recent_choices(studio.store)), None, pick, api_name=False,
                  show_progress="hidden")
        explorer_tab.select(ex["pickers"], None, ex["picker_outs"], api_name=False, show_progress="hidden")
    return demo


def head() -> str:
    """The page's own script (graph clicks, lesson-mode keys): a static file, never built from model text."""
    return f"<script>{JS_FILE.read_text(encoding='utf-8')}</script>"


def launch(demo: gr.Blocks, api: Any = None, **kw: Any) -> tuple[Any, str, Any]:
    """Serve the page (and, given `api` — ui.api.routes(...) — the OpenAI-compatible API on the same port)."""
    demo.queue(default_concurrency_limit=READ_CONCURRENCY, max_size=QUEUE_MAX)
    kw.setdefault("show_error", False)  # failures are shown as messages by the handlers, never as traces
    if api is not None:
        kw["app_kwargs"] = {**kw.get("app_kwargs", {}), "routes": list(api.routes)}
    return demo.launch(css_paths=[CSS_PATH], head=head(), **kw)


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


def make_studio(args: argparse.Namespace) -> Studio:
    """The Studio the options describe (store, policies with the chosen default, pools, run limits)."""
    from .cli import integer, overrides, policy_from
    slots = getattr(args, "max_concurrent_sessions", None)
    # checked before the store opens: a bad flag leaves nothing behind
    admission = Admission() if slots is None else Admission(integer(slots, "--max-concurrent-sessions", 1, 256))
    store = TraceStore(args.db)
    book, pol = policy_from(args)
    book = book.model_copy(update={"default": pol.name,
                                   "policies": [pol if p.name == pol.name else p for p in book.policies]})
    studio = Studio.from_files(store, book, args.pool, overrides(args))
    studio.admission = admission
    return studio


def api_routes(studio: Studio, args: argparse.Namespace, *, login: bool = False, exposed: bool = False):
    """The /v1 routes, or None when they would open a door the operator closed.

    Gradio's login (--auth) does not cover routes added beside the page, so with --auth the API is served
    only behind its own token (--api-token-env); without either, it is served on loopback, or with a
    warning when the page itself is open to the network (`exposed`: beyond loopback or --share)."""
    from .api import QUEUE_WAIT_S, routes
    from .cli import CliError, number
    token_env = getattr(args, "api_token_env", None)
    if token_env and not os.environ.get(token_env):
        raise CliError(f"--api-token-env: the environment variable {token_env} is not set (or empty)")
    if not token_env and login:
        print("· the OpenAI-compatible API (/v1) is off: --auth protects the page only; add --api-token-env NAME "
              "to serve the API behind a token", file=sys.stderr, flush=True)
        return None
    if not token_env and exposed:
        print("WARNING: the OpenAI-compatible API (/v1) is open to anyone who can reach this port; "
              "set --api-token-env NAME to require a token.", file=sys.stderr, flush=True)
    wait = getattr(args, "max_queue_wait", None)
    return routes(studio, token_env=token_env,
                  wait_s=QUEUE_WAIT_S if wait is None else number(wait, "--max-queue-wait", 0, 3600))


def settle_heap() -> None:
    """Move everything built at startup (modules, the page) out of the garbage collector's scans: its full passes
    otherwise add ~50 ms pauses to one request in a few (measured on Explorer pages over a million sessions)."""
    import gc
    gc.collect()
    gc.freeze()


def serve_api(args: argparse.Namespace) -> int:
    """`app.py serve-api`: the OpenAI-compatible API alone (no page), on uvicorn."""
    import fastapi
    import uvicorn
    studio = make_studio(args)
    studio.echo = True
    app = fastapi.FastAPI(title="Router-R1 Studio API", docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(api_routes(studio, args, exposed=not is_loopback(args.host)))
    print(f"· storing sessions in {studio.store.where}", flush=True)
    print(f"· API on http://{args.host}:{args.port}/v1 (model ids router:<policy>:<alpha>)", flush=True)
    studio.warm_up()
    settle_heap()
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


def serve(args: argparse.Namespace) -> int:
    from .cli import CliError
    auth = parse_auth(getattr(args, "auth", None))
    edits = bool(getattr(args, "allow_model_edits", False))
    if edits and not auth:
        raise CliError("--allow-model-edits needs --auth: a model edit makes the server call an endpoint with "
                       "one of its keys, so only logged-in visitors may make one")
    if not edits and (getattr(args, "allow_key_env", None) or getattr(args, "allow_endpoint", None)):
        raise CliError("--allow-key-env and --allow-endpoint apply to model edits: add --allow-model-edits")
    studio = make_studio(args)
    store = studio.store
    studio.allow_model_edits = edits
    studio.allow_key_envs = tuple(getattr(args, "allow_key_env", None) or ())
    studio.allow_endpoints = tuple(getattr(args, "allow_endpoint", None) or ())
    share = bool(getattr(args, "share", False))
    studio.exposed_without_auth = not auth and (share or not is_loopback(args.host))
    studio.echo = True
    if studio.exposed_without_auth:
        print(f"WARNING: {EXPOSED_WARNING} Add --auth USER:PASSWORD, or serve on 127.0.0.1.", file=sys.stderr,
              flush=True)
    print(f"· storing sessions in {store.where}", flush=True)
    api = api_routes(studio, args, login=bool(auth), exposed=share or not is_loopback(args.host))
    demo = build(studio)
    studio.warm_up()  # models load in the background; the page shows the engine log
    settle_heap()
    launch(demo, api=api, server_name=args.host, server_port=args.port, auth=auth,
           share=share, prevent_thread_lock=False)
    return 0
