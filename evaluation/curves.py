"""Cost–quality metrics for routers, after RouteLLM (Ong et al., 2024).

A single-round router between a weak and a strong model is described by a curve of
points (x, quality), x being the share of calls sent to the strong model (0..1) at
some threshold. RouteLLM summarises such a curve by

* PGR(q)  = (q - q_weak) / (q_strong - q_weak): the share of the weak→strong quality
  gap the router recovers (0 = weak model alone, 1 = strong model alone; may leave 0..1);
* APGR    = the area under PGR over x in [0, 1] (0.5 is what random mixing achieves);
* CPT(t)  = the smallest strong-call share at which PGR reaches t (e.g. CPT(50%)).

Choices made here (documented because papers differ):

* The curve is sorted by x; points sharing an x are merged keeping the best quality,
  since at a given share one would pick the best-performing threshold.
* The weak/strong endpoints (0, 0) and (1, 1) are added only with `add_endpoints=True`
  (a measured point at x = 0 or 1 is kept instead). Without them APGR integrates only
  over the x range the points cover: outside it counts as zero.
* CPT interpolates linearly between neighbouring points and returns None when the
  target is never reached.

`pareto_frontier` works on any cost axis (dollars, tokens, normalised cost), which is
how a multi-round router such as Router-R1 is compared with single-round ones.
"""
from __future__ import annotations

import math
from typing import Iterable, Sequence, TypeVar

Point = tuple[float, float]
P = TypeVar("P", bound=Sequence[float])


def _finite(value: float, what: str) -> float:
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{what} must be a finite number, got {value!r}")
    return v


def _gap(q_weak: float, q_strong: float) -> tuple[float, float]:
    qw, qs = _finite(q_weak, "q_weak"), _finite(q_strong, "q_strong")
    if qs == qw:
        raise ValueError(f"q_strong equals q_weak ({qw}): there is no quality gap, so PGR is undefined")
    return qw, qs


def pgr(quality: float, q_weak: float, q_strong: float) -> float:
    """Performance gap recovered: where `quality` lies between the weak (0) and strong (1) model."""
    qw, qs = _gap(q_weak, q_strong)
    return (_finite(quality, "quality") - qw) / (qs - qw)


def pgr_curve(points: Iterable[Sequence[float]], q_weak: float, q_strong: float,
              add_endpoints: bool = False) -> list[Point]:
    """The router's (strong-call share, PGR) curve, sorted by share, one point per share.

    `points` are (share, quality) pairs with share in [0, 1]; extra elements are ignored.
    """
    qw, qs = _gap(q_weak, q_strong)
    best: dict[float, float] = {}
    for i, p in enumerate(points):
        x = _finite(p[0], f"points[{i}] share")
        if not 0.0 <= x <= 1.0:
            raise ValueError(f"points[{i}]: share of strong-model calls must be in [0, 1], got {x}")
        y = (_finite(p[1], f"points[{i}] quality") - qw) / (qs - qw)
        best[x] = max(y, best.get(x, -math.inf))
    if add_endpoints:
        best.setdefault(0.0, 0.0)
        best.setdefault(1.0, 1.0)
    if not best:
        raise ValueError("no points: a router curve needs at least one (share, quality) point")
    return sorted(best.items())


def apgr(points: Iterable[Sequence[float]], q_weak: float, q_strong: float,
         add_endpoints: bool = False) -> float:
    """Average PGR: trapezoid area under the PGR curve over the strong-call share.

    Needs at least two distinct shares (counting endpoints when added), since the area
    of a single point says nothing about the router.
    """
    curve = pgr_curve(points, q_weak, q_strong, add_endpoints)
    if len(curve) < 2:
        raise ValueError("APGR needs points at two or more distinct shares (or add_endpoints=True)")
    return sum((x1 - x0) * (y0 + y1) / 2 for (x0, y0), (x1, y1) in zip(curve, curve[1:]))


def apgr_reached(points: Iterable[Sequence[float]], q_weak: float, q_strong: float) -> float:
    """APGR without assuming the points can be mixed: the area under the best PGR reached at or below each x.

    A slider offers only the settings it has, so between measured points the curve stays at the best one already
    reached, and (0, 0) is added; x outside [0, 1] (a multi-round router may spend more than the strong model
    asked once) is clipped to it. A switch that moves every call at once from the weak to the strong model scores
    near 0 here (the trapezoid of `apgr` would give it 0.5); random mixing at many shares scores 0.5.
    """
    clipped = [(min(max(float(p[0]), 0.0), 1.0), p[1]) for p in points]
    curve = pgr_curve(clipped, q_weak, q_strong)
    pts = [(0.0, 0.0)] + curve + [(1.0, max(y for _, y in curve))]
    area, best = 0.0, 0.0
    for (xa, ya), (xb, _) in zip(pts, pts[1:]):
        best = max(best, ya)
        area += (xb - xa) * best
    return area


def cpt(points: Iterable[Sequence[float]], q_weak: float, q_strong: float, target: float,
        add_endpoints: bool = False) -> float | None:
    """Call-performance threshold: the least strong-call share reaching PGR >= `target`.

    `target` is a fraction (CPT(50%) is target=0.5). Between points the curve is linear;
    None means the router never reaches the target on the given points.
    """
    t = _finite(target, "target")
    if not 0.0 <= t <= 1.0:
        raise ValueError(f"target is a fraction in [0, 1] (CPT(50%) is target=0.5), got {target}")
    curve = pgr_curve(points, q_weak, q_strong, add_endpoints)
    x0, y0 = curve[0]
    if y0 >= t:
        return x0
    for x1, y1 in curve[1:]:
        if y1 >= t:
            # y0 < t <= y1 here, so the segment crosses the target exactly once.
            return x0 + (t - y0) * (x1 - x0) / (y1 - y0)
        x0, y0 = x1, y1
    return None


def pareto_frontier(points: Iterable[P]) -> list[P]:
    """The points no other point beats on both axes: cost lower is better, quality higher.

    Points are (cost, quality, *anything) and come back unchanged (so a label can ride
    along), sorted by cost. Of identical (cost, quality) points only the first is kept.
    """
    indexed = []
    for i, p in enumerate(points):
        indexed.append((_finite(p[0], f"points[{i}] cost"), _finite(p[1], f"points[{i}] quality"), i, p))
    # Cheapest first; at equal cost the best quality first, so the others are dominated.
    indexed.sort(key=lambda t: (t[0], -t[1], t[2]))
    frontier: list[P] = []
    best_quality = -math.inf
    for _, quality, _, p in indexed:
        if quality > best_quality:
            frontier.append(p)
            best_quality = quality
    return frontier
