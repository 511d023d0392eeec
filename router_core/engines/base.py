"""The one small interface every engine implements: generate, chat, score.

`generate` continues a raw prompt (the router's growing transcript), `chat` answers
a list of messages (candidate calls), `score` returns log p(continuation | prefix) for
a few continuations — the hot path of every live-α route decision.
"""
from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Callable, Sequence

OnText = Callable[[str], None]


class EngineError(RuntimeError):
    """Any failure of an engine or endpoint; the loop turns it into an error step."""


class ScoringUnsupported(EngineError):
    """This engine cannot return log-probabilities (e.g. an endpoint without logprobs)."""


@dataclass
class Completion:
    text: str
    input_tokens: int
    output_tokens: int
    finish_reason: str  # "stop" | "length" | "error"
    seconds: float
    first_token_s: float | None = None


class TextCollector:
    """Gathers streamed pieces, forwards them to `on_text`, and notes the time to first token."""

    def __init__(self, on_text: OnText | None, t0: float) -> None:
        self.on_text, self.t0 = on_text, t0
        self.parts: list[str] = []
        self.first: float | None = None

    def add(self, piece: str | None) -> None:
        if not piece:
            return
        if self.first is None:
            self.first = time.perf_counter() - self.t0
        self.parts.append(piece)
        if self.on_text:
            self.on_text(piece)

    @property
    def text(self) -> str:
        return "".join(self.parts)


class Engine(ABC):
    """A loaded model. Engines are shared between sessions; calls are serialised by `lock`."""

    name: str = "engine"

    def __init__(self) -> None:
        self.lock = threading.RLock()

    @abstractmethod
    def generate(self, prompt: str, *, stop: Sequence[str] = (), max_tokens: int = 256,
                 temperature: float = 0.0, on_text: OnText | None = None) -> Completion:
        """Continue `prompt`; stop strings are not included in the returned text."""

    @abstractmethod
    def chat(self, messages: list[dict[str, str]], *, max_tokens: int = 256,
             temperature: float = 0.0, stop: Sequence[str] = (), on_text: OnText | None = None) -> Completion:
        """Answer a chat; used for candidate calls."""

    @abstractmethod
    def score(self, prefix: str, continuations: Sequence[str]) -> list[float]:
        """Sum of log-probabilities of each continuation's tokens after `prefix`."""

    @abstractmethod
    def chat_prompt(self, messages: list[dict[str, str]]) -> str:
        """The raw prompt for `messages` under this model's chat template, ready for generation."""

    def count_tokens(self, text: str) -> int:
        return max(1, len(text) // 4)

    def close(self) -> None:  # pragma: no cover - engines without resources
        pass


def shared_prefix_len(base: Sequence[int], fulls: Sequence[Sequence[int]]) -> int:
    """Tokens that the prefix and every prefix+continuation share.

    BPE may merge across the boundary (" Name"), so whatever differs is scored as part of
    each continuation; at least one token is left to score in every continuation.
    """
    k = len(base)
    for f in fulls:
        j = 0
        while j < min(k, len(f)) and f[j] == base[j]:
            j += 1
        k = j
    return max(1, min(k, min(len(f) for f in fulls) - 1))
