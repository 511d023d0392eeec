"""The trained router beside today's default and the untrained base, in one run, on questions none was tuned on.

Part 1, at α 0, one eval run per side over the same questions (stored, resumable with the same --db):
  - the bundled multi-hop set (45 two-hop questions written for the studio; the training set shares no entity with it,
    scripts/compose_train.py) and
  - public *dev* questions (HotpotQA and 2WikiMultiHopQA dev samples, assets/questions/public/*/dev.jsonl), which no
    training, tuning or calibration here ever read;
  per side and set: protocol-valid share, EM, F1, think quality, chain rate, repeated sub-questions, $/query, router
  tokens per session, seconds per session (median and p90). Sessions are timed for real (nothing replayed).
Part 2, the α frontier on the bundled multi-hop set: the trained policy (as shipped, κ 0: α acts only through its
  prompt; and with the price penalty κ·α·ĉ on its own name scores, κ 8) and today's default at each α (calls repeated
  across α replayed from memory, so these latencies are not measurements), with the cheapest- and largest-only
  baselines for RouteLLM's APGR, and the goal "some α keeps EM within 0.05 of α 0 at ≤ 50 % of α 0's cost".

Sides (--sides picks some): trained (the shipped adapter, free rollout, no rules), default (today's default preset),
default-measured-descriptions (the same with pool descriptions that quote measurements, bench/pools/: a prompt change
tried and not adopted), default-measured-ranked (the second wording, which ranks the three beside the dearest's
accuracy), base-prompted (the untrained Qwen2.5-Coder-0.5B left to write the protocol itself, free
rollout with the Router-R1 template: what training started from).

Usage: python bench/trained_router.py [--limit-dev 25] [--sides trained,default,...] [--skip-frontier]
       [--frontier-alphas 0,0.25,0.5,0.75,1] [--db bench/results/trained_router.sqlite]
       [--out docs/results/trained_router.json]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from evaluation.curves import apgr_reached  # noqa: E402
from evaluation.datasets import bundled_datasets, data_folder, load_dataset, named_set  # noqa: E402
from evaluation.decomposition import measure  # noqa: E402
from evaluation.runner import EvalRunner, parse_alphas  # noqa: E402
from router_core.engines import get_engine  # noqa: E402
from router_core.engines.memo import memoized  # noqa: E402
from router_core.policy import load_policies  # noqa: E402
from router_core.pool import load_pool  # noqa: E402
from storage import SessionFilter, TraceStore  # noqa: E402

SIDES = {
    "trained": ("trained-qwen2.5-0.5b", None),
    "default": ("prompted-qwen2.5-1.5b", None),
    "default-measured-descriptions": ("prompted-qwen2.5-1.5b",
                                      str(ROOT / "bench/pools/local-measured-descriptions.yaml")),
    "default-measured-ranked": ("prompted-qwen2.5-1.5b", str(ROOT / "bench/pools/local-measured-ranked.yaml")),
    "base-prompted": ("prompted-qwen2.5-0.5b-free", None),
}
# frontier sides: (label, the part-1 side it runs, run-setting overrides)
FRONTIER_SIDES = (("trained", "trained", None), ("trained, κ 8", "trained", {"kappa": 8.0}),
                  ("default", "default", None))


def _pct(xs: list[float], q: float) -> float | None:
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def figures(store: TraceStore, run_id: str, policy: str, dataset: str | None, names: list[str]) -> dict:
    rows = [r for r in store.iter_sessions(SessionFilter(run_id=run_id, status="done"))
            if r["policy"] == policy and (dataset is None or r["dataset"] == dataset)]
    if not rows:
        return {"n": 0}
    steps = {r["id"]: store.load_steps(r["id"]) for r in rows}
    d = measure([(r["question"], steps[r["id"]]) for r in rows], names)
    lat = [float(r["latency_s"]) for r in rows]
    n = len(rows)
    return {
        "n": n,
        "valid": sum(1 for r in rows if r["format_ok"]) / n,
        "EM": sum(float(r["em"] or 0) for r in rows) / n,
        "F1": sum(float(r["f1"] or 0) for r in rows) / n,
        "think_quality": d.think_quality, "chain_rate": d.chain_rate, "repeat_rate": d.repeat_rate,
        "usd_per_query": sum(float(r["cost_usd"]) for r in rows) / n,
        "router_tokens": sum(int(r["router_tokens"] or 0) for r in rows) / n,
        "router_output_tokens": sum(sum(s.router_output_tokens for s in steps[r["id"]]) for r in rows) / n,
        "calls": sum(int(r["calls"] or 0) for r in rows) / n,
        "seconds_median": statistics.median(lat), "seconds_p90": _pct(lat, 0.9),
    }


def _items(limit_dev: int, limit_bundled: int | None) -> list:
    items = load_dataset(bundled_datasets()["multi_hop"], limit=limit_bundled)
    for name in ("hotpotqa/dev", "2wiki/dev"):
        n, path = named_set(name, data_folder(None))
        items += load_dataset(path, limit=limit_dev, name=n)
    return items


def frontier(store: TraceStore, run_id: str, policy: str, alphas: list[float], tiers: list[str]) -> dict:
    out = {}
    for a in alphas:
        rows = [r for r in store.iter_sessions(SessionFilter(run_id=run_id, status="done"))
                if r["policy"] == policy and abs(float(r["alpha"]) - a) < 1e-9]
        calls = {m: 0 for m in tiers}
        for r in rows:
            for s in store.load_steps(r["id"]):
                if s.sent and s.request_model in calls:
                    calls[s.request_model] += 1
        n = len(rows) or 1
        out[f"{a:g}"] = {"n": len(rows), "EM": sum(float(r["em"] or 0) for r in rows) / n,
                         "usd_per_query": sum(float(r["cost_usd"]) for r in rows) / n, "calls_per_tier": calls}
    return out


def _baseline(store: TraceStore, run_id: str, label: str) -> tuple[float, float] | None:
    rows = [r for r in store.iter_sessions(SessionFilter(run_id=run_id, status="done")) if r["policy"] == label]
    if not rows:
        return None
    return (sum(float(r["cost_usd"]) for r in rows) / len(rows), sum(float(r["em"] or 0) for r in rows) / len(rows))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit-dev", type=int, default=25, help="first N questions of each public dev sample")
    ap.add_argument("--limit-bundled", type=int, default=None)
    ap.add_argument("--sides", default=",".join(SIDES))
    ap.add_argument("--skip-frontier", action="store_true")
    ap.add_argument("--frontier-alphas", default="0,0.25,0.5,0.75,1")
    ap.add_argument("--db", default=str(ROOT / "bench" / "results" / "trained_router.sqlite"))
    ap.add_argument("--out", default=str(ROOT / "docs" / "results" / "trained_router.json"))
    args = ap.parse_args()
    sides = [s.strip() for s in args.sides.split(",") if s.strip()]
    bad = [s for s in sides if s not in SIDES]
    if bad:
        ap.error(f"--sides: unknown {', '.join(bad)} (known: {', '.join(SIDES)})")
    items = _items(args.limit_dev, args.limit_bundled)
    sets = sorted({it.dataset for it in items})
    book = load_policies()
    result: dict = {"questions": len(items), "sets": sets, "sides": {}, "frontier": {}}
    t_all = time.perf_counter()
    with TraceStore(args.db) as store:
        for side in sides:
            policy_name, pool_file = SIDES[side]
            policy, pool = book.get(policy_name), load_pool(pool_file)
            run_id = f"trained-bench-{side}"
            t0 = time.perf_counter()

            def progress(phase: str, done: int, total: int, side=side, t0=t0) -> None:
                if done == total or done % 10 == 0:
                    print(f"{side}: {done}/{total} sessions, {time.perf_counter() - t0:.0f} s", file=sys.stderr,
                          flush=True)
            EvalRunner(store, policy, pool, run_id=run_id, alphas=[0.0], baselines=[]).run(items, progress)
            names = pool.names
            result["sides"][side] = {"policy": policy_name, "pool": pool_file or "assets/pools/local.yaml",
                                     "all": figures(store, run_id, policy.name, None, names),
                                     **{s: figures(store, run_id, policy.name, s, names) for s in sets}}
        if not args.skip_frontier:
            alphas = parse_alphas(args.frontier_alphas)
            pool = load_pool(None)
            tiers = [m.name for m in sorted(pool.models, key=lambda m: m.price_out)]
            bundled = load_dataset(bundled_datasets()["multi_hop"], limit=args.limit_bundled)
            engines = memoized(get_engine)
            for label, side, overrides in [f for f in FRONTIER_SIDES if f[1] in sides]:
                policy = book.get(SIDES[side][0])
                run_id = "trained-frontier-" + label.replace(" ", "").replace(",", "-").replace("κ", "kappa")
                baselines = ["cheapest", "largest"] if side == "default" else []
                EvalRunner(store, policy, pool, run_id=run_id, alphas=alphas, baselines=baselines, overrides=overrides,
                           engines=engines).run(bundled, lambda ph, d, t, label=label: print(
                               f"frontier {label}: {d}/{t}", file=sys.stderr, flush=True) if d == t or d % 20 == 0
                               else None)
                result["frontier"][label] = frontier(store, run_id, policy.name, alphas, tiers)
            weak = _baseline(store, "trained-frontier-default", "baseline/cheapest")
            strong = _baseline(store, "trained-frontier-default", "baseline/largest")
            result["frontier_baselines"] = {"cheapest": weak, "largest": strong}
            for side, rows in result["frontier"].items():
                a0 = rows[f"{alphas[0]:g}"]
                ok = [a for a, r in rows.items() if r["usd_per_query"] <= 0.5 * a0["usd_per_query"]
                      and r["EM"] >= a0["EM"] - 0.05]
                pts = [(r["usd_per_query"], r["EM"]) for r in rows.values() if r["n"]]
                apgr = (apgr_reached([((c - weak[0]) / (strong[0] - weak[0]), e) for c, e in pts], weak[1], strong[1])
                        if weak and strong and strong[0] > weak[0] and strong[1] != weak[1] else None)
                rows["summary"] = {"alphas_at_half_cost_within_0.05_EM": ok, "APGR": apgr,
                                   "cost_levels": len({round(c * 1e6, 2) for c, _ in pts})}
    result["seconds"] = time.perf_counter() - t_all
    cols = ["n", "valid", "EM", "F1", "think_quality", "chain_rate", "repeat_rate", "usd_per_query", "router_tokens",
            "router_output_tokens", "calls", "seconds_median", "seconds_p90"]

    def cell(v) -> str:
        if v is None:
            return "—"
        return f"{v * 1e6:.2f}µ" if isinstance(v, float) and 0 < v < 0.01 else (f"{v:.3f}" if isinstance(v, float)
                                                                                else str(v))
    for s in ["all", *sets]:
        print(f"\n{s}\n{'side':<26} " + " ".join(f"{c[:9]:>9}" for c in cols))
        for side in result["sides"]:
            r = result["sides"][side][s]
            print(f"{side:<26} " + " ".join(f"{cell(r.get(c)):>9}" for c in cols))
    for side, rows in result["frontier"].items():
        print(f"\nfrontier {side}: " + "; ".join(f"α {a} EM {r['EM']:.3f} {r['usd_per_query'] * 1e6:.2f}µ$ "
                                                 f"calls {'/'.join(str(v) for v in r['calls_per_tier'].values())}"
                                                 for a, r in rows.items() if a != "summary")
              + f" → {rows['summary']}")
    print(f"\n{result['seconds'] / 60:.0f} min")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1, default=str))
    print(f"→ {out} (sessions in {args.db})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
