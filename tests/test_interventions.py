"""The guided rollout's interventions as rules: each fires where it should and not elsewhere (its trigger is a pure
function of the rollout state), the registry is complete, presets list them by name, and the driver holds none.

What each rule does to a whole session on the scripted engine is in test_loop_logic.py; here each trigger is asked
directly on a hand-built rollout, so a rule's condition can be read next to its cases.
"""
from __future__ import annotations

import ast
import pathlib
import warnings

import pytest
from support.fake_engine import fake_pool

from router_core.asked_for import choices, hidden_fact
from router_core.policy import PolicyError, RunConfig, intervention_settings, load_policies
from router_core.rollout.intervention import POINTS
from router_core.rollout.registry import BY_FLAG, BY_NAME, INTERVENTIONS, OWNED, active, at
from router_core.rollout.state import Rollout
from router_core.step import COMPOSED_FLAGS, Step

ROOT = pathlib.Path(__file__).resolve().parent.parent
HIDDEN = "What is the capital of the country where the Eiffel Tower stands?"
CHOICE = "Which lake is deeper, Lake Baikal or Lake Tanganyika?"
ALL_ON = RunConfig().merged(intervention_settings(list(BY_NAME)[1:] + [{"think_lead": {"first": "I need"}}]))


def rollout(question: str, *, sent: list[tuple[str, str]] = (), flags: list[str] = (), turn: int | None = None,
            transcript: str = "") -> Rollout:
    """A rollout of `question` after the given (sub-question, reply) pairs were sent; `flags` on a think step."""
    ro = Rollout(session_id="s", prompt="", question=question, options=choices(question), fact=hidden_fact(question),
                 transcript=transcript)
    if flags:
        ro.steps.append(Step(session_id="s", index=0, kind="think", flags=list(flags)))
    for q, reply in sent:
        ro.steps.append(Step(session_id="s", index=len(ro.steps), kind="route", query=q, response=reply,
                             request_model="Tiny", call_started_at=1.0))
    ro.turn = len(sent) if turn is None else turn
    return ro


def answer(text: str, options: dict | None = None) -> Step:
    return Step(session_id="s", index=9, kind="answer", text=text, options=options)


def fire(name: str, ro: Rollout, *args, cfg: RunConfig = ALL_ON):
    return BY_NAME[name].fire(ro, cfg, *args)


# ---------------------------------------------------------------------------- one rule at a time

def test_think_lead_gives_the_first_lead_then_the_later_one():
    cfg = RunConfig(think_lead_first="First:", think_lead="Then:")
    assert fire("think_lead", rollout(HIDDEN), cfg=cfg) == "First:"
    assert fire("think_lead", rollout(HIDDEN, sent=[("q", "r")]), cfg=cfg) == "Then:"


def test_check_answer_fires_for_an_answer_no_reply_holds_and_not_otherwise():
    ro = rollout(HIDDEN, sent=[("Which country is the Eiffel Tower in?", "France.")])
    assert fire("check_answer", ro, answer("Lyon")) == ("answer_not_in_replies", "", "hop")
    assert fire("check_answer", ro, answer("France")) is None          # a reply holds it
    assert fire("check_answer", ro, answer("yes")) is None             # yes/no: no reply spells it out
    assert fire("check_answer", rollout(HIDDEN), answer("Lyon")) is None  # nothing read yet
    assert fire("check_answer", rollout(HIDDEN, sent=[("q", "r")], turn=4), answer("Lyon")) is None  # no turn left
    assert fire("check_answer", ro, answer("Lyon", {"Lyon": 0.6, "Paris": 0.4})) is None  # a choice's option


def test_check_asked_for_fires_for_an_answer_one_hop_short():
    q = "Which river flows through the capital of Hungary?"
    ro = rollout(q, sent=[("What is the capital of Hungary?", "Budapest is the capital.")])
    flag, lead, then = fire("check_asked_for", ro, answer("Budapest"))
    assert (flag, then) == ("answer_one_hop_short", "decide") and lead.startswith("Budapest answers")
    ro = rollout(q, sent=[("Which river flows through Budapest?", "The Danube.")])
    assert fire("check_asked_for", ro, answer("Danube")) is None        # the sub-question asked for a river
    assert fire("check_asked_for", ro, answer("Lyon")) is None          # no reply holds it: check_answer's case


def test_check_asked_for_points_at_the_reply_to_the_question_itself_when_it_was_asked():
    q = "Which river flows through the capital of Hungary?"
    ro = rollout(q, sent=[("Which river flows through the capital of Hungary?", "It is the Danube."),
                          ("What is the capital of Hungary?", "Budapest.")])
    flag, lead, then = fire("check_asked_for", ro, answer("Budapest"))
    assert then == "answer" and "The reply to" in lead


def test_whole_question_lead_fires_for_a_first_restatement_of_a_question_that_hides_a_fact():
    flag = "whole_question_rewritten"
    assert fire("whole_question_lead", rollout(HIDDEN), HIDDEN) == (
        "First I need to find the country where the Eiffel Tower stands.", flag)
    assert fire("whole_question_lead", rollout(HIDDEN), "Where is the Eiffel Tower?") is None
    assert fire("whole_question_lead", rollout(HIDDEN, sent=[("q", "r")]), HIDDEN) is None      # not the first hop
    plain = "What is the capital of France?"
    assert fire("whole_question_lead", rollout(plain), plain) is None                            # hides nothing


def test_assumed_lead_fires_for_a_first_hop_that_fills_in_the_hidden_fact():
    got = fire("assumed_lead", rollout(HIDDEN), "What is the capital of France?")
    assert got == ("First I need to find the country where the Eiffel Tower stands.", "assumed_rewritten")
    assert fire("assumed_lead", rollout(HIDDEN), "Where is the Eiffel Tower?") is None
    assert fire("assumed_lead", rollout(HIDDEN), HIDDEN) is None  # a restatement is whole_question_lead's


def test_restated_lead_fires_for_a_later_restatement_only():
    later = rollout(HIDDEN, sent=[("Where is the Eiffel Tower?", "Paris, France.")])
    assert fire("restated_lead", later, HIDDEN) == ("What I know so far:", "restated_rewritten")
    assert fire("restated_lead", rollout(HIDDEN), HIDDEN) is None
    assert fire("restated_lead", later, "What is the capital of France?") is None


def test_fact_question_swaps_a_first_restatement_only_after_a_lead_named_the_fact():
    led = rollout(HIDDEN, flags=["whole_question_rewritten"])
    assert fire("fact_question", led, HIDDEN) == (
        "What is the name of the country where the Eiffel Tower stands?", "fact_hop")
    assert fire("fact_question", rollout(HIDDEN), HIDDEN) is None                     # no lead before it
    assert fire("fact_question", led, "Where is the Eiffel Tower?") is None          # not a restatement
    when = "Who was president when Apollo 11 landed on the Moon?"
    if hidden_fact(when).lower().startswith("when "):
        assert fire("fact_question", rollout(when, flags=["whole_question_rewritten"]), when) is None


def test_choice_rules_act_on_choice_questions_only():
    ro = rollout(CHOICE)
    assert fire("choice_answer", ro) == ["Lake Baikal", "Lake Tanganyika"]
    assert fire("choice_answer", rollout(HIDDEN)) is None
    assert fire("choice_lead", ro) is None                                           # nothing read yet
    read = rollout(CHOICE, sent=[("How deep is Lake Baikal?", "Lake Baikal is 1,642 m deep.")])
    assert fire("choice_lead", read) == "Comparing Lake Baikal and Lake Tanganyika:"
    assert fire("choice_hop", read) is None                                          # one thing's fact only
    both = rollout(CHOICE, sent=[("How deep is Lake Baikal?", "Lake Baikal is 1,642 m deep."),
                                 ("How deep is Lake Tanganyika?", "Lake Tanganyika is 1,470 m deep.")])
    assert fire("choice_hop", both) == f"Lake Baikal is 1,642 m deep. Lake Tanganyika is 1,470 m deep. {CHOICE}"
    split = fire("choice_split_lead", ro, CHOICE)
    assert split[1] == "choice_split_rewritten" and "Lake Baikal" in split[0]
    assert fire("choice_split_lead", ro, "How deep is Lake Baikal?") == ("", "")      # one thing: sent, claimed
    assert fire("choice_split_lead", rollout(HIDDEN), HIDDEN) is None


def test_repeat_rules_send_a_repeat_up_the_ladder():
    pool = fake_pool()
    tiny, big = pool.get("Tiny"), pool.get("Big")
    ro = rollout(HIDDEN)
    assert fire("repeat_escalates", ro, pool, big, ["Tiny"], True) is big
    assert fire("repeat_escalates", ro, pool, tiny, ["Tiny"], False) is None
    assert fire("repeat_climbs", ro, pool, tiny, ["Tiny"], False).name == "Mid"
    assert fire("repeat_climbs", ro, pool, big, ["Tiny"], True) is None
    assert fire("repeat_climbs", ro, pool, big, ["Big"], False) is None               # the top of the ladder


def test_repeat_drops_think_cuts_the_transcript_before_the_last_think_block():
    ro = rollout(HIDDEN, transcript="<think> a </think>\n<information> r </information>\n<think> again </think>\n")
    assert fire("repeat_drops_think", ro) == "<think> a </think>\n<information> r </information>\n"
    assert fire("repeat_drops_think", rollout(HIDDEN)) is None


# ---------------------------------------------------------------------------- the registry and presets

def test_every_intervention_is_complete_and_every_rule_flag_names_one():
    assert len(BY_NAME) == len(INTERVENTIONS)
    for iv in INTERVENTIONS:
        assert iv.point in POINTS and iv.caption.endswith(".") and "_" not in iv.caption, iv.name
        assert all(hasattr(RunConfig(), f) for f in iv.settings.values()), iv.name
        if iv.name != "think_lead":  # listed by name alone, it turns itself on (think_lead has no default words)
            assert any(iv.settings_for(None).values()), iv.name
    for flag in COMPOSED_FLAGS:
        assert flag in BY_FLAG
    for flag in ("answer_not_in_replies", "answer_one_hop_short", "whole_question_rewritten", "assumed_rewritten",
                 "restated_rewritten", "choice_split_rewritten", "repeat_climbed"):
        assert flag in BY_FLAG


def test_think_lead_listed_alone_asks_for_its_words():
    with pytest.raises(ValueError, match="think_lead: give first or later"):
        intervention_settings(["think_lead"])


def test_a_preset_lists_interventions_by_name_with_their_own_settings():
    cfg = RunConfig().merged(intervention_settings(["check_answer", {"fact_question": {"question": "Who is {fact}?"}},
                                                   {"whole_question_lead": None}]))
    assert cfg.check_answer and cfg.fact_question == "Who is {fact}?"
    assert cfg.whole_question_lead == "First I need to find {fact}."
    assert active(cfg) == ["check_answer", "whole_question_lead", "fact_question"]
    assert [iv.name for iv in at("rewrite", cfg)] == ["whole_question_lead"]


@pytest.mark.parametrize("listed, needle", [
    (["no_such_rule"], "no intervention named 'no_such_rule'; known: think_lead"),
    ([{"fact_question": {"lead": "x"}}], "fact_question: unknown setting(s) lead; known: question"),
    (["check_answer", "check_answer"], "'check_answer' is listed twice"),
    ([{"a": {}, "b": {}}], "interventions[0]: write a name"),
    ([{"check_answer": "yes"}], "its settings must be a mapping"),
])
def test_bad_intervention_lists_are_refused_naming_the_entry(listed, needle):
    with pytest.raises(ValueError) as e:
        intervention_settings(listed)
    assert needle in str(e.value)


def test_a_policy_file_with_a_bad_intervention_names_the_file_and_policy(tmp_path):
    p = tmp_path / "p.yaml"
    p.write_text("default: a\npolicies:\n  - {name: a, engine: llamacpp, model: x, interventions: [nope]}\n")
    with pytest.raises(PolicyError, match=r"p.yaml: policy 'a': interventions\[0\]: no intervention named 'nope'"):
        load_policies(p)


def test_old_run_keys_keep_working_with_a_warning_naming_them(tmp_path, monkeypatch):
    monkeypatch.delenv("ROUTER_STUDIO_POLICY", raising=False)
    p = tmp_path / "p.yaml"
    p.write_text("default: a\npolicies:\n  - {name: a, engine: llamacpp, model: x, run: {check_answer: true}}\n")
    with pytest.warns(FutureWarning, match=r"policy 'a': run: check_answer now belong to interventions"):
        book = load_policies(p)
    assert book.get("a").run_config().check_answer


def test_the_shipped_presets_list_their_interventions_and_use_no_old_keys(monkeypatch):
    monkeypatch.delenv("ROUTER_STUDIO_POLICY", raising=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        book = load_policies()
    default = book.get(None)
    assert default.interventions and not default.old_keys()
    assert "fact_question" in active(default.run_config()) and "choice_split_lead" not in active(default.run_config())
    teach = book.get("prompted-qwen2.5-1.5b-teach")
    assert set(active(teach.run_config())) - set(active(default.run_config())) == {"choice_split_lead"}
    assert set(OWNED) >= {"check_answer", "think_lead_recheck", "fact_question"}


def test_the_driver_and_the_router_hold_no_rule_and_router_core_stays_small():
    """No function in router_core over 80 lines, no module over 400; the driver names no run setting a rule owns."""
    for p in sorted((ROOT / "router_core").rglob("*.py")):
        src = p.read_text(encoding="utf-8")
        assert len(src.splitlines()) <= 400, p
        for node in ast.walk(ast.parse(src)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                assert node.end_lineno - node.lineno + 1 <= 80, f"{p}: {node.name}"
    for name in ("guided.py",):
        src = (ROOT / "router_core" / "rollout" / name).read_text(encoding="utf-8")
        used = {n.attr for n in ast.walk(ast.parse(src)) if isinstance(n, ast.Attribute)}
        assert not used & set(OWNED), f"{name} reads a rule's setting: {used & set(OWNED)}"
    assert not {n.attr for n in ast.walk(ast.parse((ROOT / "router_core" / "loop.py").read_text()))
                if isinstance(n, ast.Attribute)} & set(OWNED)


# ---------------------------------------------------------------------------- on the page

def _session_with_rules() -> tuple[dict, list[Step]]:
    steps = [Step("s", 0, "think", text="First I need to find the country.", lead="First I need to find the country.",
                  flags=["whole_question_rewritten"]),
             Step("s", 1, "route", query="What is the name of the country?", written_query=HIDDEN, flags=["fact_hop"],
                  request_model="Big", response="France.", call_started_at=1.0, call_ended_at=2.0),
             Step("s", 2, "route", query="x", flags=["repeated_query", "think_dropped"]),
             Step("s", 3, "answer", text="Paris")]
    cfg = RunConfig().merged(intervention_settings(["whole_question_lead", "fact_question", "repeat_drops_think",
                                                    "check_answer"]))
    from router_core.policy import recorded_settings
    session = {"id": "s", "question": HIDDEN, "gold": ["Paris"], "alpha": 0.0, "policy": "p", "pool_name": "fake",
               "status": "done", "settings": recorded_settings(cfg), "pool": {"models": []}}
    return session, steps


def test_a_session_says_which_rules_were_on_and_where_each_acted_in_the_rules_own_words():
    from ui.rules import rules_used
    session, steps = _session_with_rules()
    used = {r["name"]: r["steps"] for r in rules_used(session, steps)}
    assert used == {"check_answer": [], "whole_question_lead": [0], "fact_question": [1], "repeat_drops_think": [2]}
    # an older session (no settings recorded): the rules read off its steps' flags
    assert {r["name"] for r in rules_used({}, steps)} == {"whole_question_lead", "fact_question", "repeat_drops_think"}
    assert rules_used({}, [Step("s", 0, "answer", text="x")]) == []
    from ui.render import rules_html
    assert "was not recorded" in rules_html({}, [Step("s", 0, "answer", text="x")])
    assert "none was on" in rules_html({"settings": {"interventions": [], "run": {}}}, [Step("s", 0, "answer")])


def test_the_replay_header_and_the_exported_page_list_the_rules_without_identifiers():
    import re

    from ui.explorer import Replay
    from ui.export_html import session_page
    session, steps = _session_with_rules()
    page = session_page(session, steps)
    visible = re.sub(r"<[^>]+>", " ", re.sub(r"<script\b.*?</script>|<style\b.*?</style>|title=\"[^\"]*\"", "", page,
                                             flags=re.S))
    assert "Rules the studio applied around the router" in visible and BY_NAME["fact_question"].label in visible
    assert "acted at step 1" in visible and "on, did not act" in visible
    for flag in BY_FLAG:
        assert flag not in visible, flag
    assert "rollout" not in visible.lower()  # a teacher's page speaks of "the studio", not of rollout jargon
    header = Replay(session, steps, []).header()
    assert "studio rules: 3 of 4 acted" in header and BY_NAME["repeat_drops_think"].caption in header


def test_the_live_summary_names_the_rules_that_acted():
    from ui.live import summary_html
    _, steps = _session_with_rules()
    html = summary_html(HIDDEN, steps, 0.0, ["Paris"], "s" * 32)
    assert "rules that acted:" in html and f"{BY_NAME['fact_question'].label} (step 1)" in html
    assert "fact_hop" not in html
