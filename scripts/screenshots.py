"""Retake the README screenshots from a real session on the embedded default (Chromium through Playwright).

Starts the app on a fresh store, asks one two-hop question in the browser and waits for the answer,
then saves, in docs/screenshots/ (a 1440 × 900 window, as a presenter's): live.png (the Live tab after
the run), graph.png (its decomposition graph), explorer.png (the same session replayed from the store),
lesson.png (the replay in lesson mode, two steps in), sweep.png (the question swept at α 0 and 1),
compare.png (those runs side by side), exported.png (the session's standalone page, opened from disk)
and evaluations.png (a small real eval run: two bundled questions at α 0 and 1 with the largest-model
baseline, run first by `app.py eval`). Nothing here is scripted: what the pictures show is what the
router did. Usage: python scripts/screenshots.py [--question Q] [--gold G] [--alpha A] [--out DIR]
(needs `bash scripts/setup.sh --tests` for Chromium; the policy is the default or $ROUTER_STUDIO_POLICY)
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from support.browser import ARGS, CHROMIUM  # noqa: E402

from router_core.policy import load_policies  # noqa: E402
from storage import TraceStore  # noqa: E402
from ui.app import build, launch  # noqa: E402
from ui.studio import Studio  # noqa: E402

QUESTION = "Which country is the birthplace of the director of the film Interstellar?"
GOLD = "England|United Kingdom"
RUN_TIMEOUT_MS = 600_000
WIDTH, HEIGHT = 1440, 900


def eval_run(db: Path) -> None:
    """A small real eval run in the store (for the Evaluations view), through the README's own command."""
    cmd = [sys.executable, str(ROOT / "app.py"), "eval", "--db", str(db), "--dataset", "multi_hop", "--limit", "2",
           "--alpha", "0,1", "--baselines", "largest", "--report-dir", str(db.parent / "report")]
    print("· " + " ".join(cmd[1:]), flush=True)
    subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--question", default=QUESTION)
    ap.add_argument("--gold", default=GOLD)
    ap.add_argument("--alpha", default="0")
    ap.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        eval_run(Path(tmp) / "traces.sqlite")
        store = TraceStore(str(Path(tmp) / "traces.sqlite"))
        studio = Studio.from_files(store, load_policies(), None)
        print(f"· policy {studio.policies.default}: loading it and reading its instructions", flush=True)
        studio.warm_up().join()
        demo = build(studio)
        _, url, _ = launch(demo, server_name="127.0.0.1", server_port=None, prevent_thread_lock=True, quiet=True)
        url = url.rstrip("/")
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                ctx = browser.new_context(viewport={"width": WIDTH, "height": HEIGHT})
                page = ctx.new_page()
                page.set_default_timeout(60_000)
                page.goto(url)
                page.wait_for_selector("#rs-run")
                page.fill("#rs-question textarea", args.question)
                page.fill("#rs-gold textarea", args.gold)
                alpha = page.locator("#rs-alpha input[type=number]")
                alpha.fill(args.alpha)
                alpha.press("Enter")
                print(f"· asking: {args.question}", flush=True)
                page.click("#rs-run")
                page.wait_for_selector("#rs-status .rs-summary", timeout=RUN_TIMEOUT_MS)
                print(f"· {page.inner_text('#rs-status')}", flush=True)
                page.screenshot(path=str(out / "live.png"), full_page=True)
                page.locator("#decomposition").screenshot(path=str(out / "graph.png"))
                sid = store.list_sessions().ids[0]
                sweep(page, out)
                exported(ctx, store, sid, out, Path(tmp))
                page.goto(url)
                page.wait_for_selector("#rs-run")
                page.get_by_role("tab", name="Evaluations").click()
                page.wait_for_selector("#rs-e-table table")
                page.wait_for_timeout(1000)
                page.screenshot(path=str(out / "evaluations.png"), full_page=True)
                page.goto(f"{url}/?session={sid}")
                page.wait_for_selector("#rs-replay-header .rs-summary")
                page.screenshot(path=str(out / "explorer.png"), full_page=True)
                page.locator("#rs-lesson input[type=checkbox]").check()
                page.wait_for_function("() => (document.querySelector('#rs-caption') || {}).innerText"
                                       "?.includes('Press →')")
                page.evaluate("() => document.activeElement && document.activeElement.blur()")
                for n in (0, 1):
                    page.keyboard.press("ArrowRight")
                    page.wait_for_function(f"() => document.querySelector('#rs-caption').innerText"
                                           f".includes('Step {n}')")
                page.wait_for_timeout(1500)  # the charts of the step shown finish drawing (not the pending grey)
                page.screenshot(path=str(out / "lesson.png"), full_page=False)
                ctx.close()
                browser.close()
        finally:
            demo.close()
            store.close()
    print(f"· saved live, graph, explorer, lesson, sweep, compare, exported and evaluations .png in {out}")
    return 0


def sweep(page, out: Path) -> None:
    """The question of the run swept at α 0 and 1 on the Live tab, then those two runs in Compare."""
    page.fill("#rs-sweep-alphas textarea", "0, 1")
    page.click("#rs-sweep-run")
    page.wait_for_function("() => document.querySelector('#rs-status').innerText.includes('swept')",
                           timeout=2 * RUN_TIMEOUT_MS)
    page.evaluate("() => window.scrollTo(0, 0)")
    page.wait_for_timeout(800)
    page.screenshot(path=str(out / "sweep.png"), full_page=True)
    page.click("#rs-compare-again")
    page.wait_for_selector("#rs-compare-table table")
    page.wait_for_timeout(1200)
    page.screenshot(path=str(out / "compare.png"), full_page=True)


def exported(ctx, store: TraceStore, sid: str, out: Path, tmp: Path) -> None:
    """The session's standalone page, opened from disk as a recipient would."""
    from ui.export_html import session_page
    f = tmp / "session.html"
    f.write_text(session_page(*store.load_session(sid)), encoding="utf-8")
    page = ctx.new_page()
    page.goto(f.as_uri())
    page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot svg.main-svg').length >= 3")
    page.wait_for_timeout(800)
    page.screenshot(path=str(out / "exported.png"), full_page=True)
    page.close()


if __name__ == "__main__":
    sys.exit(main())
