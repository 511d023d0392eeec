"""`app.py serve-api` on the real shipped models: the official openai client asks one question, plain and
streamed, and each call is a stored session the Explorer can open (test_api.py covers the protocol on the
scripted engine). The server listens on 127.0.0.1 and is stopped by the test."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from support.servers import child_server, free_port

from storage import SessionFilter, TraceStore

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.model


@pytest.fixture
def server(tmp_path):
    port, db = free_port(), tmp_path / "api.sqlite"
    cmd = [sys.executable, str(ROOT / "app.py"), "serve-api", "--port", str(port), "--db", str(db), "--max-turns", "1"]
    base = f"http://127.0.0.1:{port}"
    with child_server(cmd, f"{base}/health", tmp_path / "serve-api.log", cwd=tmp_path,
                      env={**os.environ, "PYTHONUNBUFFERED": "1"}):
        yield base, db


def test_the_openai_client_gets_answers_from_the_shipped_models_and_each_call_is_stored(server):
    from openai import OpenAI
    base, db = server
    client = OpenAI(base_url=f"{base}/v1", api_key="unused", timeout=600, max_retries=0)
    ids = [m.id for m in client.models.list().data]
    assert any(i.startswith("router:") for i in ids)
    raw = client.chat.completions.with_raw_response.create(
        model="router:default:0", messages=[{"role": "user", "content": "What is the capital of France?"}])
    reply, sid = raw.parse(), raw.headers["x-router-session-id"]
    assert "Paris" in reply.choices[0].message.content and reply.usage.total_tokens > 0
    stream = client.chat.completions.create(model="router:default:1", stream=True,
                                            messages=[{"role": "user", "content": "What is the capital of Italy?"}])
    streamed = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert streamed.strip()
    with TraceStore(str(db)) as store:
        rows = store.list_sessions(SessionFilter(status="done"), page_size=10).rows
        assert sid in set(rows["id"]) and len(rows) == 2
        steps = store.load_steps(sid)
        assert any(s.kind == "route" and s.status == "ok" for s in steps) and steps[-1].text == \
            reply.choices[0].message.content
        assert sorted(rows["alpha"]) == [0.0, 1.0]
