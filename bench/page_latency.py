"""Browser-side latency of the web app, beside the engine's own time to first token, in one run.

Launches the app on the embedded default, drives Debian's Chromium through Playwright and
takes the median of N (default 5) for:
  * page load to interactive: navigation until the Run button is there and the app has loaded;
  * click on Run to the first streamed text in the conversation, and to the first finished step;
  * how long after the router engine produced its first token that token was on the page (the part of
    "click → first text" the app adds: queue, worker thread, Gradio's stream, the browser's render);
  * replay open: once the page has settled, click Open on a stored session of 10+ steps until every step
    and chart is drawn; and the next replay opened in the same page;
and, from the same sessions, the router engine's own time to first token (llama.cpp) for the
session's first generation, recorded by wrapping the engine the app uses.
Usage: python bench/page_latency.py [--reps N] [--port P]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from overhead import recording_engines  # bench/ is on the path when this file is run

from evaluation.datasets import bundled_datasets, load_dataset
from router_core.loop import spec_of_policy
from router_core.policy import load_policies
from storage import TraceStore
from ui.app import build, launch
from ui.studio import Studio

ROOT = Path(__file__).resolve().parent.parent


CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


def med(xs: list[float]) -> dict[str, float]:
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs), "n": len(xs)}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--port", type=int, default=None)
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    log: list = []
    engines, wrapped = recording_engines(log)

    store = TraceStore(str(Path(tempfile.mkdtemp()) / "bench-ui.sqlite"))
    book = load_policies()
    studio = Studio.from_files(store, book, None, overrides={"min_turns": 4, "max_turns": 6})  # long sessions
    studio.engines = engines
    policy_spec = spec_of_policy(book.get(None))
    questions = [it.question for it in load_dataset(bundled_datasets()["multi_hop"], limit=args.reps)]
    demo = build(studio)
    _, url, _ = launch(demo, server_name="127.0.0.1", server_port=args.port, prevent_thread_lock=True, quiet=True)
    print(f"app at {url}; warming the engines with one session", flush=True)
    list(studio.events("warm", "What is 2 + 2?", 0.0))
    res: dict[str, list[float]] = {"page_load_s": [], "run_to_first_text_s": [], "run_to_first_step_s": [],
                                   "engine_ttft_s": [], "page_after_engine_s": [], "replay_open_s": [],
                                   "replay_next_open_s": []}
    steps_per_session = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        for i, q in enumerate(questions):
            ctx = browser.new_context(viewport={"width": 1280, "height": 900})
            page = ctx.new_page()
            page.set_default_timeout(300_000)
            t0 = time.perf_counter()
            page.goto(url)
            page.wait_for_selector("#rs-run")
            page.wait_for_function("() => !document.querySelector('#rs-run').disabled")
            res["page_load_s"].append(time.perf_counter() - t0)
            page.fill("#rs-question textarea", q)
            n_log = len(log)
            t1 = time.perf_counter()
            page.click("#rs-run")
            page.wait_for_selector("#rs-chat .message.bot")
            res["run_to_first_text_s"].append(time.perf_counter() - t1)
            page.wait_for_function("() => [...document.querySelectorAll('#rs-chat .message.bot')]"
                                   ".some(m => m.textContent.includes('think ·'))")
            res["run_to_first_step_s"].append(time.perf_counter() - t1)
            page.wait_for_selector("#rs-status .rs-summary")
            first = next(c for c in log[n_log:] if c["op"] == "generate" and c["engine"] is wrapped[policy_spec].inner)
            ttft = first["out"].first_token_s
            res["engine_ttft_s"].append(ttft if ttft is not None else first["s"])
            # both clocks are this process's perf_counter: the app runs in-process
            shown_at = t1 + res["run_to_first_text_s"][-1]
            res["page_after_engine_s"].append(shown_at - (first["at"] + res["engine_ttft_s"][-1]))
            df = store.list_sessions(page_size=1).rows
            steps_per_session.append(int(df["n_steps"][0]))
            print(f"  {i + 1}/{len(questions)}: load {res['page_load_s'][-1]:.2f}s, first text "
                  f"{res['run_to_first_text_s'][-1]:.2f}s, first step {res['run_to_first_step_s'][-1]:.2f}s, engine TTFT "
                  f"{res['engine_ttft_s'][-1]:.3f}s, on the page {res['page_after_engine_s'][-1]:.3f}s after the engine's "
                  f"first token, {steps_per_session[-1]} steps", flush=True)
            ctx.close()
        # Replay: the longest real session stored, opened N times in a fresh page. The 0.5B router tends to
        # stop after 2-3 routes (repeated sub-question guard); SmolLM2 as router runs long, so record one if needed.
        for q in questions:
            df = store.list_sessions(sort="n_steps", page_size=1).rows
            if int(df["n_steps"][0]) >= 10:
                break
            list(studio.events("long", q, 0.0, policy="prompted-smollm2-135m"))
        df = store.list_sessions(sort="n_steps", page_size=1).rows
        sid, n = df["id"][0], int(df["n_steps"][0])
        other = store.list_sessions(sort="n_steps", page_size=2).rows
        sid2, n2 = other["id"][1], int(other["n_steps"][1])

        def open_replay(page, s: str, k: int) -> float:
            page.fill("#rs-open-id textarea", s)
            t2 = time.perf_counter()
            page.click("#rs-open")
            page.wait_for_function(f"() => document.querySelectorAll('#rs-replay-chat .message').length === {k + 1}"
                                   f" && document.querySelector('#rs-replay-header').textContent.includes('{s[:12]}')"
                                   " && document.querySelector('#rs-r-timeline .js-plotly-plot')"
                                   " && document.querySelectorAll('#decomposition-replay [data-step]').length > 0")
            return time.perf_counter() - t2
        for _ in range(len(questions)):
            ctx = browser.new_context(viewport={"width": 1280, "height": 900})
            page = ctx.new_page()
            page.set_default_timeout(120_000)
            page.goto(url)
            page.wait_for_selector("#rs-run")
            # the page has settled: the Live tab's empty timeline is drawn (plotly.js is loaded then, not at
            # the first chart a visitor asks for)
            page.wait_for_selector("#rs-timeline .js-plotly-plot")
            page.get_by_role("tab", name="Explorer").click()
            res["replay_open_s"].append(open_replay(page, sid, n))
            open_replay(page, sid2, n2)
            res["replay_next_open_s"].append(open_replay(page, sid, n))  # another replay in the same page
            ctx.close()
        print(f"  replay of a {n}-step session: {', '.join(f'{x:.2f}s' for x in res['replay_open_s'])}; the "
              f"next one in the same page: {', '.join(f'{x:.2f}s' for x in res['replay_next_open_s'])}", flush=True)
        browser.close()
    demo.close()
    out = {k: med(v) for k, v in res.items()}
    out["steps_per_session"] = steps_per_session
    out["replayed_session_steps"] = n
    print(f"\n{'measure (median of ' + str(len(questions)) + ')':<40}{'median':>9}{'min':>9}{'max':>9}")
    for k, label in (("page_load_s", "page load to interactive"), ("run_to_first_text_s", "click Run → first streamed text"),
                     ("run_to_first_step_s", "click Run → first finished step"),
                     ("engine_ttft_s", "engine time to first token (same runs)"),
                     ("page_after_engine_s", "first token on the page after the engine's"),
                     ("replay_open_s", f"replay open ({n}-step session)"),
                     ("replay_next_open_s", "the next replay in that page")):
        m = out[k]
        print(f"{label:<40}{m['median']:>8.3f}s{m['min']:>8.3f}s{m['max']:>8.3f}s")
    path = ROOT / "bench" / "results" / "ui.json"
    path.write_text(json.dumps(out, indent=2))
    print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
