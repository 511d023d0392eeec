"""Single-round routing: one model answers the question in one call (the baselines' shape).

A single-round session is stored like a multi-round one — a `route` step (the call, with its
tokens, cost and latency) then an `answer` step — so the explorer, replay, charts and report
treat both alike. Which model is picked (a fixed one, the largest, the cheapest, a random one,
or a kNN win-rate router over a threshold) is decided by the caller and recorded on the step.
"""
from __future__ import annotations

import time
import uuid
from typing import Callable, Iterator

from router_core.engines import Engine, EngineError, EngineSpec
from router_core.loop import spec_of_model
from router_core.paths import DIRECT_TEMPLATE
from router_core.pool import ModelSpec, Pool
from router_core.protocol import neutralise
from router_core.step import Step

ANSWER_TOKENS = 32


def short_answer(reply: str) -> str:
    """The answer part of a direct reply: its first non-empty line, without a leading 'Answer:'."""
    for line in reply.strip().splitlines():
        line = line.strip()
        if line:
            low = line.lower()
            for lead in ("answer:", "the answer is", "a:"):
                if low.startswith(lead):
                    line = line[len(lead):].strip()
                    break
            return line.strip(" .")
    return ""


def largest(pool: Pool) -> ModelSpec:
    return max(pool.models, key=lambda m: (m.params_b, m.price_out))


def cheapest(pool: Pool) -> ModelSpec:
    return min(pool.models, key=lambda m: (m.price_out, m.params_b))


def run_single(question: str, spec: ModelSpec, engines: Callable[[EngineSpec], Engine], *,
               session_id: str | None = None, decision: dict[str, float] | None = None,
               note: str | None = None, max_tokens: int = ANSWER_TOKENS) -> Iterator[Step]:
    """Ask `spec` the question once; yield the route step, then the answer (or an error)."""
    sid = session_id or uuid.uuid4().hex
    prompt = DIRECT_TEMPLATE.read_text(encoding="utf-8").replace("{{QUESTION}}", question)
    step = Step(sid, 0, "route", request_model=spec.name, written_model=spec.name, query=question,
                decision=decision, turn=1, text=note or f"single-round → {spec.name}")
    step.call_started_at = time.time()
    try:
        c = engines(spec_of_model(spec)).chat([{"role": "user", "content": prompt}], max_tokens=max_tokens,
                                               temperature=0.0)
    except EngineError as e:
        step.call_ended_at = step.ended_at = time.time()
        step.status, step.error = "error", str(e)
        yield step
        yield Step(sid, 1, "error", status="error", error=f"{spec.name} could not answer: {e}", turn=1)
        return
    step.call_ended_at = step.ended_at = time.time()
    step.input_tokens, step.output_tokens = c.input_tokens, c.output_tokens
    step.cost_usd = spec.call_cost(c.input_tokens, c.output_tokens)
    step.response = neutralise(c.text.strip())
    yield step
    answer = short_answer(step.response)
    t = time.time()
    yield Step(sid, 1, "answer", text=answer, started_at=t, ended_at=t, turn=1,
               status="ok" if answer else "flagged", flags=[] if answer else ["format:empty_answer"])
