"""Determinism of the llama.cpp engine, measured: what changes numbers, and what the tests may assume.

Prints, in one run on the shipped Qwen2.5-0.5B:
  1. how far the last position's logits move when the same prompt is split into batches differently
     (one batch; the last token alone; split at token 40) — the root cause of "the same greedy
     request gives different text";
  2. |score with the prefix cached − full re-evaluation| over prompts × name sets (the tolerance
     tests/test_engines.py uses is set from this figure);
  3. whether a whole guided session (same question, temperature 0) gives identical steps on a fresh
     engine and on a warm one that ran other sessions and candidate calls first;
  4. whether a plain and a streamed chat of the same messages give identical text.
Usage: python bench/determinism.py [--out bench/results/determinism.json]
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from router_core.engines import EngineSpec, get_engine
from router_core.engines.llamacpp import LlamaCppEngine
from router_core.engines.weights import resolve_shipped
from router_core.loop import Router
from router_core.policy import load_policies
from router_core.pool import load_pool

ROOT = Path(__file__).resolve().parent.parent

PROMPTS = ["Which assistant should answer 'Who directed Interstellar?': Smol or Qwen?",
           "Who wrote Pride and Prejudice? Pick a model.", "Capital of the country where the Eiffel Tower stands?",
           "What is the birthplace of the director of Jaws?", "Which planet is known as the Red Planet?"]
NAMES = [["Smol:", "Qwen:", "Llama-70B:"], ["SmolLM2-135M:", "Qwen2.5-0.5B:", "Qwen2.5-1.5B:"]]


def reference_score(e: LlamaCppEngine, prefix: str, name: str) -> float:
    """log p(name | prefix) from one full pass over prefix + name (no cache)."""
    pieces, lps = e.prompt_logprobs(prefix + name)
    base, _ = e.prompt_logprobs(prefix)
    k = 0
    while k < min(len(base), len(pieces)) and base[k] == pieces[k]:
        k += 1
    return float(sum(lps[k:]))


def session_steps(router: Router, question: str) -> list[tuple]:
    return [(s.kind, s.text, s.query, s.request_model, s.response) for s in router.run(question, 0.0)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "determinism.json"))
    args = ap.parse_args()
    path = str(resolve_shipped("qwen2.5-coder-0.5b-instruct"))
    e = LlamaCppEngine(path)
    out: dict = {}

    toks = e.tokens(e.chat_prompt([{"role": "user", "content": PROMPTS[0]}]))
    one = e._decode(toks, 0, all_logits=False).copy()
    e._decode(toks[:-1], 0, all_logits=False)
    alone = e._decode(toks[-1:], len(toks) - 1, all_logits=False).copy()
    e._decode(toks[:40], 0, all_logits=False)
    split = e._decode(toks[40:], 40, all_logits=False).copy()
    again = e._decode(toks, 0, all_logits=False).copy()
    out["batch_split_logit_max_abs"] = {"last_token_alone": float(np.abs(one - alone).max()),
                                        "split_at_40": float(np.abs(one - split).max()),
                                        "same_split_twice": float(np.abs(one - again).max())}
    print(f"1. last-position logits, max |Δ| vs one batch: last token alone {out['batch_split_logit_max_abs']['last_token_alone']:.3f}"
          f", split at 40 {out['batch_split_logit_max_abs']['split_at_40']:.3f}, "
          f"same split twice {out['batch_split_logit_max_abs']['same_split_twice']:.3f}", flush=True)

    diffs = []
    for p in PROMPTS:
        for names in NAMES:
            prefix = e.chat_prompt([{"role": "user", "content": p}]) + "<search> "
            fast = e.score(prefix, names)
            ref = [reference_score(e, prefix, n) for n in names]
            diffs += [abs(a - b) for a, b in zip(fast, ref)]
    out["score_vs_full_reevaluation"] = {"max_abs": max(diffs), "mean_abs": float(np.mean(diffs)), "n": len(diffs)}
    print(f"2. |score (prefix cached) − full re-evaluation|: max {max(diffs):.3f} nat, mean {np.mean(diffs):.3f} "
          f"over {len(diffs)} prompt×name pairs", flush=True)

    pol, pool = load_policies().get(None), load_pool()
    q = "Which country is the birthplace of the director of the film Interstellar?"
    fresh_engines: dict = {}

    def fresh(spec: EngineSpec):  # brand-new engine instances, nothing cached
        if spec not in fresh_engines:
            fresh_engines[spec] = LlamaCppEngine(str(resolve_shipped(spec.model.removeprefix("shipped:"))))
        return fresh_engines[spec]
    t0 = time.perf_counter()
    a = session_steps(Router(pol, pool, engines=fresh, config=pol.run_config({"max_turns": 2})), q)
    warm = Router(pol, pool, config=pol.run_config({"max_turns": 2}))
    for other in PROMPTS[1:4]:  # other sessions and candidate calls first
        session_steps(warm, other)
    b = session_steps(warm, q)
    out["session_fresh_vs_warm_identical"] = a == b
    out["session_steps"] = len(a)
    print(f"3. the same session on a fresh and on a warm engine: {'identical' if a == b else 'DIFFERENT'} "
          f"({len(a)} steps, {time.perf_counter() - t0:.0f} s)", flush=True)

    smol = get_engine(EngineSpec(engine="llamacpp", model="shipped:smollm2-135m-instruct"))
    msgs = [{"role": "user", "content": "Who directed the film Interstellar?"}]
    plain = smol.chat(msgs, max_tokens=48).text
    smol.chat([{"role": "user", "content": "Name three colours."}], max_tokens=16)
    pieces: list[str] = []
    streamed = smol.chat(msgs, max_tokens=48, on_text=pieces.append).text
    out["chat_plain_vs_streamed_identical"] = plain == streamed == "".join(pieces)
    print(f"4. plain vs streamed chat of the same messages (another call between): "
          f"{'identical' if out['chat_plain_vs_streamed_identical'] else 'DIFFERENT'}", flush=True)
    Path(args.out).write_text(json.dumps(out, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
