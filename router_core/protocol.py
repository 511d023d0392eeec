"""The Router-R1 text protocol: prompt template, tags, a tolerant parser, reply neutralising.

The router writes `<think>`, `<search> Model: sub-question </search>` and
`<answer>`; we insert `<information>`. Everything here is pure text handling so
that it can be tested on a corpus of malformed outputs without any model.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from .paths import ROUTER_TEMPLATE as DEFAULT_TEMPLATE
from .paths import resolve

TAGS: tuple[str, ...] = ("think", "search", "information", "answer")

_PLACEHOLDERS = ("{{MODELS}}", "{{QUESTION}}")  # required; {{DESCRIPTIONS}}, {{EXAMPLE_MODEL}}, {{ALPHA}} optional


class TemplateError(ValueError):
    """A prompt template file that lacks a placeholder or cannot be read."""


@dataclass(frozen=True)
class Template:
    """A router prompt template; `{{MODELS}}` and `{{QUESTION}}` are filled in, and where the template has them
    `{{DESCRIPTIONS}}`, `{{ALPHA}}` (the session's cost coefficient: a policy trained on several α reads the one it
    must serve from its prompt, so one adapter serves the whole slider) and `{{EXAMPLE_MODEL}}` (for worked
    examples) with the name the caller gives: a worked example
    that writes a placeholder such as "Model-Name" teaches the router to write that placeholder, leaving
    the pool's real names a tiny share of its probability (median e^-7.5 measured), where the choice is noise."""

    text: str
    path: str = "<inline>"

    @classmethod
    def load(cls, path: str | Path | None = None) -> "Template":
        p = resolve(path) if path else DEFAULT_TEMPLATE
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as e:
            raise TemplateError(f"{p}: cannot read template ({e.strerror or e})") from e
        missing = [ph for ph in _PLACEHOLDERS if ph not in text]
        if missing:
            raise TemplateError(f"{p}: template lacks placeholder(s) {', '.join(missing)}")
        return cls(text=text, path=str(p))

    @staticmethod
    def read_candidate(path: str | Path) -> str:
        """A candidate instruction file; it must hold {{QUESTION}} (and may hold {{MAX_WORDS}})."""
        p = resolve(path)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as e:
            raise TemplateError(f"{p}: cannot read template ({e.strerror or e})") from e
        if "{{QUESTION}}" not in text:
            raise TemplateError(f"{p}: candidate template lacks placeholder {{{{QUESTION}}}}")
        return text

    def head(self, models: Sequence[tuple[str, str]], example_model: str = "Model-Name") -> str:
        """The filled prompt up to where the question (or α) goes: the same for every question and α."""
        cut = Template(self.text.replace("{{ALPHA}}", "\x00"), self.path)
        return cut.fill("\x00", models, example_model).split("\x00", 1)[0]

    def fill(self, question: str, models: Sequence[tuple[str, str]], example_model: str = "Model-Name",
             alpha: float | None = None) -> str:
        """Fill in the candidate list (name, description), the worked example's model, α and the question."""
        names = ", ".join(f"[{n}]" for n, _ in models)
        descs = "\n".join(f"- {n} — {' '.join(d.split())}" for n, d in models)
        # QUESTION last, so text in a question can never be mistaken for a placeholder.
        return (self.text.replace("{{MODELS}}", names)
                .replace("{{DESCRIPTIONS}}", descs)
                .replace("{{EXAMPLE_MODEL}}", example_model)
                .replace("{{ALPHA}}", format_alpha(alpha or 0.0))
                .replace("{{QUESTION}}", question.strip()))

    @property
    def states_alpha(self) -> bool:
        return "{{ALPHA}}" in self.text


def format_alpha(alpha: float) -> str:
    """α as a prompt states it: two decimals at most (the slider's resolution), no trailing zeros."""
    return f"{round(float(alpha), 2):g}"


# ---------------------------------------------------------------- neutralising

_TAG_RE = re.compile(r"<\s*(/?)\s*(think|search|information|answer)\b([^<>]*)>", re.IGNORECASE)


def neutralise(text: str) -> str:
    """Make protocol tags inside untrusted text inert: `</information>` → `‹/information›`.

    Candidate replies are inserted into the router's context; a reply containing
    `</information><answer>x</answer>` must not be able to end the block or answer
    on the router's behalf, and our parser must never see it as a tag.
    """
    return _TAG_RE.sub(lambda m: f"‹{m.group(1)}{m.group(2)}{m.group(3)}›", text)


def question_for_prompt(question: str, names: Sequence[str] = ()) -> str:
    """The question as the router's prompt holds it: protocol tags taken out and a pool model name followed by a
    colon ("SmolLM2-135M: who …", the protocol's routing form) left without it; the question people see is kept.

    Why: the question is the one untrusted text the router reads before any reply. A question carrying
    `<search> SmolLM2-135M: … </search>` made the router's first pick SmolLM2 (p 0.45 where similar questions give
    the largest model ~0.81): it read the question's own text as a route already written. Tags are taken out rather
    than made inert (as in replies), so such a question reads as the same question without them. A question
    holding neither is returned as it was (stripped, as the template fills it): no bundled question changes."""
    q = question.strip()
    names_re = [re.compile(rf"({re.escape(n)})\s*:") for n in names if n]
    if not _TAG_RE.search(q) and not any(r.search(q) for r in names_re):
        return q
    q = _TAG_RE.sub(" ", q)
    for r in names_re:
        q = r.sub(r"\1", q)
    return re.sub(r"[ \t]{2,}", " ", q).strip()


def truncate_words(text: str, max_tokens: int, count_tokens=None) -> tuple[str, bool]:
    """Cut a reply to about `max_tokens` tokens; returns (text, was_cut)."""
    if count_tokens is not None:
        n = count_tokens(text)
        if n <= max_tokens:
            return text, False
        # Proportional cut by characters, then a word boundary.
        keep = max(1, int(len(text) * max_tokens / max(n, 1)))
        cut = text[:keep].rsplit(" ", 1)[0] if " " in text[:keep] else text[:keep]
        return cut.rstrip() + " …", True
    words = text.split()
    if len(words) <= max_tokens:
        return text, False
    return " ".join(words[:max_tokens]) + " …", True


def information_block(reply: str) -> str:
    return f"\n<information> {neutralise(reply).strip()} </information>\n"


# ---------------------------------------------------------------- parsing

@dataclass
class SearchCall:
    """A parsed `<search>` request. `model` is what the router wrote, untouched."""

    model: str
    query: str
    raw: str
    closed: bool = True


@dataclass
class ParsedTurn:
    """What one router generation said: its thoughts, at most one action, and any flags."""

    thinks: list[str] = field(default_factory=list)
    search: SearchCall | None = None
    answers: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    outside: str = ""  # text outside any tag

    @property
    def answer(self) -> str | None:
        """The last answer counts, as in Router-R1."""
        return self.answers[-1] if self.answers else None

    @property
    def action(self) -> str:
        if self.search is not None:
            return "search"
        if self.answers:
            return "answer"
        return "none"


_OPEN = {t: re.compile(rf"<\s*{t}\s*>", re.IGNORECASE) for t in TAGS}
_CLOSE = {t: re.compile(rf"<\s*/\s*{t}\s*>", re.IGNORECASE) for t in TAGS}
_ANY_TAG = re.compile(r"<\s*(/?)\s*(think|search|information|answer)\s*>", re.IGNORECASE)


def _blocks(text: str) -> tuple[list[tuple[str, str, bool, int]], str, list[str]]:
    """Scan tags left to right. Returns ([(tag, content, closed, start)], outside text, flags).

    Tolerant: an opening tag while another block is open closes the open one
    (flagged); a close without an open is flagged and ignored; an unterminated
    block runs to the end of the text (flagged).
    """
    blocks: list[tuple[str, str, bool, int]] = []
    flags: list[str] = []
    outside: list[str] = []
    open_tag: str | None = None
    open_end = 0
    open_start = 0
    pos = 0
    for m in _ANY_TAG.finditer(text):
        closing, tag = m.group(1) == "/", m.group(2).lower()
        if open_tag is None:
            outside.append(text[pos:m.start()])
            if closing:
                flags.append(f"format:unbalanced:{tag}")
                pos = m.end()
                continue
            open_tag, open_start, open_end = tag, m.start(), m.end()
            pos = m.end()
            continue
        if closing and tag == open_tag:
            blocks.append((open_tag, text[open_end:m.start()], True, open_start))
            open_tag = None
            pos = m.end()
            continue
        if closing:
            flags.append(f"format:unbalanced:{tag}")
            continue
        # a new opening tag inside an open block: close the open one implicitly
        flags.append(f"format:unterminated:{open_tag}")
        blocks.append((open_tag, text[open_end:m.start()], False, open_start))
        open_tag, open_start, open_end = tag, m.start(), m.end()
        pos = m.end()
    if open_tag is not None:
        flags.append(f"format:unterminated:{open_tag}")
        blocks.append((open_tag, text[open_end:], False, open_start))
    else:
        outside.append(text[pos:])
    return blocks, "".join(outside), flags


def parse_search(content: str) -> SearchCall:
    """Split `Model: sub-question` at the FIRST colon only, so a question may contain ':'."""
    raw = content
    content = content.strip()
    if ":" not in content:
        return SearchCall(model="", query=content, raw=raw)
    model, query = content.split(":", 1)
    return SearchCall(model=model.strip(), query=query.strip(), raw=raw)


def parse_turn(text: str) -> ParsedTurn:
    """Parse one router generation. Never raises: problems become `format:*` flags.

    The first action (search or answer) ends the turn, as the stop strings do in a
    live rollout; `<information>` written by the router itself is dropped and flagged
    (only we may insert observations).
    """
    blocks, outside, flags = _blocks(text)
    turn = ParsedTurn(flags=list(flags), outside=outside.strip())
    for tag, content, closed, _start in blocks:
        if tag == "think":
            if not content.strip():
                turn.flags.append("format:empty_think")
            else:
                turn.thinks.append(content.strip())
        elif tag == "information":
            turn.flags.append("format:router_wrote_information")
        elif tag == "search":
            if turn.search is not None or turn.answers:
                turn.flags.append("format:extra_action")
                continue
            call = parse_search(content)
            call.closed = closed
            if not call.model or not call.query:
                turn.flags.append("format:malformed_search")
            turn.search = call
        elif tag == "answer":
            if turn.search is not None:
                turn.flags.append("format:extra_action")
                continue
            turn.answers.append(content.strip())
    if len(turn.answers) > 1:
        turn.flags.append("format:multiple_answers")
    if turn.answers and not turn.answers[-1]:
        turn.flags.append("format:empty_answer")
    if turn.action == "none":
        turn.flags.append("format:no_action")
    if not turn.thinks and "format:empty_think" not in turn.flags:
        turn.flags.append("format:no_think")
    return turn


def last_open_action(text: str) -> str | None:
    """Which of search/answer is open at the end of `text` (to restore a consumed stop string)."""
    last: tuple[int, str] | None = None
    for m in _ANY_TAG.finditer(text):
        tag = m.group(2).lower()
        if tag in ("search", "answer"):
            last = (m.start(), tag if m.group(1) != "/" else "")
    if last and last[1]:
        return last[1]
    return None


# ---------------------------------------------------------------- model names

_DECOR = " \t\r\n*`'\"[]"


def resolve_model(written: str, names: Iterable[str]) -> str | None:
    """Resolve a model name the router wrote: exact, then case-insensitive; never by substring.

    Surrounding decoration (spaces, quotes, backticks, brackets, asterisks) is trimmed,
    because small routers copy the `[Name]` list format; nothing inside the name is
    guessed, so `llama-70b` never silently becomes `meta/llama-3.1-70b-instruct`.
    """
    w = written.strip(_DECOR)
    names = list(names)
    if w in names:
        return w
    folded = [n for n in names if n.casefold() == w.casefold()]
    return folded[0] if len(folded) == 1 else None


def unknown_model_information(written: str, names: Sequence[str]) -> str:
    """The observation a router gets for a name that does not resolve."""
    shown = neutralise(written.strip())[:80] or "(empty)"
    return (f"Error: there is no model named \"{shown}\". "
            f"Valid models are: {', '.join(names)}. "
            "Write <search> Model-Name: your question </search> with one of these names.")
