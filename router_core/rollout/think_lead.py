"""think_lead: the words every think block starts with, continued by the router ("The first fact I need is")."""
from __future__ import annotations

from .intervention import Intervention
from .state import Rollout


def fire(ro: Rollout, cfg) -> str | None:
    return cfg.think_lead_first if ro.turn == 0 else cfg.think_lead


THINK_LEAD = Intervention(
    name="think_lead",
    label="think block begun by the studio", flag="think_led",
    point="think", fire=fire,
    settings={"first": "think_lead_first", "later": "think_lead"}, switches=("think_lead_first", "think_lead"),
    caption="The studio wrote the first words of the router's think block; the router went on from them.")
