"""The α frontier before and after the quality term, in one run: EM, F1, $/query and calls per tier at each α.

"before" is the preset as it is (the choice is the router's name log-probability minus κ·α·price); "after" is the
same preset with the per-hop quality estimate on (run settings quality, prior_weight, quality_weight: by default
the values bench/fit_quality.py chose, read from its JSON). Both run over the same questions: the bundled multi-hop
set and public multi-hop *train* questions (MuSiQue train, shipped in assets/questions/public). Each session is
stored (one eval run per side, resumable with the same --db), with the cheapest-only and largest-only baselines
for RouteLLM's APGR: the area under the performance-gap-recovered curve, PGR = (EM − EM_cheapest)/(EM_largest −
EM_cheapest), over the cost axis scaled from the cheapest's cost (0) to the largest's (1).

Usage: python bench/alpha_frontier.py [--limit-bundled N] [--limit-public N] [--alpha 0,0.1,...] [--db FILE]
       [--out docs/results/alpha_frontier.json] [--fit bench/results/quality_fit.json]
Goals it checks (issue 26): every tier answers some hop; ≥ 4 distinct cost levels; at some α the mean cost is ≤ 50 %
of α 0's with EM within 0.05 of α 0's on the multi-hop set; α 0's EM not below "before"'s.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from evaluation.datasets import bundled_datasets, data_folder, load_dataset, named_set  # noqa: E402
from evaluation.runner import EvalRunner, parse_alphas  # noqa: E402
from evaluation.single_round import cheapest, largest  # noqa: E402
from router_core.policy import load_policies  # noqa: E402
from router_core.pool import load_pool  # noqa: E402
from storage import SessionFilter, TraceStore  # noqa: E402

ALPHAS = "0,0.1,0.2,0.3,0.5,0.7,1"


def apgr(points: list[tuple[float, float]], weak: tuple[float, float], strong: tuple[float, float]) -> float | None:
    """Area under PGR over the cost axis scaled weak → strong (0 → 1), the curve held flat between and beyond the
    measured points (RouteLLM's APGR with cost in place of the share of calls to the strong model)."""
    (c0, e0), (c1, e1) = weak, strong
    if e1 == e0 or c1 == c0:
        return None
    pts = sorted(((c - c0) / (c1 - c0), (e - e0) / (e1 - e0)) for c, e in points)
    pts = [(0.0, 0.0)] + [(min(max(x, 0.0), 1.0), y) for x, y in pts] + [(1.0, max(y for _, y in pts))]
    area, best = 0.0, 0.0
    for (xa, ya), (xb, _) in zip(pts, pts[1:]):  # the best PGR reached at or below each cost
        best = max(best, ya)
        area += (xb - xa) * best
    return area


def side(store: TraceStore, run_id: str, policy_label: str, alphas: list[float], tiers: list[str]) -> dict:
    """Per α: n, EM, F1, $/query, calls per tier (routes sent to each model), over the run's router sessions."""
    out = {}
    df = store.sessions_frame(SessionFilter(run_id=run_id, policy=policy_label))
    for a in alphas:
        rows = df[(df["alpha"] - a).abs() < 1e-9]
        calls = {m: 0 for m in tiers}
        for sid in rows["id"]:
            for s in store.load_steps(sid):
                if s.kind == "route" and s.sent and s.request_model in calls:
                    calls[s.request_model] += 1
        n = len(rows)
        out[f"{a:g}"] = {"n": n, "EM": float(rows["em"].fillna(0).mean()) if n else None,
                         "F1": float(rows["f1"].fillna(0).mean()) if n else None,
                         "usd_per_query": float(rows["cost_usd"].mean()) if n else None,
                         "calls_per_tier": calls}
    return out


def baseline(store: TraceStore, run_id: str, label: str) -> tuple[float, float] | None:
    df = store.sessions_frame(SessionFilter(run_id=run_id, policy=label))
    return (float(df["cost_usd"].mean()), float(df["em"].fillna(0).mean())) if len(df) else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit-bundled", type=int, default=None, help="first N bundled multi-hop questions")
    ap.add_argument("--limit-public", type=int, default=30, help="first N MuSiQue train questions")
    ap.add_argument("--alpha", default=ALPHAS)
    ap.add_argument("--policy", default=None)
    ap.add_argument("--fit", default=str(ROOT / "bench" / "results" / "quality_fit.json"))
    ap.add_argument("--db", default=str(ROOT / "bench" / "results" / "alpha_frontier.sqlite"))
    ap.add_argument("--out", default=str(ROOT / "docs" / "results" / "alpha_frontier.json"))
    args = ap.parse_args()
    alphas = parse_alphas(args.alpha)
    items = load_dataset(bundled_datasets()["multi_hop"], limit=args.limit_bundled)
    name, path = named_set("musique/train", data_folder(None))
    items += load_dataset(path, limit=args.limit_public, name=name)
    fit = json.loads(Path(args.fit).read_text())["best"]
    after = {"quality": True, "prior_weight": fit["prior_weight"], "quality_weight": fit["quality_weight"]}
    policy, pool = load_policies().get(args.policy), load_pool()
    tiers = [m.name for m in sorted(pool.models, key=lambda m: m.price_out)]
    result = {"questions": len(items), "sets": sorted({it.dataset for it in items}), "alphas": alphas,
              "policy": policy.name, "after_settings": after, "sides": {}}
    t_start = time.perf_counter()
    with TraceStore(args.db) as store:
        for label, overrides, baselines in (("before", None, ["cheapest", "largest"]), ("after", after, [])):
            run_id = f"frontier-{label}"
            runner = EvalRunner(store, policy, pool, run_id=run_id, alphas=alphas, baselines=baselines,
                                overrides=overrides)
            t0 = time.perf_counter()

            def progress(phase: str, done: int, total: int, label=label, t0=t0) -> None:
                print(f"\r{label}: {done}/{total} sessions, {time.perf_counter() - t0:.0f} s", end="",
                      file=sys.stderr, flush=True)
            runner.run(items, progress)
            print(file=sys.stderr)
            result["sides"][label] = side(store, run_id, policy.name, alphas, tiers)
        weak = baseline(store, "frontier-before", "baseline/cheapest")
        strong = baseline(store, "frontier-before", "baseline/largest")
    result["baselines"] = {"cheapest": weak, "largest": strong, "cheapest_model": cheapest(pool).name,
                           "largest_model": largest(pool).name}
    result["seconds"] = time.perf_counter() - t_start
    print(f"{len(items)} questions ({', '.join(result['sets'])}); cheapest-only {weak}, largest-only {strong}")
    print(f"{'α':>4} | {'before EM':>9} {'F1':>5} {'µ$/q':>6} calls/tier | {'after EM':>9} {'F1':>5} {'µ$/q':>6} "
          "calls/tier")
    for a in alphas:
        b, f = result["sides"]["before"][f"{a:g}"], result["sides"]["after"][f"{a:g}"]
        cell = (lambda r: f"{r['EM']:9.3f} {r['F1']:5.2f} {r['usd_per_query'] * 1e6:6.2f} "
                          f"{'/'.join(str(r['calls_per_tier'][m]) for m in tiers)}")
        print(f"{a:4g} | {cell(b)} | {cell(f)}")
    for label in ("before", "after"):
        rows = result["sides"][label]
        pts = [(r["usd_per_query"], r["EM"]) for r in rows.values() if r["n"]]
        a0 = rows[f"{alphas[0]:g}"]
        cheap_ok = [a for a, r in rows.items() if r["n"] and r["usd_per_query"] <= 0.5 * a0["usd_per_query"]
                    and r["EM"] >= a0["EM"] - 0.05]
        result["sides"][label]["summary"] = {
            "APGR": apgr(pts, weak, strong) if weak and strong else None,
            "cost_levels": len({round(c, 9) for c, _ in pts}),
            "tiers_used": [m for m in tiers if any(r["calls_per_tier"][m] for r in rows.values() if "n" in r)],
            "alphas_at_half_cost_within_0.05_EM": cheap_ok}
        s = result["sides"][label]["summary"]
        print(f"{label}: APGR {s['APGR'] if s['APGR'] is None else round(s['APGR'], 3)}, {s['cost_levels']} cost "
              f"levels, tiers used {', '.join(s['tiers_used'])}, α at ≤ 50 % cost within 0.05 EM: "
              f"{', '.join(s['alphas_at_half_cost_within_0.05_EM']) or 'none'}")
    print(f"α 0 EM: before {result['sides']['before'][f'{alphas[0]:g}']['EM']:.3f}, "
          f"after {result['sides']['after'][f'{alphas[0]:g}']['EM']:.3f}; {result['seconds'] / 60:.0f} min")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1, default=str))
    print(f"→ {args.out} (sessions in {args.db})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
