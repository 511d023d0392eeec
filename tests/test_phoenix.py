"""Traces arrive in a real Arize Phoenix: a session sent over OTLP/HTTP is read back through Phoenix's REST API
with the right span kinds, models, token counts and costs.

Phoenix runs from its own environment (.venv-phoenix, built by `scripts/setup.sh --tests`; it pulls
SQLAlchemy, pandas, grpcio and more, so it is kept out of .venv), offline, on 127.0.0.1 ports of its
own, with its data in a temporary folder; the test stops it.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import httpx
import pytest
from support.fake_engine import FakeEngine, fake_pool, fake_provider, one_hop_script, routes_then_answers
from support.servers import child_server, free_port

from router_core.loop import Router
from router_core.policy import Policy
from storage import TraceStore, otlp
from storage.recorder import recorded

ROOT = Path(__file__).resolve().parent.parent
PHOENIX = ROOT / ".venv-phoenix" / "bin" / "phoenix"
pytestmark = [pytest.mark.phoenix,
              pytest.mark.skipif(not PHOENIX.exists(), reason=f"{PHOENIX} missing: arize-phoenix is installed into "
                                                              ".venv-phoenix by scripts/setup.sh --tests")]
Q = "Which country is the birthplace of the director of the film Interstellar?"


@pytest.fixture(scope="module")
def phoenix(tmp_path_factory):
    work = tmp_path_factory.mktemp("phoenix")
    port, grpc = free_port(), free_port()
    env = {**os.environ, "PHOENIX_HOST": "127.0.0.1", "PHOENIX_PORT": str(port), "PHOENIX_GRPC_PORT": str(grpc),
           "PHOENIX_WORKING_DIR": str(work), "PHOENIX_TELEMETRY_ENABLED": "false",
           "PHOENIX_ALLOW_EXTERNAL_RESOURCES": "false", "PHOENIX_DISABLE_AGENT_ASSISTANT": "true",
           "PHOENIX_AGENTS_DISABLE_BASH": "true", "PHOENIX_LOG_SQL": "false"}
    base = f"http://127.0.0.1:{port}"
    with child_server([str(PHOENIX), "serve"], f"{base}/healthz", work / "serve.log", env=env):
        yield base


script = one_hop_script()


def spans_of(base: str, session_id: str, want: int, timeout_s: float = 60) -> list[dict]:
    deadline = time.monotonic() + timeout_s
    while True:
        r = httpx.get(f"{base}/v1/projects/router-r1-studio/spans", timeout=10,
                      params=[("limit", 1000), ("sort", "start_time"), ("order", "asc")])
        data = r.json().get("data", []) if r.status_code == 200 else []
        mine = [s for s in data if s["context"]["trace_id"] in
                {x["context"]["trace_id"] for x in data if x["attributes"].get("session.id") == session_id
                 and x["parent_id"] is None}]
        if len(mine) >= want or time.monotonic() > deadline:
            return mine
        time.sleep(1)


def test_a_session_trace_arrives_in_phoenix(phoenix, tmp_path):
    tracer = otlp.configure(f"{phoenix}/v1/traces")
    try:
        policy = FakeEngine(script, scores=routes_then_answers(1, {"Tiny": -2.0, "Mid": -1.0, "Big": -0.3}))
        r = Router(Policy(name="fake-guided", engine="llamacpp", model="fake:policy"), fake_pool(),
                   engines=fake_provider(policy, default=FakeEngine(reply="Christopher Nolan directed Interstellar.")))
        sid = "phoenix-session-1"
        with TraceStore(str(tmp_path / "p.sqlite")) as store:
            steps = list(recorded(store, r.run(Q, 0.0, session_id=sid), session_id=sid, question=Q, alpha=0.0,
                                  policy="fake-guided", engine="llamacpp", pool=fake_pool().snapshot(),
                                  gold=["England"]))
        assert tracer.flush(20) and not tracer.failed
    finally:
        otlp.shutdown()
    spans = spans_of(phoenix, sid, want=7)
    kinds = {s["name"]: s["span_kind"] for s in spans}
    assert kinds["router session"] == "AGENT" and kinds["route → Big"] == "CHAIN"
    assert kinds["candidate Big"] == "LLM" and kinds["router think"] == "LLM" and kinds["router answer"] == "LLM"
    root = next(s for s in spans if s["name"] == "router session")
    assert root["parent_id"] is None and root["attributes"]["input.value"] == Q
    assert root["attributes"]["output.value"] == "England"
    call = next(s for s in spans if s["name"] == "candidate Big")
    route = next(s for s in steps if s.kind == "route")
    a = call["attributes"]
    assert a["llm.model_name"] == "Big"
    assert a["llm.token_count.prompt"] == route.input_tokens and a["llm.token_count.completion"] == route.output_tokens
    assert a["llm.cost.total"] == pytest.approx(route.cost_usd)
    assert call["parent_id"] == next(s for s in spans if s["name"] == "route → Big")["context"]["span_id"]
