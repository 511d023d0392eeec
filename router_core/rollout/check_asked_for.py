"""check_asked_for: an answer taken from the reply to a sub-question that asks for something else goes back.

Why: a small router often answers with the first hop's reply itself, one hop short ("which river …" answered from
"What is the capital of Hungary?"; see asked_for.py). A think block says so before the next decision; when the
question itself was asked already, the router answers again from that reply instead (asking again would be a
repeat). Once per session (shared with check_answer)."""
from __future__ import annotations

from ..step import Step
from .intervention import Intervention
from .reading import checkable, holding, replies_read, restates, short_hop_lead
from .state import Rollout


def fire(ro: Rollout, cfg, draft: Step) -> tuple[str, str, str] | None:
    if not checkable(ro, cfg, draft):
        return None
    held = holding(ro, draft.text)
    if not held or not (lead := short_hop_lead(ro.question, draft.text, held[-1].query or "")):
        return None
    whole = next((s.query for s in replies_read(ro) if s.query and restates(ro.question, s.query)), None)
    if whole:  # the reply to the question itself is pointed at: asking it again would be a repeat
        return "answer_one_hop_short", f'{lead} The reply to "{whole}" answers it.', "answer"
    return "answer_one_hop_short", lead, "decide"


CHECK_ASKED_FOR = Intervention(
    name="check_asked_for",
    label="answer sent back: one hop short",
    point="send_back", fire=fire, flag="answer_one_hop_short", once="answer_sent_back",
    settings={"on": "check_asked_for"},
    caption="The router answered from a reply to a sub-question that asks for something else, one hop short; "
            "the studio wrote why, and the router decided again.")
