"""Replaying greedy calls already made: the α sweep's shortcut.

A sweep over α runs the same question once per α, and at temperature 0 every session repeats the calls of
another one up to the first route where the two choose differently (the policy's text and a candidate's reply
depend only on the prompt; `CacheHint` reuse never changes them). `MemoEngine` keeps each greedy call's result
keyed by everything that decides it and hands back the stored result when the same call comes again, so a
sweep computes each distinct path once. Sampled calls (temperature > 0) always reach the engine.

The replayed `Completion` is the first one's, seconds included: a benchmark that reads latency must not use it.
"""
from __future__ import annotations

import dataclasses
import threading
from typing import Callable, Hashable, Sequence

from .base import CacheHint, Completion, Engine, OnText


class MemoEngine(Engine):
    """An engine that answers repeated greedy calls from memory; `hits` / `misses` count them."""

    def __init__(self, inner: Engine) -> None:
        super().__init__()
        self.inner = inner
        self.name = inner.name
        self.batches_natively = False  # one call at a time: a batch would hide which prompts repeat
        self._memo: dict[Hashable, object] = {}
        self._memo_lock = threading.Lock()
        self.hits = self.misses = 0

    def _recall(self, key: Hashable, compute: Callable[[], object]) -> tuple[object, bool]:
        with self._memo_lock:
            if key in self._memo:
                self.hits += 1
                return self._memo[key], True
        value = compute()
        with self._memo_lock:
            self._memo[key] = value
            self.misses += 1
        return value, False

    def _completion(self, key: Hashable, greedy: bool, on_text: OnText | None,
                    compute: Callable[[OnText | None], Completion]) -> Completion:
        if not greedy:
            return compute(on_text)
        value, replayed = self._recall(key, lambda: compute(on_text))
        assert isinstance(value, Completion)
        if replayed and on_text and value.text:
            on_text(value.text)  # a replay streams its whole text at once
        return dataclasses.replace(value)

    def generate(self, prompt: str, *, stop: Sequence[str] = (), max_tokens: int = 256,
                 temperature: float = 0.0, on_text: OnText | None = None,
                 cache: CacheHint | None = None) -> Completion:
        key = ("generate", prompt, tuple(stop), max_tokens)
        return self._completion(key, temperature == 0, on_text, lambda cb: self.inner.generate(
            prompt, stop=stop, max_tokens=max_tokens, temperature=temperature, on_text=cb, cache=cache))

    def chat(self, messages: list[dict[str, str]], *, max_tokens: int = 256, temperature: float = 0.0,
             stop: Sequence[str] = (), on_text: OnText | None = None, cache: CacheHint | None = None) -> Completion:
        key = ("chat", tuple(tuple(sorted(m.items())) for m in messages), tuple(stop), max_tokens)
        return self._completion(key, temperature == 0, on_text, lambda cb: self.inner.chat(
            messages, max_tokens=max_tokens, temperature=temperature, stop=stop, on_text=cb, cache=cache))

    def score(self, prefix: str, continuations: Sequence[str], cache: CacheHint | None = None, *,
              choice: bool = False) -> list[float]:
        key = ("score", prefix, tuple(continuations), choice)
        value, _ = self._recall(key, lambda: self.inner.score(prefix, continuations, cache, choice=choice))
        return list(value)  # type: ignore[call-overload]

    def chat_prompt(self, messages: list[dict[str, str]]) -> str:
        return self.inner.chat_prompt(messages)

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def prompt_head(self, content_head: str, role: str = "user") -> str:
        return self.inner.prompt_head(content_head, role)

    def stats(self) -> dict[str, float]:
        return {**self.inner.stats(), "memo_hits": float(self.hits), "memo_misses": float(self.misses)}

    def warm(self, prefix: str) -> None:
        self.inner.warm(prefix)


def memoized(provider: Callable[..., Engine]) -> Callable[..., Engine]:
    """Wrap an engine provider (spec → engine) so each engine it returns is wrapped once in a `MemoEngine`."""
    wrapped: dict[Engine, MemoEngine] = {}  # keyed by the engine itself (identity), which the dict keeps alive
    lock = threading.Lock()

    def get(spec) -> Engine:
        inner = provider(spec)
        with lock:
            if inner not in wrapped:
                wrapped[inner] = MemoEngine(inner)
            return wrapped[inner]
    get.engines = wrapped  # type: ignore[attr-defined]
    return get
