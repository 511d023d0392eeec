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

from .metrics import normalize_answer

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
# kinds of person: "which ancient Greek poet …" is answered by "who …" ("who is credited with The Odyssey?"). Only a
# kind after which/what, not a relation ("who was the mother of …" is not answered by "who wrote …").
_PERSON = {"person", "man", "woman", "poet", "author", "writer", "novelist", "playwright", "director", "actor",
           "actress", "painter", "artist", "sculptor", "composer", "musician", "singer", "scientist", "physicist",
           "chemist", "biologist", "mathematician", "philosopher", "inventor", "explorer", "president", "king", "queen",
           "emperor", "ruler", "monarch", "pope", "architect", "astronaut", "athlete", "player", "politician"}


def asked_for(question: str) -> list[str]:
    """The words (singular, lower case) naming what `question` asks for, and "who" after a kind of person ("which
    poet …"); a question that names no thing gives its first word when that is "who", "when" or "where"; empty
    when its wording does not say ("How many …?", "What did … invent?")."""
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
                return words + ["who"] if pattern is _WHICH and words[-1] in _PERSON else words
    first = q.split(" ", 1)[0] if q else ""
    return [first] if first in _WH else []


def asks_for(sub_question: str, words: Sequence[str]) -> bool:
    """Whether `sub_question` asks about what `words` name: it uses one of them, asks "when" for a time, or,
    for a question that names no thing, asks the same kind ("who …" for "who …", "in which city" for "where",
    "what was the director of …" for "who": a kind of person, where the sub-question names what it asks for)."""
    have = {_singular(w) for w in _WORD.findall(sub_question.lower())}
    if any(w in have or (w in _TIME and "when" in have) or bool(_WH.get(w, set()) & have) for w in words):
        return True
    return "who" in words and bool(set(asked_for(sub_question)) & _PERSON)


def content_words(text: str) -> set[str]:
    """The words of `text` that carry meaning (singular, lower case, no stop words)."""
    return {_singular(w) for w in _WORD.findall(text.lower())} - _STOP - {"what", "how", "many", "much", "why"}


def stem(word: str) -> str:
    """A word without "-ed"/"-ing", so "ended" meets "end" and "attended" meets "attend" (crude: used only to
    tell whether two wordings hold the same words, both sides cut alike)."""
    for suffix in ("ing", "ed"):
        if len(word) > len(suffix) + 2 and word.endswith(suffix):
            return word[:-len(suffix)]
    return word


def _singular(word: str) -> str:
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")) else word


# A description the question leans on, after its head: "the country where …", "the film that …", "the author of
# "Hamlet"", "the university attended by …", "the capital of Hungary", "the most famous portrait", "… when Apollo 11
# landed". Lower-case words only after "the", so names ("the Eiffel Tower", "the United States") are not read as one.
_MOD = r"(?!(?:of|in|on|at|by|for|to|from|with|and|or|as)\b)(?:[a-z0-9][a-z0-9.\-]*|(?:[A-Z]\.)+)"  # "1968", "U.S."
_DESC = rf"the\s+((?:{_MOD}\s+){{0,3}}?[a-z][a-z.\-]*)"
_RELATIVE = r"(?:where|whose|that|which|who|whom|(?:in|on|at|from|by|of|for)\s+which)"
_NESTED = [
    # "the country where the Eiffel Tower stands", "the small country in the Pyrenees that borders …"
    re.compile(_DESC + r"(?:\s+(?:in|on|at|of)\s+the\s+[A-Z][\w.\-]*(?:\s+[A-Z][\w.\-]*){0,3})?,?\s+" + _RELATIVE + r"\b"),
    # "the war ended by …", "the film featuring …", "the university attended by …", "the chapel named after …"
    re.compile(_DESC + r"\s+(?:[a-z]+ed|[a-z]+ing)\s+(?:by|after|in|on|at|from|for|as)?\b"),
    # "the author of "Hamlet"", "the capital of Hungary", "the mother of the author", "the ceiling of the chapel"
    re.compile(_DESC + r"\s+of\s+(?:the\s+|a\s+|an\s+|\"|“|[A-Z])"),
    # "the lightest noble gas", "the most famous portrait"
    # (not "has the largest population": a property the question compares by, not a thing to look up)
    re.compile(r"(?<!has\s)(?<!have\s)(?<!had\s)the\s+((?:most|least)\s+[a-z]+|[a-z]{2,}est)\s+[a-z]+"),
]
# "the city of Barcelona", "the University of Oxford": a name, not a description of something to look up
_NAMING = {"city", "town", "village", "state", "country", "nation", "republic", "kingdom", "province", "region",
           "county", "island", "isle", "university", "college", "port", "empire", "district", "gulf", "bay", "lake",
           "mount", "sea", "strait", "name", "title", "year", "date"}
# "… when Apollo 11 landed on the Moon": a time the question names only by an event
_WHEN = re.compile(r"\S\s+when\s+\S")
# "what is the capital of", "which is the longest river", "who was the first president", "which city is the capital
# of": the head itself. Not after a preposition ("on which continent is the country whose …") and not before a
# participle ("in what year was the author of … born"): there the description is the subject, to be looked up.
_HEAD = re.compile(rf"^(?:what|who|which)(?:\s+[a-z]+)?\s+(?:is|was|are|were)\s+{_DESC}(?:\s+(?:of|in|on|for))?\s+",
                   re.IGNORECASE)
_PASSIVE = re.compile(r"\s(?:[a-z]+ed|born|built|written|begun|made|known|held|sung|drawn|shown|won)\W*$")
# "in what year did the war ended by … begin?": the last word is the question's verb, not part of the fact
_DID = re.compile(r"^(?:(?:in|on|at|from|to|for|by)\s+)?(?:what|which|when|where|who)(?:\s+[a-z]+)?\s+(?:did|does|do)\s"
                  r".*\s[a-z]+\W*$", re.IGNORECASE)
# "in which country was …", "when were …": a head whose verb ends the question ("… born?")
_AUX_HEAD = re.compile(r"^(?:(?:in|on|at|from|to|for|by)\s+)?(?:what|which|when|where|who)(?:\s+[a-z]+)?\s+"
                       r"(?:is|was|are|were)\s", re.IGNORECASE)
# "Who was born first, Isaac Newton or Galileo Galilei?": a choice between things named, nothing hidden
_CHOICE = re.compile(r"[,:]\s+([^,:]+?)\s+or\s+([^,:]+?)\s*\??$")


# what a choice question compares by, before its comma: "born first", "is larger", "has more people", "makes up a
# larger share" ("Who wrote Hamlet, Macbeth or Othello?" lists works, it compares nothing)
_COMPARES = re.compile(r"\b(?:first|last|earlier|later|more|less|fewer|most|least|better|worse|best|worst)\b"
                       r"|\b(?:is|was|are|were|the|a|an)\s+[a-z]{2,}(?:er|est)\b", re.IGNORECASE)


def choices(question: str) -> list[str]:
    """The two things a choice question names after its comma ("Who was born first, Isaac Newton or Galileo
    Galilei?" → ["Isaac Newton", "Galileo Galilei"]; quotes and a leading "the" dropped), or [] for any other
    wording.

    Why: the answer to such a question is one of the two; a small router that has read a fact about each often
    answers with a fact ("1643") or the other thing asked about, where it should say which of the two."""
    q = " ".join(question.replace("\u201c", '"').replace("\u201d", '"').split())
    m = _CHOICE.search(q)
    if not m or not re.match(r"^(?:which|who|what)\b", q, re.IGNORECASE) or not _COMPARES.search(q[:m.start()]):
        return []
    out = [re.sub(r"^the\s+", "", part.strip().strip('"').strip(), flags=re.IGNORECASE) for part in m.groups()]
    return out if all(out) and normalize_answer(out[0]) != normalize_answer(out[1]) else []


def telling_words(options: Sequence[str]) -> list[set[str]]:
    """Each option's content words less those the options share ("University of Bologna" / "University of Oxford"
    → {"bologna"} / {"oxford"}), so a text can be told to speak of one and not the other."""
    own = [content_words(o) for o in options]
    shared = set.intersection(*own) if own else set()
    return [w - shared or w for w in own]


def about_alone(sub_question: str, options: Sequence[str]) -> str | None:
    """The one of a choice question's two things (`options`) that `sub_question` speaks of without the other."""
    words = content_words(sub_question)
    hits = [o for o, own in zip(options, telling_words(options)) if own & words]
    return hits[0] if len(hits) == 1 else None


def hidden_fact(question: str) -> str:
    """The description inside `question` that names a thing to be looked up before the question can be asked
    ("the country where the Eiffel Tower stands" in "What is the capital of the country where the Eiffel Tower
    stands?"), or "" when the question names its subject outright ("What is the capital of France?").

    Why: a router that sends such a question whole to one model takes one hop where the question needs two; a
    question without one is asked whole rightly. Read from the wording after the question's head ("what is the
    capital of …"); only English wordings are read."""
    q = " ".join(question.replace("\u201d", '"').split())
    if _CHOICE.search(q):
        return ""
    passive = _PASSIVE.search(q)
    head = None if passive else _HEAD.match(q)
    rest = q[head.end():] if head else q
    if head and head.group(1).split()[-1] in ("name", "title") and (inner := re.match(_DESC + r"\s+", rest)):
        rest = rest[inner.end():]  # "what is the name of the longest river …": the river is the head
    if not head:
        # "Which river flows through …", "Who directed …": the head is the wh-phrase, the rest is read
        m = re.match(r"^(?:(?:in|on|at|from|to|for|by)\s+)?(?:which|what|who|whom|when|where)\b(?:\s+[a-z]+)?", q,
                     re.IGNORECASE)
        rest = q[m.end():] if m else q
    if (when := _WHEN.search(rest)):
        return rest[when.start() + 1:].strip(" ?")
    for pattern in _NESTED:
        for m in pattern.finditer(rest):
            words = m.group(1).split()
            if pattern is _NESTED[2] and words[-1] in _NAMING:
                continue
            fact = rest[m.start():].strip(" ?")
            if (passive or _DID.match(q)) and (not re.search(rf"\s{_RELATIVE}\s", fact) or (
                    _AUX_HEAD.match(q) and not re.search(r"\s(?:is|was|are|were|be|been)\s+\S+$", fact))):
                # "the author of "Hamlet" born", "the physicist who developed … born": the last word is the
                # question's own verb ("in which country was … born"); "… where the Acropolis is located" and "…
                # in which Darth Vader first appeared" (after "who directed": no verb of the head's left) keep it
                fact = fact[:fact.rfind(" ")]
            return fact
    return ""


def assumed(question: str, sub_question: str) -> list[str]:
    """The names `sub_question` gives that `question` does not: capitalised words after its first one ("France" in
    "What is the capital of France?" for "What is the capital of the country where the Eiffel Tower stands?";
    "Cambridge" in "When did Isaac Newton attend the University of Cambridge?" for "… the university attended by
    Isaac Newton …"). Asked before any reply was read, such a name came from the router's memory."""
    held = {w.rstrip(".").lower() for w in _NAME_WORD.findall(question)}
    names = [w.rstrip(".") for w in _NAME_WORD.findall(sub_question)[1:]]
    return [w for w in names if w[0].isupper() and w != "I" and w.lower() not in held]


_NAME_WORD = re.compile(r"[A-Za-z0-9\u00C0-\u024F][\w\u00C0-\u024F'’.\-]*")
