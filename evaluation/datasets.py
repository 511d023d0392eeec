"""Question sets for evaluation: load FlashRAG, Router-R1 and plain files into `Item`s.

One record type for every source, so that a runner can score any router on any set
with `metrics.exact_match(prediction, item.golds)`. Errors are `DatasetError`s whose
message names the file, the line (JSON lines) or row (CSV, parquet) and the field,
e.g. `questions.jsonl line 7: field 'golden_answers' must be a list of strings`,
because a set is usually fixed by hand in an editor after a failed load.

Containers are chosen by extension (.jsonl/.ndjson, .csv, .parquet); the record
layout ("schema") by `fmt`, or from the fields when `fmt="auto"`:

* ``flashrag``  -- ``id``, ``question``, ``golden_answers`` (list of str)
* ``router_r1`` -- ``prompt`` (chat messages; the question follows the last
  ``Question:`` of the user content), ``data_source``, ``reward_model.ground_truth.target``
  (list or str), optional ``extra_info.index``
* ``plain``     -- ``question`` with ``answer`` (str) or ``answers`` (list of str); in
  CSV both are text with aliases separated by ``|``; optional ``id``
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from router_core.paths import QUESTIONS as QUESTIONS_DIR

FORMATS = ("auto", "flashrag", "router_r1", "plain")
_EXTENSIONS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".parquet": "parquet"}
_QUESTION_MARK = "Question:"
_CSV_SEP = "|"


class DatasetError(ValueError):
    """A question file that cannot be used; the message names the file, line/row and field."""


@dataclass(frozen=True)
class Item:
    """One question with every accepted gold answer (aliases), ready to score."""

    id: str
    question: str
    golds: list[str]
    dataset: str
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _Record:
    """A raw record and where it came from, so every error can point at it."""

    data: Mapping[str, Any]
    where: str      # "file line 7" / "file row 3"
    number: int     # line or row number, used for generated ids
    stem: str       # file stem, the prefix of generated ids
    error: str = "" # a line that is not a JSON object (read leniently: reported and skipped, not raised)


def _fail(where: str, msg: str) -> DatasetError:
    return DatasetError(f"{where}: {msg}")


# ---------------------------------------------------------------- field checks

def _text(rec: _Record, key: str, value: Any) -> str:
    if not isinstance(value, str):
        raise _fail(rec.where, f"field '{key}' must be a string, got {type(value).__name__}")
    if not value.strip():
        raise _fail(rec.where, f"field '{key}' is empty")
    return value.strip()


def _answer_list(rec: _Record, key: str, value: Any) -> list[str]:
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise _fail(rec.where, f"field '{key}' must be a list of strings")
    golds = [v.strip() for v in value]
    if not golds:
        raise _fail(rec.where, f"field '{key}' is an empty list (at least one answer is needed)")
    if not all(golds):
        raise _fail(rec.where, f"field '{key}' contains an empty answer")
    return golds


def _required(rec: _Record, key: str) -> Any:
    if key not in rec.data or rec.data[key] is None:
        raise _fail(rec.where, f"missing field '{key}'")
    return rec.data[key]


def _given_id(rec: _Record) -> str | None:
    """The record's own id (str or int), or None when it has none."""
    value = rec.data.get("id")
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise _fail(rec.where, f"field 'id' must be a string or an integer, got {type(value).__name__}")
    return str(value).strip()


def _extra(rec: _Record, used: set[str]) -> dict[str, Any]:
    return {k: v for k, v in rec.data.items() if k not in used and k is not None}


# ---------------------------------------------------------------- schemas
# Each returns (id or None, question, golds, dataset or None, meta).

_Parsed = tuple[str | None, str, list[str], str | None, dict[str, Any]]


def _parse_flashrag(rec: _Record) -> _Parsed:
    question = _text(rec, "question", _required(rec, "question"))
    golds = _answer_list(rec, "golden_answers", _required(rec, "golden_answers"))
    return _given_id(rec), question, golds, None, _extra(rec, {"id", "question", "golden_answers"})


def _parse_plain(rec: _Record, split_text: bool = False) -> _Parsed:
    """`answer`/`answers`; in CSV (`split_text`) either is text with `|` between aliases."""
    question = _text(rec, "question", _required(rec, "question"))
    present = [k for k in ("answer", "answers") if rec.data.get(k) is not None]
    if not present:
        raise _fail(rec.where, "missing field 'answer' (or 'answers')")
    if len(present) == 2:
        raise _fail(rec.where, "fields 'answer' and 'answers' are both given; use one")
    key = present[0]
    value = rec.data[key]
    if split_text:
        golds = [g.strip() for g in _text(rec, key, value).split(_CSV_SEP) if g.strip()]
        if not golds:
            raise _fail(rec.where, f"field '{key}' has no answer between the '{_CSV_SEP}' separators")
    elif key == "answer":
        golds = [_text(rec, key, value)]
    else:
        golds = _answer_list(rec, key, value)
    return _given_id(rec), question, golds, None, _extra(rec, {"id", "question", "answer", "answers"})


def _user_content(rec: _Record, prompt: Any) -> str:
    """The last user message of a chat prompt (a bare string is taken as the content)."""
    if isinstance(prompt, str):
        return prompt
    if not isinstance(prompt, (list, tuple)):
        raise _fail(rec.where, f"field 'prompt' must be a list of chat messages, got {type(prompt).__name__}")
    contents = [m.get("content") for m in prompt if isinstance(m, Mapping) and m.get("role") == "user"]
    if not contents or not isinstance(contents[-1], str):
        raise _fail(rec.where, "field 'prompt' has no user message with text content")
    return contents[-1]


def _router_r1_golds(rec: _Record) -> list[str]:
    reward = _required(rec, "reward_model")
    if not isinstance(reward, Mapping) or reward.get("ground_truth") is None:
        raise _fail(rec.where, "field 'reward_model.ground_truth' is missing")
    truth = reward["ground_truth"]
    # Router-R1 writes {"target": [...]}; a bare list/str is accepted as the target itself.
    target = truth.get("target") if isinstance(truth, Mapping) else truth
    if target is None:
        raise _fail(rec.where, "field 'reward_model.ground_truth.target' is missing")
    key = "reward_model.ground_truth.target"
    return [_text(rec, key, target)] if isinstance(target, str) else _answer_list(rec, key, target)


def _parse_router_r1(rec: _Record) -> _Parsed:
    content = _user_content(rec, _required(rec, "prompt"))
    question = content.rsplit(_QUESTION_MARK, 1)[-1].strip()
    if not question:
        raise _fail(rec.where, f"field 'prompt': no question text after '{_QUESTION_MARK}'")
    golds = _router_r1_golds(rec)
    source = rec.data.get("data_source")
    if source is not None and (not isinstance(source, str) or not source.strip()):
        raise _fail(rec.where, "field 'data_source' must be a non-empty string")
    info = rec.data.get("extra_info")
    index = info.get("index") if isinstance(info, Mapping) else None
    source = source.strip() if source else None
    # Router-R1 numbers items per source, so merged files need the source in the id.
    given = f"{source or rec.stem}-{index}" if index is not None else None
    meta = _extra(rec, {"prompt", "reward_model", "data_source"})
    return given, question, golds, source, meta


_SCHEMAS: dict[str, Callable[[_Record], _Parsed]] = {
    "flashrag": _parse_flashrag,
    "plain": _parse_plain,
    "router_r1": _parse_router_r1,
}


def _detect(first: _Record) -> str:
    """Pick the schema from the fields of the first record."""
    keys = set(first.data)
    if "golden_answers" in keys:
        return "flashrag"
    if "prompt" in keys or "reward_model" in keys:
        return "router_r1"
    return "plain"


# ---------------------------------------------------------------- containers

def _read_jsonl(path: Path, name: str, lenient: bool = False) -> Iterator[_Record]:
    try:
        with path.open(encoding="utf-8-sig") as fh:
            for n, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                where = f"{name} line {n}"
                try:
                    data = json.loads(line)
                except json.JSONDecodeError as e:
                    if not lenient:
                        raise _fail(where, f"not valid JSON ({e.msg} at column {e.colno})") from None
                    yield _Record({}, where, n, path.stem, f"not valid JSON ({e.msg} at column {e.colno})")
                    continue
                if not isinstance(data, dict):
                    if not lenient:
                        raise _fail(where, f"expected a JSON object, got {type(data).__name__}")
                    yield _Record({}, where, n, path.stem, f"expected a JSON object, got {type(data).__name__}")
                    continue
                yield _Record(data, where, n, path.stem)
    except UnicodeDecodeError as e:
        raise DatasetError(f"{name}: not UTF-8 text ({e.reason} at byte {e.start})") from None


def _check_csv_header(header: list[str], name: str) -> None:
    """CSV holds the plain schema only: a `question` column and one answer column."""
    where = f"{name} line 1 (header)"
    if "question" not in header:
        raise _fail(where, f"missing column 'question' (columns: {', '.join(header)})")
    answer_cols = [c for c in ("answer", "answers") if c in header]
    if not answer_cols:
        raise _fail(where, f"missing column 'answer' (or 'answers') (columns: {', '.join(header)})")
    if len(answer_cols) == 2:
        raise _fail(where, "columns 'answer' and 'answers' are both present; use one")


def _read_csv(path: Path, name: str) -> Iterator[_Record]:
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            reader = csv.DictReader(fh)
            try:
                header = reader.fieldnames
                if not header:
                    return
                _check_csv_header(list(header), name)
                prev_line = reader.line_num
                for row_no, row in enumerate(reader, 1):
                    # A quoted field may span lines, so the row starts after the previous one ends.
                    where = f"{name} row {row_no} (line {prev_line + 1})"
                    prev_line = reader.line_num
                    if None in row:
                        raise _fail(where, f"more fields than the {len(header)} header columns")
                    short = [k for k, v in row.items() if v is None]
                    if short:
                        raise _fail(where, f"fewer fields than the header: no value for field '{short[0]}'")
                    yield _Record(row, where, row_no, path.stem)
            except csv.Error as e:
                raise _fail(f"{name} line {reader.line_num}", f"not valid CSV ({e})") from None
    except UnicodeDecodeError as e:
        raise DatasetError(f"{name}: not UTF-8 text ({e.reason} at byte {e.start})") from None


def _read_parquet(path: Path, name: str) -> Iterator[_Record]:
    try:
        import pyarrow.parquet as pq
    except ImportError:  # pragma: no cover - pyarrow is pinned in requirements.txt
        raise DatasetError(f"{name}: reading parquet needs pyarrow (pip install pyarrow)") from None
    try:
        pfile = pq.ParquetFile(path)
        batches = pfile.iter_batches(batch_size=1024)
        row_no = 0
        for batch in batches:
            for data in batch.to_pylist():
                row_no += 1
                yield _Record(data, f"{name} row {row_no}", row_no, path.stem)
    except (OSError, ValueError) as e:  # pyarrow's ArrowInvalid is a ValueError
        raise DatasetError(f"{name}: not a readable parquet file ({e})") from None


_READERS: dict[str, Callable[..., Iterator[_Record]]] = {
    "jsonl": _read_jsonl,
    "csv": _read_csv,
    "parquet": _read_parquet,
}


# ---------------------------------------------------------------- public API

def _container(path: Path) -> str:
    kind = _EXTENSIONS.get(path.suffix.lower())
    if kind is None:
        known = ", ".join(sorted(_EXTENSIONS))
        raise DatasetError(f"{path}: unknown extension '{path.suffix or '(none)'}' (expected one of {known})")
    return kind


def _schema_for(container: str, fmt: str, label: str) -> str | None:
    """The schema to parse with, or None to detect it from the first record."""
    if container == "csv":
        if fmt not in ("auto", "plain"):
            raise DatasetError(f"{label}: CSV files hold the 'plain' format only, not '{fmt}'")
        return "plain"
    return None if fmt == "auto" else fmt


def _make_item(rec: _Record, schema: str, container: str, name: str | None) -> Item:
    if schema == "plain":
        parsed = _parse_plain(rec, split_text=container == "csv")
    else:
        parsed = _SCHEMAS[schema](rec)
    given, question, golds, source, meta = parsed
    return Item(id=given or f"{rec.stem}-{rec.number}", question=question, golds=golds,
                dataset=name or source or rec.stem, meta=meta)


def load_dataset(path: str | Path, fmt: str = "auto", limit: int | None = None,
                 name: str | None = None, on_bad: Callable[[str], None] | None = None) -> list[Item]:
    """Load a question set into `Item`s, validating every record read.

    With `on_bad`, a bad record is reported to it (its message names the file and line or row) and skipped
    instead of ending the load: for long public files where one broken line should not cost the rest.

    `fmt` is one of FORMATS ("auto" detects the schema from the first record's fields);
    the container always follows the extension. `limit` stops after that many items
    (records after it are not read, so not checked either). `name` overrides the
    dataset name, which is otherwise the Router-R1 `data_source` or the file stem.
    Records without an id get `<stem>-<line or row number>`, stable across loads.
    """
    p = Path(path)
    if fmt not in FORMATS:
        raise DatasetError(f"{p}: unknown format '{fmt}' (expected one of {', '.join(FORMATS)})")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise DatasetError(f"{p}: limit must be a non-negative integer or None, got {limit!r}")
    container = _container(p)
    if not p.is_file():
        raise DatasetError(f"{p}: no such file")
    label = str(p)
    schema = _schema_for(container, fmt, label)
    items: list[Item] = []
    first_seen: dict[str, str] = {}
    any_record = False
    reader = _READERS[container]
    records = reader(p, label, True) if on_bad is not None and container == "jsonl" else reader(p, label)
    for rec in records:
        any_record = True
        if limit is not None and len(items) >= limit:
            break
        try:
            if rec.error:
                raise _fail(rec.where, rec.error)
            schema = schema or _detect(rec)
            item = _make_item(rec, schema, container, name)
            if item.id in first_seen:
                raise _fail(rec.where, f"field 'id': duplicate id '{item.id}' (first used at {first_seen[item.id]})")
        except DatasetError as e:
            if on_bad is None:
                raise
            on_bad(str(e))
            continue
        first_seen[item.id] = rec.where.removeprefix(label + " ")
        items.append(item)
    if not any_record:
        raise DatasetError(f"{label}: empty file (no records)")
    return items


# The evaluation sets that `--dataset bundled` means. assets/questions/dev.jsonl is the tuning set that
# prompt and rollout changes are compared on (bench/router_ab.py), kept apart so they are never tuned on
# the questions the reported figures come from.
EVALUATION_SETS = ("single_hop", "multi_hop")


def bundled_datasets() -> dict[str, Path]:
    """The question sets shipped in assets/questions, by name (file stem): the evaluation sets and `dev`."""
    return {p.stem: p for p in sorted(QUESTIONS_DIR.glob("*.jsonl"))}


# ---------------------------------------------------------------- a data folder of public benchmarks

DATA_ENV = "ROUTER_STUDIO_DATA"
PUBLIC_SAMPLES = QUESTIONS_DIR / "public"   # the default data folder: small train samples (see its README)
SPLIT_SUFFIXES = (".jsonl", ".parquet")


def data_folder(given: str | Path | None = None) -> Path:
    """The data folder: the one given (--data-dir), else $ROUTER_STUDIO_DATA, else the shipped public samples."""
    import os
    return Path(given or os.environ.get(DATA_ENV) or PUBLIC_SAMPLES)


def folder_sets(folder: Path) -> dict[str, Path]:
    """`name/split` → file for every FlashRAG-layout file in the folder (`<folder>/<name>/<split>.jsonl`)."""
    if not folder.is_dir():
        return {}
    return {f"{f.parent.name}/{f.stem}": f for f in sorted(folder.glob("*/*"))
            if f.suffix in SPLIT_SUFFIXES and f.is_file()}


def named_set(name: str, folder: Path) -> tuple[str, Path]:
    """A benchmark by name from the data folder: `musique/dev` names a split; `musique` alone is its only split.
    DatasetError names the folder, and what it holds, when the set or split is not there."""
    sets = folder_sets(folder)
    if name in sets:
        return name, sets[name]
    splits = [k for k in sets if k.split("/", 1)[0] == name]
    if len(splits) == 1:
        return splits[0], sets[splits[0]]
    where = f"data folder {folder} (--data-dir or ${DATA_ENV})"
    if splits:
        raise DatasetError(f"--dataset {name}: {where} has several splits of it ({', '.join(splits)}); name one, "
                           f"e.g. --dataset {splits[0]} (tune on train/dev; test splits are for reporting)")
    held = ", ".join(sets) or "no <name>/<split>.jsonl files"
    raise DatasetError(f"--dataset {name}: no file {folder / name}/<split>.jsonl in the {where}; it holds: {held}")
