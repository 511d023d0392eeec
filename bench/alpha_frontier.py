"""The α frontier before and after the quality term, in one run: EM, F1, $/query and calls per tier at each α.

"before" is the preset as it is (the choice is the router's name log-probability minus κ·α·price); "after" is the
same preset with the per-hop quality estimate on (run settings quality, prior_weight, quality_weight: by default
the values bench/fit_quality.py chose, read from its JSON). Both run over the same questions: the bundled multi-hop
set and public multi-hop *train* questions (MuSiQue train, shipped in assets/questions/public). Each session is
stored (one eval run per side, resumable with the same --db), with the cheapest-only and largest-only baselines
for RouteLLM's APGR: the area under the performance-gap-recovered curve, PGR = (EM − EM_cheapest)/(EM_largest −
EM_cheapest), over the cost axis scaled from the cheapest's cost (0) to the largest's (1), the curve held at the best
PGR reached at or below each cost (`evaluation.curves.apgr_reached`: a slider cannot mix its settings). Greedy calls
repeated across α (a session repeats another's calls up to its first differing choice) are replayed from memory
(`router_core.engines.memo`), so a sweep computes each distinct path once; these sessions' latencies are therefore
not measurements and are not reported.

Usage: python bench/alpha_frontier.py [--bundled multi_hop|dev] [--limit-bundled N] [--limit-public N]
       [--alpha 0,0.1,...] [--also W_P,W_Q ...] [--db FILE] [--out docs/results/alpha_frontier.json]
       [--fit bench/results/quality_fit.json] [--plot-only]
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


def _points(rows: list[tuple[str, dict]]) -> list[tuple[float, float, str]]:
    """(µ$ a query, EM, label) per distinct point: α values that landed on the same point share one label."""
    out: list[tuple[float, float, list[str]]] = []
    for a, r in rows:
        x, y = r["usd_per_query"] * 1e6, r["EM"]
        if out and abs(out[-1][0] - x) < 0.005 and abs(out[-1][1] - y) < 1e-9:
            out[-1][2].append(a)
        else:
            out.append((x, y, [a]))
    return [(x, y, "α " + (f"{al[0]}–{al[-1]}" if len(al) > 1 else al[0])) for x, y, al in out]


def _panel_labels(sides: list[list[tuple[float, float, str]]], names: list[str] | None = None, near_x: float = 0.12,
                  near_y: float = 0.05) -> list[list[str]]:
    """One label per crowd of points: points closer than `near_x` of the panel's width (x on a log scale; a label is
    about a tenth of it wide) and `near_y` of its height are labelled once, on the first of them, with their sides'
    α labels joined, each after its side's name where the crowd holds more than one side ("before α 0 / after
    α 0–0.3, α 0.5"), so texts that would print over each other print once."""
    import math
    flat = [(si, pi, math.log10(max(x, 1e-12)), y) for si, pts in enumerate(sides) for pi, (x, y, _) in enumerate(pts)]
    if not flat:
        return [[] for _ in sides]
    span_x = (max(f[2] for f in flat) - min(f[2] for f in flat)) or 1.0
    span_y = (max(f[3] for f in flat) - min(f[3] for f in flat)) or 1.0
    texts = [["" for _ in pts] for pts in sides]
    names = names or [str(i) for i in range(len(sides))]
    placed: list[tuple[float, float, int, int, dict[int, list[str]]]] = []  # (x, y, side, index, side → labels)
    for si, pi, x, y in flat:
        label = sides[si][pi][2]
        home = next((p for p in placed if abs(p[0] - x) / span_x < near_x and abs(p[1] - y) / span_y < near_y), None)
        if home is None:
            placed.append((x, y, si, pi, {si: [label]}))
        else:
            home[4].setdefault(si, []).append(label)
    for _, _, si, pi, by_side in placed:
        if len(by_side) == 1:
            texts[si][pi] = ", ".join(by_side[si])
        else:
            texts[si][pi] = " / ".join(f"{names[k]} " + ", ".join(v) for k, v in sorted(by_side.items()))
    return texts


def _places(sides: list[list[tuple[float, float, str]]], texts: list[list[str]], width: float,
            height: float, others: list[tuple[float, float]] = ()) -> list[list[str]]:
    """Where each label goes, beside its point: the first of four corners (the side's own first) whose box, sized
    from the text at 12 px type, stays inside the panel (`width` × `height` px; `others`, the unlabelled points,
    widen its axes) and clear of the labels already placed; the side's own corner when none is."""
    import math
    pts = [(si, pi, math.log10(max(x, 1e-12)), y) for si, side in enumerate(sides) for pi, (x, y, _) in enumerate(side)]
    places = [["bottom right"] * len(side) for side in sides]
    if not pts:
        return places
    xs = [p[2] for p in pts] + [math.log10(max(x, 1e-12)) for x, _ in others]
    ys = [p[3] for p in pts] + [y for _, y in others]
    lo_x, hi_x, lo_y, hi_y = min(xs), max(xs), min(ys), max(ys)
    pad_x, pad_y = 0.05 * ((hi_x - lo_x) or 1.0), 0.05 * ((hi_y - lo_y) or 1.0)  # plotly's autorange margin
    boxes: list[tuple[float, float, float, float]] = []
    for si, pi, lx, y in pts:
        px = (lx - lo_x + pad_x) / (hi_x - lo_x + 2 * pad_x) * width
        py = (y - lo_y + pad_y) / (hi_y - lo_y + 2 * pad_y) * height
        w, h = 6.5 * len(texts[si][pi]), 14.0
        own = ("top left", "bottom right")[si % 2 == 0]
        choice = own
        for corner in (own, "bottom left", "top right", "top left", "bottom right"):
            box = _box(px, py, w, h, corner)
            inside = box[0] >= 0 and box[2] <= width and box[1] >= -20 and box[3] <= height + 20
            if inside and not any(box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3] for b in boxes):
                choice = corner
                break
        if texts[si][pi]:
            boxes.append(_box(px, py, w, h, choice))
        places[si][pi] = choice
    return places


def _box(px: float, py: float, w: float, h: float, corner: str) -> tuple[float, float, float, float]:
    """A label's box (x0, y0, x1, y1; y up) when it sits at `corner` of the point (px, py)."""
    x0 = px + 5 if corner.endswith("right") else px - 5 - w
    y0 = py + 4 if corner.startswith("top") else py - 4 - h
    return x0, y0, x0 + w, y0 + h


def figure(result: dict):
    """EM against $ a query at each α, each side, on all the questions and on the bundled set alone, with the
    cheapest- and largest-only points."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots
    goal = result["sets"][0] if result["sets"] else ""
    panels = [("all", f"all {result['questions']} questions ({', '.join(result['sets'])})")]
    if len(result["sets"]) > 1:
        panels.append((goal, f"the bundled set alone ({goal})"))
    fig = make_subplots(rows=1, cols=len(panels), subplot_titles=[t for _, t in panels], horizontal_spacing=0.08)
    colours = ("#9d755d", "#4c78a8", "#54a24b", "#e45756")
    for col, (key, _) in enumerate(panels, 1):
        side_pts = [_points([(a, r if key == "all" else {**r["by_set"][key], "n": r["n"]})
                             for a, r in side_rows.items() if a != "summary" and r["n"]])
                    for side_rows in result["sides"].values()]
        side_text = _panel_labels(side_pts, list(result["sides"]))
        b = result["baselines"]
        others = [(b[k][0] * 1e6, b[k][1]) for k in ("cheapest", "largest") if key == "all" and b.get(k)]
        side_place = _places(side_pts, side_text, 1020 * (0.46 if len(panels) > 1 else 1.0), 330, others)
        for i, (label, side_rows) in enumerate(result["sides"].items()):
            pts = side_pts[i]
            s = side_rows.get("summary", {})
            name = label + (f" (APGR {s['APGR']:.2f})" if s.get("APGR") is not None else "")
            fig.add_trace(go.Scatter(x=[p[0] for p in pts], y=[p[1] for p in pts], mode="lines+markers+text",
                                     text=side_text[i], name=name, legendgroup=label, showlegend=col == 1,
                                     textposition=side_place[i],
                                     line=dict(color=colours[i % len(colours)]), marker=dict(size=8)),
                          row=1, col=col)
        if key == "all":
            for k, symbol in (("cheapest", "square"), ("largest", "diamond")):
                if b.get(k):
                    fig.add_trace(go.Scatter(x=[b[k][0] * 1e6], y=[b[k][1]], mode="markers",
                                             name=f"{b[k + '_model']} asked once",
                                             marker=dict(size=11, symbol=symbol)), row=1, col=col)
        fig.update_xaxes(type="log", title_text="µ$ a query (log)", row=1, col=col)
        fig.update_yaxes(title_text="EM", row=1, col=col)
    fig.update_layout(template="plotly_white", width=1100, height=520, font=dict(size=12),
                      title="The α frontier: before = prior − κ·α·price, after = prior + quality − κ·α·price",
                      legend=dict(orientation="h", y=-0.18, yanchor="top"), margin=dict(l=60, r=20, t=80, b=10))
    return fig


def write_figure(result: dict, png_out: Path) -> None:
    """The figure as a PNG for the README, drawn by Chromium where it is installed; else an HTML page beside it
    (plotly inline, about 5 MB, opens offline)."""
    import tempfile
    page_html = figure(result).to_html(include_plotlyjs=True, full_html=True)
    try:
        sys.path.insert(0, str(ROOT / "tests"))
        from playwright.sync_api import sync_playwright
        from support.browser import ARGS, CHROMIUM
        with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
            page_file = Path(tmp) / "frontier.html"
            page_file.write_text(page_html, encoding="utf-8")
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1120, "height": 540})
            page.goto(page_file.as_uri())
            page.wait_for_selector(".main-svg")
            page.screenshot(path=str(png_out))
            browser.close()
    except Exception as e:  # no Chromium here: the page stands alone
        html_out = png_out.with_suffix(".html")
        html_out.write_text(page_html, encoding="utf-8")
        print(f"· no PNG ({type(e).__name__}: {e}); the figure is in {html_out}", file=sys.stderr)


def baseline(store: TraceStore, run_id: str, label: str) -> tuple[float, float] | None:
    df = store.sessions_frame(SessionFilter(run_id=run_id, policy=label))
    return (float(df["cost_usd"].mean()), float(df["em"].fillna(0).mean())) if len(df) else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundled", default="multi_hop", help="the bundled set (multi_hop; dev for the dev-set check)")
    ap.add_argument("--limit-bundled", type=int, default=None, help="first N bundled questions")
    ap.add_argument("--limit-public", type=int, default=30, help="first N MuSiQue train questions")
    ap.add_argument("--alpha", default=ALPHAS)
    ap.add_argument("--policy", default=None)
    ap.add_argument("--fit", default=str(ROOT / "bench" / "results" / "quality_fit.json"))
    ap.add_argument("--db", default=str(ROOT / "bench" / "results" / "alpha_frontier.sqlite"))
    ap.add_argument("--out", default=str(ROOT / "docs" / "results" / "alpha_frontier.json"))
    ap.add_argument("--also", action="append", default=[], metavar="W_P,W_Q",
                    help="another 'after' side with these weights (repeatable), e.g. --also 0.25,16")
    ap.add_argument("--plot-only", action="store_true", help="draw the figure from --out's JSON, run nothing")
    args = ap.parse_args()
    out = Path(args.out)
    png_out = out.with_suffix(".png")
    if args.plot_only:
        write_figure(json.loads(out.read_text()), png_out)
        print(f"→ {png_out}")
        return 0
    alphas = parse_alphas(args.alpha)
    if args.bundled not in bundled_datasets():
        ap.error(f"--bundled {args.bundled}: not a bundled set (known: {', '.join(bundled_datasets())})")
    items = load_dataset(bundled_datasets()[args.bundled], limit=args.limit_bundled)
    bundled_name = items[0].dataset if items else ""
    if args.limit_public:
        name, path = named_set("musique/train", data_folder(None))
        items += load_dataset(path, limit=args.limit_public, name=name)
    fit = json.loads(Path(args.fit).read_text())["best"]
    after = {"quality": True, "prior_weight": fit["prior_weight"], "quality_weight": fit["quality_weight"]}
    sides: list[tuple[str, dict | None, list[str]]] = [("before", None, ["cheapest", "largest"]), ("after", after, [])]
    for text in args.also:
        try:
            w_p, w_q = (float(x) for x in text.split(","))
        except ValueError:
            ap.error(f"--also {text}: give two numbers, the prior and quality weights, e.g. 0.25,16")
        sides.append((f"after {w_p:g},{w_q:g}", {**after, "prior_weight": w_p, "quality_weight": w_q}, []))
    policy, pool = load_policies().get(args.policy), load_pool()
    tiers = [m.name for m in sorted(pool.models, key=lambda m: m.price_out)]
    result = {"questions": len(items), "sets": sorted({it.dataset for it in items}), "alphas": alphas,
              "policy": policy.name, "after_settings": after,
              "side_settings": {label: o for label, o, _ in sides}, "sides": {}}
    t_start = time.perf_counter()
    engines = memoized(get_engine)
    with TraceStore(args.db) as store:
        for label, overrides, baselines in sides:
            run_id = f"frontier-{label.replace(' ', '-')}"
            runner = EvalRunner(store, policy, pool, run_id=run_id, alphas=alphas, baselines=baselines,
                                overrides=overrides, engines=engines)
            t0 = time.perf_counter()

            def progress(phase: str, done: int, total: int, label=label, t0=t0) -> None:
                if sys.stderr.isatty() or done == total or done % 20 == 0:
                    end = "" if sys.stderr.isatty() else "\n"
                    print(f"\r{label}: {done}/{total} sessions, {time.perf_counter() - t0:.0f} s", end=end,
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
    labels = [label for label, _, _ in sides]
    cell = (lambda r: f"{r['EM']:5.3f} {r['F1']:4.2f} {r['usd_per_query'] * 1e6:6.2f} "
                      f"{'/'.join(str(r['calls_per_tier'][m]) for m in tiers):>10}")
    print(f"{'α':>4} | " + " | ".join(f"{lb + ': EM   F1   µ$/q calls/tier':<32}" for lb in labels))
    for a in alphas:
        print(f"{a:4g} | " + " | ".join(f"{cell(result['sides'][lb][f'{a:g}']):<32}" for lb in labels))
    def on_set(lb: str, a: float, name: str) -> str:
        r = result["sides"][lb][f"{a:g}"]["by_set"][name]
        return f"{r['EM']:.3f}/{r['usd_per_query'] * 1e6:.2f}"
    for name in result["sets"]:
        for lb in labels[1:]:
            print(f"{name}: EM / µ$ a query, before → {lb}: " + "; ".join(
                f"α {a:g} {on_set('before', a, name)} → {on_set(lb, a, name)}" for a in alphas))
    for label in labels:
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
            "tiers_used": [m for m in tiers if any(r["calls_per_tier"][m] for r in rows.values())],
            "tiers_chosen": [m for m in tiers if any(r["chosen_per_tier"][m] for r in rows.values())],
            "alphas_at_half_cost_within_0.05_EM": cheap_ok}
        s = result["sides"][label]["summary"]
        print(f"{label}: APGR {s['APGR'] if s['APGR'] is None else round(s['APGR'], 3)}, {s['cost_levels']} cost "
              f"levels, tiers used {', '.join(s['tiers_used'])} "
              f"(by the choice itself: {', '.join(s['tiers_chosen'])}), "
              f"α at ≤ 50 % cost within 0.05 EM on {goal_set or 'all'}: "
              f"{', '.join(s['alphas_at_half_cost_within_0.05_EM']) or 'none'}")
    print("α 0 EM: " + ", ".join(f"{lb} {result['sides'][lb][f'{alphas[0]:g}']['EM']:.3f}" for lb in labels)
          + f"; {result['seconds'] / 60:.0f} min; calls computed {result['memo']['calls_computed']}, replayed "
            f"{result['memo']['calls_replayed']}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1, default=str))
    write_figure(result, png_out)
    print(f"→ {out}, {png_out.name} (sessions in {args.db})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
