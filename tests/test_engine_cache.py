"""The router's KV cache on the real shipped model, read from the engine's own counters.

The instruction part of the router prompt (template, model list, descriptions) is the same for every
question with a pool and template: the first session computes it, a second session computes only its own
question and what follows. A session reuses its own transcript across steps, and the text of a session at
temperature 0 is the same on a warm engine as on a fresh one (the cache changes cost, never the answer).
"""
from __future__ import annotations

import pytest

from router_core.engines import CacheHint, Engine, EngineSpec, get_engine, load_engine
from router_core.loop import Router
from router_core.policy import load_policies
from router_core.pool import load_pool

SHORT = {"max_turns": 1, "think_tokens": 24, "query_tokens": 16, "answer_tokens": 8,
         "candidate_max_tokens": 16, "reply_max_tokens": 24}
Q1 = "Which country is the birthplace of the director of the film Interstellar?"
Q2 = "What is the capital of the country where the Colosseum stands?"


def _router(engines) -> Router:
    policy = load_policies().get("prompted-qwen2.5-0.5b")
    return Router(policy, load_pool(), engines=engines, config=policy.run_config(SHORT))


def _session(router: Router, q: str) -> tuple[list[tuple[str, str]], dict[str, float]]:
    engine = router.policy_engine()
    before = engine.stats()
    steps = [(s.kind, s.text or s.query or "") for s in router.run(q, 0.0)]
    after = engine.stats()
    return steps, {k: after[k] - before[k] for k in after}


def test_second_session_prefills_a_fraction_of_the_first(qwen):
    router = _router(get_engine)
    head_tokens = len(qwen.tokens(router.template.head([(m.name, m.description) for m in router.pool.models])))
    _, first = _session(router, Q1)
    steps2, second = _session(router, Q2)
    assert first["prefill_tokens"] > head_tokens            # the first session computed the instructions
    assert second["cached_tokens"] >= head_tokens - 2       # the second took them from the cache ...
    assert second["prefill_tokens"] < 0.4 * first["prefill_tokens"]   # ... and computed only its own part
    assert second["prefix_builds"] == 0
    # within a session, each generation after the first reuses the transcript: far fewer tokens are
    # computed than the prompts hold
    assert second["prefill_tokens"] + second["cached_tokens"] > 3 * second["prefill_tokens"]
    assert steps2[-1][0] == "answer"


@pytest.mark.model  # loads its own engines (no shared fixture marks it)
def test_warm_engine_gives_the_same_session_as_a_fresh_one():
    """Same question, temperature 0: a fresh router engine and one that ran another session first agree."""
    fresh: dict[tuple, Engine] = {}

    def private(spec: EngineSpec):
        # engines of this test only, so the shared session fixtures' caches play no part
        key = (spec.model, spec.role)
        if key not in fresh:
            fresh[key] = load_engine(spec)
        return fresh[key]

    cold = _router(private)
    steps_cold, _ = _session(cold, Q2)
    warm = _router(get_engine)
    _session(warm, Q1)
    steps_warm, _ = _session(warm, Q2)
    assert steps_warm == steps_cold


def _interleaved(engine, prefix: str, a: str, b: str | None, tag: str) -> list[float]:
    """Session A's first generation, then (when `b`) one of session B, then A's next turn scored: the numbers A's
    second call computes."""
    hint_a = CacheHint(prefix=prefix, session=f"a-{tag}")
    first = engine.generate(prefix + a, max_tokens=10, cache=hint_a).text
    if b is not None:
        engine.generate(prefix + b, max_tokens=10, cache=CacheHint(prefix=prefix, session=f"b-{tag}"))
    return engine.score(prefix + a + first + " So the answer is", [" <search>", " <answer>", " Paris"],
                        cache=hint_a)


def test_a_session_computes_the_same_numbers_when_another_takes_turns_with_it(qwen, monkeypatch):
    """Eval --concurrency and two visitors make sessions take turns on one engine: the displaced session's cache is
    parked and restored, so its numbers are bit for bit those of a run alone (recomputing its transcript in one
    batch would round differently: bench/determinism.py)."""
    prefix = ("You route questions to models. Think, then ask one model a sub-question, then answer.\n" * 6)
    a = "Question: What is the capital of the country where the Eiffel Tower stands?\n"
    b = "Question: Who directed the film Jaws, and where was he born?\n"
    alone = _interleaved(qwen, prefix, a, None, "alone")
    before = qwen.stats()
    taking_turns = _interleaved(qwen, prefix, a, b, "turns")
    after = qwen.stats()
    assert taking_turns == alone  # exactly: the same operations on the same cells
    assert after["restored_sessions"] - before["restored_sessions"] == 1
    assert after["recomputed_sessions"] == before["recomputed_sessions"]
    # without parking the displaced session is computed again in another batch split: other numbers
    monkeypatch.setattr(type(qwen), "_park", lambda self: None)
    recomputed = _interleaved(qwen, prefix, a, b, "no-park")
    assert recomputed != alone
    assert qwen.stats()["recomputed_sessions"] == after["recomputed_sessions"] + 1
