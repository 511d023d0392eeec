"""Micro-batching: generation calls made at the same time by concurrent rollouts become one batch.

Eval rollouts run in threads, one per active question; each calls `generate` as if alone. This
wrapper holds a call for a short window, gathers the calls that arrive with the same settings
(stop strings, token limit, temperature) and sends them to the engine's `generate_batch` in one
go — so active questions advance turn by turn together (vLLM and transformers batch on the
device; llama.cpp has no batch call and is passed through, its calls serialised by its lock).
Candidate calls to endpoints simply overlap, since each rollout waits on its own thread.
A batch cannot be cut: a cancelled call (`CacheHint.cancel`) does not join one, and stops waiting for the one it
joined (which runs on for the others).
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Sequence

from .base import CacheHint, Completion, Engine, OnText, check_cancel


@dataclass
class _Pending:
    prompt: str
    done: threading.Event = field(default_factory=threading.Event)
    result: Completion | None = None
    error: BaseException | None = None


class BatchingEngine(Engine):
    """Wraps an engine that has `generate_batch`; other calls go straight through."""

    def __init__(self, inner: Engine, *, max_batch: int = 8, window_s: float = 0.05) -> None:
        super().__init__()
        self.inner, self.max_batch, self.window_s = inner, max_batch, window_s
        self.name = f"batched-{inner.name}"
        self._queues: dict[tuple, list[_Pending]] = {}
        self._cv = threading.Condition()
        self.batches: list[int] = []   # sizes of the batches sent, for benchmarks and tests

    @staticmethod
    def supports(engine: Engine) -> bool:
        return engine.batches_natively

    def generate(self, prompt: str, *, stop: Sequence[str] = (), max_tokens: int = 256,
                 temperature: float = 0.0, on_text: OnText | None = None, cache: CacheHint | None = None) -> Completion:
        check_cancel(cache)
        key = (tuple(stop), max_tokens, temperature)
        me = _Pending(prompt)
        with self._cv:
            q = self._queues.setdefault(key, [])
            q.append(me)
            leader = len(q) == 1
            if not leader and len(q) >= self.max_batch:
                self._cv.notify_all()
        if leader:
            deadline = time.monotonic() + self.window_s
            with self._cv:
                while len(self._queues[key]) < self.max_batch and (left := deadline - time.monotonic()) > 0:
                    self._cv.wait(left)
                batch = self._queues.pop(key)
            self.batches.append(len(batch))
            try:
                outs = self.inner.generate_batch([p.prompt for p in batch], stop=stop, max_tokens=max_tokens,
                                                 temperature=temperature)
                for p, o in zip(batch, outs):
                    p.result = o
            except BaseException as e:  # noqa: BLE001 — every caller of the batch sees the failure
                for p in batch:
                    p.error = e
            finally:
                for p in batch:
                    p.done.set()
        watch = cache is not None and cache.cancel is not None
        while not me.done.wait(0.05 if watch else None):
            check_cancel(cache)  # leave: the leader's batch still fills in (and drops) this call's result
        if me.error is not None:
            raise me.error
        assert me.result is not None
        if on_text and me.result.text:
            on_text(me.result.text)
        return me.result

    def chat(self, messages: list[dict[str, str]], *, max_tokens: int = 256, temperature: float = 0.0,
             stop: Sequence[str] = (), on_text: OnText | None = None, cache: CacheHint | None = None) -> Completion:
        return self.generate(self.chat_prompt(messages), stop=stop, max_tokens=max_tokens, temperature=temperature,
                             on_text=on_text, cache=cache)

    def score(self, prefix: str, continuations: Sequence[str], cache: CacheHint | None = None, *,
              choice: bool = False) -> list[float]:
        return self.inner.score(prefix, continuations, cache, choice=choice)

    def chat_prompt(self, messages: list[dict[str, str]]) -> str:
        return self.inner.chat_prompt(messages)

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)


def batched(provider, max_batch: int):
    """An engine provider whose engines batch concurrent generations where the engine can."""
    wrapped: dict = {}
    lock = threading.Lock()

    def get(spec):
        eng = provider(spec)
        if not BatchingEngine.supports(eng):
            return eng
        with lock:
            if id(eng) not in wrapped:
                wrapped[id(eng)] = BatchingEngine(eng, max_batch=max_batch)
            return wrapped[id(eng)]
    return get
