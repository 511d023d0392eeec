"""choice_lead: the think block before a choice question's answer, once some reply was read.

Why: a small router that read a fact about each thing often answers without setting them side by side ("Now I can
compare the populations." → "Japan"). Once per session."""
from __future__ import annotations

from .intervention import Intervention
from .reading import replies_read
from .state import Rollout


def fire(ro: Rollout, cfg) -> str | None:
    if not ro.options or not replies_read(ro):
        return None
    return cfg.choice_lead.replace("{a}", ro.options[0]).replace("{b}", ro.options[1])


CHOICE_LEAD = Intervention(
    name="choice_lead",
    label="think block that compares the two things", flag="choice_compared",
    point="answer_think", fire=fire, settings={"lead": "choice_lead"},
    defaults={"lead": "Comparing {a} and {b}:"}, needs=("choice_answer",), once="choice_lead",
    caption="Before the answer, the studio started a think block that sets the two things side by side.")
