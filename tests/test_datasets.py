"""Dataset loaders: every format, errors that name file/line/field, the bundled sets."""
from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from evaluation.datasets import QUESTIONS_DIR, DatasetError, Item, bundled_datasets, load_dataset
from router_core.metrics import exact_match


def _jsonl(path: Path, rows: list[object]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows),
                    encoding="utf-8")
    return path


def _error(path: Path, **kw) -> str:
    with pytest.raises(DatasetError) as e:
        load_dataset(path, **kw)
    return str(e.value)


# ---------------------------------------------------------------- FlashRAG JSONL

def test_flashrag_jsonl(tmp_path):
    p = _jsonl(tmp_path / "nq_dev.jsonl", [
        {"id": "q1", "question": " Who wrote Hamlet? ", "golden_answers": ["William Shakespeare", "Shakespeare"]},
        "",  # blank lines are skipped but still counted
        {"question": "Capital of France?", "golden_answers": ["Paris"], "metadata": {"level": "easy"}},
    ])
    items = load_dataset(p)
    assert items[0] == Item("q1", "Who wrote Hamlet?", ["William Shakespeare", "Shakespeare"], "nq_dev", {})
    assert items[1].id == "nq_dev-3"        # stem + line number
    assert items[1].meta == {"metadata": {"level": "easy"}}
    assert load_dataset(p, name="nq")[0].dataset == "nq"
    assert [i.id for i in load_dataset(p, limit=1)] == ["q1"]
    assert load_dataset(p) == items         # generated ids are stable


def test_integer_ids_become_strings(tmp_path):
    p = _jsonl(tmp_path / "a.jsonl", [{"id": 7, "question": "Q?", "golden_answers": ["x"]}])
    assert load_dataset(p)[0].id == "7"


# ---------------------------------------------------------------- plain JSONL / CSV

def test_plain_jsonl(tmp_path):
    p = _jsonl(tmp_path / "mine.jsonl", [
        {"question": "2+2?", "answer": "4"},
        {"id": "b", "question": "Largest ocean?", "answers": ["Pacific", "Pacific Ocean"], "topic": "geo"},
    ])
    a, b = load_dataset(p)
    assert (a.id, a.golds) == ("mine-1", ["4"])
    assert (b.id, b.golds, b.meta) == ("b", ["Pacific", "Pacific Ocean"], {"topic": "geo"})
    assert load_dataset(p, fmt="plain") == [a, b]


def test_csv_quotes_commas_and_aliases(tmp_path):
    p = tmp_path / "quiz.csv"
    p.write_text(
        'id,question,answers,source\n'
        'c1,"Who said ""I think, therefore I am""?",René Descartes|Descartes,philo\n'
        ',"A question\nover two lines, with a comma", 42 | forty-two ,\n',
        encoding="utf-8")
    a, b = load_dataset(p)
    assert a == Item("c1", 'Who said "I think, therefore I am"?', ["René Descartes", "Descartes"],
                     "quiz", {"source": "philo"})
    assert b.question == "A question\nover two lines, with a comma"
    assert b.golds == ["42", "forty-two"]
    assert b.id == "quiz-2"               # stem + data row number


def test_csv_single_answer_column(tmp_path):
    p = tmp_path / "s.csv"
    p.write_text("question,answer\nCapital of Peru?,Lima\n", encoding="utf-8")
    assert load_dataset(p) == [Item("s-1", "Capital of Peru?", ["Lima"], "s", {})]


# ---------------------------------------------------------------- Router-R1 parquet

def _router_r1_row(question: str, target, source: str = "nq", index: int | None = 0) -> dict:
    content = ("Answer the given question. Reason inside <think>...</think>. Example Question: foo?\n"
               f"Question: {question}\n")
    row = {
        "data_source": source,
        "prompt": [{"role": "user", "content": content}],
        "ability": "fact-reasoning",
        "reward_model": {"style": "rule", "ground_truth": {"target": target}},
    }
    if index is not None:
        row["extra_info"] = {"split": "test", "index": index}
    return row


def test_router_r1_parquet(tmp_path):
    p = tmp_path / "test_nh.parquet"
    rows = [
        _router_r1_row("who wrote hamlet?", ["Shakespeare", "William Shakespeare"], "nq", 0),
        _router_r1_row("capital of italy?", ["Rome"], "hotpotqa", 0),    # same index, other source
    ]
    pq.write_table(pa.Table.from_pylist(rows), p)
    a, b = load_dataset(p)
    assert (a.id, a.question, a.golds, a.dataset) == ("nq-0", "who wrote hamlet?",
                                                      ["Shakespeare", "William Shakespeare"], "nq")
    assert (b.id, b.dataset) == ("hotpotqa-0", "hotpotqa")
    assert a.meta["ability"] == "fact-reasoning" and a.meta["extra_info"]["split"] == "test"
    assert load_dataset(p, fmt="router_r1", limit=1) == [a]


def test_router_r1_single_string_target_no_marker_no_index(tmp_path):
    p = tmp_path / "mini.parquet"
    row = _router_r1_row("unused", "1969", index=None)
    row["prompt"] = [{"role": "system", "content": "be brief"},
                     {"role": "user", "content": "When did Apollo 11 land?"}]
    pq.write_table(pa.Table.from_pylist([row]), p)
    [item] = load_dataset(p)
    assert (item.id, item.question, item.golds) == ("mini-1", "When did Apollo 11 land?", ["1969"])


def test_parquet_bad_target_names_row_and_field(tmp_path):
    p = tmp_path / "bad.parquet"
    rows = [_router_r1_row("ok?", ["a"], index=0), _router_r1_row("ok?", [], index=1)]
    pq.write_table(pa.Table.from_pylist(rows), p)
    msg = _error(p)
    assert "bad.parquet row 2" in msg and "reward_model.ground_truth.target" in msg


def test_parquet_not_parquet(tmp_path):
    p = tmp_path / "junk.parquet"
    p.write_bytes(b"not parquet at all")
    assert "junk.parquet" in _error(p) and "parquet" in _error(p)


# ---------------------------------------------------------------- bad files

def test_bad_json_line(tmp_path):
    good = [{"id": f"i{n}", "question": "Q", "golden_answers": ["a"]} for n in range(6)]
    p = _jsonl(tmp_path / "questions.jsonl", [*good, '{"id": "x", "question": "Q" "golden_answers": ["a"]}'])
    msg = _error(p)
    assert "questions.jsonl line 7" in msg and "not valid JSON" in msg


def test_missing_field(tmp_path):
    p = _jsonl(tmp_path / "q.jsonl", [{"id": "1", "question": "Q", "golden_answers": ["a"]},
                                      {"id": "2", "golden_answers": ["a"]}])
    msg = _error(p)
    assert "q.jsonl line 2" in msg and "'question'" in msg and "missing" in msg


def test_wrong_type_names_field(tmp_path):
    p = _jsonl(tmp_path / "questions.jsonl", [{"id": "1", "question": "Q", "golden_answers": "a"}])
    msg = _error(p)
    assert msg.endswith("questions.jsonl line 1: field 'golden_answers' must be a list of strings")
    p = _jsonl(tmp_path / "q2.jsonl", [{"id": "1", "question": "Q", "golden_answers": ["a", 3]}])
    assert "field 'golden_answers' must be a list of strings" in _error(p)
    p = _jsonl(tmp_path / "q3.jsonl", [{"id": 1.5, "question": "Q", "answer": "a"}])
    assert "q3.jsonl line 1: field 'id'" in _error(p)


@pytest.mark.parametrize("row, field", [
    ({"question": "   ", "golden_answers": ["a"]}, "'question' is empty"),
    ({"question": "Q", "golden_answers": []}, "'golden_answers' is an empty list"),
    ({"question": "Q", "golden_answers": ["a", " "]}, "'golden_answers' contains an empty answer"),
    ({"question": "Q"}, "missing field 'answer'"),
    ({"question": "Q", "answer": "a", "answers": ["b"]}, "'answer' and 'answers' are both given"),
])
def test_empty_or_missing_answers(tmp_path, row, field):
    p = _jsonl(tmp_path / "e.jsonl", [row])
    msg = _error(p)
    assert "e.jsonl line 1" in msg and field in msg


def test_not_an_object(tmp_path):
    p = _jsonl(tmp_path / "arr.jsonl", ['["a", "b"]'])
    assert "arr.jsonl line 1: expected a JSON object" in _error(p)


def test_empty_files(tmp_path):
    for name, text in [("e.jsonl", ""), ("blank.jsonl", "\n  \n"), ("e.csv", ""),
                       ("header_only.csv", "question,answer\n")]:
        p = tmp_path / name
        p.write_text(text, encoding="utf-8")
        msg = _error(p)
        assert name in msg and "empty" in msg


def test_duplicate_id(tmp_path):
    p = _jsonl(tmp_path / "dup.jsonl", [{"id": "a", "question": "Q1", "golden_answers": ["x"]},
                                        {"id": "b", "question": "Q2", "golden_answers": ["x"]},
                                        {"id": "a", "question": "Q3", "golden_answers": ["x"]}])
    msg = _error(p)
    assert "dup.jsonl line 3" in msg and "field 'id'" in msg and "duplicate id 'a'" in msg and "line 1" in msg


def test_unknown_extension_and_format(tmp_path):
    p = tmp_path / "questions.txt"
    p.write_text("{}\n", encoding="utf-8")
    msg = _error(p)
    assert "questions.txt" in msg and "unknown extension '.txt'" in msg
    p = _jsonl(tmp_path / "ok.jsonl", [{"question": "Q", "answer": "a"}])
    assert "unknown format 'hotpot'" in _error(p, fmt="hotpot")
    assert "no such file" in _error(tmp_path / "missing.jsonl")


def test_csv_errors_name_row_and_field(tmp_path):
    p = tmp_path / "c.csv"
    p.write_text("question,answer\nQ1,a\n,b\n", encoding="utf-8")
    msg = _error(p)
    assert "c.csv row 2 (line 3)" in msg and "field 'question' is empty" in msg
    p.write_text("question,answer\nQ1,a\nQ2, | \n", encoding="utf-8")
    assert "c.csv row 2" in (msg := _error(p)) and "'answer'" in msg
    p.write_text("question,answer\nQ1,a,extra\n", encoding="utf-8")
    assert "c.csv row 1" in _error(p)
    p.write_text("question,reply\nQ1,a\n", encoding="utf-8")
    assert "c.csv line 1 (header): missing column 'answer'" in _error(p)
    p.write_text("question,answer\nQ1,a\n", encoding="utf-8")
    assert "'plain' format only" in _error(p, fmt="flashrag")


def test_wrong_schema_for_explicit_format(tmp_path):
    p = _jsonl(tmp_path / "plain.jsonl", [{"question": "Q", "answer": "a"}])
    assert "plain.jsonl line 1: missing field 'golden_answers'" in _error(p, fmt="flashrag")


def test_bad_limit(tmp_path):
    p = _jsonl(tmp_path / "ok.jsonl", [{"question": "Q", "answer": "a"}])
    assert load_dataset(p, limit=0) == []
    assert "limit" in _error(p, limit=-1)


# ---------------------------------------------------------------- bundled sets

@pytest.mark.parametrize("name, prefix", [("single_hop", "sh-"), ("multi_hop", "mh-")])
def test_bundled_sets(name, prefix):
    assert bundled_datasets()[name] == QUESTIONS_DIR / f"{name}.jsonl"
    items = load_dataset(QUESTIONS_DIR / f"{name}.jsonl")
    assert len(items) >= 40
    assert len({i.id for i in items}) == len(items)
    assert len({i.question.casefold() for i in items}) == len(items)
    for item in items:
        assert item.id.startswith(prefix) and item.dataset == name
        assert item.golds and all(g.strip() for g in item.golds)
        assert exact_match(item.golds[0], item.golds) == 1.0
        assert len(item.golds[0].split()) <= 5, item   # short answers: entity, number, year
    if name == "multi_hop":
        assert {i.meta.get("type") for i in items} == {"bridge", "comparison"}


def test_bundled_means_the_evaluation_sets_not_the_tuning_set():
    """Prompts are tuned on dev.jsonl; `--dataset bundled` must never include it, and no question may be in both."""
    from ui.cli import datasets_from
    items = datasets_from(["bundled"], None)
    assert {i.dataset for i in items} == {"single_hop", "multi_hop"}
    dev = datasets_from(["dev"], None)
    assert len(dev) >= 20 and {i.dataset for i in dev} == {"dev"}
    assert not {i.question.casefold() for i in dev} & {i.question.casefold() for i in items}


# ---------------------------------------------------------------- benchmarks by name from a data folder

def _folder(tmp_path, *files):
    for f in files:
        p = tmp_path / "data" / f
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text('{"id": "x1", "question": "Who wrote Dune?", "golden_answers": ["Frank Herbert"]}\n')
    return tmp_path / "data"


def test_a_benchmark_by_name_from_a_data_folder(tmp_path, monkeypatch):
    from evaluation.datasets import DatasetError, data_folder, named_set
    folder = _folder(tmp_path, "hotpotqa/dev.jsonl", "hotpotqa/test.jsonl", "bamboogle/test.jsonl")
    assert named_set("bamboogle", folder) == ("bamboogle/test", folder / "bamboogle" / "test.jsonl")
    assert named_set("hotpotqa/dev", folder)[0] == "hotpotqa/dev"
    with pytest.raises(DatasetError, match="several splits of it \\(hotpotqa/dev, hotpotqa/test\\); name one"):
        named_set("hotpotqa", folder)
    with pytest.raises(DatasetError, match=f"no file {folder}/musique/<split>.jsonl in the data folder {folder}.*"
                                           "it holds: bamboogle/test, hotpotqa/dev, hotpotqa/test"):
        named_set("musique", folder)
    monkeypatch.setenv("ROUTER_STUDIO_DATA", str(folder))
    assert data_folder() == folder and data_folder(tmp_path) == tmp_path


def test_eval_takes_the_shipped_train_samples_by_name_and_stores_the_set_name(monkeypatch):
    from ui.cli import datasets_from
    monkeypatch.delenv("ROUTER_STUDIO_DATA", raising=False)
    items = datasets_from(["musique", "ambigqa/train"], 2)
    assert [(i.dataset, i.id) for i in items] == [("musique/train", "musique-train-80"),
                                                  ("musique/train", "musique-train-256"),
                                                  ("ambigqa/train", "ambigqa-train-40"),
                                                  ("ambigqa/train", "ambigqa-train-128")]
