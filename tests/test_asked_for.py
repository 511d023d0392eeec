"""Reading what a question asks for from its wording (router_core/asked_for.py)."""
from __future__ import annotations

import pytest

from router_core.asked_for import asked_for, asks_for, choices, content_words, hidden_fact


@pytest.mark.parametrize("question, words", [
    ("Which river flows through the capital of Hungary?", ["river", "flow"]),
    ("On which continent is the country whose capital is Lima?", ["continent"]),
    ("In what year was the author of \"Hamlet\" born?", ["year"]),
    ("What is the capital of the country whose flag features a red maple leaf?", ["capital"]),
    ("Who was the mother of the author of the novel \"Frankenstein\"?", ["mother"]),
    ("What is the atomic number of carbon?", ["atomic", "number"]),
    # a kind of person is asked for by "who" too; a relation ("the mother of") is not
    ("Which ancient Greek poet is credited with \"The Odyssey\"?", ["ancient", "greek", "poet", "who"]),
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
    ("Who is credited with The Odyssey?", asked_for("Which ancient Greek poet is credited with The Odyssey?"), True),
    ("Who wrote Frankenstein?", asked_for("Who was the mother of the author of Frankenstein?"), False),
    ("What was the director of the 1968 film?", ["who"], True),  # asks for a kind of person
    ("Which chapel is named after Pope Sixtus IV?", ["who"], False),  # names a pope, asks for a chapel
])
def test_asks_for_compares_a_sub_question_with_those_words(sub_question, words, asks):
    assert asks_for(sub_question, words) is asks


def test_content_words_leave_out_question_and_function_words():
    assert content_words("What is the capital of the countries of Europe?") == {"capital", "country", "europe"}


@pytest.mark.parametrize("question, fact", [
    ("What is the capital of the country where the Eiffel Tower stands?", "the country where the Eiffel Tower stands"),
    ("Which river flows through the capital of Hungary?", "the capital of Hungary"),
    ('In what year was the author of "Hamlet" born?', 'the author of "Hamlet"'),
    ("In what year did the war ended by the 1919 Treaty of Versailles begin?",
     "the war ended by the 1919 Treaty of Versailles"),
    ("On which continent is the country whose capital is Lima?", "the country whose capital is Lima"),
    ("What is the capital of the U.S. state in which the Golden Gate Bridge stands?",
     "the U.S. state in which the Golden Gate Bridge stands"),
    ("Who directed the 1968 film featuring the computer HAL 9000?", "the 1968 film featuring the computer HAL 9000"),
    ("What is the atomic number of the lightest noble gas?", "the lightest noble gas"),
    ("Who was President of the United States when Apollo 11 landed on the Moon?", "when Apollo 11 landed on the Moon"),
    ("In which country was the physicist who developed the theory of general relativity born?",
     "the physicist who developed the theory of general relativity"),
    ("Who directed the film in which the character Darth Vader first appeared?",
     "the film in which the character Darth Vader first appeared"),
    ("Which city is the capital of the country where the Acropolis is located?",
     "the country where the Acropolis is located"),
    ("What was the name of the lunar module on the mission that first landed humans on the Moon?",
     "the mission that first landed humans on the Moon"),
])
def test_a_description_to_look_up_first_is_found_after_the_questions_head(question, fact):
    assert hidden_fact(question) == fact


@pytest.mark.parametrize("question", [
    "What is the capital of France?",                    # the head's own "of"
    "Which city is the capital of France?",              # the description is the head, restated
    "In which country is the city of Barcelona?",        # a name, not a description
    "Who was the first President of the United States?",  # names after "the" are not descriptions
    'Who formulated the three laws of motion published in the "Principia"?',  # "of motion": nothing looked up
    "What is the hardest naturally occurring mineral?",  # the superlative is the head
    "What is the name of the longest river in Europe?",  # "the name of" the river: the river is the head
    "Which country has the largest population?",         # a property compared by
    "Who was born first, Isaac Newton or Galileo Galilei?",  # a choice between named things
    "Wie heißt die Hauptstadt von Frankreich?",          # not English: nothing is read
])
def test_a_question_that_names_its_subject_hides_no_fact(question):
    assert hidden_fact(question) == ""


@pytest.mark.parametrize("question, options", [
    ("Who was born first, Isaac Newton or Galileo Galilei?", ["Isaac Newton", "Galileo Galilei"]),
    ("Which is larger, Jupiter or Saturn?", ["Jupiter", "Saturn"]),
    ("Which is larger: Jupiter or Saturn", ["Jupiter", "Saturn"]),
    # quotes and a leading "the" are not part of the thing's name
    ('Which was published first as a book, "Moby-Dick" or “War and Peace”?', ["Moby-Dick", "War and Peace"]),
    ("Which university is older, the University of Bologna or the University of Oxford?",
     ["University of Bologna", "University of Oxford"]),
    ("Which country has the larger total area, Canada or the United States?", ["Canada", "United States"]),
    ("Which gas makes up a larger share of Earth's atmosphere, oxygen or argon?", ["oxygen", "argon"]),
    ("Which country has more people, India or Japan?", ["India", "Japan"]),
    # not a choice between two things compared: a list, no comparison, no comma, not a wh-question, one thing twice
    ("Who wrote Hamlet, Macbeth or Othello?", []),
    ("Is tea or coffee more popular?", []),
    ("Which is older, Rome or rome?", []),
    ("What is the capital of France?", []),
    ("", []),
])
def test_choices_are_the_two_things_a_comparison_question_names(question, options):
    assert choices(question) == options
