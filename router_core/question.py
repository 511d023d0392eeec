"""What counts as a question the router will take, checked in one place for the page, the API and the CLI.

Why one rule: a question is written into the router's prompt whole, so one that is too long for the policy's
context, or that carries a NUL or broken UTF-8, fails late and stores a session nobody can open. The page once took
a 5,000,000-character question the API and the CLI refused.
"""
from __future__ import annotations

QUESTION_MAX_CHARS = 4000   # a question longer than this is refused (the router prompt must fit its context)


def question_problem(text: str | None, max_chars: int = QUESTION_MAX_CHARS) -> str:
    """"" for a question the router takes (after stripping), else what is wrong with it, in a few words."""
    if text is None:
        return "empty; give the text to ask"
    if any("\udc80" <= ch <= "\udcff" for ch in text):
        return "not valid UTF-8 text (check the terminal's or file's encoding)"
    if "\x00" in text:
        return "contains a NUL character"
    v = text.strip()
    if not v:
        return "empty; give the text to ask"
    if len(v) > max_chars:
        return f"{len(v):,} characters; the limit is {max_chars:,}"
    return ""
