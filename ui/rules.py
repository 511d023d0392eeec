"""Flags and rollout rules in plain words: what a step's flag means, and which rules shaped a session and where.

A step's flags are identifiers (`repeat_climbed`, `format:empty_query`); a presenter reads a few words instead, with
the rule or setting behind them in a tooltip. The words of a rollout rule's flag are the rule's own (its label and
caption in router_core/rollout/), so the card, the lesson caption and this summary say the same thing. No Gradio
here, nor HTML: render.py lays these out.
"""
from __future__ import annotations

from typing import Any, Sequence

from router_core.rollout.registry import BY_FLAG, BY_NAME
from router_core.step import Step

# flags that are not a rollout rule's: what the loop, the parser or the engine noted
OTHER_FLAGS: dict[str, tuple[str, str]] = {
    "repeated_query": ("not sent: a repeat", "the same sub-question was asked before; asking again adds nothing"),
    "unknown_model": ("unknown model name", "the router named a model the pool does not have"),
    "reply_truncated": ("reply cut to length", "run setting reply_max_tokens"),
    "empty_reply": ("empty reply", "the candidate answered nothing"),
    "call_stopped": ("call cut short by a stop", "the session was stopped while this reply was arriving"),
    "tags_in_think": ("tags taken out of the thought", "protocol tags inside a think block are shown as text"),
    "think_truncated": ("thought cut at its token limit", "run setting think_tokens"),
    "name_rescored": ("α changed the model the router wrote", "free rollout: the name is re-decided with α"),
}
FORMAT_WORDS = {"empty_query": "empty sub-question", "empty_answer": "empty answer", "no_answer": "no answer",
                "malformed_search": "malformed search call", "length": "stopped at the token limit",
                "search_after_limit": "search after the last route turn", "empty_think": "empty think block",
                "router_wrote_information": "router wrote its own information block",
                "extra_action": "more than one action in a turn"}


def flag_words(flag: str) -> tuple[str, str]:
    """(a few plain words, the tooltip naming the rule or setting behind them) for one step flag."""
    if flag in BY_FLAG:
        iv = BY_FLAG[flag]
        return iv.label, f"studio rule {iv.name} (run setting {', '.join(iv.switched_by)})"
    if flag in OTHER_FLAGS:
        return OTHER_FLAGS[flag]
    if flag.startswith("format:"):
        what = flag.split(":", 1)[1]
        return f"format error: {FORMAT_WORDS.get(what, what.replace('_', ' '))}", "the router broke the protocol"
    if flag.startswith("reused:"):
        return "reused from an earlier run", f"the candidate call was reused from session {flag.split(':', 1)[1]}"
    return flag.replace("_", " "), flag


def words(identifier: str) -> str:
    """A stored identifier (a failure kind, an annotation label) as words: `wrong_fact` → `wrong fact`."""
    return identifier.replace("_", " ")


def word_choices(identifiers: Sequence[str], blank: bool = False) -> list[tuple[str, str]]:
    """Drop-down choices that show words and give back the identifier."""
    return ([("", "")] if blank else []) + [(words(i), i) for i in identifiers]


def flags_text(flags: Sequence[str]) -> str:
    """Flags as plain words, for titles and the terminal."""
    return ", ".join(flag_words(f)[0] for f in flags)


def rules_used(session: dict[str, Any], steps: Sequence[Step]) -> list[dict[str, Any]]:
    """The rollout rules of a session: each rule on (from the run settings it recorded; for an older session, each
    rule whose flag a step carries), what it does, and the steps where it acted."""
    settings = session.get("settings") or {}
    names = [n for n in settings.get("interventions") or [] if n in BY_NAME]
    acted: dict[str, list[int]] = {}
    for s in steps:
        for f in s.flags:
            if f in BY_FLAG:
                acted.setdefault(BY_FLAG[f].name, []).append(s.index)
    names += [n for n in acted if n not in names]
    return [{"name": n, "label": BY_NAME[n].label, "caption": BY_NAME[n].caption, "steps": acted.get(n, [])}
            for n in names]
