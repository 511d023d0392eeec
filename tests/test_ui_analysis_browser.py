"""Error analysis in a real browser: an analyst filters wrong sessions by method and dataset, clicks a count in the
failure breakdown and lands on exactly those sessions, reads answer, gold, EM and $ without scrolling sideways at
1440 px, and diffs two eval runs in the Evaluations tab. Stored sessions only (no model runs)."""
from __future__ import annotations

import pytest
from support.browser import MARKS, new_page, plot_misfits
from support.servers import served_studio
from test_diff import add

from router_core.policy import load_policies
from storage import SessionFilter, TraceStore
from ui.studio import Studio

pytestmark = MARKS


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    store = TraceStore(str(tmp_path_factory.mktemp("analysis") / "a.sqlite"))
    for item, ans in (("i1", "Paris"), ("i2", "Danube"), ("i3", "1970"), ("i4", "Spielberg")):
        add(store, "A", item, ans, method="preset-a")
        add(store, "A", item, "Rome", method="baseline/largest")
    for item, ans in (("i1", "Paris"), ("i2", "Rhine"), ("i3", "1969"), ("i4", "Lucas"), ("i5", "Austen")):
        add(store, "B", item, ans, method="preset-b")
    studio = Studio.from_files(store, load_policies(), None)
    with served_studio(studio) as url:
        yield url, store
    store.close()


def _pick(page, elem_id: str, value: str) -> None:
    """Type into a Gradio dropdown that takes its own values, and confirm."""
    box = page.locator(f"#{elem_id} input")
    box.click()
    box.fill(value)
    box.press("Enter")


def test_filter_wrong_by_method_and_dataset_then_a_breakdown_cell_lists_those_sessions(app, browser):
    url, store = app
    ctx, page = new_page(browser, 1440, 900)
    try:
        page.goto(url)
        page.get_by_role("tab", name="Explorer").click()
        page.wait_for_selector("#rs-breakdown .virtual-row")
        page.get_by_role("radio", name="wrong").check()
        _pick(page, "rs-f-method", "baseline/largest")
        _pick(page, "rs-f-dataset", "demo")
        page.click("#rs-search")
        page.wait_for_function("document.querySelector('#rs-page-info').innerText.includes('of 4')")
        # the key columns are inside the window: nothing an analyst needs sits to the right of it
        for name in ("answer", "gold", "EM", "why wrong", "$"):
            head = page.locator("#rs-table th", has_text=name).first
            box = head.bounding_box()
            assert box and box["x"] + box["width"] <= 1440, (name, box)
        # the breakdown: every wrong baseline answer here is "Rome", which its reply states (wrong_fact)
        row = page.locator("#rs-breakdown .virtual-row", has_text="wrong fact:").first
        cells = row.locator(".body-cell")
        assert cells.nth(1).inner_text().strip() == "4"
        assert "wrong_fact" not in page.locator("#rs-breakdown").inner_text()  # kinds in words, not identifiers
        page.get_by_role("radio", name="any").check()  # widen the set again: the cell must carry its own filters
        _pick(page, "rs-f-method", "")
        page.click("#rs-search")
        page.wait_for_function("document.querySelector('#rs-page-info').innerText.includes('of 13')")
        row = page.locator("#rs-breakdown .virtual-row", has_text="wrong fact:").first
        heads = [h.strip() for h in page.locator("#rs-breakdown th").all_inner_texts()]
        col = heads.index("router (preset-b)")
        want = store.list_sessions(SessionFilter(correct=False, failure="wrong_fact", policy="preset-b")).total
        assert row.locator(".body-cell").nth(col).inner_text().strip() == str(want) == "2"
        row.locator(".body-cell").nth(col).click()
        page.wait_for_function("document.querySelector('#rs-page-info').innerText.includes('of 2')")
        table = page.inner_text("#rs-table")
        assert table.count("router (preset-b)") == 2 and "Rhine" in table and "Lucas" in table
        assert page.locator("#rs-f-failure input").input_value() == "wrong fact"  # words, the kind behind them
        assert page.locator("#rs-page-info").bounding_box()["y"] < 900  # scrolled to the sessions it lists
        # the same counts by the model called: a cell sets the Model filter instead
        page.get_by_role("radio", name="any").check()
        _pick(page, "rs-f-failure", "")
        _pick(page, "rs-f-method", "")
        page.get_by_role("radio", name="model").check()
        page.wait_for_selector("#rs-breakdown th :text('Qwen2.5-0.5B')")
        row = page.locator("#rs-breakdown .virtual-row", has_text="wrong fact:").first
        row.locator(".body-cell").nth(2).click()
        page.wait_for_function("document.querySelector('#rs-page-info').innerText.includes('of 8')")
        assert page.locator("#rs-f-model input").input_value() == "Qwen2.5-0.5B"
    finally:
        ctx.close()


@pytest.mark.parametrize("width, height", [(1440, 900), (1024, 768)])
def test_evaluations_tab_opens_on_the_newest_run_with_charts_that_fit(app, browser, width, height):
    """Opened, the tab shows the newest run at once (not a blank form); each chart fits its box and the window."""
    url, _ = app
    ctx, page = new_page(browser, width, height)
    try:
        page.goto(url)
        page.get_by_role("tab", name="Evaluations").click()
        page.wait_for_selector("#rs-e-msg :text('finished sessions')")
        assert page.locator("#rs-e-runs").inner_text().count("B") >= 1  # run B is the newest
        page.wait_for_function("() => document.querySelectorAll('#rs-e-table table tbody tr').length > 0")
        page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot svg.main-svg').length >= 3")
        page.wait_for_timeout(500)  # plotly's own resize after the column settles
        assert plot_misfits(page) == []
        # every table header breaks between words, never inside one ("wron g", "grounde d")
        split = page.evaluate("""() => {
          const out = [];
          const shown = [...document.querySelectorAll('[id^="rs-e-"] th')].filter(th => th.offsetParent !== null);
          for (const th of shown) {
            const walk = document.createTreeWalker(th, NodeFilter.SHOW_TEXT);
            for (let n = walk.nextNode(); n; n = walk.nextNode()) {
              for (const m of n.data.matchAll(/\\S+/g)) {
                const r = document.createRange();
                r.setStart(n, m.index); r.setEnd(n, m.index + m[0].length);
                const lines = new Set([...r.getClientRects()].filter(b => b.width > 0).map(b => Math.round(b.top)));
                if (lines.size > 1) out.push(m[0]);
              }
            }
          }
          return [shown.length, out]; }""")
        assert split[0] > 20 and split[1] == [], split
    finally:
        ctx.close()


def _choose(page, elem_id: str, label: str) -> None:
    """Pick one of a Gradio dropdown's choices by typing the start of its label and clicking the option."""
    box = page.locator(f"#{elem_id} input")
    box.click()
    box.fill(label)
    page.locator("ul[role='listbox'] li", has_text=label).first.click()


def _in_view(page, selector: str, height: int) -> bool:
    box = page.locator(selector).bounding_box()
    return bool(box) and 0 <= box["y"] < height - 40


def test_evaluations_tab_diffs_two_runs(app, browser):
    url, _ = app
    ctx, page = new_page(browser, 1440, 900)
    try:
        page.goto(url)
        page.get_by_role("tab", name="Evaluations").click()
        _choose(page, "rs-e-run-a", "A · router (preset-a) · α 0")
        _choose(page, "rs-e-run-b", "B · router (preset-b) · α 0")
        page.click("#rs-e-diff")
        page.wait_for_selector("#rs-e-diff-msg :text('1 gained, 1 lost')")
        items = page.inner_text("#rs-e-diff-items")
        assert "gained" in items and "lost" in items and "1969" in items and "Rhine" in items
        assert "wrong fact" in items  # each side's suggested failure kind beside its answer
        _choose(page, "rs-e-run-b", "A · router (preset-a) · α 0")
        page.click("#rs-e-diff")
        page.wait_for_selector("#rs-e-diff-msg :text('a side compared with itself')")
    finally:
        ctx.close()


def test_an_evaluation_item_and_a_deep_link_open_their_replay_in_view(app, browser):
    """The replay is ~1,700 px down the Explorer: opening one scrolls to it, and to the message for an unknown id."""
    url, store = app
    ctx, page = new_page(browser, 1440, 900)
    try:
        page.goto(url)
        page.get_by_role("tab", name="Evaluations").click()
        page.wait_for_selector("#rs-e-items .virtual-row")
        page.locator("#rs-e-items .virtual-row").first.locator(".body-cell").nth(1).click()
        page.wait_for_selector("#rs-replay-header :text('Question i')")
        page.wait_for_timeout(1500)  # the scroll has settled (it repeats while the layout moves)
        assert _in_view(page, "#rs-replay-header", 900), page.evaluate("window.scrollY")
        sid = store.list_sessions(SessionFilter(run_id="B")).rows["id"].iloc[0]
        for link, text in ((f"{url}?session={sid}", "Question i"), (f"{url}?session=nope-no-such-id", "nope")):
            page.goto(link)
            page.wait_for_selector(f"#rs-replay-header :text('{text}')")
            page.wait_for_timeout(1500)
            assert _in_view(page, "#rs-replay-header", 900), (link, page.evaluate("window.scrollY"))
            assert page.evaluate("window.scrollY") > 600  # it did move: the replay is not in the first screen
    finally:
        ctx.close()


def test_alpha_0_against_alpha_1_as_two_sides_offered_whenever_the_tab_is_shown(app, browser):
    """An α 1 evaluation stored after the page opened is a side of its own the next time the tab is shown."""
    url, store = app
    ctx, page = new_page(browser, 1440, 900)
    try:
        page.goto(url)
        page.get_by_role("tab", name="Evaluations").click()
        page.wait_for_selector("#rs-e-msg :text('finished sessions')")
        for item, ans in (("i1", "Rome"), ("i2", "Danube"), ("i3", "1969"), ("i4", "Lucas")):
            add(store, "A", item, ans, method="preset-a", alpha=1.0)
        page.get_by_role("tab", name="Explorer").click()
        page.get_by_role("tab", name="Evaluations").click()
        _choose(page, "rs-e-run-a", "A · router (preset-a) · α 0")
        _choose(page, "rs-e-run-b", "A · router (preset-a) · α 1")
        page.click("#rs-e-diff")
        page.wait_for_selector("#rs-e-diff-msg :text('4 shared item(s): 1 gained, 1 lost')")
    finally:
        ctx.close()


def test_alpha_typed_outside_0_to_1_gets_a_line_instead_of_a_silent_change(app, browser):
    """The slider keeps α within [0, 1] (5 runs as 1): a line under it says so; a value within clears it."""
    url, _ = app
    ctx, page = new_page(browser, 1024, 768)
    try:
        page.goto(url)
        box = page.locator("#rs-alpha input[type=number]")
        box.fill("5")
        box.press("Tab")
        note = page.locator("#rs-alpha-note")
        note.wait_for()
        assert note.inner_text() == "α is between 0 and 1: 5 runs as 1." and note.is_visible()
        box.fill("-0.5")
        box.press("Tab")
        page.wait_for_selector("#rs-alpha-note:has-text('-0.5 runs as 0')")
        box.fill("0.5")
        box.press("Tab")
        page.wait_for_selector("#rs-alpha-note", state="detached")
    finally:
        ctx.close()


def test_the_question_box_takes_no_more_than_the_limit_and_stays_a_few_lines_high(app, browser):
    from router_core.question import QUESTION_MAX_CHARS
    url, _ = app
    ctx, page = new_page(browser, 1440, 900)
    try:
        page.goto(url)
        box = page.locator("#rs-question textarea")
        before = box.bounding_box()["height"]
        box.fill("Which river flows through the capital of Hungary? " * 200)  # 10,200 characters
        assert len(box.input_value()) == QUESTION_MAX_CHARS
        assert box.bounding_box()["height"] <= max(before, 1) * 4 + 40  # max_lines 4, not 20
    finally:
        ctx.close()
