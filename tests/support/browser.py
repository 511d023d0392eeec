"""Debian's Chromium driven through Playwright, for the browser tests (playwright cannot download browsers here)."""
from __future__ import annotations

import os
from typing import Any, Iterator

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
# every browser test module: marked `browser`, skipped with the reason when Chromium is not installed
MARKS = [pytest.mark.browser,
         pytest.mark.skipif(not os.path.exists(CHROMIUM),
                            reason=f"{CHROMIUM} missing: install Debian's chromium (scripts/setup.sh --tests)")]


def chromium() -> Iterator[Any]:
    """A headless Chromium for a module's tests (use from a fixture: `yield from chromium()`)."""
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def new_page(browser: Any, width: int = 1280, height: int = 900) -> tuple[Any, Any]:
    """A fresh context (own cookies and storage) and its page, with a 60 s default timeout."""
    ctx = browser.new_context(viewport={"width": width, "height": height})
    page = ctx.new_page()
    page.set_default_timeout(60_000)
    return ctx, page


# Each visible plotly chart: its drawn width against its own box and the window, and its title's box against the
# chart's first row title (annotations), measured in the page as a presenter sees it.
_PLOT_GEOMETRY = """() => {
  const out = [];
  for (const plot of document.querySelectorAll('.js-plotly-plot')) {
    const box = plot.getBoundingClientRect();
    if (box.width === 0 || box.height === 0 || plot.offsetParent === null) continue;
    const svg = plot.querySelector('svg.main-svg');
    if (!svg) continue;
    const drawn = svg.getBoundingClientRect();
    const holder = plot.parentElement.getBoundingClientRect();
    const title = plot.querySelector('.g-gtitle text');
    const notes = [...plot.querySelectorAll('.annotation-text')].map(a => a.getBoundingClientRect());
    const t = title ? title.getBoundingClientRect() : null;
    out.push({title: title ? title.textContent : '', drawn: [drawn.left, drawn.right], holder: [holder.left, holder.right],
              window: window.innerWidth, titleBox: t ? [t.left, t.top, t.right, t.bottom] : null,
              notes: notes.map(n => [n.left, n.top, n.right, n.bottom])});
  }
  return out;
}"""


def plot_misfits(page: Any) -> list[str]:
    """What is wrong with the visible charts' geometry, in words (empty when every chart fits its box and the window,
    and no chart title overlaps a row title)."""
    bad = []
    for p in page.evaluate(_PLOT_GEOMETRY):
        name = p["title"][:40] or "untitled chart"
        if p["drawn"][1] > p["holder"][1] + 2 or p["drawn"][0] < p["holder"][0] - 2:
            bad.append(f"{name}: drawn {p['drawn']} outside its box {p['holder']}")
        if p["drawn"][1] > p["window"] + 1:
            bad.append(f"{name}: runs past the window ({p['drawn'][1]:.0f} > {p['window']})")
        t = p["titleBox"]
        for n in p["notes"] if t else []:
            if n[0] < t[2] and t[0] < n[2] and n[1] < t[3] and t[1] < n[3]:
                bad.append(f"{name}: title overlaps a row title")
        if t and t[2] > p["holder"][1] + 2:
            bad.append(f"{name}: title cut at the right ({t[2]:.0f} > {p['holder'][1]:.0f})")
    return bad
