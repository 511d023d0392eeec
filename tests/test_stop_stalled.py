"""A stop reaches a call that has not streamed its first token (issue 42): the engine's request is cut, the server
sees its connection close, and the session ends `stopped` at once instead of after the call's own timeout.

The endpoint is a small OpenAI-compatible server on 127.0.0.1 that answers at once, or, on the paths named in
`stall`, reads the request and sends nothing, waiting (at most STALL_S) for the client to close the connection.
Timing is sequenced by events (the request arrived, the connection closed); the only bound is the one under test.
"""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from support.fake_engine import FakeEngine, fake_pool, guided_script, routes_then_answers

from router_core.engines import CacheHint, Stopped
from router_core.engines.openai_http import OpenAIEngine
from router_core.policy import Policy, PolicyBook
from storage import TraceStore
from ui.studio import Studio

STALL_S = 10.0    # how long a stalled request waits for the client to go away (the engines' own timeout is 30 s)
PROMPTLY_S = 1.0  # a stop must end the call (and the session) within this after it is set
NAMES = {"Tiny": -2.5, "Mid": -1.5, "Big": -0.4}


class _Handler(BaseHTTPRequestHandler):
    server: StallingServer
    protocol_version = "HTTP/1.1"  # keep-alive: a second request can come on the same connection

    def log_message(self, *args) -> None:
        pass

    def _send(self, body: bytes, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        req = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        path = self.path.removeprefix("/v1")
        srv = self.server
        srv.requests.append((path, self.client_address[1], req))
        if path in srv.stall:
            srv.arrived.set()
            self.connection.settimeout(STALL_S)
            try:
                gone = self.connection.recv(1) == b""  # the client shut the connection down
            except OSError:  # timed out: nobody cut the request
                gone = False
            if gone:
                srv.closed.set()
            self.close_connection = True
            return
        if path == "/tokenize" and "messages" in req:  # as vLLM: the chat template applied, as ids
            srv.rendered = "".join(f"<|{m['role']}|>{m['content']}<|end|>" for m in req["messages"]) + "<|assistant|>"
            return self._send(json.dumps({"tokens": [1, 2, 3]}).encode(), "application/json")
        if path == "/detokenize":
            return self._send(json.dumps({"prompt": srv.rendered}).encode(), "application/json")
        if path == "/tokenize":  # text to ids: one id a word
            toks = [len(w) + 10 * i for i, w in enumerate(req["prompt"].split())]
            return self._send(json.dumps({"tokens": toks}).encode(), "application/json")
        if req.get("allowed_token_ids"):  # a forced token, as vLLM answers it
            (tok,) = req["allowed_token_ids"]
            body = {"choices": [{"index": 0, "text": "", "logprobs": {"tokens": [f"token_id:{tok}"],
                                                                      "token_logprobs": [-1.0]}}]}
            return self._send(json.dumps(body).encode(), "application/json")
        key = "delta" if path == "/chat/completions" else "text"
        events = [{"choices": [{"index": 0, key: {"content": w} if key == "delta" else w}]}
                  for w in ["Christopher", " Nolan."]]
        sse = "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"
        self._send(sse.encode(), "text/event-stream")


class StallingServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.stall: set[str] = set()
        self.requests: list[tuple[str, int, dict]] = []  # (path, the client's port, body)
        self.arrived = threading.Event()  # a request on a stalled path came in
        self.closed = threading.Event()   # ... and the client closed its connection
        self.rendered = ""
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def paths(self) -> list[str]:
        return [p for p, _, _ in self.requests]

    def __enter__(self) -> StallingServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()
        self.server_close()
        self._thread.join(timeout=5)


@pytest.fixture
def server():
    with StallingServer() as s:
        yield s


def _engine(server: StallingServer) -> OpenAIEngine:
    # the engine's own limits are far beyond the bound under test: only the cancel can end the call in time
    return OpenAIEngine(server.base_url, "stalled", timeout_s=30.0, stall_s=30.0, max_retries=2, backoff_s=0.05)


def _stop_when_stalled(server: StallingServer, stop, after_s: float = 0.3) -> dict[str, float]:
    """Set off `stop()` `after_s` after the stalled request reached the server; the moment is put in the dict."""
    at: dict[str, float] = {}

    def run() -> None:
        if server.arrived.wait(STALL_S):
            time.sleep(after_s)  # the call has been waiting for its first byte a while
            at["stop"] = time.monotonic()
            stop()
    threading.Thread(target=run, daemon=True).start()
    return at


# ---------------------------------------------------------------------- the engine

@pytest.mark.parametrize("connection", ["new", "kept alive"])
def test_a_cancel_cuts_an_http_call_before_its_first_byte_and_the_engine_answers_the_next_call(server, connection):
    """The request is cut from another thread whether it opened its connection or reuses one kept alive from the
    requests before (then no connection is opened that could be noted: its socket is known from before)."""
    engine = _engine(server)
    q = [{"role": "user", "content": "Who directed Interstellar?"}]
    try:
        if connection == "kept alive":
            assert engine.chat_prompt(q)  # /tokenize and /detokenize, answered whole: the connection stays open
        server.stall.add("/chat/completions")
        cancel = threading.Event()
        at = _stop_when_stalled(server, cancel.set)
        with pytest.raises(Stopped):
            engine.chat(q, cache=CacheHint(cancel=cancel))
        took = time.monotonic() - at["stop"]
        assert took < PROMPTLY_S, f"the call ended {took:.2f} s after the cancel"
        assert server.closed.wait(PROMPTLY_S)  # the server saw the request go away
        assert server.paths().count("/chat/completions") == 1  # not sent again
        assert len({port for _, port, _ in server.requests}) == 1  # kept alive: the stalled call reused it
        server.stall.clear()
        assert engine.chat(q).text == "Christopher Nolan."  # nothing half done is left behind
    finally:
        engine.close()


def test_a_call_cancelled_before_it_starts_sends_nothing(server):
    engine = _engine(server)
    cancel = threading.Event()
    cancel.set()
    try:
        with pytest.raises(Stopped):
            engine.generate("Who directed Interstellar?", cache=CacheHint(cancel=cancel))
        assert server.requests == []
    finally:
        engine.close()


def test_a_cancelled_score_is_stopped_and_does_not_count_as_a_server_without_forced_tokens(server):
    """Scoring stalled on /tokenize is cut; the next score still asks by forced tokens (a cut answer says nothing
    about what the server supports)."""
    engine = _engine(server)
    try:
        server.stall.add("/tokenize")
        cancel = threading.Event()
        at = _stop_when_stalled(server, cancel.set)
        with pytest.raises(Stopped):
            engine.score("Who directed it? <search> ", ["Tiny:", "Big:"], CacheHint(cancel=cancel))
        assert time.monotonic() - at["stop"] < PROMPTLY_S and server.closed.wait(PROMPTLY_S)
        server.stall.clear()
        n = len(server.requests)
        assert engine.score("Who directed it? <search> ", ["Tiny:", "Big:"]) == [-1.0, -1.0]
        sent = server.requests[n:]
        assert any(b.get("allowed_token_ids") for _, _, b in sent) and not any(b.get("echo") for _, _, b in sent)
    finally:
        engine.close()


# ---------------------------------------------------------------------- a session through the Studio

def _studio(tmp_path, policy: Policy, engines) -> Studio:
    pool = fake_pool()
    return Studio(store=TraceStore(str(tmp_path / "s.sqlite")), policies=PolicyBook(default=policy.name,
                                                                                    policies=[policy]),
                  pools={pool.name: pool}, default_pool=pool.name, engines=engines)


def _run_and_stop(studio: Studio, server: StallingServer) -> tuple[str, float]:
    """Run one session through the Studio, press Stop 0.3 s into the stalled call; (session id, seconds from the
    stop to the session's end)."""
    at = _stop_when_stalled(server, lambda: studio.stop("visitor"))
    sid = ""
    for ev in studio.events("visitor", "Who directed Interstellar?", 0.0):
        if ev.kind == "progress" and not ev.text_kind:
            sid = ev.text
    ended = time.monotonic()
    assert "stop" in at, "the stalled call never reached the server"
    return sid, ended - at["stop"]


def test_a_stop_during_a_candidate_call_with_no_first_token_ends_the_session_at_once(server, tmp_path):
    endpoint = _engine(server)
    policy = FakeEngine(guided_script(["I need the director."], ["Who directed Interstellar?"], "Nolan"),
                        scores=routes_then_answers(1, NAMES))
    guided = Policy(name="fake-guided", engine="llamacpp", model="fake:policy", mode="guided")
    server.stall.add("/chat/completions")
    studio = _studio(tmp_path, guided, lambda spec: policy if spec.model == "fake:policy" else endpoint)
    try:
        sid, took = _run_and_stop(studio, server)
        assert took < PROMPTLY_S, f"the session ended {took:.2f} s after the stop"
        assert server.closed.wait(PROMPTLY_S)  # the candidate's request was cut, not left to time out
        row = studio.store.get_session(sid)
        steps = studio.store.load_steps(sid)
        assert row["status"] == "stopped"
        assert [(s.kind, s.status) for s in steps] == [("think", "ok"), ("route", "ok"), ("error", "stopped")]
        route = steps[1]
        assert "call_stopped" in route.flags and "stopped" in route.response and route.output_tokens == 0
        assert steps[-1].error == "stopped by the user"
    finally:
        endpoint.close()


@pytest.mark.parametrize("mode", ["guided", "free"])
def test_a_stop_while_the_router_policy_waits_on_a_stalled_endpoint_ends_the_session_at_once(server, tmp_path, mode):
    """The policy behind an endpoint renders its prompt (/tokenize, /detokenize answer), then its first generation
    stalls: the stop cuts it and the session ends with the stopped step in place of the think it was writing."""
    endpoint = _engine(server)
    remote = Policy(name="remote", engine="openai", model="stalled", base_url=server.base_url, mode=mode)
    server.stall.add("/completions")
    studio = _studio(tmp_path, remote, lambda spec: endpoint if spec.role == "router" else FakeEngine(reply="r"))
    try:
        sid, took = _run_and_stop(studio, server)
        assert took < PROMPTLY_S, f"the session ended {took:.2f} s after the stop"
        assert server.closed.wait(PROMPTLY_S)
        assert studio.store.get_session(sid)["status"] == "stopped"
        steps = studio.store.load_steps(sid)
        assert [(s.index, s.kind, s.status) for s in steps] == [(0, "error", "stopped")]
        assert server.paths().count("/completions") == 1
    finally:
        endpoint.close()


# ---------------------------------------------------------------------- llama.cpp

class _SetAfter(threading.Event):
    """A cancel signal that reads as set from its `n`-th look on: the engine is cut at a known point of its work."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n, self.looks = n, 0

    def is_set(self) -> bool:
        self.looks += 1
        return self.looks >= self.n or super().is_set()


def test_llamacpp_stops_a_cancelled_call_before_its_first_token_and_keeps_the_shared_prefix(smol):
    """Cut between the shared prefix's prefill and the question's: Stopped, and the next call reuses the prefix (it is
    not built again) and answers as a call that was never cut."""
    head = "You are a careful assistant. Answer in a few words. " * 8
    msgs = [{"role": "user", "content": head + "Question: What is the capital of France?"}]
    want = smol.chat(msgs, max_tokens=8, cache=CacheHint(prefix=head))
    smol.chat(msgs, max_tokens=1, cache=CacheHint(prefix="Some other instructions. " * 8))  # another prefix now
    builds = smol.stats()["prefix_builds"]
    cancel = _SetAfter(2)  # its first look is before the prefix's one chunk, the second before the question's
    with pytest.raises(Stopped):
        smol.chat(msgs, max_tokens=8, cache=CacheHint(prefix=head, cancel=cancel))
    assert cancel.looks == 2 and smol.stats()["prefix_builds"] == builds + 1
    c = smol.chat(msgs, max_tokens=8, cache=CacheHint(prefix=head))
    assert smol.stats()["prefix_builds"] == builds + 1 and c.cached_tokens > 0  # the prefix survived the cut
    assert c.text == want.text
