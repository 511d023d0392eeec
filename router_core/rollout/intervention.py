"""What an intervention is: a named rule of the guided rollout, asked by the driver at one fixed point.

The driver (guided.py: think → decide → choose → write → call → read → answer) holds no rule of its own. At each
point it asks the interventions registered for that point, in the registry's order (registry.py), and carries out
what the first one that fires returns. An intervention is:
- `name`: how a preset lists it (`interventions: [check_answer, fact_question, …]`);
- `point`: where the driver asks it (POINTS);
- `fire`: a pure function of the rollout state (and the point's arguments) that returns None when it does not act,
  else what the driver should do (the shape depends on the point, see POINTS);
- `flag`: the flag it leaves on the step it changes, so a stored session says where each rule acted;
- `label`: that flag in a few plain words, for a step's card;
- `caption`: what it does, in plain words, for the page and the lesson captions;
- `settings`: its own settings as a preset writes them beside its name, each mapped to the RunConfig field that
  holds it; `switches` are the fields that turn it on (a true flag, or a non-empty text; the first by default);
- `defaults`: the text settings' values when a preset lists the name alone (the wording measured with it);
- `once`: a group name for a rule that acts once per session (two rules in one group share that once).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

# point → what `fire` receives after (rollout, config), and what it returns when it acts
POINTS: dict[str, str] = {
    "think": "() → the words a think block starts with",
    "compose": "() → a sub-question the rollout writes itself, sent before the answer",
    "answer_think": "() → the lead of a think block written before the answer",
    "answer": "() → the things the answer must be one of",
    "send_back": "(draft answer step) → (flag, think lead, then: 'hop' | 'decide' | 'answer')",
    "rewrite": "(sub-question) → (think lead, flag): not sent, written again after a think block; "
               "('', '') sends it as written and asks no later rule",
    "swap": "(sub-question) → (the sub-question sent in its place, flag)",
    "repeat": "(pool, model chosen, models asked before, chosen is dearer than all of them) → the model a "
              "repeated sub-question is sent to instead of being dropped",
    "drop": "() → the transcript the answer is written after, once a repeat was dropped",
}


@dataclass(frozen=True)
class Intervention:
    name: str
    point: str
    fire: Callable[..., Any]
    caption: str
    settings: dict[str, str] = field(default_factory=dict)
    flag: str = ""
    label: str = ""
    needs: tuple[str, ...] = ()  # interventions that must be on for this one to act
    switches: tuple[str, ...] = ()
    once: str = ""
    defaults: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.point not in POINTS:
            raise ValueError(f"intervention {self.name}: unknown point '{self.point}' (known: {', '.join(POINTS)})")
        if not self.settings:
            raise ValueError(f"intervention {self.name}: names no run setting")
        if not (self.flag and self.label):
            raise ValueError(f"intervention {self.name}: needs a flag and its label")

    @property
    def switched_by(self) -> tuple[str, ...]:
        """The RunConfig fields that turn it on."""
        return self.switches or (next(iter(self.settings.values())),)

    def settings_for(self, given: dict[str, Any] | None) -> dict[str, Any]:
        """The run settings that listing this intervention (with `given`, its own settings by their preset names)
        stands for; ValueError names an unknown setting, or a text rule listed without its text."""
        given = dict(given or {})
        bad = sorted(set(given) - set(self.settings))
        if bad:
            raise ValueError(f"{self.name}: unknown setting(s) {', '.join(bad)}; known: {', '.join(self.settings)}")
        out: dict[str, Any] = {}
        for key, fieldname in self.settings.items():
            if key in given:
                out[fieldname] = given[key]
            elif key in self.defaults:
                out[fieldname] = self.defaults[key]
            elif key == "on":
                out[fieldname] = True
        if not any(out.get(f) for f in self.switched_by):
            keys = [k for k, f in self.settings.items() if f in self.switched_by]
            raise ValueError(f"{self.name}: give {' or '.join(keys)}")
        return out

    def on(self, cfg: Any) -> bool:
        return any(getattr(cfg, f) for f in self.switched_by) and all(getattr(cfg, n) for n in self.needs)
