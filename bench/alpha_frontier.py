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

from evaluation.curves import apgr_reached  # noqa: E402
from evaluation.datasets import bundled_datasets, data_folder, load_dataset, named_set  # noqa: E402
from evaluation.runner import EvalRunner, parse_alphas  # noqa: E402
from evaluation.single_round import cheapest, largest  # noqa: E402
from router_core.engines import get_engine  # noqa: E402
from router_core.engines.memo import memoized  # noqa: E402
from router_core.policy import load_policies  # noqa: E402
from router_core.pool import load_pool  # noqa: E402
from storage import SessionFilter, TraceStore  # noqa: E402

ALPHAS = "0,0.1,0.2,0.3,0.5,0.7,1"


def side(store: TraceStore, run_id: str, policy_label: str, alphas: list[float], tiers: list[str]) -> dict:
    """Per α: n, EM, F1, $/query, calls per tier (routes sent to each model), over the run's router sessions."""
    out = {}
    df = store.sessions_frame(SessionFilter(run_id=run_id, policy=policy_label))
    for a in alphas:
        rows = df[(df["alpha"] - a).abs() < 1e-9]
        calls, chosen = {m: 0 for m in tiers}, {m: 0 for m in tiers}
        for sid in rows["id"]:
            for s in store.load_steps(sid):
                if s.kind == "route" and s.sent and s.request_model in calls:
                    calls[s.request_model] += 1
                    if s.choice is not None and s.choice.chosen == s.request_model:  # no rule moved it
                        chosen[s.request_model] += 1
        n = len(rows)
        out[f"{a:g}"] = {"n": n, "EM": float(rows["em"].fillna(0).mean()) if n else None,
                         "F1": float(rows["f1"].fillna(0).mean()) if n else None,
                         "usd_per_query": float(rows["cost_usd"].mean()) if n else None,
                         "calls_per_tier": calls, "chosen_per_tier": chosen,
                         "by_set": {str(k): {"n": int(len(g)), "EM": float(g["em"].fillna(0).mean()),
                                             "usd_per_query": float(g["cost_usd"].mean())}
                                    for k, g in rows.groupby("dataset")}}
    return out


def figure(result: dict):
    """EM against $ a query at each α, before and after, with the cheapest- and largest-only points."""
    import plotly.graph_objects as go
    fig = go.Figure()
    for label, colour in (("before", "#9d755d"), ("after", "#4c78a8")):
        rows = [(a, r) for a, r in result["sides"][label].items() if a != "summary" and r["n"]]
        s = result["sides"][label].get("summary", {})
        name = f"{label}: {'prior − κ·α·price' if label == 'before' else 'prior + quality − κ·α·price'}"
        if s.get("APGR") is not None:
            name += f" (APGR {s['APGR']:.2f})"
        fig.add_trace(go.Scatter(x=[r["usd_per_query"] * 1e6 for _, r in rows], y=[r["EM"] for _, r in rows],
                                 mode="lines+markers+text", text=[f"α {a}" for a, _ in rows], name=name,
                                 textposition="top center" if label == "after" else "bottom center",
                                 line=dict(color=colour, shape="linear"), marker=dict(size=8)))
    b = result["baselines"]
    for key, symbol in (("cheapest", "square"), ("largest", "diamond")):
        if b.get(key):
            fig.add_trace(go.Scatter(x=[b[key][0] * 1e6], y=[b[key][1]], mode="markers",
                                     name=f"{b[key + '_model']} alone", marker=dict(size=11, symbol=symbol)))
    fig.update_layout(template="plotly_white", width=900, height=520, font=dict(size=13),
                      title=f"The α frontier: {result['questions']} questions ({', '.join(result['sets'])})",
                      xaxis_title="µ$ a query (log)", yaxis_title="EM", xaxis_type="log",
                      legend=dict(orientation="h", y=-0.18, yanchor="top"), margin=dict(l=60, r=20, t=60, b=10))
    return fig


def write_figure(result: dict, html_out: Path, png_out: Path | None) -> None:
    """The figure as HTML (plotly inline, opens offline) and, where Chromium is installed, as a PNG for the README."""
    html_out.write_text(figure(result).to_html(include_plotlyjs=True, full_html=True), encoding="utf-8")
    if png_out is None:
        return
    try:
        sys.path.insert(0, str(ROOT / "tests"))
        from playwright.sync_api import sync_playwright
        from support.browser import ARGS, CHROMIUM
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 920, "height": 540})
            page.goto(html_out.resolve().as_uri())
            page.wait_for_selector(".main-svg")
            page.screenshot(path=str(png_out))
            browser.close()
    except Exception as e:  # no Chromium here: the HTML stands alone
        print(f"· no PNG ({type(e).__name__}: {e})", file=sys.stderr)


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
    ap.add_argument("--plot-only", action="store_true", help="draw the figure from --out's JSON, run nothing")
    args = ap.parse_args()
    out = Path(args.out)
    html_out, png_out = out.with_suffix(".html"), out.with_suffix(".png")
    if args.plot_only:
        write_figure(json.loads(out.read_text()), html_out, png_out)
        print(f"→ {html_out}, {png_out}")
        return 0
    alphas = parse_alphas(args.alpha)
    items = load_dataset(bundled_datasets()["multi_hop"], limit=args.limit_bundled)
    bundled_name = items[0].dataset if items else ""
    name, path = named_set("musique/train", data_folder(None))
    items += load_dataset(path, limit=args.limit_public, name=name)
    fit = json.loads(Path(args.fit).read_text())["best"]
    after = {"quality": True, "prior_weight": fit["prior_weight"], "quality_weight": fit["quality_weight"]}
    policy, pool = load_policies().get(args.policy), load_pool()
    tiers = [m.name for m in sorted(pool.models, key=lambda m: m.price_out)]
    result = {"questions": len(items), "sets": sorted({it.dataset for it in items}), "alphas": alphas,
              "policy": policy.name, "after_settings": after, "sides": {}}
    t_start = time.perf_counter()
    engines = memoized(get_engine)
    with TraceStore(args.db) as store:
        for label, overrides, baselines in (("before", None, ["cheapest", "largest"]), ("after", after, [])):
            run_id = f"frontier-{label}"
            runner = EvalRunner(store, policy, pool, run_id=run_id, alphas=alphas, baselines=baselines,
                                overrides=overrides, engines=engines)
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
    memo = [e for e in engines.engines.values()]
    result["memo"] = {"calls_computed": sum(e.misses for e in memo), "calls_replayed": sum(e.hits for e in memo)}
    print(f"{len(items)} questions ({', '.join(result['sets'])}); cheapest-only {weak}, largest-only {strong}")
    print(f"{'α':>4} | {'before EM':>9} {'F1':>5} {'µ$/q':>6} calls/tier | {'after EM':>9} {'F1':>5} {'µ$/q':>6} "
          "calls/tier")
    for a in alphas:
        b, f = result["sides"]["before"][f"{a:g}"], result["sides"]["after"][f"{a:g}"]
        cell = (lambda r: f"{r['EM']:9.3f} {r['F1']:5.2f} {r['usd_per_query'] * 1e6:6.2f} "
                          f"{'/'.join(str(r['calls_per_tier'][m]) for m in tiers)}")
        print(f"{a:4g} | {cell(b)} | {cell(f)}")
    for name in result["sets"]:
        print(f"{name}: EM / µ$ a query, before → after: " + "; ".join(
            f"α {a:g} {result['sides']['before'][f'{a:g}']['by_set'][name]['EM']:.3f}/"
            f"{result['sides']['before'][f'{a:g}']['by_set'][name]['usd_per_query'] * 1e6:.2f} → "
            f"{result['sides']['after'][f'{a:g}']['by_set'][name]['EM']:.3f}/"
            f"{result['sides']['after'][f'{a:g}']['by_set'][name]['usd_per_query'] * 1e6:.2f}" for a in alphas))
    for label in ("before", "after"):
        rows = result["sides"][label]
        pts = [(r["usd_per_query"], r["EM"]) for r in rows.values() if r["n"]]
        a0 = rows[f"{alphas[0]:g}"]
        goal_set = bundled_name if bundled_name in a0["by_set"] else None
        at = (lambda r: r["by_set"][goal_set]) if goal_set else (lambda r: r)
        cheap_ok = [a for a, r in rows.items() if r["n"] and at(r)["usd_per_query"] <= 0.5 * at(a0)["usd_per_query"]
                    and at(r)["EM"] >= at(a0)["EM"] - 0.05]
        result["sides"][label]["summary"] = {
            "APGR": apgr_reached([((c - weak[0]) / (strong[0] - weak[0]), e) for c, e in pts], weak[1], strong[1])
            if weak and strong and strong[0] > weak[0] and strong[1] != weak[1] else None,
            "cost_levels": len({round(c * 1e6, 2) for c, _ in pts}),  # to 0.01 µ$ a query
            "tiers_used": [m for m in tiers if any(r["calls_per_tier"][m] for r in rows.values() if "n" in r)],
            "tiers_chosen": [m for m in tiers if any(r["chosen_per_tier"][m] for r in rows.values() if "n" in r)],
            "alphas_at_half_cost_within_0.05_EM": cheap_ok}
        s = result["sides"][label]["summary"]
        print(f"{label}: APGR {s['APGR'] if s['APGR'] is None else round(s['APGR'], 3)}, {s['cost_levels']} cost "
              f"levels, tiers used {', '.join(s['tiers_used'])} "
              f"(by the choice itself: {', '.join(s['tiers_chosen'])}), "
              "α at ≤ 50 % cost within 0.05 EM: "
              f"{', '.join(s['alphas_at_half_cost_within_0.05_EM']) or 'none'}")
    print(f"α 0 EM: before {result['sides']['before'][f'{alphas[0]:g}']['EM']:.3f}, "
          f"after {result['sides']['after'][f'{alphas[0]:g}']['EM']:.3f}; {result['seconds'] / 60:.0f} min")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1, default=str))
    write_figure(result, html_out, png_out)
    print(f"→ {out}, {html_out.name}, {png_out.name} (sessions in {args.db})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
