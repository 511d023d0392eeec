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
# named as the longest shipped preset: its name must fit the policy drop-down at 1024 px
GUIDED = Policy(name="prompted-qwen2.5-1.5b-teach", engine="llamacpp", model="fake:policy", mode="guided")


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


def scripted_studio(store: TraceStore, router_script, candidate_reply, routes: int) -> Studio:
    """The studio on the paced scripted router (`routes` replies read before it answers) and scripted candidates."""
    pool = fake_pool()
    policy = Paced(router_script, scores=routes_then_answers(routes, {"Tiny": -2.0, "Mid": -1.2, "Big": -0.4}))
    return Studio(store=store, policies=PolicyBook(default=GUIDED.name, policies=[GUIDED]),
                  pools={pool.name: pool}, default_pool=pool.name,
                  engines=fake_provider(policy, default=FakeEngine(reply=candidate_reply)))


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    store = TraceStore(str(tmp_path_factory.mktemp("teach") / "t.sqlite"))
    with served_studio(scripted_studio(store, script, reply, 2)) as url:
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
        fits = page.evaluate("""() => [...document.querySelectorAll('#rs-policy input')].map(i => {
            const cs = getComputedStyle(i), pen = document.createElement('canvas').getContext('2d');
            pen.font = cs.font;
            const textEnd = i.getBoundingClientRect().left + parseFloat(cs.paddingLeft) + pen.measureText(i.value).width;
            return [i.value, i.scrollWidth <= i.clientWidth,
                    textEnd <= i.parentElement.querySelector('.icon-wrap').getBoundingClientRect().left];
        })""")
        assert fits == [[GUIDED.name, True, True]], fits  # the policy's whole name, clear of the drop-down arrow
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


ARC_ENDS = """() => {
  const row = document.querySelector('#decomposition-replay .rs-g-row[data-arcs]');
  const path = row && row.querySelector('svg.rs-g-arcs path');
  if (!path) return null;
  const nums = path.getAttribute('d').match(/-?[0-9.]+/g).map(Number);
  const svg = row.querySelector('svg.rs-g-arcs').getBoundingClientRect();
  const rect = sel => { const r = row.querySelector(sel).getBoundingClientRect();
                        return {left: r.left - svg.left, right: r.right - svg.left, top: r.top - svg.top,
                                bottom: r.bottom - svg.top}; };
  return {x0: nums[0], y0: nums[1], lane: nums[2], x1: nums[5], y1: nums[4], src: rect('.rs-g-reply[data-step="1"]'),
          dst: rect('.rs-g-sub[data-step="5"]'), dstReply: rect('.rs-g-reply[data-step="5"]')};
}"""


@pytest.mark.parametrize("width, height", SIZES)
def test_a_bridge_from_two_hops_back_is_drawn_from_its_reply(app, browser, width, height):
    """A comparison hop carries facts from the reply just before it and from one two hops back: the far one gets an
    arc that starts at the bottom of its own reply and ends at the sub-question's left edge, and the label before
    that sub-question names its source step. A session link lands on the replay, not the filters above it."""
    from support.ui_fixtures import write_comparison_session
    url, store = app
    sid = write_comparison_session(store)
    ctx, page = new_page(browser, width, height)
    try:
        page.goto(f"{url}/?session={sid}")
        page.wait_for_selector("#decomposition-replay svg.rs-g-arcs path")
        page.wait_for_timeout(500)  # the scroll after the replay is drawn
        header = page.locator("#rs-replay-header").bounding_box()
        assert header is not None and 0 <= header["y"] < height, header
        assert "from step 1" in page.locator("#decomposition-replay .rs-g-far").inner_text()
        a = page.evaluate(ARC_ENDS)
        assert a is not None
        assert a["src"]["left"] < a["x0"] < a["src"]["right"] and abs(a["y0"] - a["src"]["bottom"]) <= 1, a
        assert abs(a["x1"] - a["dst"]["left"]) <= 2 and a["dst"]["top"] < a["y1"] < a["dst"]["bottom"], a
        assert a["lane"] > a["src"]["bottom"] and a["lane"] > a["dstReply"]["bottom"], a  # below every card
    finally:
        ctx.close()


def test_the_explorer_pickers_list_what_the_store_holds_now(app, browser):
    """The page was built before any session ran; a run on the Live tab, then the Explorer tab: "Model used" and
    "Method" offer what that run used (they listed the models of startup only)."""
    url, store = app
    ctx, page = new_page(browser, 1440, 900)
    try:
        start(page, url)
        page.click("#rs-run")
        page.wait_for_selector("#rs-status .rs-summary", timeout=60_000)
        used = {m for s in store.load_steps(store.list_sessions().ids[0]) if s.sent for m in [s.request_model]}
        page.get_by_role("tab", name="Explorer").click()
        page.wait_for_timeout(800)
        for box, want in (("#rs-f-model", used), ("#rs-f-method", {GUIDED.name})):
            page.click(f"{box} input")
            page.wait_for_selector("[role=listbox] [role=option]")
            offered = set(page.locator("[role=listbox] [role=option]").all_inner_texts())
            assert want and {w.strip() for w in want} <= {o.strip() for o in offered}, (box, want, offered)
            page.keyboard.press("Escape")
            page.wait_for_timeout(200)
    finally:
        ctx.close()


def three_hops(prompt: str, stop) -> str:
    """The third sub-question carries a fact from the first reply and one from the second."""
    hops = prompt.count(" </information>\n")
    if "</think>" in stop:
        return "The next fact.</think>"
    if "</search>" in stop:
        return [" Who directed the film Interstellar? </search>",
                " What year was the film Interstellar released? </search>",
                " Where was Christopher Nolan born in 2014? </search>"][min(hops, 2)]
    return " England </answer>"


def three_replies(question: str) -> str:
    if "directed" in question:
        return "Interstellar was directed by Christopher Nolan."
    return "Interstellar was released in 2014." if "year" in question else "Nolan was born in London, England."


def test_a_live_run_draws_the_arc_of_a_bridge_from_two_hops_back(browser, tmp_path):
    """The live graph is updated in place as hops land; the arc from the first reply appears once the third
    sub-question carries its fact (it was missing when only a size change redrew arcs)."""
    store = TraceStore(str(tmp_path / "live.sqlite"))
    with served_studio(scripted_studio(store, three_hops, three_replies, 3)) as url:
        ctx, page = new_page(browser, 1440, 900)
        try:
            start(page, url)
            page.click("#rs-run")
            page.wait_for_selector("#rs-status .rs-summary", timeout=60_000)
            page.wait_for_selector("#decomposition .rs-g-row[data-arcs] svg.rs-g-arcs path")
            d = page.evaluate("() => document.querySelector('#decomposition svg.rs-g-arcs path').getAttribute('d')")
            src = page.locator('#decomposition .rs-g-reply[data-step="1"]').bounding_box()
            svg = page.locator("#decomposition svg.rs-g-arcs").bounding_box()
            x0 = float(d.split()[0][1:]) + svg["x"]
            assert src["x"] < x0 < src["x"] + src["width"], (d, src, svg)
        finally:
            ctx.close()
    store.close()


def test_the_choice_chart_shows_the_three_terms_of_a_quality_choice(app, browser):
    """A stored session whose choice used the quality estimate: its replay's Choice chart names each model's
    expected share right on the bar, and the three terms in the tooltip; the header says how the model was chosen."""
    import numpy as np

    from router_core.choice import adjust
    from router_core.step import Step
    from storage.recorder import recorded
    url, store = app
    names, costs = ["Tiny", "Mid", "Big"], [0.0, 0.3, 1.0]
    c = adjust(names, [np.log(0.1), np.log(0.05), np.log(0.85)], costs, 0.8, quality=[0.2, 0.71, None],
               prior_weight=0.5, quality_weight=8.0)
    sid = "quality-choice-session"
    steps = [Step(sid, 0, "think", text="I need the capital first.", started_at=1.0, ended_at=2.0),
             Step(sid, 1, "route", query="What is the capital of Hungary?", request_model=c.chosen,
                  written_model=c.chosen, response="Budapest.", choice=c, started_at=2.0, call_started_at=2.5,
                  call_ended_at=3.0, ended_at=3.0, turn=1),
             Step(sid, 2, "answer", text="Budapest", started_at=3.0, ended_at=3.5, turn=1)]
    for _ in recorded(store, iter(steps), session_id=sid, question="What is the capital of Hungary?", alpha=0.8,
                      policy=GUIDED.name, engine="llamacpp", pool=fake_pool().snapshot(),
                      settings={"interventions": [], "run": {"quality": True, "prior_weight": 0.5,
                                                             "quality_weight": 8.0}}):
        pass
    ctx, page = new_page(browser, 1440, 900)
    try:
        page.goto(f"{url}/?session={sid}")
        page.wait_for_selector("#rs-replay-header :text('model choice')")
        row = page.locator("#rs-replay-chat").locator("xpath=ancestor::div[contains(@class, 'row')][1]")
        row.get_by_role("tab", name="Choice before / after α").click()
        page.wait_for_timeout(600)
        texts = page.evaluate("() => [...document.querySelectorAll('#rs-r-choice .js-plotly-plot text.bartext')]"
                              ".map(t => t.textContent)")
        assert {"q 0.20", "q 0.71", "q ?"} <= set(texts), texts
        hover = page.evaluate("() => document.querySelector('#rs-r-choice .js-plotly-plot').data"
                              ".map(t => (t.hovertext || []).join(' | ')).join(' || ')")
        assert "prior" in hover and "quality" in hover and "price penalty" in hover and "not calibrated" in hover
        assert plot_misfits(page) == []
    finally:
        ctx.close()
