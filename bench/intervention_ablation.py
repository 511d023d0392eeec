"""Each rollout rule measured on its own: the preset with every intervention on, with each one off, with all off.

Greedy decoding on one host is deterministic, and a rule that answered nothing (its trigger returned None at every
point it was asked) on a question changed nothing there: without it, that session is the same, step for step. So
"X off" re-runs only the questions where X answered something in the all-on run (recorded by wrapping each rule's
trigger) and reuses the all-on session for every other question; "all off" runs every question. The table says how
many sessions each variant ran. Per variant: EM, F1, chain rate, repeated-sub-question rate, $ and seconds per
question, and which questions it gained or lost against all on.
Usage:
  python bench/intervention_ablation.py --dataset assets/questions/public/musique/train.jsonl \\
      [--alpha 0] [--policy NAME] [--limit N] [--out bench/results/intervention_ablation.json] [--md FILE]
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

from evaluation.datasets import bundled_datasets, load_dataset
from evaluation.decomposition import measure
from router_core.loop import Router
from router_core.metrics import exact_match, f1_score
from router_core.policy import RunConfig, load_policies
from router_core.pool import load_pool
from router_core.rollout import registry
from router_core.session import SessionResult

ANSWERED: set[str] = set()  # the rules whose trigger returned something during the current session


def _watch(iv: Any) -> Any:
    def fire(*args: Any) -> Any:
        out = iv.fire(*args)
        if out is not None:
            ANSWERED.add(iv.name)
        return out
    return dataclasses.replace(iv, fire=fire)


def _off(cfg: RunConfig, names: list[str]) -> RunConfig:
    """`cfg` with the named interventions turned off (their switches back to the code's defaults: off)."""
    base = RunConfig()
    return dataclasses.replace(cfg, **{f: getattr(base, f) for n in names for f in registry.BY_NAME[n].switched_by})


def _session(router: Router, item: Any, alpha: float) -> dict[str, Any]:
    ANSWERED.clear()
    t0 = time.perf_counter()
    steps = list(router.run(item.question, alpha))
    res = SessionResult.of(steps, item.question, alpha, item.golds)
    return {"id": item.id, "question": item.question, "steps": steps, "answered": sorted(ANSWERED),
            "answer": res.answer, "em": exact_match(res.answer or "", item.golds),
            "f1": f1_score(res.answer or "", item.golds), "cost": res.cost_usd, "seconds": time.perf_counter() - t0}


def _row(name: str, sessions: list[dict[str, Any]], ran: int, base: list[dict[str, Any]] | None,
         names: list[str]) -> dict[str, Any]:
    dec = measure([(s["question"], s["steps"]) for s in sessions], names)
    n = len(sessions)
    row = {"variant": name, "n": n, "ran": ran, "EM": sum(s["em"] for s in sessions) / n,
           "F1": sum(s["f1"] for s in sessions) / n, "chain rate": dec.chain_rate,
           "repeat rate": dec.as_row()["repeat rate"], "$/q": sum(s["cost"] for s in sessions) / n,
           "s/q": sum(s["seconds"] for s in sessions) / n}
    if base is not None:
        row["gained"] = [s["id"] for s, b in zip(sessions, base) if s["em"] > b["em"]]
        row["lost"] = [s["id"] for s, b in zip(sessions, base) if s["em"] < b["em"]]
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", action="append", required=True, help="bundled set name or question file")
    ap.add_argument("--alpha", type=float, default=0.0)
    ap.add_argument("--policy", default=None)
    ap.add_argument("--pool", default=None)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--out", default=None, help="JSON result")
    ap.add_argument("--md", default=None, help="also write the table as Markdown here")
    args = ap.parse_args()
    sets = bundled_datasets()
    items = [it for name in args.dataset for it in load_dataset(sets.get(name, name), limit=args.limit)]
    policy = load_policies().get(args.policy)
    pool = load_pool(args.pool)
    cfg = policy.run_config()
    rules = registry.active(cfg)
    registry.INTERVENTIONS = tuple(_watch(iv) for iv in registry.INTERVENTIONS)

    def router(c: RunConfig) -> Router:  # engines are shared across variants (get_engine loads each model once)
        return Router(policy, pool, config=c)

    total = len(items)
    t0 = time.perf_counter()

    def note(what: str, i: int, n: int) -> None:
        print(f"\r{what}: {i}/{n} ({time.perf_counter() - t0:.0f} s)", end="", file=sys.stderr, flush=True)

    on = []
    r = router(cfg)
    for i, it in enumerate(items):
        on.append(_session(r, it, args.alpha))
        note("all on", i + 1, total)
    rows = [_row("all on", on, total, None, pool.names)]
    for name in rules:
        r = router(_off(cfg, [name]))
        again = [i for i, s in enumerate(on) if name in s["answered"]]
        variant = list(on)
        for k, i in enumerate(again):
            variant[i] = _session(r, items[i], args.alpha)
            note(f"without {name}", k + 1, len(again))
        rows.append(_row(f"without {name}", variant, len(again), on, pool.names))
    r = router(_off(cfg, rules))
    off = []
    for i, it in enumerate(items):
        off.append(_session(r, it, args.alpha))
        note("all off", i + 1, total)
    rows.append(_row("all off", off, total, on, pool.names))
    print(file=sys.stderr)
    cols = ["variant", "ran", "EM", "F1", "chain rate", "repeat rate", "$/q", "s/q", "gained", "lost"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in rows:
        cells = []
        for c in cols:
            v = row.get(c)
            cells.append("—" if v is None else f"{v:.2e}" if c == "$/q" else f"{v:.3f}" if isinstance(v, float)
                         else ", ".join(v) or "—" if isinstance(v, list) else str(v))
        lines.append("| " + " | ".join(cells) + " |")
    table = "\n".join(lines)
    print(table)
    fired = {name: sum(name in s["answered"] for s in on) for name in rules}
    print("questions where each rule answered something (all on): "
          + ", ".join(f"{k} {v}" for k, v in fired.items()))
    result = {"datasets": args.dataset, "alpha": args.alpha, "policy": policy.name, "n": total, "rules": rules,
              "answered_on": fired, "rows": rows,
              "sessions": {"all on": [{k: v for k, v in s.items() if k != "steps"} for s in on],
                           "all off": [{k: v for k, v in s.items() if k != "steps"} for s in off]},
              "wall_s": time.perf_counter() - t0}
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1, default=str), encoding="utf-8")
    if args.md:
        Path(args.md).write_text(table + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
