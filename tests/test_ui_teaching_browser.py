"""Teaching and presenting in a real browser (Debian's Chromium through Playwright): the decomposition graph
grows during a run and a node click selects its step, lesson mode steps with the arrow keys, the α sweep
shows a graph per α, and the exported page works from disk with the network blocked and runs none of the
injection payloads. The router here is the scripted engine, slowed down so the graph visibly grows."""
from __future__ import annotations

import time

import pytest
from support.browser import MARKS, new_page, plot_misfits
from support.fake_engine import FakeEngine, fake_pool, fake_provider, routes_then_answers
from support.servers import served_studio
from support.ui_fixtures import PAYLOADS

from router_core.policy import Policy, PolicyBook
from storage import TraceStore
from ui.studio import Studio

pytestmark = MARKS
Q = "Which country is the birthplace of the director of the film Interstellar?"
GUIDED = Policy(name="scripted-router", engine="llamacpp", model="fake:policy", mode="guided")


class Paced(FakeEngine):
    """The scripted router at a human pace: each generation takes a moment, so steps land one by one."""

    def generate(self, prompt, **kw):
        time.sleep(0.35)
        return super().generate(prompt, **kw)


def script(prompt: str, stop) -> str:
    hops = prompt.count(" </information>\n")
    if "</think>" in stop:
        return ["I need the director of Interstellar first, then his country of birth.",
                "The director is Christopher Nolan. Now I need the country where Christopher Nolan was born.",
                "Christopher Nolan was born in England, so I can answer."][min(hops, 2)] + "</think>"
    if "</search>" in stop:
        return [" Who directed the film Interstellar? </search>",
                " In which country was Christopher Nolan born? </search>"][min(hops, 1)]
    return " England </answer>"


def reply(question: str) -> str:
    if "directed" in question:
        return "Interstellar was directed by Christopher Nolan."
    return "Christopher Nolan was born in London, England."


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    store = TraceStore(str(tmp_path_factory.mktemp("teach") / "t.sqlite"))
    pool = fake_pool()
    policy = Paced(script, scores=routes_then_answers(2, {"Tiny": -2.0, "Mid": -1.2, "Big": -0.4}))
    studio = Studio(store=store, policies=PolicyBook(default=GUIDED.name, policies=[GUIDED]),
                    pools={pool.name: pool}, default_pool=pool.name,
                    engines=fake_provider(policy, default=FakeEngine(reply=reply)))
    with served_studio(studio) as url:
        yield url, store
    store.close()


NODES = "document.querySelectorAll('#decomposition .rs-graph [data-step]').length"


def test_the_graph_grows_during_a_run_and_a_node_click_selects_its_step(app, browser):
    url, store = app
    ctx, page = new_page(browser)
    try:
        page.goto(url)
        page.wait_for_selector("#rs-run")
        page.fill("#rs-question textarea", Q)
        page.fill("#rs-gold textarea", "England|United Kingdom")
        # every state the graph goes through, as the page draws it (polling could miss a short-lived one)
        page.evaluate(f"""() => {{ window.__counts = [];
            new MutationObserver(() => {{ const n = {NODES};
                if (window.__counts[window.__counts.length - 1] !== n) window.__counts.push(n); }})
            .observe(document.body, {{subtree: true, childList: true}}); }}""")
        page.click("#rs-run")
        page.wait_for_selector("#rs-status .rs-summary", timeout=60_000)
        counts = page.evaluate("() => window.__counts")
        grown = [n for n in counts if n]
        assert grown == sorted(grown) and len(set(grown)) >= 3 and grown[-1] == 5, counts  # 2 hops + the answer
        assert page.locator("#decomposition .rs-g-bridge").count() == 1
        assert page.locator("#decomposition mark.rs-g-span").count() == 2  # the span in the reply and the query
        assert "✓ correct" in page.inner_text("#decomposition")
        page.locator('#decomposition .rs-g-sub[data-step="3"]').click()
        page.wait_for_function("() => !!document.querySelector('.rs-selected #rs-live-step-3')")
        assert page.evaluate("() => document.querySelectorAll('.rs-selected').length") == 1
        # narrow window: the graph stacks and stays readable (no horizontal scroll wider than the screen)
        page.set_viewport_size({"width": 420, "height": 900})
        row = "document.querySelector('#decomposition .rs-g-row')"
        scroll, client = page.evaluate(f"() => [{row}.scrollWidth, {row}.clientWidth]")
        assert scroll <= client + 2 <= 422, (scroll, client)
    finally:
        ctx.close()


def test_lesson_mode_steps_with_the_arrow_keys(app, browser):
    url, store = app
    sid = store.list_sessions().ids[0]
    ctx, page = new_page(browser)
    try:
        page.goto(f"{url}/?session={sid}")
        page.wait_for_selector("#rs-replay-header .rs-summary")
        page.locator("#rs-lesson input[type=checkbox]").check()
        page.wait_for_function("() => (document.querySelector('#rs-caption') || {}).innerText"
                               "?.includes('Press →')")
        page.evaluate("() => document.activeElement && document.activeElement.blur()")  # keys go to the page
        page.keyboard.press("ArrowRight")
        page.wait_for_function("() => document.querySelector('#rs-caption').innerText.includes('Step 0')")
        page.keyboard.press("ArrowRight")
        page.wait_for_function("() => document.querySelector('#rs-caption').innerText.includes('Step 1')")
        cap = page.inner_text("#rs-caption")
        assert "sure it needed help" in cap and "It asked Big" in cap and "µ$" in cap
        assert page.locator("#rs-replay-chat .message").count() == 3  # the question and two steps
        page.keyboard.press("ArrowLeft")
        page.wait_for_function("() => document.querySelector('#rs-caption').innerText.includes('Step 0')")
    finally:
        ctx.close()


def test_the_alpha_sweep_shows_a_graph_per_alpha_then_offers_compare(app, browser):
    url, store = app
    before = store.list_sessions().total
    ctx, page = new_page(browser)
    try:
        page.goto(url)
        page.wait_for_selector("#rs-run")
        page.fill("#rs-question textarea", Q)
        page.fill("#rs-sweep-alphas textarea", "0, 0.5, 1")
        page.click("#rs-sweep-run")
        page.wait_for_function("() => document.querySelectorAll('#rs-sweep-out .rs-sweep-col').length === 3 && "
                               "document.querySelector('#rs-status').innerText.includes('swept')", timeout=120_000)
        heads = page.locator("#rs-sweep-out .rs-sweep-head").all_inner_texts()
        assert [h.split(" · ")[0] for h in heads] == ["α 0", "α 0.5", "α 1"]
        assert store.list_sessions().total == before + 3
        page.click("#rs-compare-again")
        page.wait_for_selector("#rs-compare-table table")
        assert page.locator("#rs-compare-table thead th").count() == 4  # the turn column and three sessions
    finally:
        ctx.close()


def test_the_exported_page_works_offline_and_runs_no_payload(app, browser, tmp_path):
    url, store = app
    from support.ui_fixtures import write_session

    from ui.export_html import session_page
    sid = store.list_sessions().ids[0]
    sess, steps, notes = store.load_session(sid)
    page_file = tmp_path / "session.html"
    page_file.write_text(session_page(sess, steps, notes), encoding="utf-8")
    evil = []
    for i, p in enumerate(PAYLOADS):
        s = write_session(store, p, reply=p, answer=p, gold=[p])
        ss, st, nn = store.load_session(s)
        f = tmp_path / f"evil-{i}.html"
        f.write_text(session_page(ss, st, nn), encoding="utf-8")
        evil.append(f)
    ctx = browser.new_context(offline=True)
    requests: list[str] = []
    ctx.on("request", lambda r: requests.append(r.url))
    dialogs: list[str] = []
    try:
        page = ctx.new_page()
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(page_file.as_uri())
        page.wait_for_selector(".js-plotly-plot")
        text = page.inner_text("body")
        assert Q in text and "Who directed the film Interstellar?" in text
        assert "In which country was Christopher Nolan born?" in text and "England" in text
        page.locator('#decomposition [data-step="3"]').first.click()
        page.wait_for_function("() => !!document.querySelector('.rs-selected')")
        for f in evil:
            page.goto(f.as_uri())
            page.wait_for_selector("#decomposition")
            assert page.evaluate("() => window.__pwned") is None
        assert dialogs == []
        assert all(u.startswith("file://") for u in requests), [u for u in requests if not u.startswith("file:")]
    finally:
        ctx.close()


SIZES = [(1440, 900), (1024, 768)]


def chart_tabs_fit(page, chat_id: str) -> None:
    """Show each chart tab beside a step list; each chart, drawn while hidden, must fit its box once shown."""
    row = page.locator(f"#{chat_id}").locator("xpath=ancestor::div[contains(@class, 'row')][1]")
    for name in ("Cost", "Choice before / after α", "Timeline"):
        row.get_by_role("tab", name=name).click()
        page.wait_for_timeout(400)  # the redraw to the box's size
        assert plot_misfits(page) == [], name


def start(page, url: str) -> None:
    page.goto(url)
    page.wait_for_selector("#rs-run")
    page.fill("#rs-question textarea", Q)


@pytest.mark.parametrize("width, height", SIZES)
def test_presenter_sees_status_and_charts_that_fit_after_a_run(app, browser, width, height):
    """As a presenter's projector shows it: after Run, the status is in the first viewport, and each chart tab,
    drawn while hidden, fits its box and the window once shown."""
    url, _ = app
    ctx, page = new_page(browser, width, height)
    try:
        start(page, url)
        page.click("#rs-run")
        page.wait_for_selector("#rs-status .rs-summary", timeout=60_000)
        page.evaluate("() => window.scrollTo(0, 0)")
        box = page.locator("#rs-status").bounding_box()
        assert box is not None and box["y"] + min(box["height"], 40) <= height, (box, height)
        assert page.locator("#rs-chat button[aria-label='Clear']").count() == 0 or \
            not page.locator("#rs-chat button[aria-label='Clear']").first.is_visible()  # no wiping the steps
        chart_tabs_fit(page, "rs-chat")
        page.fill("#rs-sweep-alphas textarea", "0, 2")  # a bad sweep: its error where the presenter looks
        page.click("#rs-sweep-run")
        page.wait_for_selector("#rs-status .rs-bad")
        page.evaluate("() => window.scrollTo(0, 0)")
        box = page.locator("#rs-status .rs-bad").bounding_box()
        assert box is not None and box["y"] + box["height"] <= height, box
    finally:
        ctx.close()


@pytest.mark.parametrize("width, height", SIZES)
def test_the_exported_page_charts_fit(app, browser, tmp_path, width, height):
    url, store = app
    from ui.export_html import session_page
    sid = store.list_sessions().ids[0]
    page_file = tmp_path / "session.html"
    page_file.write_text(session_page(*store.load_session(sid)), encoding="utf-8")
    ctx, page = new_page(browser, width, height)
    try:
        page.goto(page_file.as_uri())
        page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot svg.main-svg').length >= 3")
        page.wait_for_timeout(400)
        assert plot_misfits(page) == []
    finally:
        ctx.close()


@pytest.mark.parametrize("width, height", SIZES)
def test_presenter_geometry_on_a_sweep_its_compare_and_a_replay(app, browser, width, height):
    """The sweep's status in the first viewport; Compare's cost chart and a replay's chart tabs fit their boxes."""
    url, store = app
    ctx, page = new_page(browser, width, height)
    try:
        start(page, url)
        page.fill("#rs-sweep-alphas textarea", "0, 1")
        page.click("#rs-sweep-run")
        page.wait_for_function("() => document.querySelector('#rs-status').innerText.includes('swept')",
                               timeout=120_000)
        page.evaluate("() => window.scrollTo(0, 0)")
        box = page.locator("#rs-status").bounding_box()
        assert box is not None and box["y"] + min(box["height"], 40) <= height, box
        assert page.locator("#rs-sweep-out .rs-sweep-col").count() == 2
        page.click("#rs-compare-again")
        page.wait_for_selector("#rs-compare-table table")
        page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot svg.main-svg').length > 0")
        page.wait_for_timeout(500)
        assert plot_misfits(page) == []
        page.goto(f"{url}/?session={store.list_sessions().ids[0]}")  # a replay, by its deep link
        page.wait_for_selector("#rs-replay-header :text('α')")
        chart_tabs_fit(page, "rs-replay-chat")
    finally:
        ctx.close()
