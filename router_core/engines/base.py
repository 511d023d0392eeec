"""The one small interface every engine implements: generate, chat, score.

`generate` continues a raw prompt (the router's growing transcript), `chat` answers
a list of messages (candidate calls), `score` returns log p(continuation | prefix) for
a few continuations — the hot path of every live-α route decision.
"""
from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Callable, Sequence

OnText = Callable[[str], None]


class EngineError(RuntimeError):
    """Any failure of an engine or endpoint; the loop turns it into an error step."""


class Stopped(Exception):
    """The caller ended a call in flight (the session was stopped): raised by a caller's `on_text` mid-stream, or by
    an engine whose `CacheHint.cancel` was set, before its first token too.

    Not an EngineError: nothing failed. Engines let it through after putting their own state right."""


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
    prefill_tokens: int | None = None   # prompt tokens computed by this call (None: the engine cannot tell)
    cached_tokens: int | None = None    # prompt tokens taken from the engine's cache instead


@dataclass(frozen=True)
class CacheHint:
    """What a call may reuse from an engine's KV cache; engines without one ignore it.

    `prefix`: leading text of the prompt that many calls share (the router's instructions, a
    candidate's instruction head). An engine may keep it computed across calls and sessions.
    `session`: calls of one session continue each other, so everything an earlier call of the same
    session computed may be reused. Reuse never crosses sessions: what a session computes depends
    only on its own calls (and the shared prefix, always computed the same way), so the same
    question at temperature 0 gives the same text on a fresh and on a warm engine.
    For `chat`, `prefix` is the start of the last message's content.
    `cancel`: set once the caller no longer wants the result (a session's stop flag). A call that has not streamed
    anything never reaches `on_text`, so an engine that can watches this itself and raises `Stopped`: the HTTP
    engine cuts its request, llama.cpp checks between prefill chunks and tokens. It rides on the hint because every
    engine and wrapper already passes the hint on; it takes no part in comparing hints.
    """

    prefix: str = ""
    session: str | None = None
    cancel: threading.Event | None = field(default=None, compare=False, repr=False)


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
                 temperature: float = 0.0, on_text: OnText | None = None,
                 cache: CacheHint | None = None) -> Completion:
        """Continue `prompt`; stop strings are not included in the returned text."""

    @abstractmethod
    def chat(self, messages: list[dict[str, str]], *, max_tokens: int = 256,
             temperature: float = 0.0, stop: Sequence[str] = (), on_text: OnText | None = None,
             cache: CacheHint | None = None) -> Completion:
        """Answer a chat; used for candidate calls."""

    @abstractmethod
    def score(self, prefix: str, continuations: Sequence[str], cache: CacheHint | None = None, *,
              choice: bool = False) -> list[float]:
        """Sum of log-probabilities of each continuation's tokens after `prefix`.

        `choice=True`: the continuations are the only options the caller accepts (a model name, <search> or
        <answer>), so only the tokens where an option parts from another one count (`branch_points`); a
        token every option on that path must take is certain, as under constrained decoding, and engines
        need not compute it.
        """

    @abstractmethod
    def chat_prompt(self, messages: list[dict[str, str]]) -> str:
        """The raw prompt for `messages` under this model's chat template, ready for generation."""

    # True where generate_batch computes the prompts together (transformers, vLLM); the
    # micro-batcher only gathers calls for such engines.
    batches_natively: bool = False

    def generate_batch(self, prompts: Sequence[str], *, stop: Sequence[str] = (), max_tokens: int = 256,
                       temperature: float = 0.0, on_text: OnText | None = None,
                       cache: CacheHint | None = None) -> list[Completion]:
        """Continue several prompts; engines that batch natively override this (default: one by one)."""
        return [self.generate(p, stop=stop, max_tokens=max_tokens, temperature=temperature, on_text=on_text)
                for p in prompts]

    def count_tokens(self, text: str) -> int:
        return max(1, len(text) // 4)

    def prompt_head(self, content_head: str, role: str = "user") -> str:
        """The start of `chat_prompt` for a one-message chat whose content starts with `content_head`.

        Chat templates add text after the content, so the rendered prompt of the head alone is not
        a prefix of the full one; rendering head + a sentinel and cutting there is.
        """
        sentinel = "\u2063\u2064§HEAD-END§"
        text = self.chat_prompt([{"role": role, "content": content_head + sentinel}])
        return text[: text.index(sentinel)] if sentinel in text else ""

    def stats(self) -> dict[str, float]:
        """Counters since load (engines that keep a cache report prefill vs cached tokens)."""
        return {}

    def warm(self, prefix: str) -> None:
        """Compute a shared prompt prefix ahead of the first call that uses it (engines with a cache)."""

    def close(self) -> None:  # pragma: no cover - engines without resources
        pass


def cancelled(cache: CacheHint | None) -> bool:
    """Whether the call this hint came with was cancelled."""
    return cache is not None and cache.cancel is not None and cache.cancel.is_set()


def check_cancel(cache: CacheHint | None) -> None:
    """Raise `Stopped` where the call was cancelled (engines call it wherever stopping is cheap and leaves no half
    state)."""
    if cancelled(cache):
        raise Stopped("the call was cancelled")


def common_prefix_len(a: Sequence[int], b: Sequence[int]) -> int:
    """How many leading tokens two sequences share."""
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


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


def branch_points(rests: Sequence[Sequence[int]]) -> list[list[int]]:
    """For each option (its tokens after the shared prefix), the positions where it parts from some other
    option: the only tokens that decide between them. The rest are forced (the option's path leaves no
    other choice there) and count 0 in a constrained choice; two identical options have none."""
    out = []
    for i, r in enumerate(rests):
        parts = {common_prefix_len(r, o) for j, o in enumerate(rests) if j != i}
        out.append(sorted(p for p in parts if p < len(r)))
    return out


def scored_positions(rests: Sequence[Sequence[int]], choice: bool) -> list[list[int]]:
    """The positions of each continuation whose log-probability is summed: all of them, or for a choice
    among options only its branch points."""
    return branch_points(rests) if choice else [list(range(len(r))) for r in rests]
