"""Why a finished session's answer is wrong: one suggested failure kind per wrong session, by a decision list.

Read from the session's steps, question and gold alone (no model, no store), so it is cheap enough to compute when
a session is stored and to recompute for older ones. It is a suggestion for an analyst — shown apart from the
labels people give, which override it — and it names the first reason that holds, in this order:

  error          the session failed (an engine, the router policy) before an answer
  format         the router broke the protocol and gave no usable answer
  abstained      the answer says the facts were not found ("not mentioned", "unknown", "I don't know", …)
  near_miss      the answer holds a gold answer among other words ("the city of Istanbul, Turkey"), or is part of
                 one ("Maria" for "Hurricane Maria"): right or nearly, marked wrong by exact match
  wrong_kind     the answer is of another kind than the question asks for: a yes/no question answered with an
                 entity ("Italian" for "Are Todd Haynes and Chris Columbus of the same nationality?"), a city for
                 "Which country …?", a place for "When …?" (router_core.answer_kind)
  ignored_reply  a reply the router read held a gold answer, and the answer is something else
  comparison     a choice question ("…, A or B?") answered with the other of the two, or with neither
  repeat         the same sub-question was asked again (refused or re-sent) and no reply held the gold
  one_hop        the question hides a first fact, and the one sub-question the router sent went straight for the
                 final answer (the whole question, or "When was Sisters formed?" for "Which year witnessed the
                 formation of the publisher of Sisters?"); a single-round baseline does so by design: never this kind
  stopped_early  one hop only, for the first fact: the router answered with it ("Bahamas" for the jurisdiction of
                 the flag of the country where …); a single-round baseline never gets this kind either
  no_call        the router answered from its own memory: no candidate was asked
  wrong_fact     a candidate stated the answer the router gave, and it is wrong
  unsupported    no reply says the answer: the router wrote it without a candidate saying it

Designed by reading the wrong sessions of a real run (30 public MuSiQue train questions, the default router and the
single-round baselines, 2026-12-04): most are wrong_fact (a small candidate states a wrong fact and the router
repeats it — 19 of the router's 26 wrong answers); the rest spread over repeat, one_hop, stopped_early and the others.
A session with EM 1, without gold, or stopped by someone gets None; one that failed gets error even without gold.
"""
from __future__ import annotations

import re
from typing import Sequence

from .answer_kind import wrong_kind
from .asked_for import asked_for, asks_for, choices, hidden_fact
from .metrics import exact_match, found_in, normalize_answer
from .rollout.reading import restates
from .step import Step

KINDS: tuple[str, ...] = ("error", "format", "abstained", "near_miss", "wrong_kind", "ignored_reply", "comparison", "repeat",
                          "one_hop", "stopped_early", "no_call", "wrong_fact", "unsupported")
KIND_TEXT = {
    "error": "the session failed",
    "format": "the router broke the protocol",
    "abstained": "the answer says the facts were not found",
    "near_miss": "holds the gold among other words, or part of it",
    "wrong_kind": "an answer of another kind than the question asks for",
    "ignored_reply": "a reply held the gold; the answer did not use it",
    "comparison": "a choice question answered with the wrong one",
    "one_hop": "one hop for a multi-hop question",
    "repeat": "asked the same sub-question again",
    "stopped_early": "answered with the first hop's fact",
    "no_call": "answered from memory, no candidate asked",
    "wrong_fact": "a candidate stated a wrong fact and the router used it",
    "unsupported": "an answer no reply supports",
}
# A single-round baseline asks one model once and takes its reply as the answer: no router chose or used anything.
BASELINE_TEXT = {
    "format": "the model gave no usable answer",
    "ignored_reply": "the model's reply held the gold; the answer taken from it did not",
    "wrong_fact": "the model stated a wrong fact",
    "unsupported": "the answer is not what the model's reply says",
    "no_call": "no model was asked",
    "repeat": "the same question was asked again",
}


def kind_text(kind: str, policy: str = "") -> str:
    """A failure kind in words, for a router session or (policy "baseline/…") a single-round baseline."""
    if policy.startswith("baseline/") and kind in BASELINE_TEXT:
        return BASELINE_TEXT[kind]
    return KIND_TEXT.get(kind, "")
_ABSTAIN = re.compile(r"\b(not (?:mentioned|provided|found|given|specified|stated|known|available|clear)|unknown|"
                      r"(?:do|does|did)(?: not|nt) (?:know|say|mention|specify|provide)|"
                      r"(?:cannot|can not|unable to) (?:be )?(?:determin|find|answer|identif)\w*|"
                      r"no (?:information|answer|data|record)|insufficient|not enough information)\b")


def abstains(answer: str) -> bool:
    """Whether an answer says the facts were not found rather than naming something."""
    a = normalize_answer(answer)
    return not a or bool(_ABSTAIN.search(a))


def failure_kind(steps: Sequence[Step], question: str, gold: Sequence[str]) -> str | None:
    """The first kind in the decision list (see the module's docstring) that holds for a wrong session."""
    golds = [g for g in gold if g]
    if not steps or steps[-1].status == "stopped":
        return None  # nothing to read, or someone stopped it (a user, a client that left): not the router's failure
    if steps[-1].kind == "error" and steps[-1].status == "error":
        return "error"
    answers = [s for s in steps if s.kind == "answer"]
    answer = answers[-1].text if answers else None
    if not golds or (answer is not None and exact_match(answer, golds)):
        return None
    if answer is None or not answer.strip():
        return "format"
    return _why(steps, question, golds, answer)


def _why(steps: Sequence[Step], question: str, golds: list[str], answer: str) -> str:
    sent = [s for s in steps if s.sent]
    replies = [s.response for s in sent if s.response and s.status == "ok"]
    gold_seen = any(found_in(g, replies) for g in golds)
    if abstains(answer):
        return "abstained"
    if any(found_in(g, [answer]) or found_in(answer, [g]) for g in golds):
        return "near_miss"
    if wrong_kind(question, answer):
        return "wrong_kind"
    if gold_seen:
        return "ignored_reply"
    options = choices(question)
    if options:
        return "comparison"
    routed = any(s.kind == "think" for s in steps)  # a router session (a single-round baseline has no thoughts)
    if any("repeated_query" in s.flags for s in steps) or _asked_twice(sent):
        return "repeat"
    hops = {normalize_answer(s.query or "") for s in sent}
    if routed and len(hops) == 1 and hidden_fact(question) and _asks_final(question, sent[0].query or ""):
        return "one_hop"
    if not sent:
        return "no_call"
    if routed and len(hops) == 1 and not restates(question, sent[0].query or "") and found_in(answer, replies):
        return "stopped_early"
    return "wrong_fact" if found_in(answer, replies) else "unsupported"


def _asks_final(question: str, sub_question: str) -> bool:
    """Whether a sub-question goes straight for what the question asks ("When was Sisters formed?" for "Which year
    witnessed the formation of the publisher of Sisters?"), skipping the fact the question hides."""
    words = asked_for(question)
    return restates(question, sub_question) or bool(words and asks_for(sub_question, words))


def _asked_twice(sent: Sequence[Step]) -> bool:
    asked = [normalize_answer(s.query or "") for s in sent]
    return len(asked) != len(set(asked))
