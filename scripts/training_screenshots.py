"""Retake the Training tab's README screenshots from the shipped adapter's real training run (Chromium via Playwright).

Loads the run that made assets/adapters/<name>/adapter.gguf (its training_run.json and trajectories.jsonl) into a
fresh store, serves the app, and saves in docs/screenshots/ at 1440 × 900: training.png (the tab on that run),
trajectory.png (a kept trajectory replayed in the Explorer, its reward's terms in the header) and, with --compare,
before_after.png (one question of the run answered by the base and the trained policy, run now, side by side in
Compare). Usage: python scripts/training_screenshots.py [--adapter trained-qwen2.5-0.5b] [--compare] [--out DIR]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from support.browser import ARGS, CHROMIUM  # noqa: E402

from router_core.policy import load_policies  # noqa: E402
from storage import TraceStore  # noqa: E402
from training.bundle import SHIPPED_DIR, load_bundle  # noqa: E402
from ui.app import build, launch  # noqa: E402
from ui.studio import Studio  # noqa: E402

WIDTH, HEIGHT = 1440, 900


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--adapter", default="trained-qwen2.5-0.5b", help="a folder under assets/adapters")
    ap.add_argument("--compare", action="store_true", help="also run one question before and after training")
    ap.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        store = TraceStore(str(Path(tmp) / "traces.sqlite"))
        rid, report = load_bundle(store, SHIPPED_DIR / args.adapter)
        print(f"· loaded {rid}: sessions {report}", flush=True)
        demo = build(Studio.from_files(store, load_policies(), None))
        _, url, _ = launch(demo, server_name="127.0.0.1", server_port=None, prevent_thread_lock=True, quiet=True)
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                page = browser.new_context(viewport={"width": WIDTH, "height": HEIGHT}).new_page()
                page.set_default_timeout(60_000)
                page.goto(url.rstrip("/"))
                page.get_by_role("tab", name="Training").click()
                page.wait_for_function("() => document.querySelector('#rs-t-status').innerText.includes('step')")
                page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot svg.main-svg').length >= 3")
                page.wait_for_timeout(1200)
                page.screenshot(path=str(out / "training.png"), full_page=False)
                page.locator("#rs-t-table .virtual-row", has_text="✓ kept").first.locator(".body-cell").nth(3).click()
                page.wait_for_selector(".rs-trained")
                page.wait_for_timeout(1500)
                page.screenshot(path=str(out / "trajectory.png"), full_page=False)
                shots = ["training", "trajectory"]
                if args.compare:
                    page.get_by_role("tab", name="Training").click()
                    page.get_by_text("Before and after").click()
                    page.click("#rs-t-ba-go")
                    page.wait_for_selector("#rs-compare-table table", timeout=600_000)
                    page.wait_for_function("() => document.querySelector('#rs-compare-summary [role=grid]')"
                                           "?.getAttribute('aria-rowcount') === '3'")
                    page.wait_for_timeout(1500)
                    page.screenshot(path=str(out / "before_after.png"), full_page=True)
                    shots.append("before_after")
                browser.close()
        finally:
            demo.close()
            store.close()
    print(f"· saved {', '.join(s + '.png' for s in shots)} in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
