"""Batched generation: transformers' padded batch equals one-at-a-time greedy output, and the
micro-batcher turns concurrent rollout calls into one engine batch."""
from __future__ import annotations

import threading

import pytest

from router_core.engines import EngineSpec, get_engine
from router_core.engines.batching import BatchingEngine, batched

PROMPTS = ["What is the capital of France?", "Name a large ocean.", "Who wrote Hamlet? Answer briefly.",
           "What colour is the sky on a clear day?"]


@pytest.fixture(scope="module")
def hf():
    return get_engine(EngineSpec(engine="transformers", model="shipped:smollm2-135m-instruct"))


def _prompts(eng):
    return [eng.chat_prompt([{"role": "user", "content": p}]) for p in PROMPTS]


def test_transformers_batch_matches_serial_greedy(hf):
    ps = _prompts(hf)
    one = [hf.generate(p, max_tokens=24, stop=["\n\n"]) for p in ps]
    many = hf.generate_batch(ps, max_tokens=24, stop=["\n\n"])
    assert [c.text for c in many] == [c.text for c in one]
    assert [c.input_tokens for c in many] == [c.input_tokens for c in one]  # padding is not counted
    assert all(c.output_tokens > 0 for c in many)


def test_concurrent_calls_become_one_batch(hf):
    eng = BatchingEngine(hf, max_batch=4, window_s=2.0)
    ps = _prompts(hf)
    out: dict[int, str] = {}
    streamed: dict[int, str] = {}

    def call(i: int) -> None:
        out[i] = eng.generate(ps[i], max_tokens=16, on_text=lambda t, i=i: streamed.__setitem__(i, t)).text

    threads = [threading.Thread(target=call, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert eng.batches == [4]  # four rollouts, one engine call
    assert [out[i] for i in range(4)] == [c.text for c in hf.generate_batch(ps, max_tokens=16)]
    assert streamed == out


def test_engines_without_a_batch_call_pass_through(qwen):
    provider = batched(lambda spec: qwen, max_batch=8)
    assert provider(EngineSpec(engine="llamacpp", model="x")) is qwen
