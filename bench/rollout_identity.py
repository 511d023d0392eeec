"""Whether a change to the rollout's code left its sessions as they were: run, then compare two runs.

A restructure of the routing loop must not change what the router does. This runs one policy over question
sets at several α on the shipped engines and writes each session's Steps, less what differs on every run
(ids, clock times, seconds spent scoring), one JSON line per session. Run it before and after the change (the
same host: greedy llama.cpp is deterministic there), then compare: it prints how many sessions are identical
and, for each one that is not, the first step and field that differ.
Usage:
  python bench/rollout_identity.py run --dataset multi_hop --dataset dev --alpha 0,0.5 --out before.jsonl
  python bench/rollout_identity.py compare before.jsonl after.jsonl [--json]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

# fields that differ on every run of the same session: ids and clock readings
VOLATILE = ("session_id", "started_at", "ended_at", "call_started_at", "call_ended_at", "latency_s")


def canonical(step: dict[str, Any]) -> dict[str, Any]:
    """A step's dict without its ids and clock readings (what the same greedy run reproduces)."""
    d = {k: v for k, v in step.items() if k not in VOLATILE}
    if isinstance(d.get("choice"), dict):
        d["choice"] = {k: v for k, v in d["choice"].items() if k != "score_seconds"}
    return d


def run(args: argparse.Namespace) -> None:
    from evaluation.datasets import bundled_datasets, load_dataset
    from router_core.choice import parse_alphas
    from router_core.loop import Router
    from router_core.policy import load_policies
    from router_core.pool import load_pool

    sets = bundled_datasets()
    items = []
    for name in args.dataset:
        items += [(name, it) for it in load_dataset(sets.get(name, name), limit=args.limit)]
    alphas = parse_alphas(args.alpha)
    router = Router(load_policies().get(args.policy), load_pool(args.pool))
    router.warm()
    total, done, t0 = len(items) * len(alphas), 0, time.time()
    with open(args.out, "w", encoding="utf-8") as out:
        for alpha in alphas:
            for name, it in items:
                steps = [canonical(s.to_dict()) for s in router.run(it.question, alpha)]
                out.write(json.dumps({"dataset": name, "id": it.id, "alpha": alpha, "steps": steps},
                                     sort_keys=True, ensure_ascii=False) + "\n")
                out.flush()
                done += 1
                print(f"[{done}/{total}] α={alpha} {name}/{it.id} {len(steps)} steps "
                      f"({time.time() - t0:.0f} s)", file=sys.stderr, flush=True)


def _first_difference(a: list[dict], b: list[dict]) -> str:
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            keys = sorted(k for k in set(x) | set(y) if x.get(k) != y.get(k))
            return f"step {i}: {', '.join(keys)}"
    return f"{len(a)} vs {len(b)} steps"


def compare(args: argparse.Namespace) -> None:
    def read(path: str) -> dict[tuple, list]:
        rows = [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
        return {(r["dataset"], r["id"], r["alpha"]): r["steps"] for r in rows}

    a, b = read(args.a), read(args.b)
    shared = sorted(set(a) & set(b), key=str)
    differ = {k: _first_difference(a[k], b[k]) for k in shared if a[k] != b[k]}
    result = {"a": args.a, "b": args.b, "shared": len(shared), "identical": len(shared) - len(differ),
              "only_a": len(set(a) - set(b)), "only_b": len(set(b) - set(a)),
              "differ": [{"dataset": k[0], "id": k[1], "alpha": k[2], "first": v} for k, v in differ.items()]}
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        print(f"{result['identical']} of {len(shared)} sessions identical "
              f"(only in {args.a}: {result['only_a']}, only in {args.b}: {result['only_b']})")
        for d in result["differ"]:
            print(f"  differs: α={d['alpha']} {d['dataset']}/{d['id']}: {d['first']}")
    sys.exit(0 if not differ and shared else 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="run the sessions and write them without ids and times")
    r.add_argument("--dataset", action="append", required=True, help="bundled set name or file (repeatable)")
    r.add_argument("--alpha", default="0,0.5")
    r.add_argument("--policy", default=None)
    r.add_argument("--pool", default=None)
    r.add_argument("--limit", type=int, default=None)
    r.add_argument("--out", required=True)
    c = sub.add_parser("compare", help="compare two runs session by session")
    c.add_argument("a")
    c.add_argument("b")
    c.add_argument("--json", action="store_true")
    args = ap.parse_args()
    run(args) if args.cmd == "run" else compare(args)


if __name__ == "__main__":
    main()
