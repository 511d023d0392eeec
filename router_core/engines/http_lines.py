"""Connections an engine call can cut: the HTTP engine's lines and calls, apart from its protocol.

Why a module of its own: a stop must reach a request that has not received a byte yet, and httpx gives no way to
end a blocked read from another thread. Each request therefore runs on a connection of its own whose socket is
known (`Line`: an httpx client limited to one connection, its socket caught by httpcore's trace hook), and a
watcher thread per cancellable call (`Call`) shuts that socket down when the cancel signal is set: shutting a
socket down wakes the blocked reader (closing it does not), and the server sees the request go away. `Lines` keeps
idle connections for the next request and never reuses one that was cut.
"""
from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
from typing import Any, Iterator

import httpx

from .base import Stopped

IDLE_LINES = 16  # connections kept open between calls (scoring sends up to 16 requests at once)
# httpcore's trace events that hand over a new connection's stream (TCP, then the TLS stream that replaces it)
_OPENED = (".connect_tcp.complete", ".start_tls.complete", ".connect_unix_socket.complete")


class Line:
    """One keep-alive connection (an httpx client limited to one) whose socket is known, so that another thread can
    cut the request on it: closing a socket does not wake a thread blocked reading it, shutting it down does."""

    def __init__(self, timeout: httpx.Timeout, verify: ssl.SSLContext) -> None:
        self.client = httpx.Client(timeout=timeout, verify=verify,
                                   limits=httpx.Limits(max_connections=1, max_keepalive_connections=1))
        self.sock: socket.socket | None = None
        self.cut = False

    def note(self, event: str, info: dict[str, Any]) -> None:
        """httpcore's `trace` hook: keep the socket of each connection the line opens; one opened after the line was
        cut (it was still connecting) is shut down at once."""
        if event.endswith(_OPENED) and info.get("return_value") is not None:
            self.sock = info["return_value"].get_extra_info("socket")
            if self.cut:
                self.shut()

    def shut(self) -> None:
        """End the line's request now; the line is closed once its request lets go of it."""
        self.cut = True
        sock = self.sock
        if sock is not None:
            with contextlib.suppress(OSError):  # already closed: nothing left to end
                socket.socket.shutdown(sock, socket.SHUT_RDWR)  # the plain socket's, under TLS too

    def close(self) -> None:
        self.client.close()


class Call:
    """One engine call and its cancel signal: once that is set, no request of the call starts and each one in flight
    has its line shut (a watcher thread waits for the signal while the call lasts)."""

    def __init__(self, cancel: threading.Event | None) -> None:
        self.cancel = cancel
        self.cut = False  # a line was shut under a request of this call: what came back may be short
        self._lines: set[Line] = set()
        self._lock = threading.Lock()
        self._over = False
        if cancel is not None:
            threading.Thread(target=self._watch, name="http-cancel", daemon=True).start()

    def _watch(self) -> None:
        assert self.cancel is not None
        while not self._over:
            if self.cancel.wait(0.25):
                with self._lock:
                    if not self._over:
                        self.cut = self.cut or bool(self._lines)
                        for line in self._lines:
                            line.shut()
                return

    def cancelled(self) -> bool:
        return self.cancel is not None and self.cancel.is_set()

    def check(self) -> None:
        if self.cancelled():
            raise Stopped("the call was cancelled")

    def sleep(self, seconds: float) -> None:
        """A pause between attempts that a cancel ends."""
        if self.cancel is None:
            time.sleep(seconds)
        elif self.cancel.wait(seconds):
            self.check()

    @contextlib.contextmanager
    def on(self, line: Line) -> Iterator[None]:
        """While a request of this call runs on `line` (refused once the call is cancelled)."""
        with self._lock:
            self.check()
            self._lines.add(line)
        try:
            yield
        finally:
            with self._lock:
                self._lines.discard(line)

    def end(self) -> None:
        with self._lock:
            self._over = True


class Lines:
    """The idle connections of one engine, and a request on one of them that a `Call` can cut."""

    def __init__(self, timeout: httpx.Timeout) -> None:
        self._timeout = timeout
        self._verify = httpx.create_ssl_context()  # shared by the lines: loading the CA bundle takes a while
        self._idle: list[Line] = []
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def request(self, url: str, payload: dict[str, Any], headers: dict[str, str], call: Call
                ) -> Iterator[httpx.Response]:
        """A streamed POST on an idle line (or a new one) that `call` can cut; the line is kept for the next request
        unless it was cut."""
        call.check()
        with self._lock:
            line = self._idle.pop() if self._idle else Line(self._timeout, self._verify)
        try:
            with call.on(line), line.client.stream("POST", url, headers=headers, json=payload,
                                                   extensions={"trace": line.note}) as resp:
                yield resp
        finally:
            with self._lock:
                keep = not line.cut and len(self._idle) < IDLE_LINES
                if keep:
                    self._idle.append(line)
            if not keep:
                line.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for line in idle:
            line.close()
