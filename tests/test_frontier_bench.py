"""bench/alpha_frontier.py's own logic: points that coincide share a label, and the figure has a panel per view."""
from __future__ import annotations

import importlib.util
from pathlib import Path


def frontier():
    path = Path(__file__).parent.parent / "bench" / "alpha_frontier.py"
    spec = importlib.util.spec_from_file_location("frontier", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _row(em: float, usd: float) -> dict:
    """A side's row at one α: the bundled set's EM is `em`, MuSiQue's 0, so the mean over both is em / 2."""
    return {"n": 2, "EM": em / 2, "F1": em / 2, "usd_per_query": usd, "calls_per_tier": {}, "chosen_per_tier": {},
            "by_set": {"multi_hop": {"n": 1, "EM": em, "usd_per_query": usd},
                       "musique/train": {"n": 1, "EM": 0.0, "usd_per_query": usd}}}


def test_alphas_on_one_point_share_a_label_and_the_figure_has_both_views():
    f = frontier()
    rows = [("0", _row(0.8, 3e-5)), ("0.1", _row(0.8, 3e-5)), ("0.2", _row(0.6, 1e-5)), ("1", _row(0.5, 4e-6))]
    assert [p[2] for p in f._points(rows)] == ["α 0–0.1", "α 0.2", "α 1"]
    result = {"questions": 2, "sets": ["multi_hop", "musique/train"],
              "sides": {"before": dict(rows, summary={"APGR": 0.87}), "after": dict(rows)},
              "baselines": {"cheapest": [2e-6, 0.03], "largest": [1.4e-5, 0.4], "cheapest_model": "S",
                            "largest_model": "L"}}
    fig = f.figure(result)
    titles = [a.text for a in fig.layout.annotations]
    assert titles[0].startswith("all 2 questions") and titles[1] == "the bundled set alone (multi_hop)"
    names = [t.name for t in fig.data]
    assert "before (APGR 0.87)" in names and "L asked once" in names
    bundled = [t for t in fig.data if t.name == "after" and t.xaxis == "x2"][0]
    assert list(bundled.y) == [0.8, 0.6, 0.5]  # the bundled set's own EM, not the mean over both sets
    overall = [t for t in fig.data if t.name == "after" and t.xaxis == "x"][0]
    assert list(overall.y) == [0.4, 0.3, 0.25]


def test_labels_that_would_print_over_each_other_print_once():
    f = frontier()
    before = [(33.5, 0.80, "α 0–0.3"), (4.18, 0.40, "α 0.7–1"), (4.42, 0.40, "α 0.5"), (21.0, 0.69, "α 0.1")]
    after = [(33.5, 0.80, "α 0–0.5"), (4.85, 0.40, "α 1"), (13.5, 0.64, "α 0.7")]
    text = f._panel_labels([before, after], ["before", "after"])
    # the shared top point and the crowd at 4–5 µ$ are labelled once, with every α that landed there and its side
    assert text[0] == ["before α 0–0.3 / after α 0–0.5", "before α 0.7–1, α 0.5 / after α 1", "", "α 0.1"]
    assert text[1] == ["", "", "α 0.7"]
    # points far apart keep their own labels, on every side
    assert f._panel_labels([[(1.0, 0.1, "α 1")], [(30.0, 0.9, "α 0")]]) == [["α 1"], ["α 0"]]


def test_a_label_goes_where_it_fits():
    f = frontier()
    # a point at the panel's right edge puts its label to its left, not past the edge
    one = [[(1.0, 0.1, "α 1"), (30.0, 0.9, "α 0")]]
    assert f._places(one, [["α 1", "α 0"]], 400, 300)[0][1].endswith("left")
    # sides 0 and 2 start from the same corner; their labels of points at one spot still take different ones
    three = [[(1.0, 0.1, "α 1"), (10.0, 0.5, "α 0.5"), (30.0, 0.9, "α 0")], [], [(10.0, 0.5, "α 0.3")]]
    places = f._places(three, [["α 1", "α 0.5", "α 0"], [], ["α 0.3"]], 400, 300)
    assert places[0][1] == "bottom right" and places[2][0] != "bottom right"
