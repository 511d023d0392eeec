"""restated_lead: a later sub-question that restates a question hiding a first fact, after some reply was read,
is not sent; a think block starting "What I know so far:" comes first, so the sub-question written after it can
carry what the replies found.

Why: a router sent back for a missing hop often asks the whole question again instead of carrying the fact a reply
gave. Once per session; a second restatement is sent as written."""
from __future__ import annotations

from .intervention import Intervention
from .reading import first_hop, restates
from .state import Rollout


def fire(ro: Rollout, cfg, query: str) -> tuple[str, str] | None:
    if not ro.fact or first_hop(ro) or not restates(ro.question, query):
        return None
    return cfg.restated_lead.replace("{fact}", ro.fact), "restated_rewritten"


RESTATED_LEAD = Intervention(
    name="restated_lead",
    label="sub-question written again after summing up the replies",
    point="rewrite", fire=fire, flag="restated_rewritten", once="restated_rewritten",
    settings={"lead": "restated_lead"}, defaults={"lead": "What I know so far:"},
    caption="The router asked the whole question again after reading a reply; the studio started a think block "
            "that sums up what the replies found, and the router wrote the sub-question again.")
