"""Eval throughput: questions per minute, one question at a time vs batched rollouts, in one run.

Same engine, same questions, same settings; only `batch` differs. The engine is transformers on
the shipped SmolLM2-135M (router and candidate), because it has a real batched generate on CPU
(vLLM would be the GPU choice; llama.cpp has no batch call, so batching cannot help it — it is
measured too, for reference, when --llamacpp is given). Each mode runs into its own temporary
store; answers are compared between modes (greedy decoding: they should agree).
Usage: python bench/eval_throughput.py [--questions N] [--batch B] [--max-turns T] [--llamacpp]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from evaluation.datasets import bundled_datasets, load_dataset
from evaluation.runner import EvalRunner
from router_core.engines import EngineSpec, get_engine
from router_core.engines.batching import BatchingEngine
from router_core.policy import load_policies
from router_core.pool import ModelSpec, Pool, load_pool
from storage import SessionFilter, TraceStore

ROOT = Path(__file__).resolve().parent.parent


def setup(engine: str):
    base = load_pool().get("SmolLM2-135M")
    spec = base.model_copy(update={"engine": engine})
    pool = Pool(name=f"bench-smollm2-{engine}", description="SmolLM2-135M alone, for the throughput bench.",
                models=[ModelSpec.model_validate(spec.model_dump())])
    policy = load_policies().get("prompted-smollm2-135m").model_copy(update={"engine": engine})
    return policy, pool


def run_mode(items, policy, pool, batch: int, max_turns: int) -> dict:
    store = TraceStore(str(Path(tempfile.mkdtemp()) / "tp.sqlite"))
    runner = EvalRunner(store, policy, pool, run_id=f"tp-{batch}", alphas=[0.0], baselines=[],
                        overrides={"max_turns": max_turns}, batch=batch)
    t0 = time.perf_counter()
    summary = runner.run(items)
    dt = time.perf_counter() - t0
    df, _ = store.list_sessions(SessionFilter(run_id=f"tp-{batch}"), page_size=1000)
    store.close()
    return {"batch": batch, "seconds": dt, "questions": len(items), "done": summary.done,
            "questions_per_min": 60 * summary.done / dt,
            "answers": dict(zip(df["item_id"], df["answer"].fillna(""))), "steps": int(df["n_steps"].sum())}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--questions", type=int, default=8)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--max-turns", type=int, default=2)
    ap.add_argument("--llamacpp", action="store_true", help="also measure the llama.cpp default (no batch call)")
    args = ap.parse_args()
    items = load_dataset(bundled_datasets()["multi_hop"], limit=args.questions)
    results = []
    for engine in ["transformers"] + (["llamacpp"] if args.llamacpp else []):
        policy, pool = setup(engine)
        eng = get_engine(EngineSpec(engine=engine, model=policy.model))
        print(f"{engine}: warm-up (load) …", flush=True)
        eng.generate(eng.chat_prompt([{"role": "user", "content": "Hi"}]), max_tokens=4)
        print(f"{engine}: batch call: {'yes' if BatchingEngine.supports(eng) else 'no'}", flush=True)
        one = run_mode(items, policy, pool, 1, args.max_turns)
        many = run_mode(items, policy, pool, args.batch, args.max_turns)
        same = sum(one["answers"].get(k) == v for k, v in many["answers"].items())
        results.append({"engine": engine, "one_at_a_time": one, "batched": many, "same_answers": same})
        print(f"{engine}: one at a time {one['questions_per_min']:.1f} q/min ({one['seconds']:.0f}s, {one['steps']} steps)"
              f" | batched×{args.batch} {many['questions_per_min']:.1f} q/min ({many['seconds']:.0f}s, "
              f"{many['steps']} steps) | speed-up {many['questions_per_min'] / one['questions_per_min']:.2f}× | "
              f"same answer on {same}/{len(items)}", flush=True)
    print(f"\n{'engine':<14}{'one-at-a-time q/min':>22}{'batched q/min':>16}{'speed-up':>10}")
    for r in results:
        a, b = r["one_at_a_time"]["questions_per_min"], r["batched"]["questions_per_min"]
        print(f"{r['engine']:<14}{a:>22.1f}{b:>16.1f}{b / a:>9.2f}×")
    out = ROOT / "bench" / "results" / "eval_throughput.json"
    for r in results:
        for k in ("one_at_a_time", "batched"):
            r[k].pop("answers")
    out.write_text(json.dumps({"questions": len(items), "max_turns": args.max_turns, "results": results}, indent=2))
    print(f"wrote {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
