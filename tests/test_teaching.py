"""Teaching and presenting without a model: the decomposition graph, lesson captions, the standalone page,
and the sweep / export-html commands (their router runs on the scripted engine)."""
from __future__ import annotations

import html as htmllib
import json
import re

import pytest
from support.fake_engine import FakeEngine, fake_pool, fake_provider, guided_script, routes_then_answers
from support.ui_fixtures import PAYLOADS

from router_core.loop import Router
from router_core.policy import Policy
from router_core.step import Choice, Step
from storage import TraceStore
from storage.recorder import recorded
from ui.captions import Prices, caption
from ui.export_html import session_page
from ui.graph import graph_html, graph_of

Q = "Which country is the birthplace of the director of the film Interstellar?"
POOL = fake_pool()
GUIDED = Policy(name="fake-guided", engine="llamacpp", model="fake:policy", mode="guided")


def two_hop(alpha: float = 0.0) -> list[Step]:
    ch = Choice(models=["Tiny", "Mid", "Big"], logprobs=[-2.0, -1.5, -0.3], probs_before=[0.1, 0.2, 0.7],
                probs_after=[0.55, 0.3, 0.15], norm_costs=[0.0, 0.3, 1.0], alpha=alpha, kappa=8, chosen="Tiny",
                policy_choice="Big")
    return [Step("s", 0, "think", text="I need the director of Interstellar first, then where he was born."),
            Step("s", 1, "route", request_model="Tiny", written_model="Tiny", query="Who directed Interstellar?",
                 response="Interstellar was directed by Christopher Nolan.", input_tokens=30, output_tokens=10,
                 cost_usd=POOL.get("Tiny").call_cost(30, 10), call_started_at=1.0, call_ended_at=1.5,
                 choice=ch, decision={"search": 0.93, "answer": 0.07}),
            Step("s", 2, "think", text="The director is Christopher Nolan; now his country of birth."),
            Step("s", 3, "route", request_model="Big", written_model="Big",
                 query="In which country was Christopher Nolan born?", response="He was born in England.",
                 input_tokens=30, output_tokens=8, cost_usd=POOL.get("Big").call_cost(30, 8), call_started_at=2.0,
                 call_ended_at=3.0),
            Step("s", 4, "think", text="England it is."),
            Step("s", 5, "answer", text="England", decision={"search": 0.2, "answer": 0.8})]


def text_of(h: str) -> str:
    return htmllib.unescape(re.sub(r"<[^>]+>", " ", h))


def test_graph_has_a_node_per_sub_question_a_bridge_and_the_answer():
    g = graph_of(Q, two_hop(), ["United Kingdom", "England"], 0.6)
    assert [h.step.index for h in g.hops] == [1, 3] and g.answer.index == 5 and g.em == 1.0
    assert len(g.bridges) == 1 and g.bridges[0].span == "christopher nolan"
    h = graph_html(g, "live")
    steps = re.findall(r'data-step="(\d+)"', h)
    assert set(steps) == {"1", "3", "5"} and 'data-target="live"' in h
    assert h.count("<mark") == 2 and "rs-g-bridge" in h and "✓ correct" in h
    assert "Christopher Nolan</mark>" in htmllib.unescape(h)
    assert "1 bridge" in text_of(h) and "α 0.6" in text_of(h)


def test_a_bridge_into_a_sub_question_the_rollout_wrote_is_marked_and_not_counted_as_the_routers():
    steps = two_hop()
    steps[3].flags = ["comparison_hop"]  # the rollout composed the second sub-question
    h = graph_html(graph_of(Q, steps, ["England"], 0.0), "live")
    summary = text_of(h.split('<div class="rs-g-row">')[0])
    assert "bridge" not in summary.replace("1 into sub-questions the studio wrote", "") and \
        "1 into sub-questions the studio wrote" in summary
    assert "rs-g-bridge-rollout" in h and "✎ the studio wrote this sub-question" in text_of(h)
    assert "comparison_hop" not in text_of(h)  # the flag in words


def test_graph_marks_unsent_flagged_and_failed_hops_and_ends():
    steps = two_hop()[:2] + [
        Step("s", 2, "route", query="Who directed Interstellar?", response="(Not asked again)", status="flagged",
             flags=["repeated_query"]),
        Step("s", 3, "route", request_model="Mid", query="When?", response="Error: model Mid could not answer",
             status="error", error="HTTP 500", call_started_at=4.0, call_ended_at=4.2),
        Step("s", 4, "error", status="error", error="router policy failed: boom")]
    h = graph_html(graph_of(Q, steps), "replay")
    assert "rs-g-unsent" in h and "not sent (repeat" in text_of(h) and "rs-g-flagged" in h
    assert "rs-g-error" in h and "router policy failed" in text_of(h)
    assert graph_of(Q, steps).answer is None and graph_of(Q, steps).em is None
    # a session with no route at all: question → answer
    only = [Step("s", 0, "think", text="I know this."), Step("s", 1, "answer", text="Paris")]
    h = graph_html(graph_of("Capital of France?", only, []))
    assert graph_of("Capital of France?", only).hops == [] and 'data-step="1"' in h and "0 sub-questions" in h
    assert "✓" not in h and "✗" not in h  # no gold: no verdict


def test_a_hop_taken_instead_of_an_ungrounded_answer_is_explained_in_graph_and_caption():
    steps = two_hop()
    steps[3].draft, steps[3].flags = "Wales", ["answer_not_in_replies"]
    steps[3].decision = {"search": 0.3, "answer": 0.7}
    h = text_of(graph_html(graph_of(Q, steps)))
    assert "asked instead of answering “Wales”, which no reply says" in h
    cap = caption(steps[3], alpha=0.0, prices=Prices.of(POOL.snapshot()))
    assert cap.startswith("Step 3: The router was ready to answer “Wales” (70 % sure), but no reply said so")
    assert "sure it needed help" not in cap and "It asked Big" in cap
    assert "instead of answering" not in graph_html(graph_of(Q, two_hop()))
    steps[3].flags = ["answer_one_hop_short"]  # the answer was in a reply, to a sub-question asking for another thing
    assert "answering “Wales”, a reply to a sub-question that asks for something other" in text_of(
        graph_html(graph_of(Q, steps)))
    cap = caption(steps[3], alpha=0.0, prices=Prices.of(POOL.snapshot()))
    assert "“Wales” (70 % sure), but that answers a sub-question, not yet what the question asks for" in cap


def test_a_think_block_written_in_place_of_a_whole_question_sub_question_says_so():
    s = Step("s", 1, "think", text="The first fact to look up is the director of Interstellar.",
             lead="The first fact to look up is", flags=["whole_question_rewritten"])
    cap = caption(s, alpha=0.0, prices=Prices.of(POOL.snapshot()))
    assert "asked the whole question at once, so it was not sent" in cap
    cap = caption(s, alpha=0.0, prices=Prices.of(POOL.snapshot()), question=Q)
    assert "asked the whole question, which hides a first fact (“the director of the film Interstellar”), at once" in cap
    s.flags = []
    assert "whole question" not in caption(s, alpha=0.0, prices=Prices.of(POOL.snapshot()))
    s.text, s.lead = "What I know so far: Christopher Nolan directed it.", "What I know so far:"
    s.flags = ["restated_rewritten"]
    cap = caption(s, alpha=0.0, prices=Prices.of(POOL.snapshot()), question=Q)
    assert ("asked the whole question again after replies were read, so it was not sent: the router says what the "
            "replies found") in cap and "(the studio began it with “What I know so far:”)" in cap
    s.text = s.lead = "First I need to find the director of the film Interstellar."
    s.flags = ["assumed_rewritten"]
    cap = caption(s, alpha=0.0, prices=Prices.of(POOL.snapshot()), question=Q)
    assert ("named something the question does not: it had filled in the fact the question hides (“the director of "
            "the film Interstellar”) from memory, so it was not sent") in cap
    # written whole by the rollout: not credited to the router
    assert cap.startswith("Step 1: the studio writes this think block for the router — “First I need to find the "
                          "director of the film Interstellar.”.")
    s.text += " Then where he was born."
    assert caption(s, alpha=0.0, prices=Prices.of(POOL.snapshot()), question=Q).startswith(
        "Step 1: the router thinks before acting")


def test_a_think_block_written_in_place_of_a_comparison_asked_whole_says_so():
    s = Step("s", 1, "think", text="One at a time: first oxygen, then argon. Oxygen's share first.",
             lead="One at a time: first oxygen, then argon.", flags=["choice_split_rewritten"])
    cap = caption(s, alpha=0.0, prices=Prices.of(POOL.snapshot()))
    assert "spoke of both things the question compares, or of neither, so it was not sent" in cap
    assert cap.startswith("Step 1: the router thinks before acting")
    s.flags = []
    assert "compares" not in caption(s, alpha=0.0, prices=Prices.of(POOL.snapshot()))


def test_a_think_block_written_because_an_answer_went_back_says_why():
    s = Step("s", 3, "think", text='Wales answers "Where was he born?", but not yet the question. I can answer.',
             lead='Wales answers "Where was he born?", but not yet the question.', flags=["answer_one_hop_short"])
    cap = caption(s, alpha=0.0, prices=Prices.of(POOL.snapshot()), question=Q)
    assert ("about to answer, but from a reply to a sub-question that asks for something other than what the "
            "question asks for") in cap
    s.flags = []
    assert "about to answer" not in caption(s, alpha=0.0, prices=Prices.of(POOL.snapshot()), question=Q)


def test_an_answer_picked_between_the_two_things_a_question_names_says_so_with_the_odds():
    s = Step("s", 6, "answer", text="Isaac Newton", options={"Albert Einstein": 0.154, "Isaac Newton": 0.846})
    cap = caption(s, alpha=0.0, prices=Prices.of(POOL.snapshot()), gold=["Isaac Newton"])
    assert ("picked between the two things the question names by the router's own scores: “Isaac Newton” (85 %) "
            "over “Albert Einstein” (15 %).") in cap and "correct" in cap
    s.options = None
    assert "picked between" not in caption(s, alpha=0.0, prices=Prices.of(POOL.snapshot()))


def test_a_comparison_hop_says_the_rollout_wrote_it_and_why():
    s = Step("s", 5, "route", request_model="Big", written_model="Big", flags=["comparison_hop"],
             query="Lake Baikal is 1,642 meters deep. Lake Tanganyika is 1,470 meters deep. Which lake is deeper?",
             response="Lake Baikal.", decision={"search": 0.3, "answer": 0.7}, call_started_at=1.0, call_ended_at=2.0)
    cap = caption(s, alpha=0.0, prices=Prices.of(POOL.snapshot()))
    assert "was ready to answer (70 % sure); the studio first asks the comparison itself" in cap
    assert "30 % sure it needed help" not in cap and "It asked Big: “Lake Baikal is 1,642 meters deep." in cap
    s.flags = []
    assert "30 % sure it needed help" in caption(s, alpha=0.0, prices=Prices.of(POOL.snapshot()))


def test_a_fact_hop_quotes_the_whole_question_the_router_wrote_and_says_the_rollout_asked_for_the_fact():
    s = Step("s", 2, "route", request_model="Big", written_model="Big", flags=["fact_hop"],
             query="What is the name of the director of the film Interstellar?", written_query=Q,
             response="Christopher Nolan.", decision={"search": 0.9, "answer": 0.1}, call_started_at=1.0,
             call_ended_at=2.0)
    cap = caption(s, alpha=0.0, prices=Prices.of(POOL.snapshot()))
    assert f"The router asked the whole question again (“{Q}”) after the think block that names the first fact; " \
           "the studio asks for that fact instead" in cap
    assert "It asked Big: “What is the name of the director of the film Interstellar?”" in cap
    s.flags = []
    assert "asked the whole question again" not in caption(s, alpha=0.0, prices=Prices.of(POOL.snapshot()))
    # the teaching graph marks the hop as the rollout's, the router's words shown as text, not markup
    steps = two_hop()
    steps[1].flags, steps[1].written_query = ["fact_hop"], "<b>" + Q
    h = graph_html(graph_of(Q, steps, ["England"], 0.0), "live")
    assert f"✎ the router wrote “&lt;b&gt;{Q[:20]}" in h and "<b>Which" not in h
    assert "✎" not in graph_html(graph_of(Q, two_hop(), ["England"], 0.0), "live")


def test_a_repeat_that_climbed_the_ladder_says_where_alpha_sent_it_and_claims_no_saving():
    hop = two_hop(alpha=1.0)[1]  # α moved the pick from Big to Tiny; the repeat went to Mid instead
    hop.request_model, hop.flags = "Mid", ["repeat_climbed"]
    hop.cost_usd = POOL.get("Mid").call_cost(hop.input_tokens, hop.output_tokens)
    cap = caption(hop, alpha=1.0, prices=Prices.of(POOL.snapshot()))
    assert "asked again, it goes one rung up the price ladder to Mid instead of where α sent it" in cap
    assert "the price penalty made Tiny the pick" in cap and "saving" not in cap and "It asked Mid:" in cap
    hop.request_model, hop.flags = "Tiny", []
    cap = caption(hop, alpha=1.0, prices=Prices.of(POOL.snapshot()))
    assert "saving" in cap and "rung" not in cap


def test_a_sub_question_that_carries_a_reply_or_splits_a_comparison_says_so():
    prices = Prices.of(POOL.snapshot())
    steps = two_hop()
    cap = caption(steps[3], alpha=0.0, prices=prices, steps=steps, question=Q)
    assert ("It asked Big: “In which country was Christopher Nolan born?”. It carries “Christopher Nolan” from the "
            "reply at step 1 into this sub-question: this hop builds on what that reply found. Big replied") in cap
    assert "It carries" not in caption(steps[1], alpha=0.0, prices=prices, steps=steps, question=Q)
    lakes = "Which lake is deeper, Lake Baikal or Lake Tanganyika?"
    hop = Step("s", 1, "route", request_model="Big", query="How deep is Lake Baikal?", response="1,642 m.",
               call_started_at=1.0, call_ended_at=2.0)
    assert "It asks about “Lake Baikal” on its own, one of the two things the question compares" in caption(
        hop, alpha=0.0, prices=prices, steps=[hop], question=lakes)
    hop.query = lakes  # the comparison asked whole speaks of both
    assert "on its own" not in caption(hop, alpha=0.0, prices=prices, steps=[hop], question=lakes)
    hop.query, hop.flags = "How deep is Lake Baikal?", ["comparison_hop"]
    assert "on its own" not in caption(hop, alpha=0.0, prices=prices, steps=[hop], question=lakes)


@pytest.mark.parametrize("payload", PAYLOADS)
def test_graph_escapes_model_text(payload):
    steps = [Step("s", 0, "route", request_model="Big", query=payload, response=payload + " Christopher Nolan",
                  call_started_at=1.0, call_ended_at=2.0, draft=payload),
             Step("s", 1, "route", request_model="Big", query="Where was Christopher Nolan born? " + payload,
                  response=payload, call_started_at=3.0, call_ended_at=4.0),
             Step("s", 2, "answer", text=payload)]
    h = graph_html(graph_of(payload, steps, [payload]))
    for tag in ("<script", "<img", "<svg onload", "<iframe", "<a ", "<input", "<body", "<details open",
                "</information", "<answer>"):
        assert tag not in h.replace('<svg viewBox="0 0 40 100"', ""), tag
    assert "javascript:" not in h and payload in htmllib.unescape(h)


def test_captions_for_every_kind_read_from_the_numbers():
    prices = Prices.of(POOL.snapshot())
    steps = two_hop(0.6)
    caps = [caption(s, alpha=0.6, prices=prices, gold=["England"], steps=steps) for s in steps]
    assert caps[0].startswith("Step 0: the router thinks before acting — “I need the director")
    saved = (POOL.get("Big").call_cost(30, 10) - POOL.get("Tiny").call_cost(30, 10))
    assert ("The router was 93 % sure it needed help. It preferred Big (p 0.70); at α 0.6 the price penalty made "
            "Tiny the pick (p 0.55), saving") in caps[1]
    from ui.render import money
    assert money(saved) in caps[1] and "Tiny replied in 0.5 s with 10 tokens" in caps[1]
    assert "It preferred Big (p 0.00)" not in caps[3] and "It asked Big" in caps[3]
    assert "answers “England”, 80 % sure it had enough to answer, after 2 calls costing" in caps[5]
    assert "an exact match — correct." in caps[5]
    wrong = caption(steps[5], alpha=0.6, prices=prices, gold=["France"], steps=steps)
    assert "no exact match — wrong." in wrong
    unsent = Step("s", 6, "route", query="Who directed Interstellar?", status="flagged", flags=["repeated_query"])
    assert "was not sent: it repeats an earlier sub-question, so it cost nothing" in caption(unsent, alpha=0,
                                                                                             prices=prices)
    failed = Step("s", 7, "route", request_model="Mid", query="q", status="error", error="HTTP 500 from x",
                  call_started_at=1.0, call_ended_at=2.0)
    assert "The call failed (HTTP 500 from x); the router was told and carried on." in caption(
        failed, alpha=0, prices=prices)
    assert "the session was stopped here" in caption(Step("s", 8, "error", status="stopped", error="stopped by "
                                                                                                     "the user"),
                                                     alpha=0, prices=prices)
    assert "broke the protocol (format error: no answer)" in caption(
        Step("s", 9, "error", status="flagged", flags=["format:no_answer"]), alpha=0, prices=Prices({}, {}))
    # any pool: a snapshot without prices still captions (no saving claimed)
    assert "saving" not in caption(steps[1], alpha=0.6, prices=Prices({}, {}))


def test_no_caption_names_the_rollout():
    """A student meets "the studio" (the rules around the router), never the jargon "rollout", whichever rule
    acted: each flag a caption explains, on a think block and on a route step."""
    from router_core.step import COMPOSED_FLAGS
    prices = Prices.of(POOL.snapshot())
    flags = ["whole_question_rewritten", "assumed_rewritten", "choice_split_rewritten", "restated_rewritten",
             "answer_one_hop_short", "repeat_climbed", "repeated_query", *COMPOSED_FLAGS]
    caps = []
    for f in flags:
        think = Step("s", 2, "think", text="What I know so far: the director is Nolan.", flags=[f])
        route = Step("s", 3, "route", query="Where was Nolan born?", written_query="Who directed it and where?",
                     request_model="Mid", written_model="Mid", response="London.", flags=[f], draft="Nolan",
                     decision={"answer": 0.7, "search": 0.3})
        caps += [caption(x, alpha=0.3, prices=prices, steps=[think, route], question=Q) for x in (think, route)]
    lead = Step("s", 0, "think", text="The first fact I need is the director.", lead="The first fact I need is")
    caps.append(caption(lead, alpha=0.0, prices=prices))
    assert any("the studio" in c for c in caps)
    assert [c for c in caps if "rollout" in c.lower()] == []


def test_a_bridge_from_a_reply_further_back_names_its_source_and_asks_for_an_arc():
    """The comparison hop reuses the reply just before it and one two hops back: the far bridge's label names its
    step, and the row lists it (integers only) for the page's script to draw from that reply."""
    q = "Who was born first, Alan Turing or Kurt Gödel?"
    steps = [Step("s", 1, "route", query="When was Alan Turing born?", request_model="Tiny", written_model="Tiny",
                  response="Alan Turing was born on 23 June 1912.", call_started_at=1.0, call_ended_at=2.0),
             Step("s", 3, "route", query="When was Kurt Gödel born?", request_model="Tiny", written_model="Tiny",
                  response="Kurt Gödel was born on 28 April 1906.", call_started_at=3.0, call_ended_at=4.0),
             Step("s", 5, "route", query="Turing: 23 June 1912; Gödel: 28 April 1906. Who was born first?",
                  request_model="Mid", written_model="Mid", response="Gödel.", flags=["comparison_hop"],
                  call_started_at=5.0, call_ended_at=6.0)]
    h = graph_html(graph_of(q, steps))
    assert 'data-arcs="1-5-0"' in h
    far = re.search(r'<div class="rs-g-bridge-label rs-g-far[^"]*">(.*?)</div>', h).group(1)
    assert "23 june 1912" in far and "from step 1" in far
    # the bridge from the reply just before is the link's own curve, not an arc
    assert "3-5" not in re.search(r'data-arcs="([^"]*)"', h).group(1)


def _stored(store: TraceStore, question: str = Q, alpha: float = 0.5) -> str:
    policy = FakeEngine(guided_script(["I need the director of Interstellar first."],
                                      ["Who directed Interstellar?", "Where was Christopher Nolan born?"], "England"),
                        scores=routes_then_answers(2, {"Tiny": -2.0, "Mid": -1.0, "Big": -0.1}))
    replies = iter(["Interstellar was directed by Christopher Nolan.", "Christopher Nolan was born in London, England."])
    cand = FakeEngine(reply=lambda q: next(replies))
    r = Router(GUIDED, POOL, engines=fake_provider(policy, default=cand))
    sid = f"sess-{alpha}"
    for _ in recorded(store, r.run(question, alpha, session_id=sid), session_id=sid, question=question, alpha=alpha,
                      policy=GUIDED.name, engine="llamacpp", pool=POOL.snapshot(), gold=["England", "UK"]):
        pass
    return sid


def test_the_standalone_page_holds_everything_and_needs_no_network(tmp_path):
    with TraceStore(str(tmp_path / "t.sqlite")) as store:
        sid = _stored(store)
        sess, steps, notes = store.load_session(sid)
    page = session_page(sess, steps, notes)
    markup = re.sub(r"<script\b.*?</script>", "", page, flags=re.S)  # plotly.js holds URLs it never loads here
    assert re.findall(r'(?:src|href)\s*=\s*["\']?(?:https?:)?//', markup) == []  # no CDN, no font, no link out
    assert "<link" not in page and "@import" not in page
    plain = text_of(page)
    for s in steps:
        if s.kind == "route":
            assert s.query in plain
    assert Q in plain and "England" in plain and "α" in plain and sess["policy"] in plain and "fake-three" in plain
    assert 'id="decomposition"' in page and "Step 0: the router thinks" in plain
    assert "rsSelectStep" in page and "Plotly" in page  # our page script and plotly.js, inlined


def test_cli_sweep_json_and_export_html(tmp_path, monkeypatch, capsys):
    import ui.cli as cli
    db = tmp_path / "sw.sqlite"

    def fake_router(args, progress=None):
        return cli_router()

    def cli_router():
        def script(prompt, stop):  # the same every session: each α starts from the same router text
            if "</think>" in stop:
                return "I need the director first.</think>"
            return " Who directed Interstellar? </search>" if "</search>" in stop else " England </answer>"
        policy = FakeEngine(script, scores=routes_then_answers(1, {"Tiny": -1.2, "Mid": -1.0, "Big": -0.4}))
        return Router(GUIDED, POOL, engines=fake_provider(policy, default=FakeEngine(reply="Christopher Nolan.")))
    monkeypatch.setattr(cli, "router_from", fake_router)
    code = cli.main(["sweep", Q, "--alpha", "0,0.5,1", "--gold", "England|UK", "--db", str(db), "--json"])
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0 and out["alphas"] == [0.0, 0.5, 1.0] and len(out["runs"]) == 3
    for run, a in zip(out["runs"], out["alphas"]):
        assert run["alpha"] == a and run["question"] == Q and run["steps"][-1]["kind"] == "answer"
        assert set(run) >= {"session_id", "answer", "em", "cost_usd", "calls", "steps", "stored"}
    picked = [next(s["model"] for s in r["steps"] if s["kind"] == "route") for r in out["runs"]]
    prices = {m.name: m.price_out for m in POOL.models}
    assert [prices[m] for m in picked] == sorted((prices[m] for m in picked), reverse=True) and picked[0] == "Big"
    with TraceStore(str(db)) as s:
        assert s.list_sessions().total == 3
    sid = out["runs"][0]["session_id"]
    page = tmp_path / "s.html"
    assert cli.main(["export-html", "--session", sid[:10], "--db", str(db), "--out", str(page)]) == 0
    assert Q in htmllib.unescape(page.read_text()) and "wrote the session page" in capsys.readouterr().out
    assert cli.main(["export-html", "--session", "nope", "--db", str(db), "--out", str(tmp_path / "x.html")]) == 2
    assert "no session id starts with 'nope'" in capsys.readouterr().err
    # text output names each α and its route
    assert cli.main(["sweep", Q, "--alpha", "0,1", "--no-store"]) == 0
    text = capsys.readouterr().out
    assert "α = 0" in text and "α = 1" in text and "[Big]" in text and "[Tiny]" in text


@pytest.mark.parametrize("payload", PAYLOADS)
def test_lesson_captions_in_the_page_are_escaped(tmp_path, payload):
    """The caption panel is HTML and quotes the question, sub-questions and replies: a payload shows as text."""
    from ui.explorer import Replay
    steps = [Step("p", 0, "think", text=payload),
             Step("p", 1, "route", request_model="Big", written_model="Big", query=payload, response=payload,
                  call_started_at=1.0, call_ended_at=2.0),
             Step("p", 2, "answer", text=payload)]
    with TraceStore(str(tmp_path / "c.sqlite")) as store:
        for _ in recorded(store, iter(steps), session_id="p", question=payload, alpha=0.0, policy="fake",
                          engine="llamacpp", pool=POOL.snapshot(), gold=[payload]):
            pass
        r = Replay.load(store, "p")
        for k in range(len(steps) + 1):
            h = r.caption(k)
            for tag in ("<script", "<img", "<svg", "<iframe", "<a ", "<input", "<body", "<details"):
                assert tag not in h, (k, tag)
            assert h.startswith('<p class="rs-caption-text">') and h.count("<") == 2
