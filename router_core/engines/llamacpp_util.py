"""Small pieces of the llama.cpp engine that hold no engine state: a token's log-probability, the stream's
held-back tail, llama.cpp's stderr silenced while an adapter loads."""
from __future__ import annotations

import contextlib
import os
import threading
from typing import Sequence

import numpy as np


def log_softmax_at(logits: np.ndarray, token: int) -> float:
    m = float(logits.max())
    return float(logits[token] - m - np.log(np.exp(logits - m, dtype=np.float64).sum()))


_STDERR_LOCK = threading.Lock()


@contextlib.contextmanager
def quiet_stderr(on: bool):
    """llama.cpp writes a warning line per adapted matrix to the process's stderr when it loads a LoRA on a base whose
    weights it repacked (168 lines for the shipped adapter; `verbose=False` does not reach them): silenced while the
    model loads (one load at a time, so the real stderr is always the one put back). A failed load still raises
    llama-cpp-python's error; llama.cpp's own lines about it are among those silenced."""
    if not on:
        yield
        return
    with _STDERR_LOCK:
        try:
            saved = os.dup(2)
        except OSError:
            yield
            return
        try:
            with open(os.devnull, "w") as null:
                os.dup2(null.fileno(), 2)
                yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def pending_stop(text: str, stops: Sequence[str]) -> int:
    """Length of the longest end of `text` that is the start of a stop string (held back from the stream)."""
    best = 0
    for s in stops:
        for k in range(min(len(s) - 1, len(text)), best, -1):
            if text.endswith(s[:k]):
                best = k
                break
    return best
