"""whole_question_lead: a first sub-question that restates a question hiding a first fact ("the country where …",
asked_for.hidden_fact) is not sent; a think block naming that fact comes first and the sub-question is written again.

Why: asked whole, such a question goes to one model in one hop: nothing to see decomposed, and a small candidate
often gets it wrong. A question that hides nothing is asked whole rightly. Once per session, shared with the other
first-hop rules (two think blocks of the rollout's in a row teach nothing)."""
from __future__ import annotations

from .intervention import Intervention
from .reading import first_hop, restates
from .state import Rollout


def fire(ro: Rollout, cfg, query: str) -> tuple[str, str] | None:
    if not (ro.fact and first_hop(ro) and restates(ro.question, query)):
        return None
    return cfg.whole_question_lead.replace("{fact}", ro.fact), "whole_question_rewritten"


WHOLE_QUESTION_LEAD = Intervention(
    name="whole_question_lead",
    label="first hop written again: it asked the whole question",
    point="rewrite", fire=fire, flag="whole_question_rewritten",
    once="first_hop_rewritten", settings={"lead": "whole_question_lead"},
    defaults={"lead": "First I need to find {fact}."},
    caption="The router's first sub-question asked the whole question at once; the studio started a think block "
            "that names the first fact to find, and the router wrote the sub-question again.")
