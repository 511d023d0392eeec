"""Servers that tests start and always stop: the Studio's web app in this process, and a server in a child
process (Phoenix, `app.py serve-api`) waited for on its health URL.

Both listen on 127.0.0.1 only, at a free port, and are closed when the `with` block ends, failed or not.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def served_studio(studio: Any, **launch_kw: Any) -> Iterator[str]:
    """The Studio's web app (ui.app.build + launch) on a free port; yields its base URL without a trailing /."""
    from ui.app import build, launch
    demo = build(studio)
    _, url, _ = launch(demo, server_name="127.0.0.1", server_port=None, prevent_thread_lock=True, quiet=True,
                       **launch_kw)
    try:
        yield url.rstrip("/")
    finally:
        demo.close()


@contextmanager
def child_server(cmd: Sequence[str], health_url: str, log_path: Path, *, env: dict[str, str] | None = None,
                 cwd: Path | None = None, timeout_s: float = 180) -> Iterator[subprocess.Popen]:
    """Start `cmd` in its own process group, wait until `health_url` answers 200, and stop the whole group
    afterwards. The test fails with the log's tail if the process exits first or `timeout_s` passes."""
    log = open(log_path, "w")
    proc = subprocess.Popen(list(cmd), env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if proc.poll() is not None:
                pytest.fail(f"{cmd[0]} exited ({proc.returncode}) before {health_url} answered:\n"
                            f"{log_path.read_text()[-2000:]}")
            try:
                if httpx.get(health_url, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"{health_url} did not answer within {timeout_s:.0f} s:\n{log_path.read_text()[-2000:]}")
            time.sleep(0.5)
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
        log.close()
