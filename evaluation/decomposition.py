"""Does the router decompose? Measures computed from a session's stored steps alone.

* think quality — share of think blocks that hold a real thought: at least five words of the router's own
  (a lead the rollout wrote is not counted) once the pool's model names are taken out (a 0.5B router often
  writes only "Qwen2.5-0.5B"); a block the rollout wrote whole ("First I need to find <the fact>." with nothing
  after it) holds no thought of the router's, good or bad, and is left out;
* bridges — a later sub-question that reuses a span of an earlier reply which the question did not
  already contain (the entity the first hop found): that is what "multi-hop decomposition" means,
  and the teaching graph draws each bridge as an edge with the span highlighted in both;
* chain rate — share of sessions with at least one bridge into a sub-question the router wrote (one the rollout
  wrote, `Step.composed`: a comparison with the facts read, the question for a first fact, is not the router's
  chaining);
* chain rate (not choice) — the same over sessions whose question is not a choice question ("…, A or B?",
  asked_for.choices): a comparison decomposes side by side, one sub-question per thing, and has no bridge to
  chain, so over a set that mixes the two kinds the chain rate alone understates the chaining;
* choice split — share of choice questions where each of the two things was asked about in a sub-question of its
  own (one that speaks of it and not of the other): that is how a comparison decomposes;
* repeated sub-question — a sub-question asked again (sent or not) after normalisation;
* answer grounded — the answer's normalised text occurs in one of the replies.
Words are compared lower-cased, without punctuation; a span must hold a content word (not a
stop word, not a number-only token of one digit), so "the" or "of" never make a bridge.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from router_core.asked_for import about_alone, choices
from router_core.metrics import found_in, normalize_answer
from router_core.step import Step

_WORD = re.compile(r"[A-Za-z0-9\u00C0-\u024F][A-Za-z0-9\u00C0-\u024F'’\-]*")
STOP = frozenset("""a an the of in on at to for from by with and or but is are was were be been being who whom whose
what which when where why how that this these those it its he she they them his her their there here as into than then
do does did done have has had not no yes can could would should will shall may might must about after before during
between over under up down out off so such very more most much many any some each other another same also just only
own film films movie book novel country city year people person name called known""".split())
MIN_THINK_WORDS = 5


def words(text: str | None) -> list[str]:
    return [w.lower().strip("'’-") for w in _WORD.findall(text or "")]


def _content(ws: Iterable[str]) -> set[str]:
    return {w for w in ws if w not in STOP and not (w.isdigit() and len(w) < 2) and len(w) > 1}


def think_words(text: str, model_names: Sequence[str] = ()) -> int:
    """Words of a think block once model names (and their parts) are removed."""
    t = text or ""
    for n in sorted(model_names, key=len, reverse=True):
        t = re.sub(re.escape(n), " ", t, flags=re.IGNORECASE)
    return len(words(t))


def is_real_thought(text: str, model_names: Sequence[str] = ()) -> bool:
    return think_words(text, model_names) >= MIN_THINK_WORDS


def rollout_only(step: Step) -> bool:
    """A think block the rollout wrote whole: its lead, and no word of the router's after it."""
    lead, own = step.split_lead()
    return bool(lead) and not words(own)


@dataclass(frozen=True)
class Bridge:
    """A reply's span that a later sub-question reuses: step indexes and the span in both texts."""

    from_step: int          # the route step whose reply holds the span
    to_step: int            # the later route step whose sub-question reuses it
    span: str               # the reused words, lower-cased
    reply_span: tuple[int, int]   # character offsets of the span in the earlier reply
    query_span: tuple[int, int]   # character offsets in the later sub-question


def _word_spans(text: str) -> list[tuple[str, int, int]]:
    return [(m.group(0).lower().strip("'’-"), m.start(), m.end()) for m in _WORD.finditer(text or "")]


def _longest_shared(reply: str, query: str, exclude: set[str]) -> tuple[str, tuple[int, int], tuple[int, int]] | None:
    """The longest run of words shared by reply and query that holds a content word not in `exclude`."""
    rw, qw = _word_spans(reply), _word_spans(query)
    best: tuple[int, int, int] | None = None  # (length, reply start index, query start index)
    for i in range(len(rw)):
        for j in range(len(qw)):
            k = 0
            while i + k < len(rw) and j + k < len(qw) and rw[i + k][0] == qw[j + k][0]:
                k += 1
            if k and (best is None or k > best[0]):
                span_words = [w for w, _, _ in rw[i:i + k]]
                if _content(span_words) - exclude:
                    best = (k, i, j)
    if best is None:
        return None
    k, i, j = best
    # trim stop words at both ends so the highlight shows the entity, not "the"
    while k > 1 and (rw[i][0] in STOP or rw[i][0] in exclude):
        i, j, k = i + 1, j + 1, k - 1
    while k > 1 and (rw[i + k - 1][0] in STOP or rw[i + k - 1][0] in exclude):
        k -= 1
    span = " ".join(w for w, _, _ in rw[i:i + k])
    return span, (rw[i][1], rw[i + k - 1][2]), (qw[j][1], qw[j + k - 1][2])


def bridges(steps: Sequence[Step], question: str) -> list[Bridge]:
    """Every (earlier reply → later sub-question) reuse of a span the question did not contain."""
    routes = [s for s in steps if s.kind == "route" and s.query]
    in_question = _content(words(question))
    out: list[Bridge] = []
    for b, later in enumerate(routes):
        exclude = in_question | set().union(*(_content(words(r.query)) for r in routes[:b] if r.query)) \
            if b else in_question
        for earlier in routes[:b]:
            if not (earlier.sent and earlier.response and earlier.status == "ok"):
                continue
            hit = _longest_shared(earlier.response, later.query or "", exclude)
            if hit:
                out.append(Bridge(earlier.index, later.index, hit[0], hit[1], hit[2]))
    return out


def repeated(steps: Sequence[Step]) -> bool:
    seen: set[str] = set()
    for s in steps:
        if s.kind == "route" and s.query:
            q = normalize_answer(s.query)
            if q in seen:
                return True
            seen.add(q)
    return False


def split(steps: Sequence[Step], question: str) -> bool | None:
    """Whether a choice question's two things were each asked about on their own (None: not a choice question).
    Sub-questions the router wrote count, sent or not; the comparison hop the rollout composed does not."""
    options = choices(question)
    if not options:
        return None
    alone = {about_alone(s.query or "", options) for s in steps
             if s.kind == "route" and s.query and not s.composed}
    return all(o in alone for o in options)


def grounded(steps: Sequence[Step]) -> bool | None:
    """Whether the answer's normalised text occurs in some reply; None without an answer or a reply."""
    answers = [s.text for s in steps if s.kind == "answer" and s.text]
    replies = [s.response for s in steps if s.kind == "route" and s.sent and s.response]
    if not answers or not replies:
        return None
    return found_in(answers[-1], replies)


@dataclass
class Decomposition:
    """The measures over a set of sessions (each rate is None when nothing could be counted)."""

    sessions: int = 0
    thinks: int = 0
    real_thoughts: int = 0
    routed: int = 0            # sessions with at least one sub-question
    chained: int = 0
    not_choice: int = 0        # sessions whose question is not a choice question (asked_for.choices)
    chained_not_choice: int = 0
    choice: int = 0
    split: int = 0             # choice questions with each thing asked about on its own
    repeated: int = 0
    answered_with_replies: int = 0
    grounded: int = 0
    per_session: list[dict] = field(default_factory=list)

    @property
    def think_quality(self) -> float | None:
        return _share(self.real_thoughts, self.thinks)

    @property
    def chain_rate(self) -> float | None:
        return _share(self.chained, self.sessions)

    @property
    def chain_rate_not_choice(self) -> float | None:
        return _share(self.chained_not_choice, self.not_choice)

    @property
    def split_rate(self) -> float | None:
        return _share(self.split, self.choice)

    @property
    def repeat_rate(self) -> float | None:
        return _share(self.repeated, self.sessions)

    @property
    def grounded_rate(self) -> float | None:
        return _share(self.grounded, self.answered_with_replies)

    def as_row(self) -> dict[str, float | None]:
        return {"think quality": self.think_quality, "chain rate": self.chain_rate,
                "chain rate (not choice)": self.chain_rate_not_choice, "choice split": self.split_rate,
                "repeat rate": self.repeat_rate, "grounded": self.grounded_rate}


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def measure(sessions: Iterable[tuple[str, Sequence[Step]]], model_names: Sequence[str] = ()) -> Decomposition:
    """`sessions`: (question, steps) pairs."""
    d = Decomposition()
    for question, steps in sessions:
        d.sessions += 1
        thinks = [s for s in steps if s.kind == "think" and not rollout_only(s)]
        real = sum(is_real_thought(s.split_lead()[1], model_names) for s in thinks)
        d.thinks += len(thinks)
        d.real_thoughts += real
        bs = bridges(steps, question)
        composed = {s.index for s in steps if s.composed}
        rep = repeated(steps)
        g = grounded(steps)
        d.routed += any(s.kind == "route" for s in steps)
        chained = any(b.to_step not in composed for b in bs)
        d.chained += chained
        sp = split(steps, question)
        if sp is None:
            d.not_choice += 1
            d.chained_not_choice += chained
        else:
            d.choice += 1
            d.split += sp
        d.repeated += rep
        if g is not None:
            d.answered_with_replies += 1
            d.grounded += g
        d.per_session.append({"thinks": len(thinks), "real_thoughts": real, "bridges": len(bs), "repeated": rep,
                              "split": sp, "grounded": g})
    return d
