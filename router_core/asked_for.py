"""What a question asks for, read from its wording: the words after "which"/"what" ("which river flows …",
"on which continent …", "in what year …") or before "of" ("what is the capital of …", "who was the mother
of …"), else its wh-word ("who …", "when …", "where …").

Why: a small router reads the first hop's reply ("Budapest is the capital of Hungary") and answers with it,
one hop short of "Which river flows through the capital of Hungary?". That reply answered a sub-question
about a capital; the question asks for a river. Comparing the words catches it without asking the router to
judge its own answer (a 1.5B model says its answer is right whatever it is: measured in
docs/results/multi-hop-1.5b-default.md). Only English wh-questions are read; other wordings give no words and
no check is made.
"""

from __future__ import annotations

import re
from typing import Sequence

_PREPOSITION = r"(?:in|on|at|from|to|of|for|by|with|during|under|into|near)"
# "which river flows …", "on which continent …", "in what year …", "which ancient greek poet is …"
_WHICH = re.compile(rf"^(?:{_PREPOSITION}\s+)?(?:which|what)\s+((?:[a-z]+\s+){{0,2}}[a-z]+)")
# "what is the capital of …", "who was the mother of …", "what is the atomic number of …"
_THE_OF = re.compile(r"^(?:what|who|which)\s+(?:is|was|are|were)\s+(?:the\s+)?((?:[a-z]+\s+)?[a-z]+)\s+(?:of|in|on)\b")
# words that end the phrase naming the thing asked for (verbs of being, articles, prepositions)
_STOP = {"is", "was", "are", "were", "does", "did", "do", "has", "have", "had", "can", "could", "will", "would",
         "should", "the", "a", "an", "of", "in", "on", "at", "to", "from", "for", "by", "with", "through", "that",
         "who", "which", "whose", "where", "when", "kind", "type", "sort", "one", "ones"}
# a sub-question that asks "when" asks for a time even if it does not say "year"
_TIME = {"year", "date", "century", "decade", "day", "month"}
# what a question that names no thing asks for, by its first word, and the words of a sub-question asking the same
_WH = {"who": {"who", "whom", "whose"}, "whom": {"who", "whom", "whose"}, "when": {"when"} | _TIME,
       "where": {"where", "city", "country", "place", "town", "continent", "state", "region", "located"}}
_WORD = re.compile(r"[a-z0-9]+")


def asked_for(question: str) -> list[str]:
    """The words (singular, lower case) naming what `question` asks for; a question that names no thing gives
    its first word when that is "who", "when" or "where"; empty when its wording does not say ("How many …?",
    "What did … invent?")."""
    q = " ".join(question.lower().replace('"', " ").split())
    for pattern in (_THE_OF, _WHICH):
        m = pattern.match(q)
        if m:
            words = []
            for w in m.group(1).split():
                if w in _STOP:
                    break
                words.append(_singular(w))
            if words:
                return words
    first = q.split(" ", 1)[0] if q else ""
    return [first] if first in _WH else []


def asks_for(sub_question: str, words: Sequence[str]) -> bool:
    """Whether `sub_question` asks about what `words` name: it uses one of them, asks "when" for a time, or,
    for a question that names no thing, asks the same kind ("who …" for "who …", "in which city" for "where")."""
    have = {_singular(w) for w in _WORD.findall(sub_question.lower())}
    return any(w in have or (w in _TIME and "when" in have) or bool(_WH.get(w, set()) & have) for w in words)


def content_words(text: str) -> set[str]:
    """The words of `text` that carry meaning (singular, lower case, no stop words)."""
    return {_singular(w) for w in _WORD.findall(text.lower())} - _STOP - {"what", "how", "many", "much", "why"}


def _singular(word: str) -> str:
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")) else word
