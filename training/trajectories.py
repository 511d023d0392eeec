"""Trajectories: stored sessions scored with Router-R1's reward at any α, the best kept per (question, α), and the
plain-protocol text a student policy learns from.

Router-R1's reward, as its repository computes it: a format error scores −1, a wrong answer 0 (exact match after
normalisation), a right one (1 − α) + α·R_cost with raw cost = Σ output tokens × price over the calls and
R_cost = 1 − the cost's place between the 5th and 95th percentile of √cost over a window (here: every trajectory
of the collection, one normalisation for all, as one training batch shares one).

Rejection sampling (expert iteration, as FireAct and STaR do it): for each question and each training α, every
trajectory of that question is scored *at that α* (a trajectory run at α 0 is scored at α 0.75 too: its reward
only needs its answer and its calls), and the best one is kept when its reward reaches `min_reward`. So the α a
teacher ran at does not decide what the student learns at that α: the reward does. Ties go to the trajectory run
nearest that α, then the cheaper one.

The training text is the protocol the policy should write, nothing else: `<think> … </think>`, `<search> Model:
sub-question </search>`, `<answer> … </answer>`, with each reply inside `<information>` present but masked out of
the loss (Router-R1 masks them too). Where a rollout rule wrote words (a think lead, a sub-question sent in place of
the router's), the text holds what was sent, as the policy's own: the rules become data. A route step that was never
sent (a refused first hop) is left out, and of two think blocks in a row the last is kept (the first is the one the
rule answered).
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from typing import Iterable, Sequence

from router_core.cost import CostNormalizer, raw_cost, router_r1_reward
from router_core.metrics import exact_match, f1_score
from router_core.protocol import format_alpha, information_block, neutralise
from router_core.session import SessionResult
from router_core.step import Step
from storage import SessionFilter, TraceStore

# why a trajectory was kept or dropped at a training α, in words (the Training tab and the card show them)
REASONS = {
    "kept": "kept: the best reward for its question at this α",
    "protocol": "dropped: the protocol broke (an error, a format flag or no answer)",
    "repeat": "dropped: it asked the same sub-question twice",
    "wrong": "dropped: wrong answer",
    "too_dear": "dropped: right, but too dear at this α (its reward is under the threshold)",
    "outranked": "dropped: another trajectory of the same question scored higher at this α",
}


@dataclass
class Trajectory:
    """One stored session of a teacher (or of the student, in a later round), with what the reward needs."""

    session_id: str
    question: str
    golds: list[str]
    alpha: float                 # the α the session ran at
    policy: str
    steps: list[Step]
    dataset: str | None = None
    item_id: str | None = None
    run_id: str | None = None
    prices: dict[str, float] = field(default_factory=dict)  # price_out of each pool model ($ / 1M tokens)

    @property
    def result(self) -> SessionResult:
        return SessionResult.of(self.steps, self.question, self.alpha, self.golds)

    @property
    def answer(self) -> str | None:
        return self.result.answer

    @property
    def em(self) -> float:
        return exact_match(self.answer, self.golds) if self.golds else 0.0

    @property
    def f1(self) -> float:
        return f1_score(self.answer, self.golds) if self.golds else 0.0

    @property
    def format_ok(self) -> bool:
        r = self.result
        return r.status == "done" and r.format_ok and not any(s.kind == "error" or s.status == "error"
                                                              for s in self.steps)

    @property
    def repeats(self) -> bool:
        return any("repeated_query" in s.flags for s in self.steps)

    @property
    def raw_cost(self) -> float:
        """Router-R1's raw cost: Σ output tokens × price_out over the calls made ($ / 1M tokens units)."""
        return raw_cost([s for s in self.steps if s.sent], self.prices)

    @property
    def cost_usd(self) -> float:
        return self.result.cost_usd

    @property
    def models(self) -> list[str]:
        return [s.request_model for s in self.steps if s.sent and s.request_model]

    @property
    def key(self) -> tuple[str, str]:
        """The question this trajectory answers (the same item across runs and α)."""
        return (self.dataset or "", self.item_id or self.question)


def load_trajectories(store: TraceStore, run_ids: Sequence[str]) -> list[Trajectory]:
    """Every finished router session of the runs (baselines and screens are not trajectories of a policy)."""
    out: list[Trajectory] = []
    for rid in run_ids:
        rows = list(store.iter_sessions(SessionFilter(run_id=rid)))
        if not rows:
            raise ValueError(f"--run: no sessions stored under run id '{rid}' in {store.where}")
        for r in rows:
            if str(r["policy"] or "").startswith("baseline/") or r["status"] == "running":
                continue
            meta = store.get_session(r["id"])
            pool = meta.get("pool") or {}
            prices = {m["name"]: float(m.get("price_out", 0.0)) for m in pool.get("models", []) if "name" in m}
            out.append(Trajectory(session_id=r["id"], question=r["question"], golds=list(r["gold"] or []),
                                  alpha=float(r["alpha"]), policy=r["policy"], steps=store.load_steps(r["id"]),
                                  dataset=r["dataset"], item_id=r["item_id"], run_id=rid, prices=prices))
    return out


def normalizer_for(trajectories: Iterable[Trajectory]) -> CostNormalizer:
    """One cost normalisation for the whole collection (window = all of it)."""
    trajs = list(trajectories)
    norm = CostNormalizer(window=max(2, len(trajs)))
    for t in trajs:
        norm.observe(t.raw_cost)
    return norm


@dataclass(frozen=True)
class Terms:
    """Router-R1's reward of one trajectory at one α, with its terms (shown beside the answer)."""

    alpha: float
    format_ok: bool
    em: float
    r_cost: float
    reward: float


def reward_terms(t: Trajectory, alpha: float, norm: CostNormalizer) -> Terms:
    """The reward is router_core.cost's (the one Compare and eval show), on the collection's normaliser; its terms
    are kept beside it for the card and the Training tab."""
    reward = router_r1_reward(t.answer, t.golds, t.format_ok, t.raw_cost, alpha, norm)
    return Terms(alpha=alpha, format_ok=t.format_ok, em=t.em, r_cost=norm.reward(t.raw_cost), reward=reward)


@dataclass
class Decision:
    """A trajectory at one training α: kept or dropped, why, and its reward there."""

    trajectory: Trajectory
    alpha: float
    reason: str              # a key of REASONS
    terms: Terms

    @property
    def kept(self) -> bool:
        return self.reason == "kept"

    @property
    def words(self) -> str:
        return REASONS[self.reason]


def select(trajectories: Sequence[Trajectory], alphas: Sequence[float], *, min_reward: float = 0.5,
           norm: CostNormalizer | None = None) -> list[Decision]:
    """Every trajectory at every training α, kept (at most one per question and α) or dropped with its reason.

    Kept: the highest reward among a question's trajectories with a sound protocol and no repeated sub-question,
    when it reaches `min_reward`. With `min_reward` ≤ 0 a wrong answer (reward 0) can be kept: plain imitation of the
    teacher where nothing better exists (the toy pipeline in the tests uses that)."""
    norm = norm or normalizer_for(trajectories)
    by_q: dict[tuple[str, str], list[Trajectory]] = {}
    for t in trajectories:
        by_q.setdefault(t.key, []).append(t)
    out: list[Decision] = []
    for _, group in sorted(by_q.items()):
        for a in alphas:
            scored = [(t, reward_terms(t, a, norm)) for t in group]
            ranked = sorted(((t, s) for t, s in scored if t.format_ok and not t.repeats),
                            key=lambda ts: (-ts[1].reward, abs(ts[0].alpha - a), ts[0].raw_cost, ts[0].session_id))
            best = ranked[0][0] if ranked and ranked[0][1].reward >= min_reward else None
            for t, s in scored:
                if not t.format_ok:
                    why = "protocol"
                elif t.repeats:
                    why = "repeat"
                elif s.reward < min_reward:
                    why = "wrong" if s.em < 1.0 else "too_dear"
                elif t is best:
                    why = "kept"
                else:
                    why = "outranked"
                out.append(Decision(t, a, why, s))
    return out


# ---------------------------------------------------------------------------------------------- training text

Segment = tuple[str, bool]  # (text, trained on): the policy's own words are trained on, replies are not
THINK_MODES = ("first-sentence", "whole")


_SENTENCE_END = re.compile(r"(?:(?<=[.!?])|(?<=[.!?][\"”’']))\s+(?=[A-Z\"“'‘(])")


def first_sentence(text: str, min_words: int = 4) -> str:
    """The first sentence of a think block (the first two when the first is a few words): the plan or the fact
    carried forward. The teacher's second sentence mostly restates the next sub-question ("I still need the country
    where X was born."), which the search right after it says anyway."""
    parts = _SENTENCE_END.split(text.strip())
    out = parts[0]
    if len(out.split()) < min_words and len(parts) > 1:
        out = f"{out} {parts[1]}"
    return out


def alpha_words(alpha: float) -> str:
    """How the student says, in its first think block, what α asks of it: the slider in words, right before the first
    model it names. The words are the studio's (like a rule's lead), the same for every question at that α; without
    them a 0.5B student trained here ignored the one token of its prompt that states α (P(Qwen2.5-1.5B) 0.59 at α 1 vs
    0.63 at α 0 on a held-out question)."""
    a = format_alpha(alpha)
    if alpha < 0.25:
        return f"α is {a}: the answer counts, not the cost."
    if alpha < 0.75:
        return f"α is {a}: the answer and the cost both count."
    return f"α is {a}: every dollar counts, so the cheapest model that can answer."


def protocol_segments(steps: Sequence[Step], *, think: str = "first-sentence",
                      alpha: float | None = None) -> list[Segment]:
    """The session as the plain protocol, exactly as the free rollout lays a transcript out (router_core/rollout/
    free.py): the policy writes up to `</search>` / `</answer>`; the rollout adds a newline and the reply block.
    `think`: "first-sentence" keeps each think block's first sentence (fewer words for the student to write: the
    session's speed is mostly the router's tokens), "whole" keeps it all. `alpha`: the first think block starts with
    `alpha_words(alpha)`."""
    if think not in THINK_MODES:
        raise ValueError(f"think: '{think}' is not one of {', '.join(THINK_MODES)}")
    segs: list[Segment] = []
    pending: str | None = None
    lead = alpha_words(alpha) if alpha is not None else ""

    def block() -> str:
        nonlocal lead
        text = " ".join(x for x in (lead, pending or "") if x)
        lead = ""
        return f"<think> {text} </think>\n" if text else ""

    for s in steps:
        if s.kind == "think":
            text = " ".join(neutralise(s.text).split())
            if think == "first-sentence":
                text = first_sentence(text)
            pending = text or pending  # of two think blocks in a row, the last is kept
        elif s.kind == "route":
            if not s.sent or not s.request_model or not s.query:
                continue  # refused by a rule before it was sent: the text holds what was sent instead
            query = " ".join(neutralise(s.query).split())
            segs.append((f"{block()}<search> {s.request_model}: {query} </search>", True))
            segs.append(("\n" + information_block(s.response or "(no reply)"), False))
            pending = None
        elif s.kind == "answer":
            answer = " ".join(neutralise(s.text).split())
            segs.append((f"{block()}<answer> {answer} </answer>", True))
            pending = None
    return segs


@dataclass
class Example:
    """One training example: the question and α the prompt states, and the protocol text to learn."""

    question: str
    alpha: float
    segments: list[Segment]
    session_id: str
    dataset: str | None
    item_id: str | None
    reward: float
    models: list[str]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["segments"] = [list(s) for s in self.segments]
        return d


def examples_from(decisions: Iterable[Decision], think: str = "first-sentence", alpha_lead: bool = True,
                  balance: bool = True) -> list[Example]:
    """The kept trajectories as training examples; `balance` repeats the examples of the α values with fewer kept
    trajectories (in order, round robin) until every α has as many as the most: each α weighs the same in the loss
    (at α 1 only the questions the cheapest model got right are kept, a third of α 0's)."""
    out = []
    for d in decisions:
        if not d.kept:
            continue
        t = d.trajectory
        segs = protocol_segments(t.steps, think=think, alpha=d.alpha if alpha_lead else None)
        out.append(Example(question=t.question, alpha=d.alpha, segments=segs,
                           session_id=t.session_id, dataset=t.dataset, item_id=t.item_id, reward=d.terms.reward,
                           models=t.models))
    if balance and out:
        groups: dict[float, list[Example]] = {}
        for e in out:
            groups.setdefault(e.alpha, []).append(e)
        most = max(len(g) for g in groups.values())
        for g in groups.values():
            out += [g[i % len(g)] for i in range(most - len(g))]
    return out


def data_hash(examples: Sequence[Example], *extra: str) -> str:
    """What a checkpoint was trained on: resuming against other data is refused."""
    h = hashlib.sha256()
    for e in examples:
        h.update(json.dumps(e.to_dict(), sort_keys=True, ensure_ascii=False).encode())
    for x in extra:
        h.update(x.encode())
    return h.hexdigest()
