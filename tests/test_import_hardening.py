"""Import and export treat their input as hostile: every finding of the hardening review has a test here.

No model runs; sessions come from the scripted engine or are written through the store API.
"""
from __future__ import annotations

import io
import json
import random

import pytest
from support.fake_engine import FakeEngine, fake_pool, fake_provider, guided_script, routes_then_answers
from support.ui_fixtures import write_session

from router_core.loop import Router
from router_core.policy import Policy
from storage import TraceStore
from storage.jsonl import EXPORT_FORMAT, LineError, parse_line


@pytest.fixture()
def store(tmp_path):
    s = TraceStore(str(tmp_path / "a.sqlite"))
    yield s
    s.close()


@pytest.fixture()
def other(tmp_path):
    s = TraceStore(str(tmp_path / "b.sqlite"))
    yield s
    s.close()


def export_lines(store: TraceStore) -> list[str]:
    buf = io.StringIO()
    store.export_jsonl(buf)
    return buf.getvalue().splitlines()


def good_line(store: TraceStore, **kw) -> dict:
    sid = write_session(store, "What is the capital of France?", gold=["Paris"], **kw)
    return next(json.loads(x) for x in export_lines(store) if json.loads(x)["session"]["id"] == sid)


# ---------------------------------------------------------------------- finding 3: import trusts its input

def deep(n: int) -> str:
    return "[" * n + "]" * n


BAD_SESSION = [
    ("alpha", 5.0, "session.alpha"),
    ("alpha", "0.5", "session.alpha"),
    ("question", 12345, "session.question"),
    ("question", "", "session.question"),
    ("gold", "Paris", "session.gold"),
    ("created_at", 1e300, "session.created_at"),
    ("status", "finished", "session.status"),
    ("cost_usd", -1, "session.cost_usd"),
    ("n_steps", 10 ** 30, "session.n_steps"),
    ("format_ok", "yes", "session.format_ok"),
    ("id", "../../etc/passwd", "session.id"),
    ("id", "x" * 65, "session.id"),
    ("pool", ["not", "a", "dict"], "session.pool"),
    ("pool", {"name": "p", "models": [{"name": "A", "api_key": "sk-123"}]}, "api_key"),
    ("pool", {"name": "p", "models": [{"base_url": "http://u:sk-secret@host/v1"}]}, "user:password@"),
    ("pool", {"name": "p", "models": [{"base_url": "http://host/v1?api_key=sk-1"}]}, "query parameter 'api_key'"),
    ("surprise", 1, "session.surprise"),
]


@pytest.mark.parametrize("field,value,needle", BAD_SESSION)
def test_bad_session_fields_are_named_and_nothing_is_written(store, other, field, value, needle):
    rec = good_line(store)
    rec["session"][field] = value
    rep = other.import_jsonl([json.dumps(rec)], source="in.jsonl")
    assert rep.imported == 0 and len(rep.errors) == 1 and rep.errors[0][0] == 1
    assert rep.errors[0][1].startswith("in.jsonl:1: ") and needle in rep.errors[0][1], rep.errors
    assert other.list_sessions().total == 0


BAD_STEP = [
    ("input_tokens", "many", "steps[1].input_tokens: must be an integer"),
    ("output_tokens", 10 ** 30, "steps[1].output_tokens"),
    ("choice", "x", "steps[1].choice: expected an object"),
    ("kind", "bogus", "steps[1].kind: 'bogus' is not one of"),
    ("cost_usd", "NaN", "steps[1].cost_usd: must be a number"),
    ("flags", {"a": 1}, "steps[1].flags: must be a list"),
    ("text", {"nested": "dict"}, "steps[1].text: must be a string"),
]


@pytest.mark.parametrize("field,value,needle", BAD_STEP)
def test_bad_steps_are_named(store, other, field, value, needle):
    rec = good_line(store)
    rec["steps"][1][field] = value
    rep = other.import_jsonl([json.dumps(rec)])
    assert rep.imported == 0 and needle in rep.errors[0][1], rep.errors


@pytest.mark.parametrize("notes,needle", [
    (["str"], "annotations[0]: must be an object"),
    ([{"label": "other", "note": {"a": 1}}], "annotations[0].note"),
    ([{"label": "nope"}], "annotation label 'nope'"),
    ([{"label": "other", "step_idx": 99}], "annotations[0].step_idx: the session has no step 99"),
    ("notalist", "annotations: must be a list"),
])
def test_bad_annotations_are_named(store, other, notes, needle):
    rec = good_line(store)
    rec["annotations"] = notes
    rep = other.import_jsonl([json.dumps(rec)])
    assert rep.imported == 0 and needle in rep.errors[0][1], rep.errors


@pytest.mark.parametrize("raw,needle", [
    (deep(100_000).encode(), "nested more than"),
    (b'{"format": "router-r1-studio/session@1", "session": {"created_at": Infinity}}', "Infinity is not valid JSON"),
    (b"\xff\xfe not utf-8 \xc3\x28", "not valid UTF-8"),
    (b"{\"a\": \"\x00\"}", "NUL"),
    (b"[1, 2, 3]", "not a session record"),
])
def test_malformed_lines_are_reported_and_the_rest_imports(store, other, raw, needle):
    good = json.dumps(good_line(store)).encode()
    rep = other.import_jsonl([raw, good])
    assert rep.imported == 1 and [n for n, _ in rep.errors] == [1] and needle in rep.errors[0][1], rep.errors


def test_import_of_a_binary_file_with_invalid_utf8_goes_on(store, tmp_path, other):
    good = json.dumps(good_line(store)).encode()
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b"\xff\xff\xff\n" + good + b"\n" + b'{"half": \n')
    with open(path, "rb") as f:
        rep = other.import_jsonl(f, source=str(path))
    assert rep.imported == 1 and [n for n, _ in rep.errors] == [1, 3]


def test_duplicate_ids_same_content_skipped_different_content_refused_unless_replace(store, other):
    rec = good_line(store)
    assert other.import_jsonl([json.dumps(rec)]).imported == 1
    rep = other.import_jsonl([json.dumps(rec)])
    assert (rep.imported, rep.skipped, rep.conflicts, rep.bad) == (0, 1, 0, 0)
    changed = json.loads(json.dumps(rec))
    changed["session"]["answer"] = "Lyon"
    rep = other.import_jsonl([json.dumps(changed)])
    assert (rep.imported, rep.skipped, rep.conflicts) == (0, 0, 1) and "different content" in rep.conflicting[0][1]
    assert other.get_session(rec["session"]["id"])["answer"] == "Paris"
    rep = other.import_jsonl([json.dumps(changed)], replace=True)
    assert rep.replaced == 1 and other.get_session(rec["session"]["id"])["answer"] == "Lyon"
    assert "imported 0, replaced 1, already present 0, conflicting 0" in rep.summary()


def test_infinity_in_an_old_store_does_not_break_listing_or_export(store):
    sid = write_session(store, "Old row?")
    with store.engine.connect() as c:  # as a store written before import validated its input could hold
        c.exec_driver_sql("UPDATE sessions SET created_at = 9e999, cost_usd = 9e999 WHERE id = ?", (sid,))  # = inf
        c.commit()
    from ui.explorer import make_filter, page
    tbl, ids, info = page(store, make_filter(), "newest", 0)
    assert sid in ids and "?" in list(tbl["when"])
    lines = export_lines(store)
    rec = json.loads(lines[0])  # strict JSON: json.loads would accept Infinity, so check the text too
    assert "Infinity" not in lines[0] and rec["session"]["created_at"] is None


# ---------------------------------------------------------------------- finding 4: export → import is lossless

def test_a_session_whose_router_fails_first_reimports(store, other):
    from storage.recorder import recorded
    pol = Policy(name="fake", engine="llamacpp", model="fake:policy")
    r = Router(pol, fake_pool(), engines=fake_provider(FakeEngine(fail="decode failed")))
    sid = "fails-at-once"
    steps = list(recorded(store, r.run("q", 0.0, session_id=sid), session_id=sid, question="q", alpha=0.0,
                          policy="fake", engine="llamacpp", pool=fake_pool().snapshot()))
    assert [s.index for s in steps] == [0]
    ok = FakeEngine(guided_script(["t"], ["sub?"], "A"), scores=routes_then_answers(1, {"Big": -0.1}))
    r2 = Router(pol, fake_pool(), engines=fake_provider(ok))
    for _ in recorded(store, r2.run("q2", 0.5, session_id="fine"), session_id="fine", question="q2", alpha=0.5,
                      policy="fake", engine="llamacpp", pool=fake_pool().snapshot()):
        pass
    rep = other.import_jsonl(export_lines(store))
    assert (rep.imported, rep.bad) == (2, 0), rep.errors
    for s in (sid, "fine"):
        assert [x.to_dict() for x in other.load_steps(s)] == [x.to_dict() for x in store.load_steps(s)]
        assert other.get_session(s) == store.get_session(s)


# ---------------------------------------------------------------------- the fuzz test

def _mutations(rec: dict, rng: random.Random) -> dict:
    """One random damage to a valid export record: a type, a range, a nesting or a structure."""
    r = json.loads(json.dumps(rec))
    where = rng.choice(["session", "step", "choice", "annotation", "top"])
    junk = rng.choice([None, "", "x" * 5, -1, 10 ** 30, 1e308, True, [], {}, [1, [2, [3]]], {"a": {"b": {}}},
                       "‹information›", "\u0000", -0.0, 3.5])
    if where == "session":
        r["session"][rng.choice(list(r["session"]))] = junk
    elif where == "step" and r["steps"]:
        s = rng.choice(r["steps"])
        s[rng.choice(list(s))] = junk
    elif where == "choice":
        ch = next((s["choice"] for s in r["steps"] if s.get("choice")), None)
        if ch:
            ch[rng.choice(list(ch))] = junk
    elif where == "annotation":
        r["annotations"] = [{"label": rng.choice(["other", "nope", junk]), "step_idx": junk, "note": junk}]
    else:
        r[rng.choice(["session", "steps", "annotations", "format"])] = junk
    return r


def test_fuzzed_export_lines_leave_exactly_the_good_sessions_and_never_raise(store, other):
    for i in range(4):
        write_session(store, f"Question {i}?", gold=["Paris"], alpha=i / 4)
    store.annotate(store.list_sessions().ids[0], "other", "a note", 1)
    valid = [json.loads(x) for x in export_lines(store)]
    rng = random.Random(1234)
    lines: list[bytes] = []
    expect_good: set[str] = set()
    for n in range(400):
        base = valid[n % len(valid)]
        rec = _mutations(base, rng)
        rec["session"] = rec["session"] if isinstance(rec.get("session"), dict) else rec.get("session")
        if isinstance(rec.get("session"), dict) and isinstance(rec["session"].get("id"), str):
            rec["session"]["id"] = f"fz-{n}"  # a distinct id per line, so every good line imports
        raw = json.dumps(rec, allow_nan=True).encode()
        kind = rng.random()
        if kind < 0.05:
            raw = raw[: rng.randrange(1, len(raw))]  # truncated
        elif kind < 0.08:
            raw = raw.replace(b'"', b"\xff", 1)       # invalid UTF-8
        lines.append(raw)
        try:
            p = parse_line(raw)
            expect_good.add(p.session["id"])
        except LineError:
            pass
    rep = other.import_jsonl(lines, source="fuzz.jsonl")  # must not raise
    stored = set(other.list_sessions(page_size=1000).ids)
    assert stored == expect_good and rep.imported == len(expect_good)
    assert rep.imported + rep.bad == len(lines) and 30 < len(expect_good) < 370
    for sid in stored:  # every stored session is whole: its steps are numbered 0..n-1
        sess, steps, _ = other.load_session(sid)
        assert [s.index for s in steps] == list(range(len(steps))) == list(range(sess["n_steps"]))
    # and a second run imports nothing new
    rep2 = other.import_jsonl(lines)
    assert rep2.imported == 0 and rep2.skipped == len(expect_good)


def test_export_is_strict_json_with_the_format_tag(store):
    write_session(store, "Q?")
    line = export_lines(store)[0]
    json.loads(line, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))
    assert json.loads(line)["format"] == EXPORT_FORMAT
