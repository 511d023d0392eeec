"""check_answer: an answer that no reply contains goes back for one more hop.

Why: a small router often reads the first hop's reply and then answers the whole question from memory. Asking for
the missing fact instead is the hop a reader wants to see. Once per session (shared with check_asked_for)."""
from __future__ import annotations

from ..step import Step
from .intervention import Intervention
from .reading import checkable, holding
from .state import Rollout


def fire(ro: Rollout, cfg, draft: Step) -> tuple[str, str, str] | None:
    if not checkable(ro, cfg, draft) or holding(ro, draft.text):
        return None
    return "answer_not_in_replies", cfg.think_lead_recheck, "hop"


CHECK_ANSWER = Intervention(
    name="check_answer",
    label="answer sent back: no reply holds it",
    point="send_back", fire=fire, flag="answer_not_in_replies", once="answer_sent_back",
    settings={"on": "check_answer", "lead": "think_lead_recheck"},
    caption="The router's answer was in none of the replies, so it was sent back to ask one more sub-question.")
