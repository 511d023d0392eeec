"""The Models tab in Chromium: the pool's table shows what the router reads and what was measured of each model, and
fits its box at both sizes (no sideways scroll inside the table)."""
from __future__ import annotations

import pytest
from support.browser import MARKS, new_page
from support.servers import served_studio

from router_core.policy import load_policies
from router_core.pool import load_pool
from storage import TraceStore
from ui.studio import Studio

pytestmark = MARKS


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    with TraceStore(str(tmp_path_factory.mktemp("models") / "t.sqlite")) as store:
        with served_studio(Studio.from_files(store, load_policies(), None)) as u:
            yield u


@pytest.mark.parametrize("width, height", [(1440, 900), (1024, 768)])
def test_the_pool_table_shows_the_measurements_and_fits(url, browser, width, height):
    ctx, page = new_page(browser, width, height)
    try:
        page.goto(url)
        page.get_by_role("tab", name="Models").click()
        page.wait_for_selector("#rs-m-table [role=grid] table")
        text = page.inner_text("#rs-m-table")
        assert "measured here" in text and "description (the router reads it)" in text
        for m in load_pool().models:
            assert m.measured and " ".join(m.measured.split()[:6]) in " ".join(text.split())
        grid = page.evaluate("""() => { const g = document.querySelector('#rs-m-table [role=grid]');
                                         return [g.scrollWidth, g.clientWidth, window.innerWidth,
                                                 document.documentElement.scrollWidth]; }""")
        assert grid[0] <= grid[1] + 1 and grid[3] <= grid[2], grid  # no sideways scroll, in the table or the page
    finally:
        ctx.close()
