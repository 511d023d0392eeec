"""The memo engine: an α sweep computes each distinct path once and stores exactly what it would have stored."""
from __future__ import annotations

from typing import Sequence

import pytest
from support.fake_engine import (
    FakeEngine,
    fake_pool,
    fake_provider,
    routes_then_answers,
)

from router_core.engines import EngineError
from router_core.engines.memo import MemoEngine, memoized
from router_core.loop import Router
from router_core.policy import Policy

POLICY = Policy(name="p", engine="llamacpp", model="fake:policy", mode="guided")


def by_prompt(prompt: str, stop: Sequence[str]) -> str:
    """A policy whose text depends on the prompt alone, as a greedy model's does: its answer is what it read."""
    read = prompt.split(" </information>\n")
    if "</think>" in stop:
        return ("I have the capital now." if len(read) > 1 else "I need the capital first.") + "</think>"
    if "</search>" in stop:
        return " What is the capital of Hungary? </search>"
    return " " + ("Budapest" if len(read) > 1 and "Budapest" in read[-2] else "unknown") + " </answer>"


def test_repeated_greedy_calls_are_replayed_and_others_reach_the_engine():
    inner = FakeEngine(["one", "two", "three", "four"], scores={"A:": -1.0, "B:": -2.0})
    memo = MemoEngine(inner)
    streamed: list[str] = []
    first = memo.generate("p", stop=("x",), max_tokens=8)
    again = memo.generate("p", stop=("x",), max_tokens=8, on_text=streamed.append)
    assert first.text == again.text == "one" and streamed == ["one"] and again is not first
    assert memo.generate("p", stop=("x",), max_tokens=9).text == "two"        # another budget: computed
    assert memo.generate("p", stop=("x",), temperature=0.7).text == "three"  # sampled: never replayed
    assert memo.generate("p", stop=("x",), temperature=0.7).text == "four"
    assert memo.score("pre", ["A:", "B:"]) == memo.score("pre", ["A:", "B:"]) == [-1.0, -2.0]
    assert [c.op for c in inner.calls] == ["generate"] * 4 + ["score"]
    assert memo.hits == 2 and memo.stats()["memo_misses"] == 3  # sampled calls are neither


def test_a_failed_call_is_not_remembered():
    inner = FakeEngine(["ok"], fail="HTTP 503")
    memo = MemoEngine(inner)
    with pytest.raises(EngineError):
        memo.generate("p")
    inner.fail = None
    assert memo.generate("p").text == "ok" and memo.misses == 1


def test_a_sweep_through_the_memo_stores_what_a_sweep_without_it_stores():
    """Two questions at five α, once on fresh engines per session and once through one memo: the same steps
    (kind, text, sub-question, model, reply, choice), with the engines asked far fewer times."""
    def provider():
        policy = FakeEngine(by_prompt, scores=routes_then_answers(1, {"Tiny": -3.0, "Mid": -4.0, "Big": -0.2}))
        cands = {"fake:tiny": FakeEngine(reply="Szeged."), "fake:mid": FakeEngine(reply="Budapest."),
                 "fake:big": FakeEngine(reply="Budapest.")}
        return policy, cands, fake_provider(policy, cands)

    def steps(provider_fn) -> list[tuple]:
        out = []
        for q in ("Which river flows through the capital of Hungary?", "What is the capital of Hungary?"):
            for alpha in (0.0, 0.1, 0.3, 0.5, 1.0):
                router = Router(POLICY, fake_pool(), engines=provider_fn)
                out += [(q, alpha, s.kind, s.text, s.query, s.request_model, s.response,
                         s.choice.chosen if s.choice else None) for s in router.run(q, alpha)]
        return out

    _, plain_cands, plain = provider()
    policy, cands, inner = provider()
    memo = memoized(inner)
    got, want = steps(memo), steps(plain)
    assert got == want
    assert {r[5] for r in want if r[2] == "route"} >= {"Big", "Tiny"}  # α moved the pick: more than one path
    asked = len(policy.calls) + sum(len(c.calls) for c in cands.values())
    asked_plain = sum(len(c.calls) for c in plain_cands.values()) + len(want)  # candidates + at least a call a step
    assert asked < asked_plain
    assert sum(e.hits for e in memo.engines.values()) > 0
