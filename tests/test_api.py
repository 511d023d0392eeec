"""The OpenAI-compatible endpoint on the app's own port: the official client (plain and streaming), the
model id, errors, the token, the queue, and stored sessions. The router runs on the scripted engine;
test_api_model.py drives the same endpoint on the real shipped models."""
from __future__ import annotations

import json
import threading
import time

import httpx
import pytest
from support.fake_engine import FakeEngine, fake_pool, fake_provider, one_hop_script, routes_then_answers
from support.servers import served_studio

from router_core.policy import Policy, PolicyBook
from storage import TraceStore
from ui.api import Gate, parse_model, routes
from ui.studio import Studio

Q = "Which country is the birthplace of the director of the film Interstellar?"
GUIDED = Policy(name="fake-guided", engine="llamacpp", model="fake:policy", mode="guided")
OTHER = Policy(name="fake-other", engine="llamacpp", model="fake:policy", mode="guided")
HELD = Policy(name="fake-held", engine="llamacpp", model="fake:held", mode="guided")      # waits until released
FAILING = Policy(name="fake-failing", engine="llamacpp", model="fake:failing", mode="guided")
TOKEN_ENV = "ROUTER_STUDIO_TEST_API_TOKEN"


script = one_hop_script("I need the director of Interstellar first.")


class Held(FakeEngine):
    """A policy whose generations wait until the test lets them go, to hold the queue's places."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.release = threading.Event()

    def generate(self, prompt, **kw):
        assert self.release.wait(60), "the test never released the held generation"
        return super().generate(prompt, **kw)


def make_studio(store: TraceStore, held: Held | None = None) -> Studio:
    pool = fake_pool()
    scores = routes_then_answers(1, {"Tiny": -2.0, "Mid": -1.0, "Big": -0.3})
    policy = FakeEngine(script, scores=scores)
    extra = {"fake:held": held or Held(script, scores=scores),
             "fake:failing": FakeEngine(fail="llama.cpp generation failed: out of memory")}
    return Studio(store=store, policies=PolicyBook(default="fake-guided", policies=[GUIDED, OTHER, HELD, FAILING]),
                  pools={pool.name: pool}, default_pool=pool.name,
                  engines=fake_provider(policy, extra, default=FakeEngine(reply="Christopher Nolan directed it.")))


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """One launched app for the module (launching Gradio costs about a second): tests count sessions as
    differences, so they do not depend on each other or on their order. Yields (url, store, gate, held)."""
    store = TraceStore(str(tmp_path_factory.mktemp("api") / "api.sqlite"))
    held = Held(script, scores=routes_then_answers(1, {"Tiny": -2.0, "Mid": -1.0, "Big": -0.3}))
    studio = make_studio(store, held)
    gate = Gate(limit=2)
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv(TOKEN_ENV, "s3cret-token")
            with served_studio(studio, api=routes(studio, token_env=TOKEN_ENV, gate=gate)) as url:
                yield url, store, gate, held
    finally:
        held.release.set()
        store.close()


def client(url: str, key: str = "s3cret-token"):
    from openai import OpenAI
    return OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=60)


def test_official_client_plain_and_streaming(served):
    url, store, *_ = served
    before = store.list_sessions().total
    c = client(url)
    ids = [m.id for m in c.models.list().data]
    assert "router:default:0" in ids and "router:fake-guided:0" in ids
    r = c.chat.completions.with_raw_response.create(model="router:default:0.3",
                                                    messages=[{"role": "user", "content": Q}])
    sid = r.headers["x-router-session-id"]
    out = r.parse()
    assert out.choices[0].message.content == "England" and out.choices[0].finish_reason == "stop"
    extra = out.model_extra["router"]
    assert extra["session_id"] == sid and extra["alpha"] == 0.3 and extra["replay_url"] == f"/?session={sid}"
    assert extra["calls"] == 1 and [s["kind"] for s in extra["steps"]] == ["think", "route", "think", "answer"]
    assert out.usage.total_tokens == out.usage.prompt_tokens + out.usage.completion_tokens > 0
    sess = store.get_session(sid)
    assert sess["status"] == "done" and sess["alpha"] == 0.3 and sess["question"] == Q and sess["answer"] == "England"
    # streaming: the answer arrives as deltas; each finished step rides along as an SSE comment the client skips
    chunks = list(c.chat.completions.create(model="router:fake-other:0.7", messages=[{"role": "user", "content": Q}],
                                            stream=True, stream_options={"include_usage": True}))
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert text == "England"
    last = [ch for ch in chunks if ch.choices][-1]
    assert last.choices[0].finish_reason == "stop" and last.model_extra["router"]["policy"] == "fake-other"
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0
    assert store.list_sessions().total == before + 2


def test_raw_stream_carries_each_step_as_a_comment(served):
    url, *_ = served
    with httpx.stream("POST", f"{url}/v1/chat/completions", timeout=60,
                      headers={"Authorization": "Bearer s3cret-token"},
                      json={"model": "router", "stream": True, "messages": [{"role": "user", "content": Q}]}) as r:
        lines = [line for line in r.iter_lines() if line]
    comments = [json.loads(line.split(" ", 2)[2]) for line in lines if line.startswith(": router-step ")]
    assert [c["kind"] for c in comments] == ["think", "route", "think", "answer"]
    assert comments[1]["model"] == "Big" and comments[1]["sent"] is True
    assert lines[-1] == "data: [DONE]" and r.headers["x-router-session-id"]


@pytest.mark.parametrize("body,status,needle", [
    ({"model": "gpt-4o", "messages": [{"role": "user", "content": "q"}]}, 404, "does not exist here"),
    ({"model": "router:nope:0.1", "messages": [{"role": "user", "content": "q"}]}, 404, "no policy 'nope'"),
    ({"model": "router:default:1.5", "messages": [{"role": "user", "content": "q"}]}, 400, "α must be a number in [0, 1]"),
    ({"model": "router", "alpha": "high", "messages": [{"role": "user", "content": "q"}]}, 400, "alpha:"),
    ({"model": "router", "messages": []}, 400, "at least one message"),
    ({"model": "router", "messages": [{"role": "system", "content": "be nice"}]}, 400, "no message with role 'user'"),
    ({"model": "router", "messages": [{"role": "user", "content": "   "}]}, 400, "the last user message is empty"),
    ({"model": "router", "messages": [{"role": "user", "content": "x" * 5000}]}, 400, "the limit is 4,000"),
    ({"model": "router", "stream": "yes", "messages": [{"role": "user", "content": "q"}]}, 400, "stream:"),
    ([1, 2], 400, "JSON object"),
])
def test_bad_requests_get_openai_style_errors(served, body, status, needle):
    url, store, *_ = served
    before = store.list_sessions().total
    r = httpx.post(f"{url}/v1/chat/completions", json=body, headers={"Authorization": "Bearer s3cret-token"},
                   timeout=30)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert needle in err["message"] and err["type"] in ("invalid_request_error",)
    assert store.list_sessions().total == before


def test_unknown_pool_header_and_token(served):
    url, *_ = served
    ok = {"Authorization": "Bearer s3cret-token"}
    body = {"model": "router", "messages": [{"role": "user", "content": "q"}]}
    r = httpx.post(f"{url}/v1/chat/completions", json=body, headers={**ok, "x-router-pool": "nope"}, timeout=30)
    assert r.status_code == 400 and "x-router-pool: no pool 'nope'" in r.json()["error"]["message"]
    r = httpx.post(f"{url}/v1/chat/completions", json=body, headers={**ok, "x-router-pool": "../../etc/passwd"},
                   timeout=30)
    assert r.status_code == 400 and "not a path" in r.json()["error"]["message"]
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret-token"}):
        r = httpx.post(f"{url}/v1/chat/completions", json=body, headers=headers, timeout=30)
        assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"
    assert httpx.get(f"{url}/v1/models", timeout=30).status_code == 401
    h = httpx.get(f"{url}/health", timeout=30).json()
    assert h["status"] == "ok" and h["policy"] == "fake-guided" and h["pool"] == "fake-three"


def test_a_full_queue_answers_429_with_retry_after(served):
    url, store, gate, held = served
    ok = {"Authorization": "Bearer s3cret-token"}
    body = {"model": "router:fake-held", "messages": [{"role": "user", "content": Q}]}
    codes: list[int] = []

    def call():
        codes.append(httpx.post(f"{url}/v1/chat/completions", json=body, headers=ok, timeout=60).status_code)
    holders = [threading.Thread(target=call) for _ in range(gate.limit)]
    try:
        for t in holders:
            t.start()
        deadline = time.monotonic() + 60
        while gate.in_flight < gate.limit:  # every place is now held by a request waiting on the engine
            assert time.monotonic() < deadline, f"only {gate.in_flight} of {gate.limit} places were taken"
            time.sleep(0.01)
        r = httpx.post(f"{url}/v1/chat/completions", json=body, headers=ok, timeout=60)
        assert r.status_code == 429 and r.headers["retry-after"] == "5"
        assert r.json()["error"]["code"] == "queue_full"
    finally:
        held.release.set()
        for t in holders:
            t.join(timeout=60)
    assert codes == [200] * gate.limit and gate.in_flight == 0


def test_an_engine_failure_is_a_5xx_and_the_session_is_stored_with_its_status(served):
    url, store, *_ = served
    r = httpx.post(f"{url}/v1/chat/completions", timeout=60, headers={"Authorization": "Bearer s3cret-token"},
                   json={"model": "router:fake-failing", "messages": [{"role": "user", "content": Q}]})
    assert r.status_code == 502 and "out of memory" in r.json()["error"]["message"]
    sid = r.headers["x-router-session-id"]
    assert store.get_session(sid)["status"] == "error"


def test_model_ids_parse_with_dashes_and_colons_in_names(tmp_path):
    with TraceStore(str(tmp_path / "m.sqlite")) as store:
        st = make_studio(store)
        assert parse_model("router", st) == ("fake-guided", 0.0)
        assert parse_model("router:default:0.25", st) == ("fake-guided", 0.25)
        assert parse_model("router:fake-other", st) == ("fake-other", 0.0)
        assert parse_model("router:fake-other:1", st) == ("fake-other", 1.0)


def test_hostile_requests_are_refused_without_a_traceback(served):
    url, store, *_ = served
    before = store.list_sessions().total
    ok = {"Authorization": "Bearer s3cret-token"}
    body = {"model": "router", "messages": [{"role": "user", "content": "q"}]}
    # a page on another site can POST text/plain without a CORS preflight: refused before anything runs
    r = httpx.post(f"{url}/v1/chat/completions", content=json.dumps(body),
                   headers={**ok, "content-type": "text/plain"}, timeout=30)
    assert r.status_code == 415 and "application/json" in r.json()["error"]["message"]
    r = httpx.post(f"{url}/v1/chat/completions", content=b"{" + b" " * (1 << 20) + b"}",
                   headers={**ok, "content-type": "application/json"}, timeout=30)
    assert r.status_code == 413
    # a non-ASCII token, a lower-case scheme, and text parts that are not strings
    latin = {"Authorization": "Bearer \u00e9t\u00e9".encode("latin-1")}
    r = httpx.post(f"{url}/v1/chat/completions", json=body, headers=latin, timeout=30)
    assert r.status_code == 401
    bad = {"model": "router", "messages": [{"role": "user", "content": [{"type": "text", "text": 5}]}]}
    r = httpx.post(f"{url}/v1/chat/completions", json=bad, headers=ok, timeout=30)
    assert r.status_code == 400 and "must be a string" in r.json()["error"]["message"]
    assert store.list_sessions().total == before
    r = httpx.post(f"{url}/v1/chat/completions", json=body, headers={"Authorization": "bearer s3cret-token"},
                   timeout=30)
    assert r.status_code == 200


def test_a_stream_gives_its_place_back_even_when_the_client_left_before_the_first_byte():
    import asyncio

    from ui.api import GatedStream

    gate = Gate(limit=1)
    release = gate.enter()

    async def body():
        yield "data: never sent\n\n"

    async def receive():
        return {"type": "http.disconnect"}

    async def send(message):
        raise OSError("client went away")

    resp = GatedStream(body(), release, media_type="text/event-stream")
    with pytest.raises(Exception):
        asyncio.run(resp({"type": "http", "asgi": {"spec_version": "2.4"}}, receive, send))
    assert gate.in_flight == 0
    gate.enter()()  # the place can be taken again, and releasing twice gives back only one place
    release()
    assert gate.in_flight == 0


def test_login_protects_the_page_only_so_the_api_needs_its_own_token(tmp_path, monkeypatch, capsys):
    import argparse

    from ui.app import api_routes
    with TraceStore(str(tmp_path / "l.sqlite")) as store:
        studio = make_studio(store)
        args = argparse.Namespace(api_token_env=None, host="127.0.0.1")
        assert api_routes(studio, args, login=True) is None
        assert "the OpenAI-compatible API (/v1) is off" in capsys.readouterr().err
        assert api_routes(studio, args, exposed=True) is not None
        assert "open to anyone" in capsys.readouterr().err
        monkeypatch.setenv(TOKEN_ENV, "t")
        args.api_token_env = TOKEN_ENV
        assert api_routes(studio, args, login=True, exposed=True) is not None
        assert capsys.readouterr().err == ""
