"""The shared instruction prefix kept in a file per machine (router_core/engines/prefix_state.py), on the shipped
0.5B: a second process restores it instead of computing it and gives the very same numbers; a corrupt or stale file
is never used — the prefix is computed again, the file rewritten, and one line says so."""
from __future__ import annotations

import json
import logging

import pytest
from conftest import QWEN

from router_core.engines import CacheHint, load_engine

pytestmark = pytest.mark.model

PREFIX = ("You route questions to language models. Think first, then ask one model a sub-question in <search>, "
          "read its reply, and answer in <answer> when you know.\n") * 5
QUESTION = "Question: What is the capital of the country where the Eiffel Tower stands?\n"


@pytest.fixture()
def states(tmp_path, monkeypatch):
    monkeypatch.setenv("ROUTER_STUDIO_PREFIX_STATES", str(tmp_path / "states"))
    return tmp_path / "states"


def _run(engine) -> tuple[str, list[float], dict[str, float]]:
    hint = CacheHint(prefix=PREFIX, session="s")
    text = engine.generate(PREFIX + QUESTION, max_tokens=12, cache=hint).text
    scores = engine.score(PREFIX + QUESTION + text, [" <search>", " <answer>"], cache=hint)
    stats = engine.stats()
    engine.close()
    return text, scores, stats


def test_a_new_process_restores_the_prefix_and_computes_the_same_numbers(states, monkeypatch):
    first = _run(load_engine(QWEN))
    files = list(states.glob("*.state"))
    assert first[2]["prefix_builds"] == 1 and first[2]["prefix_loads"] == 0 and len(files) == 1
    second = _run(load_engine(QWEN))
    assert second[2]["prefix_builds"] == 0 and second[2]["prefix_loads"] == 1
    assert second[2]["prefill_tokens"] < first[2]["prefill_tokens"] / 2  # only the question and what follows
    assert second[:2] == first[:2]  # the same text and, bit for bit, the same scores
    monkeypatch.setenv("ROUTER_STUDIO_PREFIX_STATES", "off")
    off = _run(load_engine(QWEN))
    assert off[2]["prefix_loads"] == 0 and off[:2] == first[:2]


def _break(path, how: str) -> None:
    raw = path.read_bytes()
    head, _, payload = raw.partition(b"\n")
    if how == "payload":
        payload = payload[:100] + bytes([payload[100] ^ 0xFF]) + payload[101:]
    elif how == "truncated":
        payload = payload[: len(payload) // 2]
    elif how == "header":
        head = b"{not json"
    elif how == "stale":
        h = json.loads(head)
        h["llama_cpp"] = "0.0.1"
        head = json.dumps(h).encode()
    path.write_bytes(head + b"\n" + payload)


@pytest.mark.parametrize("how, said", [("payload", "corrupt"), ("truncated", "corrupt"), ("header", "corrupt"),
                                       ("stale", "stale (llama_cpp changed)")])
def test_a_corrupt_or_stale_state_is_never_used_and_is_rebuilt_with_one_line(states, caplog, how, said):
    first = _run(load_engine(QWEN))
    (path,) = states.glob("*.state")
    _break(path, how)
    with caplog.at_level(logging.WARNING, logger="router_studio.prefix_state"):
        again = _run(load_engine(QWEN))
    notes = [r.getMessage() for r in caplog.records if r.name == "router_studio.prefix_state"]
    assert len(notes) == 1 and said in notes[0] and "\n" not in notes[0], notes
    assert again[2]["prefix_loads"] == 0 and again[2]["prefix_builds"] == 1
    assert again[:2] == first[:2]
    third = _run(load_engine(QWEN))  # the file was rewritten: the next process uses it
    assert third[2]["prefix_loads"] == 1 and third[:2] == first[:2]
