"""Who runs a session now and who waits: a fair line in front of the engines, shared by the page and the API.

A deployment has two lanes. Sessions whose router policy and candidates are all servers (the `openai` engine: a
vLLM server, a hosted API) run up to `slots` at once — the servers batch them. A session that touches an
in-process engine (llama.cpp, transformers, in-process vLLM) takes the one place of the local lane: those
engines are not re-entrant and a small CPU gains nothing from two rollouts sharing it.

Fair, not first-come: when a place frees, it goes to the waiting client that has the fewest sessions running
(then to whoever came first), so one visitor's batch cannot hold the router while another visitor waits.
Gradio-free and SQL-free, so the page, the API and the tests share one implementation.
"""
from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, field


class Busy(Exception):
    """No place freed within the caller's bound wait; nothing was started."""


@dataclass(eq=False)
class Place:
    """One session's place in a lane: waiting until `admitted`, then running until `leave()`."""

    lane: "Lane"
    client: str
    seq: int
    admitted: bool = False
    left: bool = False
    since: float = field(default_factory=time.monotonic)

    def wait(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for a place to run; True once admitted."""
        return self.lane._wait(self, timeout)

    @property
    def ahead(self) -> int:
        """Sessions that run or will run before this one (those running plus waiters chosen first)."""
        return self.lane._ahead(self)

    def leave(self) -> None:
        """Give the place back (admitted) or stop waiting; safe to call more than once."""
        self.lane._leave(self)


class Lane:
    """A fair line with `slots` places to run."""

    def __init__(self, name: str, slots: int) -> None:
        if slots < 1:
            raise ValueError(f"{name}: at least one session must be able to run (got {slots})")
        self.name, self.slots = name, slots
        self._cv = threading.Condition()
        self._running: dict[str, int] = {}  # client → sessions running
        self._waiting: list[Place] = []
        self._seq = itertools.count()

    @property
    def running(self) -> int:
        with self._cv:
            return sum(self._running.values())

    @property
    def waiting(self) -> int:
        with self._cv:
            return len(self._waiting)

    def join(self, client: str) -> Place:
        """Enter the line; admitted at once when a place is free and nobody waits."""
        with self._cv:
            place = Place(self, client, next(self._seq))
            self._waiting.append(place)
            self._admit()
            return place

    def _order(self) -> list[Place]:
        """Waiters in the order they will be admitted: fewest running for their client first, then arrival."""
        return sorted(self._waiting, key=lambda p: (self._running.get(p.client, 0), p.seq))

    def _admit(self) -> None:
        # called with the condition held: fill free places in fair order, then wake the waiters to look
        while self._waiting and sum(self._running.values()) < self.slots:
            chosen = self._order()[0]
            self._waiting.remove(chosen)
            chosen.admitted = True
            self._running[chosen.client] = self._running.get(chosen.client, 0) + 1
        self._cv.notify_all()

    def _wait(self, place: Place, timeout: float) -> bool:
        with self._cv:
            if not place.admitted and not place.left:
                self._cv.wait_for(lambda: place.admitted or place.left, timeout=max(0.0, timeout))
            return place.admitted and not place.left

    def _ahead(self, place: Place) -> int:
        with self._cv:
            if place.admitted or place.left:
                return 0
            order = self._order()
            return sum(self._running.values()) + (order.index(place) if place in order else 0)

    def _leave(self, place: Place) -> None:
        with self._cv:
            if place.left:
                return
            place.left = True
            if place.admitted:
                n = self._running.get(place.client, 1) - 1
                if n > 0:
                    self._running[place.client] = n
                else:
                    self._running.pop(place.client, None)
            elif place in self._waiting:
                self._waiting.remove(place)
            self._admit()


SERVER_SLOTS = 8  # default sessions at once on server engines: what a small vLLM server batches without queueing


@dataclass
class Admission:
    """The two lanes of a deployment (see the module's docstring)."""

    server_slots: int = SERVER_SLOTS
    local: Lane = field(init=False)
    server: Lane = field(init=False)

    def __post_init__(self) -> None:
        self.local = Lane("in-process engines", 1)
        self.server = Lane("server engines", self.server_slots)

    def lane(self, in_process: bool) -> Lane:
        return self.local if in_process else self.server

    def state(self) -> dict[str, dict[str, int]]:
        """Running and waiting per lane, for /health."""
        return {name: {"slots": lane.slots, "running": lane.running, "waiting": lane.waiting}
                for name, lane in (("local", self.local), ("server", self.server))}
