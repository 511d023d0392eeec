"""The app in a real browser (Debian's Chromium through Playwright), on the embedded default.

Runs the real loop on the shipped models (route turns capped at 1 to keep the suite short),
replays and annotates in the Explorer, checks a deep link, two browsers at once, Stop, a narrow
window, and that stored script-injection payloads never execute.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support.browser import MARKS, new_page
from support.servers import served_studio
from support.ui_fixtures import PAYLOADS, write_session

from router_core.policy import load_policies
from storage import SessionFilter, TraceStore
from ui.studio import Studio

ROOT = Path(__file__).resolve().parent.parent
RUN_TIMEOUT_MS = 240_000

pytestmark = MARKS


@pytest.fixture(scope="module")
def app(tmp_path_factory, qwen, smol):
    store = TraceStore(str(tmp_path_factory.mktemp("browser") / "ui.sqlite"))
    studio = Studio.from_files(store, load_policies(), None, overrides={"max_turns": 1})
    with served_studio(studio) as url:
        yield url, store
    store.close()


def _cell(page, table: str, text: str):
    """A visible table cell (Gradio's Dataframe also keeps hidden copies of cells for sizing)."""
    return page.locator(f"{table} span.text", has_text=text).first


def _ask(page, url: str, question: str, gold: str = "") -> None:
    page.goto(url)
    page.wait_for_selector("#rs-run")
    page.fill("#rs-question textarea", question)
    if gold:
        page.fill("#rs-gold textarea", gold)
    page.click("#rs-run")


def test_live_run_then_explorer_replay_and_annotate(app, browser):
    url, store = app
    ctx, page = new_page(browser)
    try:
        _ask(page, url, "What is the capital of France?", "Paris")
        page.wait_for_selector("#rs-chat .message.bot", timeout=RUN_TIMEOUT_MS)  # the first streamed step
        page.wait_for_selector("#rs-status .rs-summary", timeout=RUN_TIMEOUT_MS)
        chat = page.inner_text("#rs-chat")
        assert "What is the capital of France?" in chat and "think" in chat and "route" in chat and "Answer:" in chat
        status = page.inner_text("#rs-status")
        assert "EM" in status and "session" in status
        for tab, plot in (("Timeline", "#rs-timeline"), ("Cost", "#rs-cost"), ("Choice before / after α", "#rs-choice")):
            page.get_by_role("tab", name=tab).first.click()  # the charts share one tab strip
            page.wait_for_selector(f"{plot} .js-plotly-plot")
        assert page.locator("#decomposition .rs-graph [data-step]").count() >= 2
        pg = store.list_sessions()
        df = pg.rows
        sid, n = df["id"][0], int(df["n_steps"][0])
        assert df["question"][0] == "What is the capital of France?" and df["status"][0] == "done"

        page.get_by_role("tab", name="Explorer").click()
        page.click("#rs-search")
        cell = _cell(page, "#rs-table", sid[:12])
        cell.wait_for()
        cell.click()
        page.wait_for_selector(f"#rs-replay-header :text('{sid}')")
        msgs = "#rs-replay-chat .message"
        page.wait_for_function(f"document.querySelectorAll('{msgs}').length === {n + 1}")
        page.click("#rs-prev")
        page.wait_for_function(f"document.querySelectorAll('{msgs}').length === {n}")
        page.click("#rs-prev")
        page.wait_for_function(f"document.querySelectorAll('{msgs}').length === {n - 1}")
        page.click("#rs-next")
        page.wait_for_function(f"document.querySelectorAll('{msgs}').length === {n}")

        note = "router should have asked the cheaper model"
        page.fill("#rs-ann-note textarea", note)
        page.fill("#rs-ann-step textarea", "1")
        page.click("#rs-ann-save")
        _cell(page, "#rs-ann-table", note).wait_for()
        ann = store.annotations(sid)
        assert [(a["label"], a["step_idx"], a["note"]) for a in ann] == [("wrong_model", 1, note)]
    finally:
        ctx.close()


def test_deep_link_opens_the_replay(app, browser):
    url, store = app
    sid = write_session(store, "Which river flows through Vienna?", turns=5, reply="The Danube.", answer="Danube")
    ctx, page = new_page(browser)
    try:
        page.goto(f"{url}/?session={sid}")
        page.wait_for_selector(f"#rs-replay-header :text('{sid}')")
        page.wait_for_function("document.querySelectorAll('#rs-replay-chat .message').length === 13")
        assert page.get_by_role("tab", name="Explorer", selected=True).is_visible()
    finally:
        ctx.close()


def test_two_browsers_get_their_own_sessions_and_stop_is_stored(app, browser):
    url, store = app
    qa = "Who wrote the novel Pride and Prejudice?"
    qb = "What is the capital of the country where the Eiffel Tower stands?"
    (ca, pa), (cb, pb) = new_page(browser), new_page(browser)
    try:
        _ask(pa, url, qa)
        _ask(pb, url, qb)
        # b waits for the engine behind a; stop b once its first step has streamed in.
        pb.wait_for_selector("#rs-chat .message.bot", timeout=RUN_TIMEOUT_MS)
        pb.click("#rs-stop")
        pa.wait_for_selector("#rs-status .rs-summary", timeout=RUN_TIMEOUT_MS)
        pb.wait_for_selector("#rs-status .rs-summary", timeout=RUN_TIMEOUT_MS)
        assert qa in pa.inner_text("#rs-chat") and qb not in pa.inner_text("#rs-chat")
        assert qb in pb.inner_text("#rs-chat") and qa not in pb.inner_text("#rs-chat")
        assert "stopped" in pb.inner_text("#rs-status")
        pg = store.list_sessions()
        df, _ = pg.rows, pg.total
        by_q = {q: s for q, s in zip(df["question"], df["status"])}
        assert by_q[qa] == "done" and by_q[qb] == "stopped"
    finally:
        ca.close()
        cb.close()


def test_narrow_window_stays_usable(app, browser):
    url, _ = app
    ctx, page = new_page(browser, width=420, height=860)
    try:
        page.goto(url)
        page.wait_for_selector("#rs-run")
        for sel in ("#rs-question textarea", "#rs-run", "#rs-alpha"):
            box = page.locator(sel).first.bounding_box()
            assert box and box["x"] >= 0 and box["x"] + box["width"] <= 420 + 1, (sel, box)
        assert page.evaluate("document.documentElement.scrollWidth") <= 440
    finally:
        ctx.close()


def test_the_page_draws_an_empty_timeline_once_settled_so_plotly_is_loaded_before_it_is_needed(app, browser):
    url, _ = app
    ctx, page = new_page(browser)
    try:
        page.goto(url)
        page.wait_for_selector("#rs-run")
        page.wait_for_selector("#rs-timeline .js-plotly-plot", timeout=60_000)  # without any run
        assert "No steps yet" in page.inner_text("#rs-timeline")
    finally:
        ctx.close()


def test_stored_injection_payloads_never_execute(app, browser, tmp_path):
    url, store = app
    scratch = TraceStore(str(tmp_path / "scratch.sqlite"))
    evil = " ".join(PAYLOADS)
    ids = [write_session(scratch, PAYLOADS[i] + " capital?", turns=2, reply=evil, answer=PAYLOADS[-1 - i],
                         gold=[PAYLOADS[1]]) for i in range(2)]
    for i, sid in enumerate(ids):
        scratch.annotate(sid, "other", PAYLOADS[i + 2], step_idx=1)
    export = tmp_path / "evil.jsonl"
    with open(export, "w", encoding="utf-8") as f:
        scratch.export_jsonl(f)
    scratch.close()
    # Imported through the real command, into the store the running app reads.
    out = subprocess.run([sys.executable, str(ROOT / "app.py"), "import", str(export), "--db", store.where],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "imported 2" in out.stdout
    replies = [json.loads(line)["steps"][1]["response"] for line in export.read_text().splitlines()]
    assert all(all(p in r for p in PAYLOADS) for r in replies)

    ctx, page = new_page(browser)
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    try:
        page.goto(f"{url}/?session={ids[0]}")
        page.wait_for_selector(f"#rs-replay-header :text('{ids[0]}')")
        page.wait_for_function("document.querySelectorAll('#rs-replay-chat .message').length === 7")
        page.get_by_role("tab", name="Explorer").click()
        page.fill("#rs-f-text textarea", "capital?")
        page.click("#rs-search")
        _cell(page, "#rs-table", ids[1][:12]).wait_for()
        page.get_by_role("tab", name="Compare").click()
        pick = page.locator("#rs-compare-pick input")
        for sid in ids:
            pick.fill(sid)
            pick.press("Enter")
        page.click("#rs-compare-go")
        page.wait_for_selector("#rs-compare-table table.rs-compare")
        page.get_by_role("tab", name="Explorer").click()
        for link in page.locator("#rs-replay-chat a, #rs-compare-table a").all():
            href = link.get_attribute("href") or ""
            assert not href.strip().lower().startswith(("javascript:", "data:")), href
        page.hover("#rs-replay-chat")
        time.sleep(1.5)  # give any onload/onerror/onfocus handler time to fire
        assert page.evaluate("window.__pwned") is None and page.evaluate("window.parent.__pwned") is None
        assert dialogs == []
        hostile = page.evaluate("""() => {
            const bad = [];
            // Anywhere in the page: no attribute and no script/style body carries a payload.
            for (const el of document.querySelectorAll('*')) {
                const tag = el.tagName.toLowerCase();
                for (const a of el.attributes) if (a.value.includes('__pwned')) bad.push(tag + '@' + a.name);
                if ((tag === 'script' || tag === 'style') && el.textContent.includes('__pwned')) bad.push(tag);
            }
            // Inside the cells and messages that hold model text: no element a payload could have made.
            const content = '#rs-replay-chat .message .md, #rs-replay-header, #rs-compare-table .rs-compare, '
                          + '#rs-table tbody span.text, #rs-ann-table tbody span.text';
            for (const r of document.querySelectorAll(content)) for (const el of r.querySelectorAll('*')) {
                const tag = el.tagName.toLowerCase();
                if (['script', 'iframe', 'object', 'embed', 'math', 'style', 'input', 'svg', 'img', 'a'].includes(tag))
                    bad.push('in content: ' + tag);
                for (const a of el.attributes) if (a.name.startsWith('on')) bad.push(tag + '@' + a.name);
            }
            return bad;
        }""")
        assert hostile == [], hostile
        shown = page.evaluate("document.querySelector('#rs-replay-chat').textContent")  # folded parts too
        for p in ("<script>window.__pwned", "onerror=", "[markdown link](javascript:", "</information><search>"):
            assert p in shown, p  # shown as the characters it is
    finally:
        ctx.close()


def test_rerun_at_another_alpha_offers_compare(app, browser):
    url, store = app
    ctx, page = new_page(browser)
    q = "Which planet is known as the Red Planet?"
    try:
        _ask(page, url, q, "Mars")
        page.wait_for_selector("#rs-status .rs-summary", timeout=RUN_TIMEOUT_MS)
        assert not page.locator("#rs-compare-again").is_visible()
        alpha = page.locator("#rs-alpha input[type=number]")
        alpha.fill("0.9")
        alpha.press("Enter")
        page.click("#rs-run")
        page.wait_for_selector("#rs-status .rs-summary:has-text('α 0.9')", timeout=RUN_TIMEOUT_MS)
        page.click("#rs-compare-again")
        page.wait_for_selector("#rs-compare-table table.rs-compare")
        heads = page.locator("#rs-compare-table thead th").all_inner_texts()
        assert any("α 0 " in h for h in heads) and any("α 0.9" in h for h in heads)
        assert page.get_by_role("tab", name="Compare", selected=True).is_visible()
        pg = store.list_sessions(SessionFilter(text=q))
        df, _ = pg.rows, pg.total
        assert sorted(df["alpha"]) == [0.0, 0.9]
    finally:
        ctx.close()
