"""choice_split_lead: a choice question's first sub-question that speaks of both things or of neither is written
again after a think block, so each thing gets its own hop ("Who was born first, A or B?" asked whole).

A first sub-question of a choice question is this rule's alone: one that speaks of one thing is sent as written,
and the whole-question rules are not asked (they would take the comparison apart differently)."""
from __future__ import annotations

from ..asked_for import about_alone
from .intervention import Intervention
from .reading import first_hop
from .state import Rollout


def fire(ro: Rollout, cfg, query: str) -> tuple[str, str] | None:
    if not (first_hop(ro) and ro.options):
        return None
    if about_alone(query, ro.options) is None:
        a, b = ro.options
        return cfg.choice_split_lead.replace("{a}", a).replace("{b}", b), "choice_split_rewritten"
    return "", ""


CHOICE_SPLIT_LEAD = Intervention(
    name="choice_split_lead",
    label="first hop written again: one thing at a time",
    point="rewrite", fire=fire, flag="choice_split_rewritten", once="first_hop_rewritten",
    settings={"lead": "choice_split_lead"}, needs=("choice_answer",),
    defaults={"lead": "First I need one fact about {a}, then the same fact about {b}. For {a}, I need"},
    caption="The router's first sub-question asked about both things at once (or neither); the studio started a "
            "think block so it asks about one thing at a time.")
