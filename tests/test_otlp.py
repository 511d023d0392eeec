"""Sessions as OpenTelemetry traces: span tree, names and values, keys never sent, idempotent re-export,
an unreachable collector neither slows nor breaks a session. The collector here is a small OTLP/HTTP
receiver that decodes what the SDK sends (protobuf); test_phoenix.py sends to a real Phoenix."""
from __future__ import annotations

import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from support.fake_engine import FakeEngine, fake_pool, fake_provider, one_hop_script, routes_then_answers

from router_core.loop import Router
from router_core.policy import Policy
from storage import TraceStore, otlp
from storage.otlp import Tracer, TracingError
from storage.recorder import recorded

Q = "Which country is the birthplace of the director of the film Interstellar?"
GUIDED = Policy(name="fake-guided", engine="llamacpp", model="fake:policy", mode="guided")


script = one_hop_script()


class Collector:
    """Receives OTLP/HTTP protobuf on 127.0.0.1 and keeps the spans as dicts."""

    def __init__(self) -> None:
        self.spans: list[dict] = []
        self.resources: list[dict] = []
        outer = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                req = ExportTraceServiceRequest()
                req.ParseFromString(body)
                for rs in req.resource_spans:
                    outer.resources.append({a.key: _val(a.value) for a in rs.resource.attributes})
                    for ss in rs.scope_spans:
                        for sp in ss.spans:
                            outer.spans.append({"name": sp.name, "trace_id": sp.trace_id.hex(),
                                                "span_id": sp.span_id.hex(), "parent": sp.parent_span_id.hex(),
                                                "start": sp.start_time_unix_nano, "end": sp.end_time_unix_nano,
                                                "status": sp.status.code,
                                                "attrs": {a.key: _val(a.value) for a in sp.attributes}})
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.server.server_port}/v1/traces"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _val(v):
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [_val(x) for x in v.array_value.values]
    return getattr(v, kind) if kind else None


@pytest.fixture()
def collector():
    c = Collector()
    yield c
    c.close()


def run_session(store: TraceStore, sid: str = "otlp-session", alpha: float = 0.0):
    policy = FakeEngine(script, scores=routes_then_answers(1, {"Tiny": -2.0, "Mid": -1.0, "Big": -0.3}))
    r = Router(GUIDED, fake_pool(), engines=fake_provider(policy, default=FakeEngine(reply="Christopher Nolan.")))
    pool = fake_pool().snapshot()
    pool["models"][2]["api_key_env"] = "SOME_SECRET_KEY_NAME"  # a name only: the value never leaves
    return list(recorded(store, r.run(Q, alpha, session_id=sid), session_id=sid, question=Q, alpha=alpha,
                         policy=GUIDED.name, engine="llamacpp", pool=pool, gold=["England"]))


def test_a_live_session_is_one_trace_with_the_right_spans(collector, tmp_path, monkeypatch):
    monkeypatch.setenv("SOME_SECRET_KEY_NAME", "sk-never-exported-9f8e7d")
    tracer = otlp.configure(collector.url)
    try:
        with TraceStore(str(tmp_path / "t.sqlite")) as store:
            steps = run_session(store)
        assert tracer.flush(10)
    finally:
        otlp.shutdown()
    spans = collector.spans
    assert len({s["trace_id"] for s in spans}) == 1
    by_name = {s["name"]: s for s in spans}
    root = by_name["router session"]
    assert root["parent"] == "" and root["attrs"]["openinference.span.kind"] == "AGENT"
    assert root["attrs"]["session.id"] == "otlp-session" == root["attrs"]["gen_ai.conversation.id"]
    assert root["attrs"]["input.value"] == Q and root["attrs"]["output.value"] == "England"
    assert root["attrs"]["router.alpha"] == 0.0 and root["attrs"]["router.policy"] == "fake-guided"
    assert root["attrs"]["router.pool"] == "fake-three" and root["attrs"]["router.em"] == 1.0
    route = by_name["route → Big"]
    assert route["parent"] == root["span_id"] and route["attrs"]["openinference.span.kind"] == "CHAIN"
    assert route["attrs"]["router.choice.chosen"] == "Big" and len(route["attrs"]["router.choice.probs_after"]) == 3
    call = by_name["candidate Big"]
    s = next(x for x in steps if x.kind == "route")
    a = call["attrs"]
    assert call["parent"] == route["span_id"] and a["openinference.span.kind"] == "LLM"
    assert a["llm.model_name"] == "Big" == a["gen_ai.request.model"]
    assert a["llm.token_count.prompt"] == s.input_tokens == a["gen_ai.usage.input_tokens"]
    assert a["llm.token_count.completion"] == s.output_tokens == a["gen_ai.usage.output_tokens"]
    assert a["llm.cost.total"] == pytest.approx(s.cost_usd) and a["llm.cost.total"] > 0
    assert a["llm.input_messages.0.message.content"] == "Who directed Interstellar?"
    assert a["llm.output_messages.0.message.content"] == "Christopher Nolan."
    assert {"router think", "router answer", "router writes the sub-question"} <= set(by_name)
    assert {sp["status"] for sp in spans} == {1}  # STATUS_CODE_OK on every span of a session that went well
    assert by_name["router think"]["attrs"]["input.value"] == Q == by_name["router answer"]["attrs"]["input.value"]
    assert call["start"] >= route["start"] and call["end"] <= route["end"] <= root["end"]
    raw = json.dumps(collector.spans) + json.dumps(collector.resources)
    assert "sk-never-exported" not in raw
    assert collector.resources[0]["openinference.project.name"] == "router-r1-studio"


def test_exporting_a_stored_session_again_gives_the_same_ids(collector, tmp_path, capsys):
    from ui.cli import main
    db = tmp_path / "t.sqlite"
    with TraceStore(str(db)) as store:
        run_session(store, "stored-1")
        run_session(store, "stored-2", alpha=1.0)
    assert main(["export", "--db", str(db), "--otlp", collector.url]) == 0
    assert "sent 2 session(s) as traces" in capsys.readouterr().out
    first = sorted((s["trace_id"], s["span_id"]) for s in collector.spans)
    collector.spans.clear()
    assert main(["export", "--db", str(db), "--otlp", collector.url, "--text", "Interstellar"]) == 0
    assert sorted((s["trace_id"], s["span_id"]) for s in collector.spans) == first
    roots = [s for s in collector.spans if s["name"] == "router session"]
    assert {r["attrs"]["session.id"] for r in roots} == {"stored-1", "stored-2"}


def test_an_unreachable_collector_neither_slows_nor_breaks_a_session(tmp_path, caplog):
    # nothing listens on the discard port; a 1 s send timeout bounds the exporter's retries (and this test)
    tracer = otlp.configure("http://127.0.0.1:9/v1/traces", timeout_s=1.0)
    try:
        with caplog.at_level(logging.WARNING):
            with TraceStore(str(tmp_path / "t.sqlite")) as store:
                t0 = time.perf_counter()
                for i in range(5):
                    steps = run_session(store, f"down-{i}")
                    assert steps[-1].kind == "answer"
                took = time.perf_counter() - t0
                assert store.list_sessions().total == 5
            tracer.flush(10)
        assert took < 5  # sessions did not wait for the collector
        ours = [r for r in caplog.records if r.name == "router_studio.otlp"]
        assert len(ours) == 1 and "cannot be sent" in ours[0].getMessage() and tracer.failed
        sdk = [r for r in caplog.records if r.name.startswith("opentelemetry") and r.levelno >= logging.WARNING]
        assert sdk == []  # the SDK's own per-retry warnings are held back
    finally:
        otlp.shutdown()


def test_a_bad_endpoint_is_a_clear_error(capsys, tmp_path):
    with pytest.raises(TracingError, match="not an http"):
        Tracer("127.0.0.1:6006")
    from ui.cli import main
    assert main(["export", "--db", str(tmp_path / "x.sqlite"), "--otlp", "ftp://x"]) == 2
    assert "is not an http(s) URL" in capsys.readouterr().err


def test_span_status_follows_the_step_a_stop_is_not_an_error_a_failure_is(collector, tmp_path):
    import threading as th
    tracer = otlp.configure(collector.url)
    try:
        with TraceStore(str(tmp_path / "t.sqlite")) as store:
            stop = th.Event()
            policy = FakeEngine(script, scores=routes_then_answers(1, {"Tiny": -2.0, "Mid": -1.0, "Big": -0.3}))
            r = Router(GUIDED, fake_pool(), engines=fake_provider(policy, default=FakeEngine(reply="Nolan.")))
            steps = []
            for st in recorded(store, r.run(Q, 0.0, session_id="stopped-one", stop_event=stop),
                               session_id="stopped-one", question=Q, alpha=0.0, policy=GUIDED.name, engine="x",
                               pool=fake_pool().snapshot()):
                steps.append(st)
                stop.set()
            broken = Router(GUIDED, fake_pool(), engines=fake_provider(FakeEngine(fail="out of memory")))
            list(recorded(store, broken.run(Q, 0.0, session_id="failed-one"), session_id="failed-one", question=Q,
                          alpha=0.0, policy=GUIDED.name, engine="x", pool=fake_pool().snapshot()))
        assert tracer.flush(10)
    finally:
        otlp.shutdown()
    assert steps[-1].status == "stopped"
    by_trace: dict[str, dict[str, int]] = {}
    for sp in collector.spans:
        by_trace.setdefault(sp["trace_id"], {})[sp["name"]] = sp["status"]
    stopped, failed = sorted(by_trace.values(), key=lambda d: "router error" in d)
    assert stopped["router session"] == 1 and stopped["router stopped"] == 1  # OK: a stop is not a failure
    assert failed["router session"] == 2 and failed["router error"] == 2  # ERROR, with the message


def test_a_choice_with_the_quality_term_sends_its_three_terms(collector, tmp_path):
    """With the run's `quality` on, the sub-question is written after the router's own pick (Big) and the model is
    chosen after it: every model is expected to answer it, so at α 0.5 the price sends it to Tiny. The route span
    carries each candidate's prior, quality and price-penalty terms; the step says Tiny in its protocol text."""
    import numpy as np

    from router_core.quality import Label, Labels, QualityEstimator
    labels = Labels({"pool": "fake-three"}, [Label("a", "Who directed Alien?", m, 1.0) for m in ("Tiny", "Mid")]
                    + [Label("a", "Who directed Alien?", "Big", 1.0)])
    est = QualityEstimator(labels, lambda texts: np.ones((len(texts), 4), dtype=np.float32), k=1, shrink=0.0)
    policy = FakeEngine(script, scores=routes_then_answers(1, {"Tiny": -2.0, "Mid": -1.0, "Big": -0.3}))
    cfg = GUIDED.run_config({"quality": True, "prior_weight": 0.5, "quality_weight": 8.0})
    r = Router(GUIDED, fake_pool(), engines=fake_provider(policy, default=FakeEngine(reply="Christopher Nolan.")),
               config=cfg, quality=est)
    tracer = otlp.configure(collector.url)
    try:
        with TraceStore(str(tmp_path / "q.sqlite")) as store:
            steps = list(recorded(store, r.run(Q, 0.5, session_id="q1"), session_id="q1", question=Q, alpha=0.5,
                                  policy=GUIDED.name, engine="llamacpp", pool=fake_pool().snapshot(),
                                  settings=r.settings()))
            stored = store.load_steps("q1")
        assert tracer.flush(10)
    finally:
        otlp.shutdown()
    route = next(s for s in steps if s.kind == "route")
    assert route.choice.policy_choice == "Big" and route.choice.chosen == "Tiny" == route.request_model
    assert route.text == f"<search> Tiny: {route.query} </search>"
    query_prompt = next(p for p in policy.prompts() if p.rstrip().endswith("<search> Big:"))
    assert query_prompt  # the sub-question was written after the router's own pick, before α chose
    assert any("<search> Tiny: " + route.query in p for p in policy.prompts())  # the router reads what was sent
    assert next(s for s in stored if s.kind == "route").choice == route.choice
    span = next(s for s in collector.spans if s["name"] == "route → Tiny")["attrs"]
    assert span["router.choice.quality_estimate"] == pytest.approx([1.0, 1.0, 1.0])
    assert span["router.choice.calibrated"] == [True, True, True]
    assert span["router.choice.prior_term"] == pytest.approx([-1.0, -0.5, -0.15])
    assert span["router.choice.price_penalty"] == pytest.approx([0.0, 8 * 0.5 * (0.10 - 0.02) / 0.28, 4.0])
