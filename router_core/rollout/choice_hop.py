"""choice_hop: before a choice question's answer, a model is asked the comparison with the facts read in it.

Why: a 1.5B router that has read a fact about each thing and is about to answer picks the one named last about half
the time ("Now I can compare the depths." → "Lake Tanganyika"); a model asked the comparison with both facts in one
short question gets most of them right (docs/results/bundled-1.5b-default.md). Written by the rollout from the
replies ("Lake Baikal … 1,644 meters … Lake Tanganyika is approximately 1,449 meters deep. Which lake is deeper,
Lake Baikal or Lake Tanganyika?"), once per session (its reply is the last one read), only when the replies speak of
both things and the question itself was not asked already."""
from __future__ import annotations

from ..asked_for import content_words, telling_words
from .intervention import Intervention
from .reading import restates
from .state import Rollout


def fire(ro: Rollout, cfg) -> str | None:
    opts = ro.options
    if not opts or ro.force_answer or ro.turn >= cfg.max_turns:
        return None
    if any(s.sent and restates(ro.question, s.query or "") for s in ro.steps):
        return None  # the comparison itself was asked already: a model has compared them
    own = telling_words(opts)  # "University of Bologna": "bologna" tells it apart
    facts, covered = [], [False, False]
    for s in ro.steps:
        if not (s.sent and s.status == "ok" and s.response) or restates(ro.question, s.query or ""):
            continue
        words = content_words(f"{s.query} {s.response}")
        hits = [bool(w & words) for w in own]
        if any(hits):
            facts.append(s.response)
            covered = [c or h for c, h in zip(covered, hits)]
    return f"{' '.join(facts)} {ro.question}" if all(covered) else None


CHOICE_HOP = Intervention(
    name="choice_hop",
    label="comparison asked with the facts read",
    point="compose", fire=fire, flag="comparison_hop", settings={"on": "choice_hop"},
    needs=("choice_answer",),
    caption="The studio asked a model the comparison itself, with the facts the replies gave about both things.")
