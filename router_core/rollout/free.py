"""The free rollout, for trained Router-R1 checkpoints: the policy writes the protocol itself up to `</search>` /
`</answer>`; the tolerant parser reads it, and where the engine can score, the model name is re-decided with α at
the `<search>` point. No intervention applies: the checkpoint's own behaviour is what is shown."""
from __future__ import annotations

import re
import threading
import time
from typing import TYPE_CHECKING, Iterator

from ..engines import Engine, ScoringUnsupported
from ..protocol import (
    ParsedTurn,
    information_block,
    last_open_action,
    neutralise,
    parse_turn,
    resolve_model,
    unknown_model_information,
)
from ..step import Step
from .state import Rollout

if TYPE_CHECKING:
    from ..loop import OnText, Router


def free(rt: "Router", ro: Rollout, engine: Engine, alpha: float, stop_event: threading.Event | None,
         on_text: "OnText | None") -> Iterator[Step]:
    cfg = rt.config
    scoring = [True]  # the engine can score names (until it says it cannot)
    while True:
        if (s := rt._stopped(ro, stop_event)):
            yield s
            return
        routing = ro.turn < cfg.max_turns
        t0 = time.time()
        stops = ["</search>", "</answer>"] if routing else ["</answer>"]
        c = rt._gen(engine, ro, ro.index, "think", "", stops, cfg.max_new_tokens, on_text)
        text = c.text
        if c.finish_reason == "stop":
            open_tag = last_open_action(text)
            if open_tag:
                text += f"</{open_tag}>"
        turn = parse_turn(text)
        if not routing and turn.search is not None:
            turn.flags.append("format:search_after_limit")
            turn.search = None
        if c.finish_reason == "length":
            turn.flags.append("format:length")
        format_flags = [f for f in turn.flags if f.startswith("format:") and f != "format:no_action"]
        # one think step for the reasoning in this generation
        step = rt._new_step(ro, "think", started_at=t0)
        step.text = neutralise("\n\n".join(turn.thinks))
        step.flags = [f for f in format_flags]
        step.status = "flagged" if step.flags else "ok"
        step.router_input_tokens, step.router_output_tokens = c.input_tokens, c.output_tokens
        yield rt._finish(ro, step)

        if turn.search is not None:
            yield _route(rt, ro, engine, alpha, text, turn, scoring, on_text, stop_event)
            continue
        ro.transcript += text
        if turn.answer is not None:
            step = rt._new_step(ro, "answer", text=neutralise(turn.answer))
            if format_flags:
                step.status, step.flags = "flagged", list(format_flags)
            yield rt._finish(ro, step)
            return
        step = rt._new_step(ro, "error", status="flagged", flags=["format:no_answer"],
                            error="the router stopped without an <answer>")
        yield rt._finish(ro, step)
        return


def _route(rt: "Router", ro: Rollout, engine: Engine, alpha: float, text: str, turn: ParsedTurn,
           scoring: list[bool], on_text: "OnText | None", stop_event: threading.Event | None = None) -> Step:
    """The route step of a search call the policy wrote: the name resolved (and re-decided with α where the engine
    scores), the candidate asked, its reply read."""
    call = turn.search
    # keep the router's own text up to and including its search call
    ro.transcript += text[: _end_of_action(text, "search")] + "\n"
    step = rt._new_step(ro, "route", written_model=call.model, query=neutralise(call.query))
    step.text = neutralise(f"<search> {call.raw.strip()} </search>")
    name = resolve_model(call.model, rt.pool.names)
    reply: str
    if "format:malformed_search" in turn.flags or not call.query:
        step.status, step.flags = "flagged", ["format:malformed_search"]
        reply = ("Error: a search must look like <search> Model-Name: sub-question </search>. "
                 f"Valid models are: {', '.join(rt.pool.names)}.")
    elif name is None:
        step.status, step.flags = "flagged", ["unknown_model"]
        reply = unknown_model_information(call.model, rt.pool.names)
    else:
        if scoring[0]:
            try:
                step.choice = rt._choose(engine, ro.prompt + ro.transcript[: _search_start(ro.transcript)]
                                         + "<search> ", alpha, ro.cache)
                if step.choice.chosen != name:
                    step.flags.append("name_rescored")
                    name = step.choice.chosen
            except ScoringUnsupported:
                scoring[0] = False
        spec = rt.pool.get(name)
        step.request_model = spec.name
        reply = rt.call_candidate(step, spec, call.query,
                                  (lambda piece, i=step.index: on_text(i, "reply", piece)) if on_text else None,
                                  stop_event)
    step.response = neutralise(reply)
    ro.transcript += information_block(reply)
    ro.turn += 1
    return rt._finish(ro, step)


def _end_of_action(text: str, tag: str) -> int:
    m = re.search(rf"<\s*/\s*{tag}\s*>", text, re.IGNORECASE)
    return m.end() if m else len(text)


def _search_start(transcript: str) -> int:
    starts = [m.start() for m in re.finditer(r"<\s*search\s*>", transcript, re.IGNORECASE)]
    return starts[-1] if starts else len(transcript)
