"""The router's KV cache on the real shipped model, read from the engine's own counters.

The instruction part of the router prompt (template, model list, descriptions) is the same for every
question with a pool and template: the first session computes it, a second session computes only its own
question and what follows. A session reuses its own transcript across steps, and the text of a session at
temperature 0 is the same on a warm engine as on a fresh one (the cache changes cost, never the answer).
"""
from __future__ import annotations

import pytest

from router_core.engines import Engine, EngineSpec, get_engine, load_engine
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
