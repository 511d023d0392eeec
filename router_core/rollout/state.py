"""The mutable state of one guided or free session while it runs: what the policy has seen and what fired."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..engines import CacheHint
from ..step import Step


@dataclass
class Rollout:
    """Mutable state of one session while it runs (the transcript the policy sees)."""

    session_id: str
    prompt: str
    transcript: str = ""
    index: int = 0
    turn: int = 0
    steps: list[Step] = field(default_factory=list)
    asked: dict[str, int] = field(default_factory=dict)  # normalised sub-question → step index
    force_answer: bool = False
    fired: set[str] = field(default_factory=set)  # the once-per-session groups of the interventions that acted
    question: str = ""
    options: list[str] = field(default_factory=list)  # the two things a choice question names (asked_for.choices)
    fact: str = ""  # the first fact the question hides (asked_for.hidden_fact), "" for none
    cache: CacheHint | None = None  # the policy engine's cache hint: the instruction prefix, this session

    def flags_so_far(self) -> set[str]:
        """Every flag a step of this session carries so far (what the once-per-session rules look at)."""
        return {f for s in self.steps for f in s.flags}

    def sent_any(self) -> bool:
        """Whether some sub-question reached a candidate already (a later hop, not the first)."""
        return any(s.sent for s in self.steps)
