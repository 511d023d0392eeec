"""Every intervention the guided rollout knows, in the order the driver asks them at a point.

The order is the registry's, not the preset's: at `rewrite` a choice question's first hop is choice_split_lead's
before the whole-question rules look at it, and at `repeat` a second opinion up the ladder (repeat_escalates) is
tried before a climb. A preset lists names; `settings_of` turns that list into run settings.
"""
from __future__ import annotations

from typing import Any, Iterator

from .assumed_lead import ASSUMED_LEAD
from .check_answer import CHECK_ANSWER
from .check_asked_for import CHECK_ASKED_FOR
from .choice_answer import CHOICE_ANSWER
from .choice_hop import CHOICE_HOP
from .choice_lead import CHOICE_LEAD
from .choice_split_lead import CHOICE_SPLIT_LEAD
from .fact_question import FACT_QUESTION
from .intervention import Intervention
from .repeat_climbs import REPEAT_CLIMBS
from .repeat_drops_think import REPEAT_DROPS_THINK
from .repeat_escalates import REPEAT_ESCALATES
from .restated_lead import RESTATED_LEAD
from .think_lead import THINK_LEAD
from .whole_question_lead import WHOLE_QUESTION_LEAD

INTERVENTIONS: tuple[Intervention, ...] = (
    THINK_LEAD, CHOICE_HOP, CHOICE_LEAD, CHOICE_ANSWER, CHECK_ANSWER, CHECK_ASKED_FOR,
    CHOICE_SPLIT_LEAD, WHOLE_QUESTION_LEAD, ASSUMED_LEAD, RESTATED_LEAD, FACT_QUESTION,
    REPEAT_ESCALATES, REPEAT_CLIMBS, REPEAT_DROPS_THINK,
)
BY_NAME: dict[str, Intervention] = {iv.name: iv for iv in INTERVENTIONS}
BY_FLAG: dict[str, Intervention] = {iv.flag: iv for iv in INTERVENTIONS if iv.flag}
# run settings that belong to an intervention (a preset writes them beside the intervention's name)
OWNED: dict[str, tuple[Intervention, str]] = {field: (iv, key) for iv in INTERVENTIONS
                                              for key, field in iv.settings.items()}


def at(point: str, cfg: Any) -> Iterator[Intervention]:
    """The interventions asked at `point` that this run turns on, in the registry's order."""
    return (iv for iv in INTERVENTIONS if iv.point == point and iv.on(cfg))


def active(cfg: Any) -> list[str]:
    """The names of the interventions a run turns on, in the registry's order."""
    return [iv.name for iv in INTERVENTIONS if iv.on(cfg)]
