"""Error analysis without a browser: the failure breakdown and its cells, labels over suggested kinds, bulk labels,
and the new Explorer filters."""
from __future__ import annotations

import pytest
from test_diff import add

from storage import SessionFilter, TraceStore
from ui.analysis import TOTAL, breakdown, cell_filter
from ui.explorer import make_filter, page


@pytest.fixture()
def store(tmp_path):
    s = TraceStore(str(tmp_path / "a.sqlite"))
    for item, ans in (("i1", "Paris"), ("i2", "Rhine"), ("i3", "1970")):
        add(s, "A", item, ans, method="preset-a")
        add(s, "A", item, "Rome", method="baseline/largest")
    yield s
    s.close()


def test_breakdown_counts_wrong_sessions_by_kind_and_method_and_a_cell_names_its_filters(store):
    table, methods, n = breakdown(store, make_filter())
    assert n == 5 and methods == ["baseline/largest", "preset-a"]
    assert list(table.columns) == ["why wrong", TOTAL, "largest", "router (preset-a)"]
    row = table.iloc[0]
    assert row["why wrong"].startswith("wrong fact:") and (row[TOTAL], row["largest"], row["router (preset-a)"]) == \
        (5, 3, 2)
    assert cell_filter(table, methods, 0, 3) == ("wrong_fact", "preset-a")
    assert cell_filter(table, methods, 0, 1) == ("wrong_fact", "")  # the total: any method
    assert cell_filter(table, methods, 5, 1) is None
    kind, method = cell_filter(table, methods, 0, 2)
    got = store.list_sessions(SessionFilter(correct=False, failure=kind, policy=method))
    assert got.total == 3 and set(got.rows["answer"]) == {"Rome"}


def test_a_persons_label_wins_over_the_suggested_kind_and_bulk_labels_reach_the_whole_filtered_set(store):
    f = make_filter(correct="wrong", method="baseline/largest")
    assert store.annotate_many(store.list_sessions(f).ids + ["not-a-session"], "candidate_wrong", "Rome again") == 3
    tbl, ids, _ = page(store, f, "newest", 0)
    assert set(tbl["why wrong"]) == {"✎ candidate wrong"}  # the label in words
    tbl, _, _ = page(store, make_filter(correct="wrong", method="preset-a"), "newest", 0)
    assert set(tbl["why wrong"]) == {"wrong fact"}  # not labelled: the suggestion shows, in words
    assert store.labels_of(ids) == {i: ["candidate_wrong"] for i in ids}
    with pytest.raises(ValueError, match="label must be one of"):
        store.annotate_many(ids, "nonsense")


def test_new_filters_name_their_field_when_bad(store):
    assert make_filter(calls="1").calls == 1 and make_filter(failure="repeat").failure == "repeat"
    with pytest.raises(ValueError, match="calls: 1.5 is not a number of calls"):
        make_filter(calls="1.5")
    with pytest.raises(ValueError, match="why wrong: 'bogus' is not one of"):
        make_filter(failure="bogus")
    assert store.list_sessions(make_filter(calls="1", method="preset-a")).total == 3


def test_the_breakdown_by_model_hops_or_dataset_and_its_cells(store):
    table, models, n = breakdown(store, make_filter(), "model")
    assert n == 5 and models == ["Qwen2.5-0.5B"] and list(table.columns) == ["why wrong", TOTAL, "Qwen2.5-0.5B"]
    assert cell_filter(table, models, 0, 2) == ("wrong_fact", "Qwen2.5-0.5B")
    table, hops, _ = breakdown(store, make_filter(), "hops")
    assert hops == ["1"] and list(table.columns)[2] == "1 call(s)"
    table, sets, _ = breakdown(store, make_filter(method="preset-a"), "dataset")
    assert sets == ["demo"] and int(table.iloc[0]["demo"]) == 2
    with pytest.raises(ValueError, match="break down by: 'colour' is not one of"):
        breakdown(store, make_filter(), "colour")


def test_the_gold_filter_finds_text_in_any_gold_answer_and_the_table_shows_f1(store):
    add(store, "A", "i1", "Lutetia", method="preset-a")
    assert store.list_sessions(make_filter(gold="PARIS")).total == 3  # i1's sessions (gold Paris), any case
    assert store.list_sessions(make_filter(gold='"Paris"')).total == 0  # quotes are the text's, not JSON's
    assert store.list_sessions(make_filter(gold="%")).total == 0  # wildcards are literal
    assert store.list_sessions(make_filter(gold="_")).total == 0
    tbl, _, _ = page(store, make_filter(gold="danube"), "newest", 0)
    assert set(tbl["gold"]) == {"Danube"} and set(tbl["F1"]) == {"0.00"}
