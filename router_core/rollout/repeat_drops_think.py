"""repeat_drops_think: after a repeated sub-question is dropped, the answer is written after the last reply, without
the think block that led to the repeat.

Why: that thought named a "missing" fact the replies already settle (a small router copies the worked example's
"I still need …"); written after it, the answer answers that thought rather than the question."""
from __future__ import annotations

from .intervention import Intervention
from .state import Rollout


def fire(ro: Rollout, cfg) -> str | None:
    cut = ro.transcript.rfind("<think>")
    return ro.transcript[:cut] if cut >= 0 else None


REPEAT_DROPS_THINK = Intervention(
    name="repeat_drops_think",
    label="answer written without the thought that led to the repeat", flag="think_dropped",
    point="drop", fire=fire, settings={"on": "repeat_drops_think"},
    caption="After the repeat, the router answered from the last reply, without the thought that led to the repeat.")
