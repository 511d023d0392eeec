"""Helper process for tests/test_store_reliability.py: writes to a trace store, then gets killed or finishes.

    python tests/store_writer.py real DB SESSION_ID [MIN_TURNS]
        one REAL routing session (default policy and pool, real models) through `recorded(...)`;
        prints "STEP <index> <kind>" (flushed) after each step has been yielded, i.e. committed,
        and "DONE <n>" at the end. The test SIGKILLs it after k steps.

    python tests/store_writer.py synthetic DB WORKER SESSIONS STEPS
        prints "READY", waits for a line on stdin (so all writers start together), then opens its
        own TraceStore on DB and writes SESSIONS synthetic sessions of STEPS steps each with
        start_session/append_step/finish; prints one JSON line {"worker", "written", "errors"}.
"""
from __future__ import annotations

import json
import sys
import time

QUESTION = "Who directed the film Interstellar?"
POOL_SNAPSHOT = {"name": "synthetic", "models": [{"name": "A"}, {"name": "B"}]}
STEP_COST = 0.00125


def synthetic_steps(sid: str, n: int):
    """n steps: think, then routes alternating A/B, ending with an answer. Route i costs STEP_COST."""
    from router_core.step import Step
    t = time.time()
    steps = []
    for i in range(n):
        if i == 0:
            steps.append(Step(sid, i, "think", text="plan", started_at=t, ended_at=t + 0.01,
                              router_input_tokens=3, router_output_tokens=4))
        elif i == n - 1:
            steps.append(Step(sid, i, "answer", text="Christopher Nolan", started_at=t, ended_at=t + 0.02))
        else:
            m = "A" if i % 2 else "B"
            steps.append(Step(sid, i, "route", request_model=m, written_model=m, query=f"q{i}", response="r",
                              input_tokens=10, output_tokens=20, cost_usd=STEP_COST, started_at=t,
                              ended_at=t + 0.03, turn=i))
    return steps


def run_real(db: str, session_id: str, min_turns: int) -> int:
    from router_core.loop import Router
    from router_core.policy import load_policies
    from router_core.pool import load_pool
    from storage import TraceStore
    from storage.recorder import recorded

    policy = load_policies().get(None)
    pool = load_pool()
    router = Router(policy, pool, config=policy.run_config({"min_turns": min_turns}))
    store = TraceStore(db)
    stream = recorded(store, router.run(QUESTION, 0.0, session_id=session_id), session_id=session_id,
                      question=QUESTION, alpha=0.0, policy=policy.name, engine=policy.engine,
                      pool=pool.snapshot())
    n = 0
    for step in stream:
        print(f"STEP {step.index} {step.kind}", flush=True)
        n += 1
    store.close()
    print(f"DONE {n}", flush=True)
    return 0


def run_synthetic(db: str, worker: str, sessions: int, steps: int) -> int:
    print("READY", flush=True)
    sys.stdin.readline()
    errors: list[str] = []
    written = 0
    try:
        from storage import TraceStore
        store = TraceStore(db)
        try:
            for i in range(sessions):
                sid = f"{worker}-{i}"
                store.start_session(session_id=sid, question=f"{worker} question {i}", alpha=0.5, policy="p",
                                    engine="llamacpp", pool=POOL_SNAPSHOT)
                for st in synthetic_steps(sid, steps):
                    store.append_step(st)
                store.finish(sid, status="done", answer="Christopher Nolan")
                written += 1
        finally:
            store.close()
    except Exception as e:  # reported to the parent, which fails the test with it
        errors.append(f"{type(e).__name__}: {e}")
    print(json.dumps({"worker": worker, "written": written, "errors": errors}), flush=True)
    return 0


def main(argv: list[str]) -> int:
    mode = argv[1]
    if mode == "real":
        return run_real(argv[2], argv[3], int(argv[4]) if len(argv) > 4 else 2)
    if mode == "synthetic":
        return run_synthetic(argv[2], argv[3], int(argv[4]), int(argv[5]))
    raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    sys.exit(main(sys.argv))
