"""RouteLLM-style cost–quality metrics on a small curve computed by hand."""
from __future__ import annotations

import math

import pytest

from evaluation.curves import apgr, apgr_reached, cpt, pareto_frontier, pgr, pgr_curve

# Hand computation. Weak model quality 0.4, strong 0.8, so PGR(q) = (q - 0.4) / 0.4.
#   share  quality  PGR
#   0.00   0.4      0.00
#   0.25   0.6      0.50
#   0.50   0.7      0.75
#   1.00   0.8      1.00
# APGR (trapezoids):  0.25 * (0 + 0.5) / 2    = 0.06250
#                   + 0.25 * (0.5 + 0.75) / 2 = 0.15625
#                   + 0.50 * (0.75 + 1) / 2   = 0.43750
#                                             = 0.65625
# CPT(50%) = 0.25 (a point sits exactly on it)
# CPT(80%): between (0.5, 0.75) and (1, 1): 0.5 + (0.8 - 0.75) * 0.5 / 0.25 = 0.6
# CPT(25%): between (0, 0) and (0.25, 0.5): 0.25 * 0.25 / 0.5 = 0.125
QW, QS = 0.4, 0.8
CURVE = [(0.0, 0.4), (0.25, 0.6), (0.5, 0.7), (1.0, 0.8)]


def _flat(curve):
    """pytest.approx compares flat sequences only."""
    return [v for point in curve for v in point]


def test_pgr():
    assert pgr(0.4, QW, QS) == 0.0
    assert pgr(0.8, QW, QS) == 1.0
    assert pgr(0.6, QW, QS) == pytest.approx(0.5)
    assert pgr(0.9, QW, QS) == pytest.approx(1.25)     # better than the strong model
    assert pgr(0.5, 0.6, 0.4) == pytest.approx(0.5)    # "strong" worse: still the share of the way


def test_pgr_curve_sorted_merged():
    messy = [(0.5, 0.7), (0.0, 0.4), (1.0, 0.8), (0.25, 0.5), (0.25, 0.6, "label")]
    assert _flat(pgr_curve(messy, QW, QS)) == pytest.approx([0.0, 0.0, 0.25, 0.5, 0.5, 0.75, 1.0, 1.0])


def test_apgr_hand_computed():
    assert apgr(CURVE, QW, QS) == pytest.approx(0.65625)
    # Unsorted input with a duplicate share (the better quality is kept) gives the same area.
    assert apgr([(0.5, 0.7), (1.0, 0.8), (0.25, 0.55), (0.0, 0.4), (0.25, 0.6)], QW, QS) == pytest.approx(0.65625)


def test_apgr_endpoints_only_when_asked():
    middle = CURVE[1:3]
    assert apgr(middle, QW, QS) == pytest.approx(0.15625)                       # covered range only
    assert apgr(middle, QW, QS, add_endpoints=True) == pytest.approx(0.65625)   # (0,0) and (1,1) added
    # A measured endpoint wins over the added one: all-weak here scores above the weak model.
    assert _flat(pgr_curve([(0.0, 0.5)], QW, QS, add_endpoints=True)) == pytest.approx([0.0, 0.25, 1.0, 1.0])
    # One point on the random-mixing diagonal with endpoints: area 0.125 + 0.375 = 0.5.
    assert apgr([(0.5, 0.6)], QW, QS, add_endpoints=True) == pytest.approx(0.5)


def test_cpt_hand_computed():
    assert cpt(CURVE, QW, QS, 0.5) == pytest.approx(0.25)
    assert cpt(CURVE, QW, QS, 0.8) == pytest.approx(0.6)
    assert cpt(CURVE, QW, QS, 0.25) == pytest.approx(0.125)
    assert cpt(CURVE, QW, QS, 0.0) == 0.0
    assert cpt(CURVE, QW, QS, 1.0) == pytest.approx(1.0)


def test_cpt_never_reached_and_endpoints():
    partial = CURVE[:3]                                # PGR tops out at 0.75
    assert cpt(partial, QW, QS, 0.8) is None
    assert cpt(partial, QW, QS, 0.8, add_endpoints=True) == pytest.approx(0.6)


def test_cpt_non_monotone_takes_first_crossing():
    # PGR: (0, 0), (0.2, 1.0), (0.6, 0.5), (1, 1): 90% is first reached at 0.2 * 0.9 = 0.18.
    bumpy = [(0.0, 0.4), (0.2, 0.8), (0.6, 0.6), (1.0, 0.8)]
    assert cpt(bumpy, QW, QS, 0.9) == pytest.approx(0.18)


@pytest.mark.parametrize("call", [
    lambda: pgr(0.5, 0.6, 0.6),                       # no gap
    lambda: apgr(CURVE, 0.7, 0.7),
    lambda: cpt(CURVE, 0.7, 0.7, 0.5),
    lambda: apgr([], QW, QS),                         # no points
    lambda: cpt([], QW, QS, 0.5),
    lambda: apgr([(0.3, 0.5), (0.3, 0.6)], QW, QS),   # one distinct share: no area
    lambda: apgr([(1.5, 0.5), (0.0, 0.4)], QW, QS),   # share outside [0, 1]
    lambda: apgr([(0.5, math.nan), (0.0, 0.4)], QW, QS),
    lambda: pgr(0.5, math.inf, 0.8),
    lambda: cpt(CURVE, QW, QS, 50),                   # a percent, not a fraction
])
def test_degenerate_inputs_raise(call):
    with pytest.raises(ValueError):
        call()


def test_no_gap_message():
    with pytest.raises(ValueError, match="q_strong equals q_weak"):
        apgr(CURVE, 0.7, 0.7)


def test_pareto_frontier():
    pts = [
        (1.0, 0.5, "a"),
        (2.0, 0.7, "b"),
        (1.5, 0.4, "c"),   # dominated by a (dearer, worse)
        (2.0, 0.6, "d"),   # dominated by b (same cost, worse)
        (3.0, 0.7, "e"),   # dominated by b (same quality, dearer)
        (0.5, 0.2, "f"),
        (4.0, 0.9, "g"),
        (1.0, 0.5, "a2"),  # identical to a: only the first is kept
    ]
    assert [p[2] for p in pareto_frontier(pts)] == ["f", "a", "b", "g"]
    assert pareto_frontier(pts)[0] is pts[5]            # points come back unchanged


def test_pareto_edge_cases():
    assert pareto_frontier([]) == []
    assert pareto_frontier([(3, 0.1)]) == [(3, 0.1)]
    assert pareto_frontier(p for p in [(2, 0.5), (1, 0.5)]) == [(1, 0.5)]   # any iterable
    assert pareto_frontier([(1, 0.9), (2, 0.5), (3, 0.1)]) == [(1, 0.9)]
    with pytest.raises(ValueError):
        pareto_frontier([(1, math.nan)])


def test_apgr_reached_holds_the_best_gap_recovered_so_far():
    """The slider's APGR: no mixing between measured points, so a switch scores 0 where the trapezoid gives 0.5."""
    assert apgr_reached([(0.5, 0.6)], 0.2, 0.6) == pytest.approx(0.5)   # all the gap at half the cost
    assert apgr_reached([(1.0, 0.6), (0.0, 0.2)], 0.2, 0.6) == pytest.approx(0.0)  # a switch: none early
    assert apgr([(1.0, 0.6), (0.0, 0.2)], 0.2, 0.6) == pytest.approx(0.5)
    assert apgr_reached([(0.25, 0.4), (0.5, 0.6)], 0.2, 0.6) == pytest.approx(0.25 * 0.5 + 0.5 * 1.0)
    assert apgr_reached([(1.7, 0.6), (-0.1, 0.4)], 0.2, 0.6) == pytest.approx(0.5)  # clipped into [0, 1]
    with pytest.raises(ValueError, match="no quality gap"):
        apgr_reached([(0.1, 0.3)], 0.2, 0.2)
