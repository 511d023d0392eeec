"""repeat_climbs: a repeated sub-question that α sends no dearer goes to the next model up the price ladder from
every one it went to, once per session (flag repeat_climbed): asking again says the cheaper reply did not settle it.

Why: at α ≥ 0.5 the cheapest model got the repeat again, and its reply is what left the question open. At the top of
the ladder the repeat is dropped as before."""
from __future__ import annotations

from ..pool import ModelSpec, Pool
from .intervention import Intervention
from .state import Rollout


def fire(ro: Rollout, cfg, pool: Pool, spec: ModelSpec, went: list[str], dearer: bool) -> ModelSpec | None:
    return None if dearer else pool.rung_above(went)


REPEAT_CLIMBS = Intervention(
    name="repeat_climbs",
    label="repeat sent one rung up the price ladder",
    point="repeat", fire=fire, flag="repeat_climbed", once="repeat_climbed",
    settings={"on": "repeat_climbs"},
    caption="The router asked a sub-question again; it went one model up the price ladder instead of being dropped.")
