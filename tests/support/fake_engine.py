"""A scripted engine for tests about *our* logic (loop, store, UI handlers), not about a model.

It behaves like a real engine where the loop can tell: it cuts at stop strings, reports finish
reasons, streams pieces to `on_text`, counts tokens and records every call. What it writes is
scripted: generations are taken in order from a list (or computed by a function of the prompt and
stop strings), candidate replies by a function of the sub-question, scores from a dict of
continuation → log-probability. Tests that prove a feature works on a real model use the shipped
models instead (marker `model`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from router_core.engines import EngineError, EngineSpec, ScoringUnsupported
from router_core.engines.base import CacheHint, Completion, Engine, OnText
from router_core.pool import Pool, pool_from_dict

Generation = str | Callable[[str, Sequence[str]], str]


@dataclass
class Call:
    op: str                      # generate | chat | score
    prompt: str
    stop: tuple[str, ...] = ()
    continuations: tuple[str, ...] = ()
    result: object = None
    choice: bool = False         # score: asked as a choice among options


class FakeEngine(Engine):
    """Scripted generations, replies and scores; `calls` records what was asked."""

    name = "fake"

    def __init__(self, generations: Sequence[Generation] | Callable[[str, Sequence[str]], str] = (), *,
                 reply: Callable[[str], str] | str | None = None,
                 scores: dict[str, float] | Callable[[str, Sequence[str]], list[float]] | None = None,
                 fail: str | None = None) -> None:
        super().__init__()
        self.script = generations if callable(generations) else list(generations)
        self.reply = reply
        self.scores = scores
        self.fail = fail              # raise EngineError(fail) on every call
        self.calls: list[Call] = []
        self.hints: list[CacheHint | None] = []  # the cache hint of every call, in order

    # the engine interface -------------------------------------------------------------
    def chat_prompt(self, messages: list[dict[str, str]]) -> str:
        return "".join(f"<|{m['role']}|>{m['content']}<|end|>" for m in messages) + "<|assistant|>"

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def generate(self, prompt: str, *, stop: Sequence[str] = (), max_tokens: int = 256, temperature: float = 0.0,
                 on_text: OnText | None = None, cache: CacheHint | None = None) -> Completion:
        if self.fail:
            raise EngineError(self.fail)
        self.hints.append(cache)
        if callable(self.script):
            text = self.script(prompt, stop)
        else:
            text = self.script.pop(0) if self.script else ""
            if callable(text):
                text = text(prompt, stop)
        return self._complete("generate", prompt, text, stop, max_tokens, on_text)

    def chat(self, messages: list[dict[str, str]], *, max_tokens: int = 256, temperature: float = 0.0,
             stop: Sequence[str] = (), on_text: OnText | None = None, cache: CacheHint | None = None) -> Completion:
        if self.fail:
            raise EngineError(self.fail)
        self.hints.append(cache)
        content = messages[-1]["content"]
        question = content.rsplit("Question:", 1)[-1].strip()
        if self.reply is None:
            text = f"A reply about: {question}"
        elif callable(self.reply):
            text = self.reply(question)
        else:
            text = self.reply
        return self._complete("chat", content, text, stop, max_tokens, on_text)

    def score(self, prefix: str, continuations: Sequence[str], cache: CacheHint | None = None, *,
              choice: bool = False) -> list[float]:
        if self.fail:
            raise EngineError(self.fail)
        self.hints.append(cache)
        if self.scores is None:
            raise ScoringUnsupported("this fake engine has no scores")
        if callable(self.scores):
            out = list(self.scores(prefix, continuations))
        else:
            out = [self.scores.get(c.strip().rstrip(":"), self.scores.get(c, -20.0)) for c in continuations]
        self.calls.append(Call("score", prefix, continuations=tuple(continuations), result=out, choice=choice))
        return out

    # helpers --------------------------------------------------------------------------
    def _complete(self, op: str, prompt: str, text: str, stop: Sequence[str], max_tokens: int,
                  on_text: OnText | None) -> Completion:
        finish = "stop"
        cut = min((text.index(s) for s in stop if s and s in text), default=-1)
        if cut >= 0:
            text = text[:cut]
        words = text.split(" ")
        if len(words) > max_tokens:
            text, finish = " ".join(words[:max_tokens]), "length"
        for i, w in enumerate(text.split(" ")):
            if on_text and (w or i == 0):
                on_text(w if i == 0 else " " + w)
        self.calls.append(Call(op, prompt, tuple(stop), result=text))
        return Completion(text=text, input_tokens=self.count_tokens(prompt), output_tokens=self.count_tokens(text),
                          finish_reason=finish, seconds=0.0, first_token_s=0.0)

    def prompts(self, op: str = "generate") -> list[str]:
        return [c.prompt for c in self.calls if c.op == op]


FAKE_POOL = {
    "name": "fake-three",
    "description": "Three scripted candidates for tests.",
    "models": [
        {"name": "Tiny", "engine": "llamacpp", "model": "fake:tiny", "params_b": 0.1, "price_in": 0.01,
         "price_out": 0.02, "description": "the cheapest, often wrong"},
        {"name": "Mid", "engine": "llamacpp", "model": "fake:mid", "params_b": 0.5, "price_in": 0.05,
         "price_out": 0.10, "description": "middle of the road"},
        {"name": "Big", "engine": "llamacpp", "model": "fake:big", "params_b": 1.5, "price_in": 0.15,
         "price_out": 0.30, "description": "the dearest and best"},
    ],
}


def fake_pool() -> Pool:
    return pool_from_dict(FAKE_POOL, "fake-three.yaml")


def fake_provider(policy: FakeEngine, candidates: dict[str, FakeEngine] | None = None,
                  default: FakeEngine | None = None) -> Callable[[EngineSpec], Engine]:
    """An engine provider: the policy for the policy's spec, a candidate by model id, else `default`."""
    cands = dict(candidates or {})
    fallback = default or FakeEngine()

    def get(spec: EngineSpec) -> Engine:
        if spec.model == "fake:policy":
            return policy
        return cands.get(spec.model, fallback)
    return get


def guided_script(thinks: Sequence[str], queries: Sequence[str], answer: str) -> Callable[[str, Sequence[str]], str]:
    """A policy script for the guided rollout: the next think, sub-question or the answer, by stop string."""
    t, q = list(thinks), list(queries)

    def gen(prompt: str, stop: Sequence[str]) -> str:
        if "</think>" in stop:
            return (t.pop(0) if t else "I know enough now.") + "</think>"
        if "</search>" in stop:
            return " " + (q.pop(0) if q else "") + " </search>"
        return " " + answer + " </answer>"
    return gen


def one_hop_script(think: str = "I need the director first.", query: str = "Who directed Interstellar?",
                   answer: str = "England") -> Callable[[str, Sequence[str]], str]:
    """A stateless guided-policy script (the same think, sub-question and answer in every session)."""
    def gen(prompt: str, stop: Sequence[str]) -> str:
        if "</think>" in stop:
            return think + "</think>"
        if "</search>" in stop:
            return f" {query} </search>"
        return f" {answer} </answer>"
    return gen


def routes_then_answers(routes: int, names: dict[str, float]) -> Callable[[str, Sequence[str]], list[float]]:
    """Scores for the guided rollout: search while fewer than `routes` replies were read, then answer;
    model names scored from `names` (log-probabilities)."""
    def scores(prefix: str, continuations: Sequence[str]) -> list[float]:
        if list(continuations) == ["<search>", "<answer>"]:
            read = prefix.count(" </information>\n")  # blocks the loop inserted (the template names the tag too)
            return [-0.1, -3.0] if read < routes else [-3.0, -0.1]
        return [names.get(c.rstrip(":"), -20.0) for c in continuations]
    return scores
