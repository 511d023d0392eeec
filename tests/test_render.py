"""The one step renderer: what each kind of step shows, in the page (full and compact) and the terminal."""
from __future__ import annotations

import html as htmllib

import pytest
from support.ui_fixtures import PAYLOADS

from router_core.step import Choice, Step
from ui.render import describe, money, step_message, text
from ui.render import html as html_raw
from ui.terminal import step_json, step_line, when

T = 1_700_000_000.0


def html(view, compact: bool = False) -> str:
    """The page's HTML with entities decoded, so assertions read like what a visitor sees."""
    return htmllib.unescape(html_raw(view, compact))


def route(**kw) -> Step:
    base = dict(session_id="s", index=1, kind="route", request_model="Big", written_model="Big", query="Who?",
                response="Nolan.", input_tokens=30, output_tokens=12, cost_usd=3.6e-6, started_at=T, ended_at=T + 2,
                call_started_at=T + 0.5, call_ended_at=T + 1.5,
                choice=Choice(models=["Tiny", "Big"], logprobs=[-2.0, -0.2], probs_before=[0.14, 0.86],
                              probs_after=[0.7, 0.3], norm_costs=[0.0, 1.0], alpha=0.6, kappa=8.0, chosen="Tiny",
                              policy_choice="Big"))
    base.update(kw)
    return Step(**base)


def test_money_reads_at_the_scale_of_small_models():
    assert money(0) == "$0" and money(None) == "$0"
    assert money(3.6e-6) == "3.6 µ$" and money(9.93e-06) == "9.93 µ$" and money(0.000123) == "123 µ$"
    assert money(0.25) == "$0.2500" and money(12.5) == "$12.50"


def test_route_shows_model_question_reply_cost_and_the_alpha_move():
    v = describe(route())
    assert v.sent and v.model == "Big" and v.metrics == "30 tokens in, 12 out · 3.6 µ$ · call 1.00s"
    assert "Tiny 0.14→0.70" in v.choice and "α moved the pick from Big to Tiny" in v.choice
    page = html(v)
    assert 'rs-badge">Big<' in page and "sub-question" in page and "Nolan." in page and "3.6 µ$" in page
    line = text(v)
    assert "→ Big: Who?" in line and "← Nolan." in line and "choice before→after α=0.6" in line


def test_a_repeat_that_was_not_sent_says_so_instead_of_a_model_and_zero_dollars():
    s = route(request_model=None, call_started_at=None, call_ended_at=None, cost_usd=0.0, input_tokens=0,
              output_tokens=0, status="flagged", flags=["repeated_query"], response="(Not asked again)", choice=None)
    v = describe(s)
    assert not v.sent and v.note == "not sent (repeat of an earlier sub-question)" and v.metrics == ""
    page = html(v)
    assert "rs-badge" not in page and "not sent (repeat" in page and "$0" not in page
    assert "(not sent (repeat" in text(v)
    assert "not sent" in html(v, compact=True)


def test_answer_shows_correctness_only_with_gold_and_wrong_is_visibly_wrong():
    ans = Step("s", 3, "answer", text="Paris", started_at=T, ended_at=T)
    assert describe(ans).verdict is None and "✓" not in html(describe(ans)) and "✗" not in html(describe(ans))
    right, wrong = describe(ans, ["Paris"]), describe(ans, ["Rome"])
    assert right.verdict == "correct" and "✓ correct" in html(right) and "rs-answer-ok" in html(right)
    assert wrong.verdict == "wrong" and "✗ wrong" in html(wrong) and "rs-answer-bad" in html(wrong)
    assert "✗ wrong" in text(wrong) and "✓" not in step_line(ans)


@pytest.mark.parametrize("payload", ["Isaac Newton", PAYLOADS[0]])
def test_an_answer_picked_between_two_things_shows_the_routers_probability_for_each(payload):
    ans = Step("s", 6, "answer", text=payload, options={"Albert Einstein": 0.15, payload: 0.85},
               started_at=T, ended_at=T)
    v = describe(ans, [payload])
    line = f"picked by the router's scores between the two the question names: Albert Einstein 0.15, {payload} 0.85"
    assert line in html(v) and line in text(v) and "✓ correct" in html(v)
    assert "<script" not in html_raw(v) and line not in text(v, compact=True)
    assert "picked by" not in html(describe(Step("s", 3, "answer", text="Paris", started_at=T, ended_at=T)))


def test_think_error_and_compact_forms():
    think = Step("s", 0, "think", text="I need the director first, then where he was born.", started_at=T,
                 ended_at=T + 1)
    msg = step_message(think)
    assert msg["metadata"]["title"].startswith("💭 think · step 0") and "director first" in msg["content"]
    err = Step("s", 4, "error", status="error", error="router policy failed: boom")
    assert "router policy failed: boom" in html(describe(err)) and "ERROR: router policy failed" in text(describe(err))
    long = Step("s", 0, "think", text="word " * 100)
    assert len(htmllib.unescape(html(describe(long), compact=True))) < 220


def test_a_hop_taken_instead_of_an_answer_shows_the_answer_it_replaces():
    v = describe(route(draft="1564", flags=["answer_not_in_replies"]))
    assert v.draft == "1564"
    assert "had answered “1564”, which no reply says, so it asks once more" in html(v)
    assert "had answered “1564”" in text(v) and "answer sent back: no reply holds it" in text(v)
    assert "answer_not_in_replies" not in text(v) + html(v)  # flags in plain words, the identifier in a tooltip only
    assert "title=\"studio rule check_answer (run setting check_answer)\"" in html(v)
    assert "had answered" not in html(describe(route())) and "had answered" not in text(describe(route()))
    short = describe(route(draft="Budapest", flags=["answer_one_hop_short"]))
    for shown in (html(short), text(short)):
        assert "had answered “Budapest”, a reply to a sub-question that asks for something other than" in shown
        assert "which no reply says" not in shown


@pytest.mark.parametrize("payload", ["Who directed the film that won Best Picture in 1998?", PAYLOADS[0]])
def test_a_sub_question_the_rollout_sent_in_place_of_the_routers_shows_what_the_router_wrote(payload):
    v = describe(route(flags=["fact_hop"], written_query=payload))
    note = f"the router wrote “{payload}”, the whole question again; the studio asked for the first fact instead"
    assert v.rollout_note == note and note in html(v) and note in text(v)
    assert "<script" not in html_raw(v)
    assert describe(route()).rollout_note == "" and "the rollout" not in html(describe(route()))
    climbed = describe(route(flags=["repeat_climbed"]))  # α sent it to Tiny; it went to Big
    assert "a repeat: sent one rung up the price ladder, not to Tiny where α sent it" in html(climbed)


def test_a_thought_the_rollout_began_shows_its_lead_apart_and_the_caption_says_so():
    from ui.captions import Prices, caption
    s = Step("s", 0, "think", text="The first fact I need is the director of Interstellar.",
             lead="The first fact I need is")
    out = html_raw(describe(s))
    assert out.startswith('<span class="rs-lead" title="these first words were written by the studio')
    assert out.endswith(">The first fact I need is</span> the director of Interstellar.")
    assert "the studio began it with “The first fact I need is”" in caption(s, alpha=0.0, prices=Prices.of(None))
    plain = Step("s", 0, "think", text="I need the director first.")
    assert "rs-lead" not in html_raw(describe(plain)) and "rollout" not in caption(plain, alpha=0.0,
                                                                                   prices=Prices.of(None))
    # a lead the text does not start with (an edited import) is not shown apart
    assert "rs-lead" not in html_raw(describe(Step("s", 0, "think", text="Other words.", lead="<b>x</b>")))


@pytest.mark.parametrize("payload", PAYLOADS)
def test_every_layout_escapes_model_text(payload):
    s = route(query=payload, response=payload, written_model="Big", draft=payload)
    assert payload in html(describe(s))  # shown as the characters it is
    for out in (html_raw(describe(s)), html_raw(describe(s), compact=True),
                html_raw(describe(Step("s", 2, "answer", text=payload))),
                html_raw(describe(Step("s", 0, "think", text=payload)), compact=True),
                html_raw(describe(Step("s", 0, "think", text=payload + payload, lead=payload)))):
        for tag in ("<script", "<img", "<svg", "<iframe", "<a ", "<input", "<math", "<body", "<div style",
                    "<details open", "</information", "<search", "<answer"):
            assert tag not in out, (tag, out)
        assert "javascript:" not in out and "onerror=" not in out


def test_json_form_is_the_codec_plus_a_model_alias():
    s = route()
    d = step_json(s)
    assert d["model"] == "Big" and {k: v for k, v in d.items() if k != "model"} == s.to_dict()


def test_damaged_timestamps_read_as_a_question_mark():
    assert when(float("inf")) == "?" and when(None) == "?" and when(1e300) == "?" and when(T).startswith("2023")
