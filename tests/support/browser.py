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
