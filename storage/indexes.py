"""The store's two lookup structures kept at write time, and the query conditions that use them.

* Text index (SQLite only): a trigram FTS5 table over question and answer. A session enters it
  when it leaves `running` (its answer is final then) and keeps its index rowid in
  `sessions.text_rowid`, so a search matches sessions by integer and a delete finds its entry.
* Model bits: one bit of `sessions.models_mask` per candidate model, so "sessions that called
  model X" is a bit test on the list index instead of a join.
Pool snapshots are stored once per distinct content (sessions refer to them by hash).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    Text,
    bindparam,
    cast,
    column,
    exists,
    false,
    func,
    insert,
    literal,
    literal_column,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from .connection import StoreError
from .migrations import FTS_TABLE, MAX_MODEL_BITS, pool_hash
from .models import ModelBitRow, ModelUsageRow, PoolRow, SessionRow

# A text filter matching at least this many sessions is "common": pages come from its newest this-many matches
# (which hold the first hundred pages) and its count from the text index, capped; fewer are all fetched.
DENSE_TEXT = 5_000
SPARSE_TEXT = 1_000  # below this many matches, a text filter starts from the matching sessions' ids
# A literal, not a bound parameter, so that SQLite can use the partial index ix_sessions_running.
IS_RUNNING = SessionRow.status == literal_column("'running'")


# ---------------------------------------------------------------------- pool snapshots

def put_pool(conn: Connection, snapshot: dict[str, Any]) -> str:
    """Store a pool snapshot once; returns its hash."""
    h = pool_hash(snapshot)
    if conn.execute(select(PoolRow.hash).where(PoolRow.hash == h)).first() is None:
        try:
            with conn.begin_nested():
                conn.execute(insert(PoolRow).values(hash=h, name=str(snapshot.get("name", "")), snapshot=snapshot))
        except SQLAlchemyError:
            pass  # another writer stored the same snapshot first
    return h


# ---------------------------------------------------------------------- text index

def index_text(conn: Connection, session_ids: list[str]) -> None:
    """Add sessions that just left `running` to the text index (their answer is final now).

    Callers index a session exactly once, on that transition (or after unindex_text), so no
    delete is needed here. Writers are serialized (BEGIN IMMEDIATE), so the rows above the
    previous largest rowid are exactly the ones inserted here.
    """
    if not session_ids:
        return
    last = conn.execute(text(f"SELECT rowid FROM {FTS_TABLE} ORDER BY rowid DESC LIMIT 1")).scalar() or 0
    conn.execute(text(f"INSERT INTO {FTS_TABLE} (id, question, answer) SELECT id, question, "
                      "coalesce(answer, '') FROM sessions WHERE id = :id"), [{"id": i} for i in session_ids])
    added = conn.execute(text(f"SELECT rowid, id FROM {FTS_TABLE} WHERE rowid > :last"), {"last": last}).all()
    if added:
        conn.execute(update(SessionRow).where(SessionRow.id == bindparam("sid"))
                     .values(text_rowid=bindparam("rid")), [{"sid": i, "rid": r} for r, i in added])


def unindex_text(conn: Connection, session_id: str) -> None:
    conn.execute(text(f"DELETE FROM {FTS_TABLE} WHERE rowid = "
                      "(SELECT text_rowid FROM sessions WHERE id = :id)"), {"id": session_id})
    conn.execute(update(SessionRow).where(SessionRow.id == session_id).values(text_rowid=None))


def _phrase(needle: str) -> str:
    return '"' + needle.replace('"', '""') + '"'


def like(needle: str, is_sqlite: bool) -> ColumnElement[bool]:
    """`needle` anywhere in question or answer, ignoring case, wildcards taken literally."""
    S = SessionRow
    pattern = "%" + needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    if is_sqlite:  # SQLite's LIKE already ignores (ASCII) case, as its lower() does: skip ilike's lower()
        return or_(S.question.like(pattern, escape="\\"), func.coalesce(S.answer, "").like(pattern, escape="\\"))
    # '' written out, so the expression is the one the trigram index is built on (migrations.create_trigram_indexes)
    answer = func.coalesce(S.answer, literal_column("''"))
    return or_(S.question.ilike(pattern, escape="\\"), answer.ilike(pattern, escape="\\"))


@dataclass
class TextMatch:
    """A text filter: its condition, and the keys of what it matches when the text index could say.

    `ids` (a few matches: their session ids) or `rowids` (more: their text-index rowids, looked up through
    ix_sessions_text_rowid) let a page start from the matching sessions instead of walking the list index. For a
    common word (DENSE_TEXT matches or more) `rowids` are only its newest DENSE_TEXT matches (`common`): they hold
    the first pages newest first, and `count` counts all matches in the index, up to a cap."""

    cond: ColumnElement[bool]
    ids: list[str] | None = None
    rowids: list[int] | None = None
    running: list[str] = field(default_factory=list)  # running sessions that match (not in the index yet)
    common: bool = False
    count: Callable[[int], int] | None = None


def gold_like(needle: str, is_sqlite: bool) -> ColumnElement[bool]:
    """`needle` in one of the gold answers, ignoring case: a LIKE over the JSON text of the list (the needle written
    as JSON writes it, so a quote in it matches a quote in a gold answer)."""
    escaped = json.dumps(needle)[1:-1]  # as the JSON column stores it (ASCII, \uXXXX beyond)
    pattern = "%" + escaped.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    col = cast(SessionRow.gold, Text)
    return col.like(pattern, escape="\\") if is_sqlite else col.ilike(pattern, escape="\\")


def text_cond(conn: Connection, needle: str, *, is_sqlite: bool, has_index: bool) -> TextMatch:
    """Substring search in question and answer: trigram FTS5 on SQLite, ILIKE elsewhere.

    The index is asked once, here, and its answer bound into the query, by how many match:
      * fewer than SPARSE_TEXT: their session ids, so the query starts from those rows;
      * fewer than DENSE_TEXT: their index rowids, which reach their sessions through ix_sessions_text_rowid;
      * more: LIKE for an exact answer; beside it, the newest DENSE_TEXT matches, which hold the first pages in
        newest-first order whether the matches are spread out or bunched in the past (a walk down the list index
        with LIKE would read every newer session first); counted in the index (bench/store.py).
    Running sessions are not in the index yet; they are few and searched with LIKE.
    """
    S = SessionRow
    cond = like(needle, is_sqlite)
    if not (has_index and len(needle) >= 3):
        return TextMatch(cond)
    match = {"q": _phrase(needle)}
    rowids = conn.execute(text(f"SELECT rowid FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH :q ORDER BY rowid DESC "
                               "LIMIT :n"), {**match, "n": DENSE_TEXT}).scalars().all()
    running = list(conn.execute(select(S.id).where(IS_RUNNING, cond)).scalars().all())
    if len(rowids) >= DENSE_TEXT:
        def count(cap: int) -> int:
            found = conn.execute(text(f"SELECT count(*) FROM (SELECT 1 FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH :q "
                                      "LIMIT :n)"), {**match, "n": cap}).scalar_one()
            return min(cap, int(found) + len(running))
        return TextMatch(cond, rowids=list(rowids), running=running, common=True, count=count)
    if len(rowids) >= SPARSE_TEXT:  # ix_sessions_text_rowid makes a count of these cost what they number
        rows = in_json(S.text_rowid, rowids)
        return TextMatch(or_(rows, in_json(S.id, running)) if running else rows, rowids=list(rowids),
                         running=running)
    ids = [*conn.execute(text(f"SELECT id FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH :q"), match).scalars(), *running]
    return TextMatch(in_json(S.id, ids), ids=ids)


def in_json(col: Any, values: list[Any]) -> ColumnElement[bool]:
    """`col IN values` on SQLite, bound as one JSON parameter rather than one variable per value."""
    if not values:
        return false()
    return col.in_(select(column("value")).select_from(func.json_each(json.dumps(values))))


# ---------------------------------------------------------------------- model bits

def models_mask(conn: Connection, models: Iterable[str], where: str = "the store") -> int:
    """sessions.models_mask bits for these models, giving a bit to each model not seen before.

    A model's bit never changes once given. Past MAX_MODEL_BITS models a new one gets no
    bit (NULL) and filters on it use session_models instead.
    """
    names = set(models)
    B = ModelBitRow
    known: dict[str, int | None] = dict(conn.execute(select(B.model, B.bit).where(B.model.in_(names))).all()) \
        if names else {}
    for name in sorted(names - known.keys()):
        for _ in range(5):  # another writer (PostgreSQL) may take the same bit or model first
            top = conn.execute(select(func.max(B.bit))).scalar()
            bit = 0 if top is None else top + 1
            try:
                with conn.begin_nested():
                    conn.execute(insert(B).values(model=name, bit=bit if bit < MAX_MODEL_BITS else None))
                known[name] = bit if bit < MAX_MODEL_BITS else None
                break
            except IntegrityError:
                got = conn.execute(select(B.bit).where(B.model == name)).first()
                if got is not None:
                    known[name] = got[0]
                    break
        else:
            raise StoreError(f"{where}: could not register model '{name}' in model_bits")
    return sum(1 << b for b in known.values() if b is not None)


def model_cond(conn: Connection, model: str) -> ColumnElement[bool]:
    """A bit test on sessions.models_mask: no join, and evaluated on the list index alone."""
    bit = conn.execute(select(ModelBitRow.bit).where(ModelBitRow.model == model)).scalar()
    if bit is None:  # no bit (past the 63rd model, or never called): ask session_models
        return exists().where(ModelUsageRow.session_id == SessionRow.id, ModelUsageRow.model == model)
    return SessionRow.models_mask.op("&")(literal(1 << bit, BigInteger)) != 0
