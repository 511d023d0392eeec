"""choice_answer: a question naming two things to choose between ("…, A or B?") is answered with one of them.

Why: the router's scores after `<answer>` pick the thing, so the answer is never a sentence, a date or a third
thing; named by the question, it never goes back as absent from the replies (reading.checkable)."""
from __future__ import annotations

from .intervention import Intervention
from .state import Rollout


def fire(ro: Rollout, cfg) -> list[str] | None:
    return ro.options or None


CHOICE_ANSWER = Intervention(
    name="choice_answer",
    label="answer picked between the two things named", flag="choice_answer",
    point="answer", fire=fire, settings={"on": "choice_answer"},
    caption="The question names two things to choose between, so the answer is the one of them the router scored "
            "higher.")
