"""The API behind real clients: a non-streamed request whose client gives up stops its session and frees the router;
a stream carries only the answer that was given, never a draft the rollout sent back. Scripted engines; the server
listens on 127.0.0.1 and every wait here is bounded."""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import httpx
import pytest
from support.fake_engine import (
    FakeEngine,
    fake_pool,
    fake_provider,
    routes_then_answers,
)
from support.servers import served_studio

from router_core.policy import Policy, PolicyBook
from storage import TraceStore
from ui.api import CLIENT_GONE, Gate, routes
from ui.studio import Studio

Q = "Which river flows through the capital of Hungary?"
NAMES = {"Tiny": -2.0, "Mid": -1.0, "Big": -0.3}
CHECKED = Policy(name="checked", engine="llamacpp", model="fake:policy", mode="guided", interventions=["check_answer"])
SLOW = Policy(name="slow", engine="llamacpp", model="fake:slow", mode="guided")
REPLIES = {"What is the capital of Hungary?": "Budapest is the capital of Hungary.",
           "Which river flows through Budapest?": "The Danube flows through Budapest."}


def drafting_script():
    """Answers "Vienna" after the first reply (in no reply: check_answer sends it back), then "Danube River " after
    the second hop. Stateless: every session goes the same way."""
    def gen(prompt, stop):
        read = prompt.count(" </information>\n")
        if "</think>" in stop:
            return "I need the capital first.</think>"
        if "</search>" in stop:
            return f" {list(REPLIES)[min(read, 1)]} </search>"
        return " Vienna </answer>" if read < 2 else " Danube River  </answer>"
    return gen


class Slow(FakeEngine):
    """A policy whose every generation takes a while (a big model on a busy server)."""

    def generate(self, prompt, **kw):
        time.sleep(0.5)
        return super().generate(prompt, **kw)


@pytest.fixture()
def served(tmp_path):
    store = TraceStore(str(tmp_path / "api.sqlite"))
    policy = FakeEngine(drafting_script(), scores=routes_then_answers(1, NAMES))
    slow = Slow(lambda p, stop: "I think.</think>" if "</think>" in stop
                else f" Who is number {p.count(' </information>')}? </search>", scores=routes_then_answers(99, NAMES))
    pool = fake_pool()
    studio = Studio(store=store, policies=PolicyBook(default="checked", policies=[CHECKED, SLOW]),
                    pools={pool.name: pool}, default_pool=pool.name,
                    engines=fake_provider(policy, {"fake:slow": slow},
                                          default=FakeEngine(reply=lambda q: REPLIES.get(q, "No idea."))))
    gate = Gate(limit=4)
    try:
        with served_studio(studio, api=routes(studio, gate=gate)) as url:
            yield url, store, gate
    finally:
        store.close()


def test_a_stream_carries_only_the_answer_given_never_the_draft_sent_back(served):
    url, store, _ = served
    with httpx.stream("POST", f"{url}/v1/chat/completions", timeout=60,
                      json={"model": "router", "stream": True, "messages": [{"role": "user", "content": Q}]}) as r:
        lines = [line for line in r.iter_lines() if line]
    sid = r.headers["x-router-session-id"]
    content = "".join(json.loads(line[6:])["choices"][0]["delta"].get("content") or ""
                      for line in lines if line.startswith("data: {") and json.loads(line[6:]).get("choices"))
    drafts = [json.loads(line.split(" ", 2)[2]) for line in lines if line.startswith(": router-draft ")]
    stored = store.get_session(sid)
    routes_ = [s for s in store.load_steps(sid) if s.kind == "route"]
    assert routes_[1].draft == "Vienna"  # the rollout did send the draft back
    assert content == "Danube River" == stored["answer"].strip()
    assert "Vienna" in "".join(d["text"] for d in drafts) and "Vienna" not in content
    # the plain reply is trimmed the same way
    out = httpx.post(f"{url}/v1/chat/completions", timeout=60,
                     json={"model": "router", "messages": [{"role": "user", "content": Q}]}).json()
    assert out["choices"][0]["message"]["content"] == "Danube River"


def test_an_abandoned_request_stops_its_session_and_frees_the_router(served):
    url, store, gate = served
    t0 = time.monotonic()
    with pytest.raises(httpx.TimeoutException):
        httpx.post(f"{url}/v1/chat/completions", timeout=1.5,
                   json={"model": "router:slow", "messages": [{"role": "user", "content": Q}]})
    # the slow policy would route four times (about 5 s of generation); gone after 1.5 s, it stops at a step boundary
    deadline = time.monotonic() + 30
    while True:
        rows = store.list_sessions().rows
        if len(rows) and rows.iloc[0]["status"] != "running" and gate.in_flight == 0:
            break
        assert time.monotonic() < deadline, "the abandoned session kept running"
        time.sleep(0.1)
    sess = store.get_session(rows.iloc[0]["id"])
    assert sess["status"] == "stopped" and sess["error"] == CLIENT_GONE
    assert time.monotonic() - t0 < 10
    steps = store.load_steps(sess["id"])
    assert steps[-1].kind == "error" and steps[-1].status == "stopped" and len(steps) < 9
    # the router is free: the next request is answered at once
    ok = httpx.post(f"{url}/v1/chat/completions", timeout=60,
                    json={"model": "router", "messages": [{"role": "user", "content": Q}]})
    assert ok.status_code == 200


def test_a_client_that_waits_gets_its_answer_while_another_gives_up(served):
    url, store, gate = served
    codes: list[int] = []

    def patient():
        codes.append(httpx.post(f"{url}/v1/chat/completions", timeout=60,
                                json={"model": "router", "messages": [{"role": "user", "content": Q}]}).status_code)
    t = threading.Thread(target=patient)
    t.start()
    with pytest.raises(httpx.TimeoutException):
        httpx.post(f"{url}/v1/chat/completions", timeout=0.5,
                   json={"model": "router:slow", "messages": [{"role": "user", "content": Q}]})
    t.join(timeout=60)
    assert codes == [200]
    deadline = time.monotonic() + 30
    while gate.in_flight:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    statuses = sorted(store.list_sessions().rows["status"])
    assert statuses in (["done", "stopped"], ["done"])  # the impatient one never started, or stopped


def test_the_page_the_api_and_the_cli_refuse_an_oversized_question_by_one_rule_and_store_nothing(served):
    """Through the launched page's own /run endpoint, as any visitor could call it; then the API and the CLI."""
    from gradio_client import Client

    from router_core.question import QUESTION_MAX_CHARS
    from ui.cli import CliError, text_arg

    url, store, _ = served
    huge = "Which river? " * 40_000  # 520,000 characters
    out = Client(url, verbose=False).submit(huge, "", "checked", "fake-three", 0.0, api_name="/run").result(timeout=60)
    status = next(o for o in out if isinstance(o, str) and "Cannot run" in o)
    assert f"the limit is {QUESTION_MAX_CHARS:,}" in status and len(status) < 300
    assert store.list_sessions().total == 0
    r = httpx.post(f"{url}/v1/chat/completions", timeout=60,
                   json={"model": "router", "messages": [{"role": "user", "content": huge}]})
    assert r.status_code == 400 and f"the limit is {QUESTION_MAX_CHARS:,}" in r.json()["error"]["message"]
    with pytest.raises(CliError, match=f"the limit is {QUESTION_MAX_CHARS:,}"):
        text_arg(huge, "question")
    assert store.list_sessions().total == 0


@pytest.mark.parametrize("method, path, status, needle", [
    ("GET", "/v1/engines", 404, "no endpoint /v1/engines here"),
    ("POST", "/v1/completions", 404, "no endpoint /v1/completions here"),
    ("GET", "/v1/chat/completions", 405, "takes POST, not GET"),
    ("DELETE", "/v1/models", 405, "takes GET, not DELETE"),
])
def test_every_v1_error_is_in_openais_shape(served, method, path, status, needle):
    url, *_ = served
    r = httpx.request(method, f"{url}{path}", timeout=30)
    assert r.status_code == status
    err = r.json()["error"]
    assert needle in err["message"] and set(err) == {"message", "type", "param", "code"}


def test_a_deeply_nested_body_is_a_400_not_a_traceback(served):
    url, *_ = served
    body = "[" * 100_000 + "]" * 100_000
    r = httpx.post(f"{url}/v1/chat/completions", content=body, headers={"content-type": "application/json"},
                   timeout=30)
    assert r.status_code == 400 and r.json()["error"]["code"] == "too_deep"


def test_a_session_opens_by_its_whole_id_or_12_characters_and_errors_show_no_server_path(served):
    from storage.summary import MIN_PREFIX
    from ui.explorer import Replay, export_page
    url, store, _ = served
    sid = httpx.post(f"{url}/v1/chat/completions", timeout=60, json={"model": "router", "messages": [
        {"role": "user", "content": Q}]}).headers["x-router-session-id"]
    assert Replay.load(store, sid).session["id"] == sid and Replay.load(store, sid[:MIN_PREFIX]).session["id"] == sid
    for short in (sid[:1], sid[:MIN_PREFIX - 1]):
        with pytest.raises(KeyError, match="at least its first 12 characters"):
            Replay.load(store, short)
    for missing in ("f" * 32, "0" * 40):
        with pytest.raises(KeyError) as e:
            Replay.load(store, missing)
        assert store.where not in str(e.value) and "this store" in str(e.value)
        with pytest.raises(KeyError) as e:
            export_page(store, missing)
        assert store.where not in str(e.value)


def test_web_exports_are_capped_in_count_and_size(served, tmp_path, monkeypatch):
    import ui.explorer as ex
    url, store, _ = served
    httpx.post(f"{url}/v1/chat/completions", timeout=60, json={"model": "router", "messages": [
        {"role": "user", "content": Q}]})
    monkeypatch.setattr(ex, "EXPORT_DIR", tmp_path / "exports")
    paths = [Path(ex.export_file(store, ex.make_filter(), "csv")) for _ in range(ex.EXPORT_KEEP_FILES + 5)]
    left = sorted(ex.EXPORT_DIR.iterdir())
    assert len(left) == ex.EXPORT_KEEP_FILES and paths[-1] in left and paths[0] not in left
    sid = store.list_sessions().rows.iloc[0]["id"]
    pages = [Path(ex.export_page(store, sid)) for _ in range(2)]
    assert pages[-1].exists()
    ex.clean_exports(keep_bytes=pages[-1].stat().st_size)  # room for one page: the newest stays
    assert sorted(ex.EXPORT_DIR.iterdir()) == [pages[-1]]


def test_one_client_cannot_fill_the_queue():
    from ui.api import ApiError
    gate = Gate(limit=4, per_client=2)
    a1, a2 = gate.enter("a"), gate.enter("a")
    with pytest.raises(ApiError) as e:
        gate.enter("a")
    assert e.value.status == 429 and e.value.code == "client_queue_full" and e.value.headers["Retry-After"]
    b1, b2 = gate.enter("b"), gate.enter("b")  # another client still gets in
    with pytest.raises(ApiError) as e:
        gate.enter("c")
    assert e.value.code == "queue_full"  # the room itself is full
    a1()
    a1()  # released twice: one place back
    assert gate.in_flight == 3 and gate.by_client == {"a": 1, "b": 2}
    gate.enter("a")
    for r in (a2, b1, b2):
        r()
    assert gate.by_client == {"a": 1}


def test_requests_are_told_apart_by_token_else_by_address(served):
    url, store, gate = served
    from ui.api import client_key

    class R:
        def __init__(self, headers, host):
            self.headers, self.client = headers, type("C", (), {"host": host})()
    x1, x2, y1 = R({"authorization": "Bearer x"}, "1.2.3.4"), R({"authorization": "Bearer x"}, "5.6.7.8"), \
        R({"authorization": "Bearer y"}, "1.2.3.4")
    assert client_key(x1) == client_key(x2) != client_key(y1)
    assert client_key(R({}, "1.2.3.4")) == "addr:1.2.3.4" and "Bearer" not in client_key(x1)
