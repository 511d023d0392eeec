"""Admission: sessions on server engines run several at once, in-process ones one at a time, the page and /v1 share
one fair line, and an API request that cannot get a place within its bound wait gets 429 with nothing stored.
Scripted engines; servers listen on 127.0.0.1; every wait is bounded."""
from __future__ import annotations

import threading
import time

import httpx
import pytest
from support.fake_engine import FakeEngine, fake_pool, fake_provider, one_hop_script, routes_then_answers
from support.servers import served_studio

from router_core.policy import Policy, PolicyBook
from router_core.pool import Pool
from storage import TraceStore
from ui.admission import Admission, Busy, Lane
from ui.api import Gate, routes
from ui.cli import CliError, parse
from ui.studio import Studio

NAMES = {"Tiny": -2.0, "Mid": -1.0, "Big": -0.3}
URL = "http://127.0.0.1:9/v1"  # never called: the fake provider answers for every spec
SERVED = Policy(name="served", engine="openai", model="fake:policy", base_url=URL, mode="guided")
LOCAL = Policy(name="local", engine="llamacpp", model="fake:policy", mode="guided")
Q = "Who directed Interstellar, and where was he born?"


def served_pool() -> Pool:
    """The fake pool with every candidate behind a server (the openai engine)."""
    pool = fake_pool()
    models = [m.model_copy(update={"engine": "openai", "base_url": URL}) for m in pool.models]
    return pool.model_copy(update={"name": "served-three", "models": models})


# ---------------------------------------------------------------------- the line itself

def test_a_lane_runs_at_most_its_slots_and_admits_the_next_when_one_leaves():
    lane = Lane("t", 2)
    a, b, c = lane.join("x"), lane.join("y"), lane.join("z")
    assert (a.admitted, b.admitted, c.admitted) == (True, True, False)
    assert (lane.running, lane.waiting, c.ahead) == (2, 1, 2)
    assert not c.wait(0.05)
    b.leave()
    assert c.wait(1) and lane.running == 2 and lane.waiting == 0
    b.leave()  # twice is harmless
    assert lane.running == 2


def test_a_freed_place_goes_to_the_client_with_fewest_sessions_running_not_the_first_in_line():
    lane = Lane("t", 1)
    first = lane.join("batch")
    queued = [lane.join("batch") for _ in range(3)]
    other = lane.join("visitor")  # came last
    assert other.ahead == 1 and queued[0].ahead == 2
    first.leave()
    # "batch" still holds nothing now, "visitor" holds nothing: equal, so arrival decides → batch's next
    assert queued[0].admitted and not other.admitted
    queued[0].leave()
    assert queued[1].admitted and not other.admitted  # still equal (both 0 running): arrival
    # with a second slot, the client already running loses to one that runs nothing
    lane2 = Lane("t2", 2)
    held = lane2.join("batch")
    lane2.join("batch")  # second slot, batch now runs 2
    waiting_batch = lane2.join("batch")
    waiting_visitor = lane2.join("visitor")
    held.leave()  # batch runs 1, visitor runs 0 → visitor first, though batch's waiter came earlier
    assert waiting_visitor.admitted and not waiting_batch.admitted


def test_leaving_the_line_while_waiting_frees_nothing_and_keeps_the_order():
    lane = Lane("t", 1)
    run = lane.join("a")
    gone, next_ = lane.join("b"), lane.join("c")
    gone.leave()
    assert lane.waiting == 1 and next_.ahead == 1
    run.leave()
    assert next_.admitted and not gone.admitted


def test_a_lane_needs_one_slot():
    with pytest.raises(ValueError, match="at least one session"):
        Lane("t", 0)


# ---------------------------------------------------------------------- sessions through the Studio

def make_studio(tmp_path, policy: FakeEngine, slots: int = 8) -> Studio:
    pool, served = fake_pool(), served_pool()
    return Studio(store=TraceStore(str(tmp_path / "a.sqlite")),
                  policies=PolicyBook(default="served", policies=[SERVED, LOCAL]),
                  pools={pool.name: pool, served.name: served}, default_pool=served.name,
                  engines=fake_provider(policy, default=FakeEngine(reply=lambda q: "Christopher Nolan, London.")),
                  admission=Admission(slots))


class Meeting(FakeEngine):
    """A policy whose first generation in each session (each runs in its own worker thread) waits for the other
    sessions to reach the same point: it only goes on when `n` sessions are inside the rollout at once (a bounded
    wait; a broken barrier fails the session)."""

    def __init__(self, n: int) -> None:
        super().__init__(one_hop_script(), scores=routes_then_answers(1, NAMES))
        self.barrier = threading.Barrier(n, timeout=20)
        self.met: set[int] = set()

    def generate(self, prompt, **kw):
        me = threading.get_ident()
        if me not in self.met:
            self.barrier.wait()
            self.met.add(me)
        return super().generate(prompt, **kw)


class Counting(FakeEngine):
    """A policy that counts how many generations are in flight at once (the most it ever saw)."""

    def __init__(self) -> None:
        super().__init__(one_hop_script(), scores=routes_then_answers(1, NAMES))
        self.now = self.most = 0
        self._count = threading.Lock()

    def generate(self, prompt, **kw):
        with self._count:
            self.now += 1
            self.most = max(self.most, self.now)
        try:
            time.sleep(0.05)
            return super().generate(prompt, **kw)
        finally:
            with self._count:
                self.now -= 1


def run_all(studio: Studio, n: int, policy: str, pool: str) -> list[list]:
    out: list[list] = [[] for _ in range(n)]

    def one(i: int) -> None:
        out[i] = list(studio.events(f"k{i}", Q, 0.0, policy=policy, pool=pool, client=f"c{i}"))
    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return out


def test_sessions_on_server_engines_run_together(tmp_path):
    policy = Meeting(3)
    studio = make_studio(tmp_path, policy, slots=3)
    runs = run_all(studio, 3, "served", "served-three")
    assert len(policy.met) == 3  # all three were inside the rollout at the same moment
    statuses = [studio.store.get_session(ev.text)["status"] for evs in runs for ev in evs
                if ev.kind == "progress" and ev.text]
    assert statuses == ["done"] * 3


def test_sessions_on_in_process_engines_run_one_at_a_time_even_with_free_server_places(tmp_path):
    policy = Counting()
    studio = make_studio(tmp_path, policy, slots=8)
    runs = run_all(studio, 3, "local", "fake-three")
    assert policy.most == 1
    waited = [ev for evs in runs for ev in evs if ev.kind == "progress" and ev.text_kind == "waiting"]
    assert waited and all(ev.index >= 1 for ev in waited)  # the ones that waited were told how many were ahead
    sids = [ev.text for evs in runs for ev in evs if ev.kind == "progress" and ev.text]
    assert len(sids) == 3 and all(studio.store.get_session(s)["status"] == "done" for s in sids)


def test_a_session_past_its_bound_wait_is_busy_and_stores_nothing(tmp_path):
    policy = Counting()
    studio = make_studio(tmp_path, policy, slots=1)
    holder = studio.admission.server.join("someone")  # the one place is taken
    try:
        with pytest.raises(Busy, match="1 session\\(s\\) still ahead"):
            list(studio.events("k", Q, 0.0, client="me", wait_s=0.3))
    finally:
        holder.leave()
    assert studio.admission.server.waiting == 0  # it left the line
    assert studio.store.sessions_frame().empty


def test_stop_while_waiting_leaves_the_line_and_stores_nothing(tmp_path):
    studio = make_studio(tmp_path, Counting(), slots=1)
    holder = studio.admission.server.join("someone")
    events = studio.events("k", Q, 0.0, client="me")
    first = next(events)
    assert first.kind == "progress" and first.text_kind == "waiting" and first.index == 1 and not first.text
    assert studio.stop("k")
    assert list(events) == []
    holder.leave()
    assert studio.store.sessions_frame().empty
    assert studio.admission.server.waiting == 0 and studio.admission.server.running == 0


# ---------------------------------------------------------------------- the API and the page share the line

@pytest.fixture()
def api(tmp_path):
    studio = make_studio(tmp_path, Counting(), slots=1)
    try:
        with served_studio(studio, api=routes(studio, gate=Gate(limit=8), wait_s=0.5)) as url:
            yield url, studio
    finally:
        studio.store.close()


def ask(url: str, timeout: float = 30, who: str = "a") -> httpx.Response:
    return httpx.post(f"{url}/v1/chat/completions", timeout=timeout, headers={"Authorization": f"Bearer {who}"},
                      json={"model": "router", "messages": [{"role": "user", "content": Q}]})


def test_an_api_request_that_finds_the_page_holding_the_place_gets_429_after_its_bound_wait(api):
    url, studio = api
    page = studio.admission.server.join("page:visitor")  # a page session holds the only place
    try:
        r = ask(url)
        assert r.status_code == 429 and r.headers["Retry-After"]
        err = r.json()["error"]
        assert err["code"] == "queue_timeout" and err["type"] == "rate_limit_error"
        assert "1 session(s) still ahead" in err["message"]
        health = httpx.get(f"{url}/health", timeout=10).json()
        assert health["sessions"]["server"] == {"slots": 1, "running": 1, "waiting": 0}
    finally:
        page.leave()
    ok = ask(url)  # the place is free again: the same request runs and is stored
    assert ok.status_code == 200, ok.text
    assert studio.store.get_session(ok.headers["x-router-session-id"])["status"] == "done"
    assert len(studio.store.sessions_frame()) == 1  # the refused request stored nothing


def test_an_api_client_that_gives_up_while_waiting_leaves_the_line(api):
    url, studio = api
    page = studio.admission.server.join("page:visitor")
    try:
        with pytest.raises(httpx.TimeoutException):
            ask(url, timeout=0.2)
        # its place in line is given up once the server notices the client is gone (within its bound wait)
        deadline = time.monotonic() + 5
        while studio.admission.server.waiting and time.monotonic() < deadline:
            time.sleep(0.05)
        assert studio.admission.server.waiting == 0
    finally:
        page.leave()


# ---------------------------------------------------------------------- the flags

def test_max_concurrent_sessions_is_checked_and_belongs_to_the_servers():
    from ui.app import make_studio as from_args
    with pytest.raises(CliError, match="--max-concurrent-sessions: 0 is outside 1..256"):
        from_args(parse(["serve", "--max-concurrent-sessions", "0", "--db", ":memory:"]))
    with pytest.raises(SystemExit):  # `ask` runs one session in this process: the flag is not one of its options
        parse(["ask", "a question", "--max-concurrent-sessions", "4"])
    args = parse(["serve-api", "--max-concurrent-sessions", "3", "--max-queue-wait", "10"])
    assert args.max_concurrent_sessions == "3" and args.max_queue_wait == "10"


def test_the_page_says_how_many_sessions_are_ahead_and_stop_leaves_the_line(tmp_path):
    from ui.live import live_updates
    studio = make_studio(tmp_path, Counting(), slots=1)
    holder = studio.admission.server.join("api:someone")  # an API session holds the one place
    try:
        views = live_updates(studio, "tab-1", Q, "", None, None, 0.0)
        first = next(views)
        assert "waiting for the router: 1 session(s) ahead" in first.status and not first.session_id
        assert studio.stop("tab-1")
        rest = list(views)
        assert all(not v.session_id for v in rest)  # nothing started, so no session to link to
        assert "nothing was run or stored" in rest[-1].status
    finally:
        holder.leave()
    assert studio.store.sessions_frame().empty and studio.admission.server.waiting == 0
