"""Router-R1 Studio entry point.

    python app.py                      serve the web app (embedded default: CPU, no key, no network)
    python app.py ask "QUESTION" ...   run one routing session in the terminal
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _alpha(v: str) -> float:
    try:
        a = float(v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--alpha must be a number in [0, 1], got '{v}'") from None
    if not 0.0 <= a <= 1.0:
        raise argparse.ArgumentTypeError(f"--alpha must be in [0, 1], got {a}")
    return a


def _add_router_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--alpha", type=_alpha, default=0.0, help="cost coefficient α in [0, 1] (default 0)")
    p.add_argument("--pool", default=None, help="model pool YAML (default assets/pools/local.yaml)")
    p.add_argument("--policy", default=None, help="policy preset from assets/policies.yaml")
    p.add_argument("--policies", default=None, help="another policies YAML file")
    p.add_argument("--policy-model", default=None, help="point the policy at another checkpoint (Hub id or path)")
    p.add_argument("--policy-engine", default=None, help="llamacpp | transformers | vllm | openai")
    p.add_argument("--template", default=None, help="router prompt template file")
    p.add_argument("--max-turns", type=int, default=None, help="route turns before the forced answer (default 4)")


def build_router(args: argparse.Namespace, progress=None):
    from router_core.loop import Router
    from router_core.policy import customise, load_policies
    from router_core.pool import load_pool

    policy = customise(load_policies(args.policies).get(args.policy), model=args.policy_model,
                       engine=args.policy_engine, template=args.template)
    pool = load_pool(args.pool)
    overrides = {"max_turns": args.max_turns} if args.max_turns is not None else None
    return Router(policy, pool, config=policy.run_config(overrides), progress=progress)


def cmd_ask(args: argparse.Namespace) -> int:
    from router_core.cost import router_r1_reward
    from router_core.loop import collect
    from router_core.metrics import exact_match, f1_score
    from router_core.step import Step

    err = sys.stderr
    say = (lambda msg: print(msg, file=err, flush=True))
    router = build_router(args, progress=None if args.json else (lambda m: say(f"· {m}")))
    t0 = time.perf_counter()
    steps: list[Step] = []
    first_step_s = None
    for step in router.run(args.question, args.alpha):
        steps.append(step)
        if first_step_s is None:
            first_step_s = time.perf_counter() - t0
        if not args.json:
            print(format_step(step), flush=True)
    res = collect(steps, args.question, args.alpha, args.gold)
    wall = time.perf_counter() - t0
    em = exact_match(res.answer, args.gold) if args.gold else None
    f1 = f1_score(res.answer, args.gold) if args.gold else None
    reward = router_r1_reward(res.answer, args.gold, res.format_ok, res.cost_usd, args.alpha) if args.gold else None
    if args.json:
        out = {
            "session_id": res.session_id, "question": args.question, "answer": res.answer,
            "gold": args.gold, "em": em, "f1": f1, "reward": reward, "cost_usd": res.cost_usd,
            "alpha": args.alpha, "policy": router.policy.name, "pool": router.pool.name,
            "calls": res.calls, "router_tokens": res.router_tokens, "candidate_tokens": res.candidate_tokens,
            "wall_s": round(wall, 3), "first_step_s": round(first_step_s or 0.0, 3),
            "steps": [step_json(s) for s in steps],
        }
        print(json.dumps(out, ensure_ascii=False))
    else:
        print("─" * 60)
        print(f"answer   {res.answer if res.answer is not None else '(none)'}")
        if args.gold:
            print(f"gold     {' | '.join(args.gold)}   EM {em:.0f}  F1 {f1:.2f}  reward@α {reward:+.3f}")
        print(f"cost     ${res.cost_usd:.8f} over {res.calls} call(s)   α {args.alpha}")
        print(f"tokens   router {res.router_tokens}, candidates {res.candidate_tokens}")
        print(f"time     {wall:.1f} s (first step after {first_step_s or 0:.1f} s)   session {res.session_id}")
    return 0 if res.answer is not None else 3


def step_json(s) -> dict:
    d = {"index": s.index, "kind": s.kind, "model": s.request_model, "written_model": s.written_model,
         "query": s.query, "response": s.response, "text": s.text,
         "input_tokens": s.input_tokens, "output_tokens": s.output_tokens,
         "router_input_tokens": s.router_input_tokens, "router_output_tokens": s.router_output_tokens,
         "cost_usd": s.cost_usd, "latency_s": round(s.latency_s, 4), "status": s.status, "flags": s.flags,
         "error": s.error}
    if s.decision is not None:
        d["decision"] = s.decision
    if s.choice is not None:
        d["choice"] = s.choice.to_dict()
    return d


def format_step(s) -> str:
    head = f"[{s.index:>2}] {s.kind:<6} {s.latency_s:6.2f}s"
    flag = f"  ⚑ {', '.join(s.flags)}" if s.flags else ""
    if s.kind == "think":
        return f"{head}  {s.text[:300]}{flag}"
    if s.kind == "route":
        lines = [f"{head}  → {s.request_model or s.written_model or '?'}: {s.query or ''}{flag}"]
        if s.choice:
            pb = " ".join(f"{m}={p:.2f}" for m, p in zip(s.choice.models, s.choice.probs_before))
            pa = " ".join(f"{m}={p:.2f}" for m, p in zip(s.choice.models, s.choice.probs_after))
            lines.append(f"{'':>19}choice before α: {pb} | after α={s.choice.alpha}: {pa}")
        reply = (s.response or "").replace("\n", " ")
        lines.append(f"{'':>19}← {reply[:400]}")
        lines.append(f"{'':>19}{s.input_tokens}+{s.output_tokens} tok  ${s.cost_usd:.8f}  call {s.call_latency_s:.2f}s"
                     + (f"  error: {s.error}" if s.error else ""))
        return "\n".join(lines)
    if s.kind == "answer":
        return f"{head}  ANSWER: {s.text}{flag}"
    return f"{head}  {s.status.upper()}: {s.error}{flag}"


def cmd_serve(args: argparse.Namespace) -> int:
    from ui.app import serve
    return serve(args)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="app.py", description="Router-R1 Studio: watch a multi-round LLM router work.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=7860)
    _add_router_args(p)
    sub = p.add_subparsers(dest="cmd")
    a = sub.add_parser("ask", help="answer one question, streaming each step")
    a.add_argument("question")
    _add_router_args(a)
    a.add_argument("--gold", action="append", default=[], help="accepted answer (repeatable) for EM/F1")
    a.add_argument("--json", action="store_true", help="print one JSON object at the end instead of a stream")
    args = p.parse_args(argv)
    from router_core.engines import EngineError
    from router_core.policy import PolicyError
    from router_core.pool import PoolError
    from router_core.protocol import TemplateError
    from router_core.weights import WeightsError
    try:
        if args.cmd == "ask":
            return cmd_ask(args)
        return cmd_serve(args)
    except (PoolError, PolicyError, TemplateError, WeightsError, EngineError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
