"""The example sessions a presenter loads before any model is ready (assets/examples/sessions.jsonl).

They are real sessions recorded by scripts/record_examples.py; the file's first line says so. Loading
them twice imports them once, and each one replays as a decomposition (route steps and an answer).
"""
from __future__ import annotations

import json

from router_core.paths import EXAMPLES_FILE
from router_core.pool import load_pool
from storage import TraceStore
from ui.explorer import load_examples


def test_the_shipped_examples_name_their_maker_and_load_once(tmp_path):
    header = json.loads(EXAMPLES_FILE.read_text(encoding="utf-8").splitlines()[0])
    assert header["made_by"] == "scripts/record_examples.py" and "record_examples.py" in header["command"]
    with TraceStore(str(tmp_path / "ex.sqlite")) as store:
        first = load_examples(store)
        assert f"imported {header['sessions']}," in first and "bad lines 0" in first
        again = load_examples(store)
        assert "imported 0," in again and f"already present {header['sessions']}" in again
        ids = store.list_sessions(page_size=100).ids
        assert len(ids) == header["sessions"]
        names = {m.name for m in load_pool().models}
        alphas = set()
        for sid in ids:
            sess, steps, _ = store.load_session(sid)
            alphas.add(sess["alpha"])
            routes = [s for s in steps if s.kind == "route" and s.status == "ok"]
            assert sess["status"] == "done" and steps[-1].kind == "answer" and steps[-1].text
            assert routes and all(s.request_model in names and s.response for s in routes)
        assert len(alphas) >= 2  # one question is shown at several α
