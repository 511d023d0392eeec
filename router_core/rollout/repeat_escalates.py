"""repeat_escalates: a repeated sub-question that α sends to a dearer model than every one it went to is sent
(a second opinion up the price ladder: a cheaper model's reply did not settle it), not dropped."""
from __future__ import annotations

from ..pool import ModelSpec, Pool
from .intervention import Intervention
from .state import Rollout


def fire(ro: Rollout, cfg, pool: Pool, spec: ModelSpec, went: list[str], dearer: bool) -> ModelSpec | None:
    return spec if dearer else None


REPEAT_ESCALATES = Intervention(
    name="repeat_escalates",
    label="repeat sent to a dearer model as a second opinion", flag="repeat_escalated",
    point="repeat", fire=fire, settings={"on": "repeat_escalates"},
    caption="The router asked a sub-question again, of a dearer model than before; it was sent as a second opinion.")
