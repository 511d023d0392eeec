"""Reading what a question asks for from its wording (router_core/asked_for.py)."""
from __future__ import annotations

import pytest

from router_core.asked_for import asked_for, asks_for, content_words


@pytest.mark.parametrize("question, words", [
    ("Which river flows through the capital of Hungary?", ["river", "flow"]),
    ("On which continent is the country whose capital is Lima?", ["continent"]),
    ("In what year was the author of \"Hamlet\" born?", ["year"]),
    ("What is the capital of the country whose flag features a red maple leaf?", ["capital"]),
    ("Who was the mother of the author of the novel \"Frankenstein\"?", ["mother"]),
    ("What is the atomic number of carbon?", ["atomic", "number"]),
    ("Which ancient Greek poet is credited with \"The Odyssey\"?", ["ancient", "greek", "poet"]),
    ("WHICH  LAKES are deepest?", ["lake"]),
    # no thing named: the wh-word says what kind of answer it wants
    ("Who directed Interstellar?", ["who"]),
    ("Where was the director of Interstellar born?", ["where"]),
    # wordings that do not say what they ask for: no words, so no check
    ("How many bones are there in the adult human body?", []),
    ("Which is larger, Jupiter or Saturn?", []),
    ("What did Alexander Fleming discover?", []),
    ("", []),
])
def test_asked_for_reads_the_thing_a_question_asks_for(question, words):
    assert asked_for(question) == words


@pytest.mark.parametrize("sub_question, words, asks", [
    ("What is the capital of Hungary?", ["river", "flow"], False),
    ("Which river flows through Budapest?", ["river", "flow"], True),
    ("Which rivers cross Budapest?", ["river"], True),          # plural read as singular
    ("When was William Shakespeare born?", ["year"], True),     # "when" asks for a time
    ("Where was William Shakespeare born?", ["year"], False),
    ("Who wrote Frankenstein?", ["mother"], False),
    ("What is the capital of Greece?", ["city"], False),
    ("Who directed Interstellar?", ["who"], True),
    ("Where was Christopher Nolan born?", ["who"], False),
    ("In which city was Christopher Nolan born?", ["where"], True),
    ("In which year was Christopher Nolan born?", ["when"], True),
    ("Who directed Interstellar?", ["where"], False),
])
def test_asks_for_compares_a_sub_question_with_those_words(sub_question, words, asks):
    assert asks_for(sub_question, words) is asks


def test_content_words_leave_out_question_and_function_words():
    assert content_words("What is the capital of the countries of Europe?") == {"capital", "country", "europe"}
