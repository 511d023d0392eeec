"""What the rules read off a rollout: whether a sub-question restates the question, which models a sub-question
went to, whether a written answer may still be sent back. Pure functions, shared by several interventions."""
from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from ..asked_for import asked_for, asks_for, content_words, stem
from ..metrics import found_in, normalize_answer
from ..protocol import neutralise
from ..step import Step
from .state import Rollout

if TYPE_CHECKING:
    from ..policy import RunConfig


def restates(question: str, sub_question: str) -> bool:
    """Whether `sub_question` is `question` reworded, not a part of it: it asks for the same thing (when the
    wording says what, see asked_for.py) and holds most (four in five) of the question's meaningful words.
    "When did the war end by the 1919 Treaty of Versailles begin?" restates "In what year did the war ended by the
    1919 Treaty of Versailles begin?".
    "In which U.S. state does the Golden Gate Bridge stand?" holds six of the seven of "What is the capital of
    the U.S. state in which the Golden Gate Bridge stands?" but asks for a state, not a capital."""
    words = asked_for(question)
    if words and not asks_for(sub_question, words):
        return False
    q, sub = {stem(w) for w in content_words(question)}, {stem(w) for w in content_words(sub_question)}
    # what the question asks for is in the sub-question by the check above, though its word may differ ("in what
    # year" / "when"); words are compared without "-ed"/"-ing" ("the war ended by …" / "the war end by …")
    held = (q & sub) | (q & {stem(w) for w in words})
    return bool(q) and len(held) >= 0.8 * len(q)


def models_asked(steps: Sequence[Step], key: str) -> list[str]:
    """The models a sub-question (normalised) was sent to so far in this session."""
    return [s.request_model for s in steps
            if s.kind == "route" and s.sent and s.request_model and normalize_answer(s.query or "") == key]


def replies_read(ro: Rollout) -> list[Step]:
    """The route steps whose reply the router has read."""
    return [s for s in ro.steps if s.sent and s.response]


def checkable(ro: Rollout, cfg: "RunConfig", draft: Step) -> bool:
    """Whether a written answer may be sent back for one more hop (check_answer, check_asked_for): only after some
    reply was read, while a route turn remains and no hop is forced to be the last; an answer that is empty, a yes
    or no (no reply spells them out) or one of the two things a choice question names is given as written. Once
    per session for both rules (the driver's `once` group)."""
    return bool(replies_read(ro) and not ro.force_answer and ro.turn < cfg.max_turns and draft.text
                and normalize_answer(draft.text) not in ("yes", "no") and not draft.options)


def holding(ro: Rollout, answer: str) -> list[Step]:
    """The replies read that contain `answer`."""
    return [s for s in replies_read(ro) if found_in(answer, [s.response])]


def short_hop_lead(question: str, answer: str, sub_question: str) -> str:
    """The think lead for an answer taken from the reply to `sub_question` when that sub-question does not ask
    for what `question` asks for ("" when it does, or when that cannot be told): the answer of a first hop
    given as the answer of the whole question. An answer the question itself names (a comparison's choice) is
    left alone."""
    words = asked_for(question)
    if not words or found_in(answer, [question]) or asks_for(sub_question, words):
        return ""
    return f'{answer} answers "{sub_question}", but not yet the question "{neutralise(question)}".'


def first_hop(ro: Rollout) -> bool:
    """No sub-question was sent yet."""
    return not ro.sent_any()
