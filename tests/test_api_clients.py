"""The API behind real clients: a non-streamed request whose client gives up stops its session and frees the router;
a stream carries only the answer that was given, never a draft the rollout sent back. Scripted engines; the server
listens on 127.0.0.1 and every wait here is bounded."""
from __future__ import annotations

import json
import threading
import time

import httpx
import pytest
from support.fake_engine import FakeEngine, fake_pool, fake_provider, routes_then_answers
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
