"""The Training tab in a real browser, at a projector's 1440×900 and a laptop's 1024×768: the status line in the
first viewport, the charts inside their boxes, the trajectories listed, a click that opens one in the Explorer with
its reward's terms beside the answer, and a run written while the page is open moving on screen. Stored runs only."""
from __future__ import annotations

import pytest
from support.browser import MARKS, new_page, plot_misfits
from support.servers import served_studio
from support.ui_fixtures import write_training_run

from router_core.policy import load_policies
from storage import TraceStore
from storage import training as stored
from ui.studio import Studio

pytestmark = MARKS
SIZES = [(1440, 900), (1024, 768)]


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    store = TraceStore(str(tmp_path_factory.mktemp("training") / "t.sqlite"))
    rid = write_training_run(store)
    studio = Studio.from_files(store, load_policies(), None)
    with served_studio(studio) as url:
        yield url, store, rid
    store.close()


def _open_tab(page, url: str) -> None:
    page.goto(url)
    page.get_by_role("tab", name="Training").click()
    page.wait_for_selector("#rs-t-status p", timeout=30_000)


def _overlaps(page, ids: list[str]) -> list[str]:
    boxes = {i: page.locator(f"#{i}").bounding_box() for i in ids}
    bad = []
    for a in ids:
        for b in ids:
            if a < b and boxes[a] and boxes[b]:
                x, y = boxes[a], boxes[b]
                if x["x"] < y["x"] + y["width"] - 1 and y["x"] < x["x"] + x["width"] - 1 and \
                        x["y"] < y["y"] + y["height"] - 1 and y["y"] < x["y"] + x["height"] - 1:
                    bad.append(f"{a} overlaps {b}")
    return bad


@pytest.mark.parametrize("width, height", SIZES)
def test_status_first_charts_fit_and_a_click_replays_the_trajectory(app, browser, width, height):
    url, store, rid = app
    ctx, page = new_page(browser, width, height)
    try:
        _open_tab(page, url)
        status = page.locator("#rs-t-status")
        assert "fixture-run" in status.inner_text() and "step 6 of 6" in status.inner_text()
        box = status.bounding_box()
        assert box and box["y"] + min(box["height"], 30) <= height, box  # in the first viewport
        page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot svg.main-svg').length >= 3")
        page.wait_for_timeout(500)
        assert plot_misfits(page) == []
        assert _overlaps(page, ["rs-t-curves", "rs-t-reasons", "rs-t-rewards"]) == []
        words = page.inner_text("#rs-t-words")
        assert "α 0" in words and "wrong answer" in words and "too_dear" not in words  # reasons in words
        rows = page.locator("#rs-t-table .virtual-row")  # the table draws the rows in view (virtual scrolling)
        assert rows.count() >= 10 and rows.first.locator(".body-cell").nth(3).inner_text().strip() == \
            stored.trajectories(store, rid)[0]["question"]
        kept = page.locator("#rs-t-table .virtual-row", has_text="✓ kept").first
        kept.locator(".body-cell").nth(3).click()  # the question cell
        page.wait_for_selector(".rs-trained", timeout=30_000)
        header = page.inner_text(".rs-summary")
        assert "training run fixture-run" in header and "(1 − α) + α · R_cost" in header
    finally:
        ctx.close()


def test_a_run_written_from_a_terminal_moves_on_screen(app, browser):
    """`app.py train` writes the store as it goes; the page, open on that run, follows it without a click."""
    url, store, _ = app
    live = write_training_run(store, name="live-run", status="running")
    ctx, page = new_page(browser, 1440, 900)
    try:
        _open_tab(page, url)
        page.locator("#rs-t-run input").click()
        page.get_by_role("option", name="live-run", exact=False).first.click()
        page.wait_for_function("() => document.querySelector('#rs-t-status').innerText.includes('step 6 of 6')")
        stored.add_point(store, live, {"step": 7, "epoch": 2.3, "loss": 0.55, "learning_rate": 1e-5, "tokens": 2100,
                                       "seconds": 70.0}, max_steps=8)
        page.wait_for_function("() => document.querySelector('#rs-t-status').innerText.includes('step 7 of 8')",
                               timeout=20_000)
        assert "0.550" in page.inner_text("#rs-t-status")
        stored.finish_run(store, live, status="done")
        page.wait_for_function("() => document.querySelector('#rs-t-status').innerText.startsWith('✓')",
                               timeout=20_000)
    finally:
        ctx.close()


@pytest.mark.parametrize("width, height", SIZES)
def test_the_exported_training_page_opens_offline_fits_and_runs_no_payload(app, browser, tmp_path, width, height):
    _, store, rid = app
    from ui.export_training import training_page
    f = tmp_path / "training.html"
    f.write_text(training_page(stored.get_run(store, rid), stored.points(store, rid), stored.trajectories(store, rid)),
                 encoding="utf-8")
    ctx, page = new_page(browser, width, height)
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    try:
        page.goto(f.as_uri())
        page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot svg.main-svg').length >= 3")
        page.wait_for_timeout(400)
        assert plot_misfits(page) == []
        assert "step 6 of 6" in page.inner_text("#rs-t-status")
        assert "<script>" in page.inner_text("#rs-t-table")  # the payload, as the characters it is
        assert page.evaluate("() => window.__pwned") is None
        assert all(u.startswith("file://") for u in requests), requests
    finally:
        ctx.close()


def test_a_fresh_store_loads_the_shipped_adapters_run_with_one_click(browser, tmp_path):
    """What a newcomer sees after the README's first command: an empty tab that offers the shipped run, and, one
    click later, that run's status, card and curves (its sessions imported for replay)."""
    from training.bundle import SHIPPED_DIR, load_bundle
    with TraceStore(str(tmp_path / "fresh.sqlite")) as store, \
            served_studio(Studio.from_files(store, load_policies(), None)) as url:
        ctx, page = new_page(browser, 1440, 900)
        try:
            _open_tab(page, url)
            assert "No training run stored yet" in page.inner_text("#rs-t-status")
            page.click("#rs-t-load")
            page.wait_for_function("() => document.querySelector('#rs-t-status').innerText.includes('step 162')",
                                   timeout=60_000)
            assert "trained-qwen2.5-0.5b" in page.inner_text("#rs-t-status")
            assert "324 examples" in page.inner_text("#rs-t-card")
            assert not page.locator("#rs-t-load").is_visible()  # nothing left to load
            rid = stored.list_runs(store)[0]["id"]
            assert store.list_sessions().total == len({t["session_id"] for t in stored.trajectories(store, rid)})
        finally:
            ctx.close()
    with TraceStore(str(tmp_path / "again.sqlite")) as other:  # the same files load the same run elsewhere
        assert load_bundle(other, SHIPPED_DIR / "trained-qwen2.5-0.5b")[0] == rid
