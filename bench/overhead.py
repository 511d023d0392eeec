"""Loop overhead: time per turn of the routing loop vs the raw engine time for the same prompts.

Runs guided sessions on the embedded default with every engine call recorded, then
replays exactly those calls (same prompts, stops, limits) straight on the engines and
prints both side by side. Overhead = loop wall time − time inside engine calls.
Usage: python bench/overhead.py [--questions N] [--alpha A]
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from router_core.engines import EngineSpec, get_engine
from router_core.engines.base import Engine
from router_core.loop import Router, spec_of_model
from router_core.policy import load_policies
from router_core.pool import load_pool

ROOT = Path(__file__).resolve().parent.parent


QUESTIONS = ["Who directed the film Interstellar?", "What is the capital of the country where the Eiffel Tower stands?",
             "Which planet is known as the Red Planet?", "Who wrote the novel Pride and Prejudice?",
             "What is the largest ocean on Earth?"]


class Recording(Engine):
    """Delegates to a real engine and records each call with its duration."""

    def __init__(self, inner: Engine, log: list) -> None:
        super().__init__()
        self.inner, self.log = inner, log

    def _timed(self, name, fn, *a, **kw):
        t0 = time.perf_counter()
        out = fn(*a, **kw)
        self.log.append({"op": name, "engine": self.inner, "args": a, "kw": {k: v for k, v in kw.items() if k != "on_text"},
                         "s": time.perf_counter() - t0, "out": out, "at": t0})
        return out

    def generate(self, prompt, **kw):
        return self._timed("generate", self.inner.generate, prompt, **kw)

    def chat(self, messages, **kw):
        return self._timed("chat", self.inner.chat, messages, **kw)

    def score(self, prefix, continuations, cache=None, *, choice=False):
        return self._timed("score", self.inner.score, prefix, continuations, cache, choice=choice)

    def chat_prompt(self, messages):
        return self.inner.chat_prompt(messages)

    def count_tokens(self, text):
        return self.inner.count_tokens(text)

    def warm(self, prefix):
        return self.inner.warm(prefix)

    def stats(self):
        return self.inner.stats()


def recording_engines(log: list):
    """An engine provider that wraps each shared engine in a Recording (one per spec), and the wrappers."""
    wrapped: dict[EngineSpec, Recording] = {}

    def engines(spec: EngineSpec) -> Engine:
        if spec not in wrapped:
            wrapped[spec] = Recording(get_engine(spec), log)
        return wrapped[spec]
    return engines, wrapped


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--questions", type=int, default=3)
    ap.add_argument("--alpha", type=float, default=0.0)
    args = ap.parse_args()
    log: list = []
    engines, _ = recording_engines(log)

    pool = load_pool()
    router = Router(load_policies().get(None), pool, engines=engines)
    list(router.run("warm-up: what is 1+1?", args.alpha))  # load models, warm caches
    for m in pool.models:  # every candidate loaded before the clock starts (a load is not loop overhead)
        engines(spec_of_model(m))
    log.clear()
    turns, t0 = 0, time.perf_counter()
    for q in QUESTIONS[: args.questions]:
        steps = list(router.run(q, args.alpha))
        turns += sum(1 for s in steps if s.kind in ("think", "route", "answer"))
    loop_s = time.perf_counter() - t0
    in_engine = sum(c["s"] for c in log)
    # replay the very same calls straight on the engines, in the same order
    t1 = time.perf_counter()
    for c in log:
        getattr(c["engine"], c["op"])(*c["args"], **c["kw"])
    raw_s = time.perf_counter() - t1
    res = {"questions": args.questions, "steps": turns, "engine_calls": len(log),
           "loop_s_per_step": loop_s / turns, "engine_s_per_step_inside_loop": in_engine / turns,
           "raw_replay_s_per_step": raw_s / turns,
           "overhead_vs_inside_pct": 100 * (loop_s - in_engine) / in_engine,
           "overhead_vs_replay_pct": 100 * (loop_s - raw_s) / raw_s}
    print(f"{'steps':<34}{turns}  ({len(log)} engine calls)")
    print(f"{'loop time per step':<34}{res['loop_s_per_step']*1000:9.1f} ms")
    print(f"{'engine time per step (in loop)':<34}{res['engine_s_per_step_inside_loop']*1000:9.1f} ms")
    print(f"{'raw engine replay per step':<34}{res['raw_replay_s_per_step']*1000:9.1f} ms")
    print(f"{'loop overhead vs in-loop engine':<34}{res['overhead_vs_inside_pct']:9.2f} %")
    print(f"{'loop overhead vs raw replay':<34}{res['overhead_vs_replay_pct']:9.2f} %   (goal < 5 %)")
    out = ROOT / "bench" / "results" / "overhead.json"
    out.write_text(json.dumps(res, indent=2))
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
