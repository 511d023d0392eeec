"""Decomposition measures on hand-made step lists: think quality, bridges (chain), repeats, grounding."""
from __future__ import annotations

from evaluation.decomposition import bridges, grounded, is_real_thought, measure, repeated, rollout_only, split
from router_core.metrics import found_in
from router_core.step import Step

Q = "Which country is the birthplace of the director of the film Interstellar?"
NAMES = ["SmolLM2-135M", "Qwen2.5-0.5B", "Qwen2.5-1.5B"]


def route(i: int, query: str, reply: str, *, sent: bool = True, status: str = "ok") -> Step:
    return Step("s", i, "route", request_model="Qwen2.5-1.5B" if sent else None, query=query, response=reply,
                call_started_at=1.0 if sent else None, call_ended_at=2.0 if sent else None, status=status)


def two_hop() -> list[Step]:
    return [Step("s", 0, "think", text="I need the director of Interstellar first, then where he was born."),
            route(1, "Who directed the film Interstellar?", "Interstellar was directed by Christopher Nolan."),
            Step("s", 2, "think", text="The director is Christopher Nolan. Now I need his birthplace."),
            route(3, "In which country was Christopher Nolan born?", "Christopher Nolan was born in London, England."),
            Step("s", 4, "think", text="He was born in England."),
            Step("s", 5, "answer", text="England")]


def test_think_quality_ignores_model_names():
    assert is_real_thought("I need the director first, then his birthplace.", NAMES)
    assert not is_real_thought("Qwen2.5-1.5B", NAMES) and not is_real_thought("Qwen2.5-0.5B: SmolLM2-135M", NAMES)
    assert not is_real_thought("Ask Qwen2.5-1.5B who directed it", NAMES)  # four words once the name is out
    assert is_real_thought("Ask Qwen2.5-1.5B who directed the film", NAMES)


def test_a_bridge_is_the_entity_the_first_hop_found():
    bs = bridges(two_hop(), Q)
    assert len(bs) == 1
    b = bs[0]
    assert (b.from_step, b.to_step, b.span) == (1, 3, "christopher nolan")
    reply = two_hop()[1].response
    query = two_hop()[3].query
    assert reply[b.reply_span[0]:b.reply_span[1]] == "Christopher Nolan"
    assert query[b.query_span[0]:b.query_span[1]] == "Christopher Nolan"


def test_no_bridge_for_words_already_in_the_question_stop_words_or_unsent_replies():
    # the second sub-question reuses only "Interstellar" (in the question) and stop words
    steps = [route(0, "Who directed Interstellar?", "The director of Interstellar is Christopher Nolan."),
             route(1, "What year did Interstellar come out?", "Interstellar came out in 2014.")]
    assert bridges(steps, Q) == []
    # the span comes from a reply that was never sent (a repeat) or that failed: not a bridge
    steps = [route(0, "Who directed Interstellar?", "(Not asked again)", sent=False),
             route(1, "Where was Christopher Nolan born?", "London")]
    assert bridges(steps, Q) == []
    steps = [route(0, "Who directed Interstellar?", "Error: Christopher Nolan endpoint down", status="error"),
             route(1, "Where was Christopher Nolan born?", "London")]
    assert bridges(steps, Q) == []
    # a comparison question: two independent lookups, no bridge
    cmp_q = "Who was born first, Albert Einstein or Isaac Newton?"
    steps = [route(0, "When was Albert Einstein born?", "Albert Einstein was born in 1879."),
             route(1, "When was Isaac Newton born?", "Isaac Newton was born in 1643.")]
    assert bridges(steps, cmp_q) == []


def test_repeats_and_grounding():
    assert not repeated(two_hop())
    rep = two_hop() + [route(6, "who directed the film  Interstellar", "(Not asked again)", sent=False)]
    assert repeated(rep)
    assert grounded(two_hop()) is True
    wrong = two_hop()[:-1] + [Step("s", 5, "answer", text="Paris")]
    assert grounded(wrong) is False
    assert grounded([Step("s", 0, "answer", text="England")]) is None  # no reply to ground in
    # a substring of a word does not count: "Eng" is not grounded in "England"
    assert grounded(two_hop()[:-1] + [Step("s", 5, "answer", text="Eng")]) is False


def test_measure_over_sessions():
    no_route = [Step("s", 0, "think", text="Qwen2.5-0.5B"), Step("s", 1, "answer", text="Paris")]
    d = measure([(Q, two_hop()), ("What is the capital of France?", no_route)], NAMES)
    assert d.sessions == 2 and d.thinks == 4 and d.real_thoughts == 3
    assert d.think_quality == 0.75 and d.chain_rate == 0.5 and d.repeat_rate == 0.0 and d.grounded_rate == 1.0
    assert measure([]).think_quality is None and measure([]).chain_rate is None


def test_think_quality_leaves_out_a_block_the_rollout_wrote_whole():
    lead = "First I need to find the director of the film Interstellar."
    whole = Step("s", 0, "think", text=lead, lead=lead)
    short = Step("s", 0, "think", text=lead + " Then where.", lead=lead)  # two words of the router's: counted
    d = measure([(Q, [whole] + two_hop()[1:])], NAMES)
    assert rollout_only(whole) and not rollout_only(short) and not rollout_only(two_hop()[0])
    assert (d.thinks, d.real_thoughts) == (2, 2)
    d = measure([(Q, [short] + two_hop()[1:])], NAMES)
    assert (d.thinks, d.real_thoughts) == (3, 2)


def test_a_comparison_the_rollout_composed_from_the_replies_is_a_bridge_but_not_the_routers_chaining():
    lakes = "Which lake is deeper, Lake Baikal or Lake Tanganyika?"
    steps = [route(0, "How deep is Lake Baikal?", "Lake Baikal is 1,642 meters deep."),
             route(1, "How deep is Lake Tanganyika?", "Lake Tanganyika is 1,470 meters deep."),
             route(2, f"Lake Baikal is 1,642 meters deep. Lake Tanganyika is 1,470 meters deep. {lakes}", "Baikal."),
             Step("s", 3, "answer", text="Lake Baikal")]
    steps[2].flags = ["comparison_hop"]
    assert [(b.from_step, b.to_step) for b in bridges(steps, lakes)] == [(0, 2), (1, 2)]  # the graph draws them
    assert measure([(lakes, steps)]).chain_rate == 0.0
    steps[2].flags = []
    assert measure([(lakes, steps)]).chain_rate == 1.0


def test_a_choice_question_splits_when_each_thing_is_asked_about_on_its_own():
    unis = "Which university is older, the University of Bologna or the University of Oxford?"
    each = [route(0, "When was the University of Bologna founded?", "In 1088."),
            route(1, "When was the University of Oxford founded?", "Teaching existed there by 1096.")]
    assert split(each, unis) is True  # "university" is shared: "bologna" and "oxford" tell the two apart
    whole = [route(0, "Which is older, the University of Bologna or Oxford?", "Bologna.")]
    assert split(whole, unis) is False  # one sub-question about both is the comparison asked whole
    assert split(each[:1], unis) is False  # only one of the two asked about
    composed = each[:1] + [route(1, "In 1088. When was the University of Oxford founded?", "1096.")]
    composed[1].flags = ["comparison_hop"]
    assert split(composed, unis) is False  # the rollout's composed hop is not the router's split
    assert split(two_hop(), Q) is None  # not a choice question


def test_chain_rate_over_the_questions_that_are_not_choices_and_choice_split():
    lakes = "Which lake is deeper, Lake Baikal or Lake Tanganyika?"
    each = [route(0, "How deep is Lake Baikal?", "1,642 m."), route(1, "How deep is Lake Tanganyika?", "1,470 m."),
            Step("s", 2, "answer", text="Lake Baikal")]
    one = [route(0, "Which lake is deeper, Lake Baikal or Lake Tanganyika?", "Baikal."),
           Step("s", 1, "answer", text="Lake Baikal")]
    d = measure([(Q, two_hop()), (lakes, each), (lakes, one)], NAMES)
    assert d.chain_rate == 1 / 3  # the comparisons have no bridge to chain
    assert d.chain_rate_not_choice == 1.0 and d.split_rate == 0.5
    assert [p["split"] for p in d.per_session] == [None, True, False]
    row = d.as_row()
    assert row["chain rate (not choice)"] == 1.0 and row["choice split"] == 0.5
    only = measure([(Q, two_hop())])
    assert only.split_rate is None and only.chain_rate_not_choice == 1.0


def test_found_in_matches_whole_normalised_words_only():
    assert found_in("The Nile", ["the nile is longer."]) and found_in("1564", ["Born in 1564, in Stratford"])
    assert not found_in("Eng", ["He was born in England."]) and not found_in("", ["x"]) and not found_in("x", [None])


def test_found_in_reads_number_words_as_digits_both_ways():
    assert found_in("7", ["There are seven continents on Earth."]) and found_in("Seven", ["7 continents"])
    assert found_in("twenty", ["It has 20 floors."]) and found_in("90", ["ninety years"])
    assert not found_in("7", ["There are seventy continents."]) and not found_in("one", ["someone said 10"])


def test_the_question_the_rollout_asked_for_a_first_fact_is_not_the_routers_but_its_next_hop_is():
    q = "What is the capital of the country where the Eiffel Tower stands?"
    fact = route(0, "What is the name of the country where the Eiffel Tower stands?", "The Eiffel Tower is in France.")
    fact.flags = ["fact_hop"]
    steps = [fact, route(1, "What is the capital of France?", "Paris is the capital of France."),
             Step("s", 2, "answer", text="Paris")]
    assert fact.composed and not steps[1].composed
    assert [(b.from_step, b.to_step, b.span) for b in bridges(steps, q)] == [(0, 1, "france")]
    assert measure([(q, steps)]).chain_rate == 1.0  # the router carried what the rollout's hop found
    # a bridge into a sub-question the rollout wrote is not the router's chaining
    steps[1].flags = ["fact_hop"]
    assert measure([(q, steps)]).chain_rate == 0.0
