"""UI handlers without a browser: filters, renderers, charts, replay, compare, models, failures."""
from __future__ import annotations

import html
import json

import pytest
from support.ui_fixtures import PAYLOADS, write_session

from router_core.policy import load_policies
from router_core.pool import ModelSpec, Pool
from storage import TraceStore
from storage.summary import full_session_id
from ui import charts
from ui.app import parse_auth
from ui.compare import compare
from ui.explorer import Replay, export_file, make_filter, page, summary
from ui.live import live_updates
from ui.models_tab import pool_table, save_model
from ui.render import esc, money, session_messages, step_message
from ui.studio import Studio


@pytest.fixture()
def store(tmp_path):
    s = TraceStore(str(tmp_path / "ui.sqlite"))
    yield s
    s.close()


@pytest.fixture()
def studio(store):
    return Studio.from_files(store, load_policies(), None, overrides={"max_turns": 1})


def test_esc_makes_every_payload_inert():
    for p in PAYLOADS:
        out = esc(p)
        assert not any(c in out for c in "<>[]()\"'`"), out
        # the text survives: entities decode back to exactly the payload
        assert html.unescape(out) == p


def test_filter_form_values_and_errors_name_the_field():
    f = make_filter("Paris", "nq", "correct", "SmolLM2-135M", "0.1", 0.9, None, "", "done", "other", " r1 ")
    assert (f.text, f.dataset, f.correct, f.model, f.alpha_min, f.alpha_max, f.status, f.label, f.run_id) == \
        ("Paris", "nq", True, "SmolLM2-135M", 0.1, 0.9, "done", "other", "r1")
    assert make_filter(correct="wrong").correct is False and make_filter().correct is None
    with pytest.raises(ValueError, match="α min: 'abc' is not a number"):
        make_filter(alpha_min="abc")
    with pytest.raises(ValueError, match=r"\$ range: min 2 is above max 1"):
        make_filter(cost_min=2, cost_max=1)
    with pytest.raises(ValueError, match="label: 'nope'"):
        make_filter(label="nope")


def test_replay_draws_what_live_drew_and_steps_back_and_forth(store):
    sid = write_session(store, "What is the capital of France?", turns=5, gold=["Paris"])
    r = Replay.load(store, sid[:12])  # the short id the table shows
    assert len(r.steps) == 12
    msgs, graph, timeline, cost, choice = r.at(len(r.steps))
    gold = r.session["gold"]
    # the live renderer, unchanged (the replay's anchors name its own step list)
    assert msgs == session_messages(r.session["question"], r.steps, gold=gold, target="replay")
    assert [m["content"] for m in msgs[1:]] == [step_message(s, gold, "replay")["content"] for s in r.steps]
    assert 'data-target="replay"' in graph and graph.count('class="rs-g-col rs-g-hop"') == 5
    assert "✓ correct" in msgs[-1]["content"]
    assert len(r.at(3)[0]) == 4 and len(r.at(0)[0]) == 1 and len(r.at(99)[0]) == 13
    rows = {y for tr in timeline.data for y in tr.y}
    assert rows == {"router", "Qwen2.5-0.5B"}
    assert len(choice.data) == 2 * 5  # before and after for each of the 5 route decisions
    assert cost.layout.title.text.endswith(money(sum(s.cost_usd for s in r.steps)))
    assert "EM 1" in r.header() and "Paris" in r.header()


def test_charts_follow_the_steps(store):
    sid0 = write_session(store, "Q?", alpha=0.0)
    sid1 = write_session(store, "Q?", alpha=0.8)
    s0, s1 = store.load_steps(sid0), store.load_steps(sid1)
    fig = charts.cost_by_model([("α0", s0), ("α0.8", s1)])
    per = {tr.name: list(tr.y) for tr in fig.data}
    assert set(per) == {"Qwen2.5-0.5B", "SmolLM2-135M"}  # α moved the route to the cheaper model
    assert per["Qwen2.5-0.5B"][0] > 0 and per["Qwen2.5-0.5B"][1] == 0 and per["SmolLM2-135M"][1] > 0
    ch = charts.choices(s1)
    after = [tr for tr in ch.data if tr.name.startswith("after")][0]
    assert after.y[0] > after.y[1]  # SmolLM2 wins after the α penalty
    assert not any(tr.showlegend for tr in ch.data) and "grey: before α" in ch.layout.title.text
    assert charts.choices([]).layout.annotations[0].text.startswith("No scored")


def test_choice_rows_each_have_their_own_axes_and_title(store):
    steps = store.load_steps(write_session(store, "Q?", alpha=0.8))
    scored = [s for s in steps if s.kind == "route"][:1] * 3  # three decisions: three stacked rows
    fig = charts.choices(scored)
    assert [a.text for a in fig.layout.annotations] == [f"step {s.index}: α chose {s.choice.chosen} · sent"
                                                        for s in scored]
    assert [(t.xaxis, t.yaxis) for t in fig.data] == [("x", "y")] * 2 + [("x2", "y2")] * 2 + [("x3", "y3")] * 2
    rows = [fig.layout.yaxis.domain, fig.layout.yaxis2.domain, fig.layout.yaxis3.domain]
    assert all(0 <= lo < hi <= 1 for lo, hi in rows) and rows[0][0] > rows[1][1] > rows[1][0] > rows[2][1]
    assert fig.layout.xaxis.matches == fig.layout.xaxis2.matches == "x3" and fig.layout.xaxis3.matches is None
    assert fig.layout.yaxis3.range == (0, 1) and fig.layout.template.layout.paper_bgcolor == "white"


def test_a_choice_title_says_what_alpha_chose_and_what_was_sent():
    """A repeat sent one rung up, or not sent at all, is named as such: the title never contradicts the graph."""
    from router_core.step import Choice, Step
    ch = Choice(models=["Small", "Mid"], logprobs=[-0.1, -2.4], probs_before=[0.9, 0.1], probs_after=[0.95, 0.05],
                norm_costs=[0.0, 1.0], alpha=0.5, kappa=3.0, chosen="Small", policy_choice="Small")
    sent_up = Step("s", 3, "route", request_model="Mid", call_started_at=1.0, choice=ch, flags=["repeat_climbed"])
    repeat = Step("s", 5, "route", request_model="Small", choice=ch, flags=["repeated_query"])
    plain = Step("s", 1, "route", request_model="Small", call_started_at=1.0, choice=ch)
    titles = [a.text for a in charts.choices([plain, sent_up, repeat]).layout.annotations]
    assert titles[0] == "step 1: α chose Small · sent"
    assert titles[1].startswith("step 3: α chose Small · sent to Mid (") and "repeat_climbed" not in titles[1]
    assert titles[2].startswith("step 5: α chose Small · not sent (") and "a repeat" in titles[2]


def test_explorer_page_summary_and_export(store, tmp_path):
    ids = [write_session(store, f"Question {i}?", alpha=i / 10, gold=["Paris"] if i % 2 else ["Rome"],
                         dataset="demo") for i in range(6)]
    tbl, page_ids, info = page(store, make_filter(correct="correct"), "α ↑", 0)
    assert list(tbl["α"]) == ["0.1", "0.3", "0.5"] and len(page_ids) == 3 and "of 3" in info
    fig_cost, fig_share, fig_em = summary(store, make_filter())
    assert len(fig_cost.data[0].x) == 6
    assert {lbl for lbl in fig_share.data[0].labels} <= {"Qwen2.5-0.5B", "SmolLM2-135M"}
    assert fig_em.data[0].y[0] == pytest.approx(0.5)
    path = export_file(store, make_filter(text="Question 3"), "jsonl")
    lines = open(path, encoding="utf-8").read().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["session"]["id"] == ids[3]
    csv = open(export_file(store, make_filter(), "csv"), encoding="utf-8").read().splitlines()
    assert len(csv) == 7 and csv[0].startswith("id,")
    with pytest.raises(KeyError, match="no session id starts with 'zzz'"):
        full_session_id(store, "zzz")
    # a short id that exists whole is itself, even when a longer id starts with it
    short = write_session(store, "Short id", session_id="example-1")
    write_session(store, "Longer id", session_id="example-10")
    assert full_session_id(store, short) == "example-1" and Replay.load(store, "example-1").session["id"] == short
    with pytest.raises(KeyError, match="several sessions"):
        full_session_id(store, "example")


def test_compare_aligns_turns_and_scores_reward_at_chosen_alpha(store):
    a = write_session(store, "Capital of France?", alpha=0.0, gold=["Paris"])
    b = write_session(store, "Capital of France?", alpha=0.8, gold=["Paris"])
    html, tbl, fig = compare(store, [a, b[:12]], 0.5)
    assert html.count("<tr><th>turn") == 3 and "Qwen2.5-0.5B" in html and "SmolLM2-135M" in html
    rewards = list(tbl["reward if α were 0.5"])
    assert rewards[1] > rewards[0]  # both correct; the cheaper route earns more at α = 0.5
    assert list(tbl["reward at its α"])[0] == 1.0  # right at α 0: the full reward, whatever the slider says
    assert list(tbl["EM"]) == [1.0, 1.0]
    with pytest.raises(ValueError, match="at least two"):
        compare(store, [a], 0.5)


def test_models_tab_validates_and_the_next_router_of_that_visitor_uses_the_model(studio):
    studio.allow_model_edits, studio.allow_key_envs = True, ("NIM_KEY",)
    studio.allow_endpoints = ("http://127.0.0.1:9/v1",)
    with pytest.raises(ValueError, match="price_out"):
        save_model(studio, [], "local", {"name": "Big", "engine": "openai", "model": "m", "params_b": 70,
                                         "price_in": 1, "price_out": -1, "description": "d",
                                         "base_url": "http://127.0.0.1:9/v1"})
    with pytest.raises(ValueError, match="name"):
        save_model(studio, [], "local", {"name": "Bad: name", "engine": "llamacpp", "model": "m", "params_b": 1,
                                         "price_in": 0, "price_out": 0, "description": "d"})
    edits, msg = save_model(studio, [], "local", {"name": "Unseen-70B", "engine": "openai",
                                                  "model": "meta/llama-3.1-70b", "params_b": 70, "price_in": 0.88,
                                                  "price_out": 0.88, "description": "big",
                                                  "base_url": "http://127.0.0.1:9/v1", "api_key_env": "NIM_KEY"})
    assert "Unseen-70B" in msg and "this browser session" in msg
    assert "Unseen-70B" in studio.router(None, "local", edits).pool.names
    assert "Unseen-70B" not in studio.router(None, "local").pool.names  # other visitors: unchanged
    assert list(pool_table(studio, "local", edits)["name"])[-1] == "Unseen-70B"
    assert "$ / 1M out" in pool_table(studio, "local").columns  # prices carry their unit


def test_parse_auth():
    assert parse_auth(["ann:pw", "bob:x:y"]) == [("ann", "pw"), ("bob", "x:y")]
    assert parse_auth(None) is None
    with pytest.raises(ValueError, match="user:password"):
        parse_auth(["nopassword"])


def test_live_failures_read_as_messages_and_are_stored(studio, store, qwen):
    # An endpoint that is down: the route step carries the error, the session still ends and is stored.
    dead = Pool(name="dead", models=[ModelSpec(name="Remote-8B", engine="openai", model="x", params_b=8, price_in=0.1,
                                               price_out=0.2, description="An 8B model behind an endpoint.",
                                               base_url="http://127.0.0.1:9/v1", timeout_s=2)])
    studio.pools["dead"] = dead
    views = list(live_updates(studio, "k1", "What is the capital of Italy?", "Rome", None, "dead", 0.0))
    final = views[-1]
    routes = [s for s in final.steps if s.kind == "route"]
    assert routes and routes[0].status == "error" and "Remote-8B" in routes[0].response
    assert "Traceback" not in final.status and "session" in final.status
    row = store.get_session(final.session_id)
    assert row["status"] in ("done", "error") and row["n_steps"] == len(final.steps)
    # A policy whose model is missing: a readable error in the page, the session stored as `error`.
    book = load_policies()
    broken = book.get(None).model_copy(update={"name": "missing", "model": "/nonexistent/model.gguf"})
    studio.policies = book.model_copy(update={"policies": book.policies + [broken]})
    final = list(live_updates(studio, "k2", "Who wrote Hamlet?", "", "missing", None, 0.0))[-1]
    assert final.steps[-1].kind == "error" and "unavailable" in final.steps[-1].error
    assert "error" in final.status and "Traceback" not in final.status
    assert store.get_session(final.session_id)["status"] == "error"
    # A bad pick (unknown pool) is a message; nothing is started.
    final = list(live_updates(studio, "k3", "Q?", "", None, "no-such-pool", 0.0))[-1]
    assert "Cannot start" in final.status and "no pool named 'no-such-pool'" in html.unescape(final.status)
    assert list(live_updates(studio, "k4", "  ", "", None, None, 0.0))[-1].status.endswith("Type a question first.</span>")


def test_evaluations_tab_tables(store):
    from evaluation.report import build_report
    from ui.evals import curves_markdown, items_table, results_table
    ids = [write_session(store, f"Q{i}?", alpha=a, gold=["Paris"], run_id="run-1", dataset="demo")
           for i in range(3) for a in (0.0, 0.9)]
    rep = build_report(store, ["run-1"])
    t = results_table(rep)
    assert list(t["method"]) == ["fixture-policy", "fixture-policy"] and list(t["α"]) == ["0", "0.9"]
    assert list(t["EM"]) == ["1.000", "1.000"] and t["$/query"].iloc[0].endswith("µ$")
    items, sids = items_table(rep, "fixture-policy")
    assert len(items) == 6 and sorted(sids) == sorted(ids)
    assert "No strong/weak baseline results" in curves_markdown(rep)


def test_live_view_on_a_scripted_engine_streams_renders_and_stores(store):
    """The live tab's handler end to end without a model: steps and text arrive, the session is stored."""
    from support.fake_engine import FakeEngine, fake_pool, fake_provider, guided_script, routes_then_answers

    from router_core.policy import Policy, PolicyBook
    guided = Policy(name="fake-guided", engine="llamacpp", model="fake:policy", mode="guided")
    policy = FakeEngine(guided_script(["I need the director."], ["Who directed Interstellar?"], "Christopher Nolan"),
                        scores=routes_then_answers(1, {"Tiny": -2.0, "Mid": -1.0, "Big": -0.2}))
    studio = Studio(store=store, policies=PolicyBook(default="fake-guided", policies=[guided]),
                    pools={"fake-three": fake_pool()}, default_pool="fake-three",
                    engines=fake_provider(policy, default=FakeEngine(reply="Christopher Nolan.")))
    views = list(live_updates(studio, "k", "Who directed Interstellar?", "Christopher Nolan|Nolan", None, None, 0.0))
    final = views[-1]
    assert [s.kind for s in final.steps] == ["think", "route", "think", "answer"]
    assert any(v.pending is not None for v in views) or len(views) >= 5  # streamed text or one view per step
    msgs = final.messages()
    assert msgs[0]["content"] == "Who directed Interstellar?" and "✓ correct" in msgs[-1]["content"]
    assert "EM 1" in final.status and "session" in final.status
    row = store.get_session(final.session_id)
    assert (row["status"], row["n_steps"], row["em"], row["calls"]) == ("done", 4, 1.0, 1)
    assert [s.to_dict() for s in store.load_steps(final.session_id)] == [s.to_dict() for s in final.steps]
