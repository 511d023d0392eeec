"""The failure kind of a wrong session, one case per kind, each in the shape of a real session (the texts are from
router and baseline sessions on public MuSiQue train questions and the bundled sets, shortened)."""
from __future__ import annotations

import pytest

from router_core.answer_kind import expected, wrong_kind
from router_core.failures import KIND_TEXT, KINDS, abstains, failure_kind, kind_text
from router_core.step import Step

T = 1.0


class Session:
    """Steps written the way the loop writes them: thinks, sent routes (with a call), an answer."""

    def __init__(self) -> None:
        self.steps: list[Step] = []

    def _add(self, kind: str, **kw) -> "Session":
        self.steps.append(Step("s", len(self.steps), kind, started_at=T, ended_at=T, **kw))
        return self

    def think(self, text: str) -> "Session":
        return self._add("think", text=text)

    def route(self, query: str, reply: str, *, sent: bool = True, flags: list[str] | None = None) -> "Session":
        call = {"call_started_at": T, "call_ended_at": T} if sent else {}
        return self._add("route", request_model="Qwen2.5-1.5B", query=query, response=reply, flags=flags or [],
                         status="ok" if sent else "flagged", **call)

    def answer(self, text: str) -> "Session":
        return self._add("answer", text=text)

    def error(self, message: str, status: str = "error") -> "Session":
        return self._add("error", status=status, error=message)


CASES = {
    "error": ("Who wrote Dune?", ["Frank Herbert"],
              Session().think("I need the author.").error("router policy failed: connection refused")),
    "format": ("Who wrote Dune?", ["Frank Herbert"], Session().think("I need the author.").answer("")),
    "abstained": ("Who picks the prime minister in the country where Virgin Galactic's main company originated?",
                  ["Monarch of the United Kingdom"],
                  Session().route("Who picks the prime minister in the country where Virgin Galactic's main company "
                                  "originated?", "It is not known for certain.")
                  .answer("The prime minister is not known for certain")),
    "near_miss": ("Where is the Blue Mosque located in the country that released Toss-Up?", ["Istanbul"],
                  Session().route("Where is the Blue Mosque located in the country that released Toss-Up?",
                                  "The Blue Mosque is located in the city of Istanbul, Turkey.")
                  .answer("The Blue Mosque is located in the city of Istanbul, Turkey")),
    "wrong_kind": ("Are Todd Haynes and Chris Columbus of the same nationality?", ["yes"],
                   Session().think("I need the nationality of each.")
                   .route("What is the nationality of Todd Haynes?", "Todd Haynes is an American film director.")
                   .route("What is the nationality of Chris Columbus?", "Chris Columbus is an Italian explorer.")
                   .think("Todd Haynes is American; Chris Columbus is Italian.").answer("Italian")),
    "ignored_reply": ("Which river flows through the capital of Hungary?", ["Danube"],
                      Session().think("I need the capital first.")
                      .route("What is the capital of Hungary?", "Budapest is the capital; the Danube runs through it.")
                      .think("Budapest is the capital.").answer("Budapest")),
    "comparison": ("Who was born first, Isaac Newton or Galileo Galilei?", ["Galileo Galilei"],
                   Session().think("I need both birth years.")
                   .route("When was Isaac Newton born?", "Isaac Newton was born in 1643.")
                   .route("When was Galileo Galilei born?", "Galileo was born in 1564.")
                   .think("Newton 1643, Galileo 1564.").answer("Isaac Newton")),
    "one_hop": ("Which year witnessed the formation of the publisher of Sisters?", ["2001"],
                Session().think("I need to know the year when Sisters was formed.")
                .route("When was Sisters formed?", "Sisters was formed in 1999.")
                .think("I now know the year when Sisters was formed.").answer("1999")),
    "repeat": ("Who is the spouse of the director of Titanic?", ["Suzy Amis"],
               Session().think("I need the director first.")
               .route("Who directed Titanic?", "Titanic was directed by a famous filmmaker.")
               .think("I still need the director.")
               .route("Who directed Titanic?", "", sent=False, flags=["repeated_query"])
               .think("I will answer.").answer("Kate Winslet")),
    "stopped_early": ("What jurisdiction does the flag of the country where Bahamas Association of Athletic "
                      "Associations operates, apply to?", ["Bahama Islands"],
                      Session().think("I need to know the country where Bahamas Association of Athletic "
                                      "Associations operates first.")
                      .route("Where does Bahamas Association of Athletic Associations operate?",
                             "The Bahamas Association of Athletic Associations operates in the Bahamas.")
                      .think("The Bahamas is a country, so I can answer.").answer("Bahamas")),
    "no_call": ("Who wrote Dune?", ["Frank Herbert"], Session().think("I know this one.").answer("Isaac Asimov")),
    "wrong_fact": ("Who is the spouse of the person who receive the most electoral votes in 1824?",
                   ["Rachel Jackson"],
                   Session().think("I need to know the person who received the most electoral votes in 1824 first.")
                   .route("Who received the most electoral votes in 1824?",
                          "John Quincy Adams received the most electoral votes in 1824.")
                   .think("John Quincy Adams; I still need his spouse.")
                   .route("Who is John Quincy Adams's spouse?", "John Quincy Adams's spouse was Abigail Adams.")
                   .think("His spouse is Abigail Adams, so I can answer.").answer("Abigail Adams")),
    "unsupported": ("In which direction would you travel from the city that Ian Clarke's team plays for to reach "
                    "Southampton?", ["north-west"],
                    Session().think("I need Ian Clarke's team.")
                    .route("Which team does Ian Clarke play for?", "Ian Clarke plays for England.")
                    .route("Where is Southampton?", "Southampton is a city on the south coast of England.")
                    .think("Now I can answer.").answer("towards the European Championship")),
}


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_from_a_real_session_shape(kind):
    question, gold, session = CASES[kind]
    assert failure_kind(session.steps, question, gold) == kind
    assert KIND_TEXT[kind]


def test_right_answers_unknown_gold_and_stopped_sessions_have_no_kind():
    question, gold, session = CASES["wrong_fact"]
    right = Session().route("Who received the most electoral votes in 1824?", "Andrew Jackson.").answer(
        "Rachel Jackson")
    assert failure_kind(right.steps, question, gold) is None
    assert failure_kind(session.steps, question, []) is None  # no gold: nothing to be wrong against
    stopped = Session().think("I need the author.").error("stopped by the user", status="stopped")
    assert failure_kind(stopped.steps, "Who wrote Dune?", ["Frank Herbert"]) is None
    assert failure_kind([], "Who wrote Dune?", ["Frank Herbert"]) is None
    failed = CASES["error"][2]
    assert failure_kind(failed.steps, "Who wrote Dune?", []) == "error"  # a failure even without gold


def test_a_single_round_baseline_is_never_one_hop_it_asks_the_whole_question_by_design():
    q = "Which year witnessed the formation of the publisher of Sisters?"
    baseline = Session().route(q, "Sisters was formed in 1999.").answer("1999")
    assert failure_kind(baseline.steps, q, ["2001"]) == "wrong_fact"


def test_a_router_that_chains_two_hops_of_the_same_kind_is_not_one_hop():
    q = "Which county shares a border with the county in which Eastern Township is located?"
    s = (Session().think("I need the county of Eastern Township first.")
         .route("Which county is Eastern Township in?", "Eastern Township is in the county of Yunnan Province.")
         .route("Which county shares a border with Yunnan Province?", "Guangdong Province")
         .answer("Guangdong Province"))
    assert failure_kind(s.steps, q, ["Clinton County"]) == "wrong_fact"


@pytest.mark.parametrize("text, says", [("not mentioned in the text", True), ("Unknown", True),
                                        ("I don't know", True), ("cannot be determined", True), ("", True),
                                        ("Danube", False), ("Nothing Compares 2 U", False)])
def test_abstentions(text, says):
    assert abstains(text) is says


# Answers of another kind than the question asks for, as the analyst met them on public-benchmark questions (HotpotQA,
# Bamboogle, 2Wiki samples); a router session and a single-round baseline's shape each
@pytest.mark.parametrize("question, gold, answer", [
    ("Are Todd Haynes and Chris Columbus of the same nationality?", ["yes"], "American"),
    ("Which country is the birthplace of the director of Jaws?", ["United States"], "New York City"),
    ("In which country was the author of Hamlet born?", ["England"], "Stratford-upon-Avon"),
    ("When was the director of Jaws born?", ["December 18, 1946"], "Cincinnati, Ohio"),
    ("How many moons does the planet named after the Roman god of war have?", ["2"], "Phobos"),
    ("Who directed the film that won Best Picture in 1998?", ["James Cameron"], "1997"),
    ("Is the director of Jaws older than the director of Titanic?", ["yes"], "Steven Spielberg"),
])
def test_an_answer_of_another_kind_than_asked_is_wrong_kind(question, gold, answer):
    router = Session().think("I need the first fact.").route("A sub-question?", f"It is {answer}.").answer(answer)
    assert failure_kind(router.steps, question, gold) == "wrong_kind"
    baseline = Session().route(question, f"{answer}.").answer(answer)
    assert failure_kind(baseline.steps, question, gold) == "wrong_kind"
    assert wrong_kind(question, answer)


@pytest.mark.parametrize("question, answer", [
    ("Are Todd Haynes and Chris Columbus of the same nationality?", "No"),
    ("Which country is the birthplace of the director of Jaws?", "the U.S."),
    ("In which country was the author of Hamlet born?", "Stratford-upon-Avon, England"),
    ("When was the director of Jaws born?", "in the 1940s"),
    ("When did the war ended by the Treaty of Versailles begin?", "July 1914"),
    ("How many moons does Mars have?", "two"),
    ("Who directed Jaws?", "Columbia Pictures"),    # a company for "who": not surely another kind, not judged
    ("Who was born first, Isaac Newton or Galileo Galilei?", "1643"),  # a choice question: comparison's to judge
    ("Is Paris or London the larger city?", "Berlin"),                 # names its answers: not a yes/no question
    ("What nationality is Todd Haynes?", "Italian"),                   # a kind this cannot judge
])
def test_answers_of_the_kind_asked_or_kinds_not_judged_are_not_wrong_kind(question, answer):
    assert wrong_kind(question, answer) is None


def test_what_a_question_asks_for():
    assert [expected(q) for q in ("Are A and B of the same nationality?", "How many moons does Mars have?",
                                  "In which country is Toledo?", "In what year was Sisters formed?",
                                  "Which poet wrote the Odyssey?", "What is the capital of France?")] == \
        ["yes/no", "number", "country", "date", "person", None]


def test_a_baselines_wrong_fact_speaks_of_the_model_not_of_a_router():
    assert "router" in kind_text("wrong_fact", "guided-1.5b")
    assert "router" not in kind_text("wrong_fact", "baseline/largest")
    assert all("router" not in kind_text(k, "baseline/only:Qwen2.5-1.5B") for k in ("wrong_fact", "ignored_reply",
                                                                                     "unsupported", "no_call"))
