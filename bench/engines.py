"""Policy generation speed per engine on this machine: same prompt, greedy, 64 new tokens.

Prints load time, time to first token and tokens/s for each engine and shipped model,
side by side in one run. Usage: python bench/engines.py
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from router_core.engines import EngineSpec, clear_engines, get_engine

ROOT = Path(__file__).resolve().parent.parent


PROMPT = [{"role": "user", "content": "Explain in a few sentences how a router LLM decides which model to ask."}]
CASES = [("llamacpp", "shipped:smollm2-135m-instruct"), ("llamacpp", "shipped:qwen2.5-coder-0.5b-instruct"),
         ("transformers", "shipped:smollm2-135m-instruct"), ("transformers", "shipped:qwen2.5-coder-0.5b-instruct")]


def main() -> None:
    rows = []
    for engine, model in CASES:
        t0 = time.perf_counter()
        e = get_engine(EngineSpec(engine=engine, model=model))
        load = time.perf_counter() - t0
        prompt = e.chat_prompt(PROMPT)
        e.generate(prompt, max_tokens=4)  # warm
        c = e.generate(prompt + " ", max_tokens=64)
        names = ["SmolLM2-135M:", "Qwen2.5-0.5B:"]
        e.score(prompt, names)
        t1 = time.perf_counter()
        e.score(prompt, names)
        score_s = time.perf_counter() - t1
        rows.append({"engine": engine, "model": model, "load_s": round(load, 2),
                     "first_token_s": round(c.first_token_s or 0, 3), "tokens": c.output_tokens,
                     "tok_per_s": round(c.output_tokens / c.seconds, 1), "score_2_names_warm_s": round(score_s, 3)})
        clear_engines()
    print(f"{'engine':<14}{'model':<40}{'load s':>8}{'TTFT s':>8}{'tok/s':>8}{'score s':>9}")
    for r in rows:
        print(f"{r['engine']:<14}{r['model']:<40}{r['load_s']:>8}{r['first_token_s']:>8}{r['tok_per_s']:>8}"
              f"{r['score_2_names_warm_s']:>9}")
    (ROOT / "bench" / "results" / "engines.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
