"""fact_question: the whole question asked again right after the think block that names the first fact ("First I
need to find the country where …") is not sent; the rollout asks for that fact ("What is the name of {fact}?") in
its place (flag fact_hop; the router's wording stays in Step.written_query) and the router writes the next hop.

Why: sent as written, one model answers in one hop, from memory, often wrongly, and nothing of the decomposition
shows. A fact that is a time ("when Apollo 11 landed") has no such question and is left alone; a later restatement is
sent as written (tried with the replies' facts in front: docs/results/bundled-1.5b-default.md)."""
from __future__ import annotations

from .intervention import Intervention
from .reading import first_hop, restates
from .state import Rollout


def fire(ro: Rollout, cfg, query: str) -> tuple[str, str] | None:
    if not (ro.fact and restates(ro.question, query) and first_hop(ro)):
        return None
    led = ro.flags_so_far() & {"whole_question_rewritten", "assumed_rewritten"}
    if led and not ro.fact.lower().startswith("when "):
        return cfg.fact_question.replace("{fact}", ro.fact), "fact_hop"
    return None


FACT_QUESTION = Intervention(
    name="fact_question",
    label="asked for the first fact instead",
    point="swap", fire=fire, flag="fact_hop", settings={"question": "fact_question"},
    defaults={"question": "What is the name of {fact}?"},
    caption="The router asked the whole question again right after naming the first fact to find; the studio "
            "asked for that fact instead, and the router wrote the next sub-question itself.")
