"""assumed_lead: a first sub-question that skips the fact a question hides, naming a thing the question does not
("What is the capital of France?" for "… of the country where the Eiffel Tower stands?": the first fact filled in
from the router's memory, right or wrong), is not sent; a think block naming the fact comes first and it is written
again. Once per session, shared with the other first-hop rules."""
from __future__ import annotations

from ..asked_for import assumed
from .intervention import Intervention
from .reading import first_hop, restates
from .state import Rollout


def fire(ro: Rollout, cfg, query: str) -> tuple[str, str] | None:
    # a restatement is whole_question_lead's, whether that rule is on or not
    if not (ro.fact and first_hop(ro)) or restates(ro.question, query) or not assumed(ro.question, query):
        return None
    return cfg.assumed_lead.replace("{fact}", ro.fact), "assumed_rewritten"


ASSUMED_LEAD = Intervention(
    name="assumed_lead",
    label="first hop written again: it skipped a hidden fact",
    point="rewrite", fire=fire, flag="assumed_rewritten", once="first_hop_rewritten",
    settings={"lead": "assumed_lead"}, defaults={"lead": "First I need to find {fact}."},
    caption="The router's first sub-question skipped a fact the question hides and filled it in from memory; the "
            "studio started a think block that names that fact, and the router wrote the sub-question again.")
