"""Whether an answer is of the kind its question asks for: yes or no, a country, a person, a date, a number.

Why: "Are Todd Haynes and Chris Columbus of the same nationality?" answered "Italian", or "Which country …?"
answered "New York City", is not a wrong fact about the right thing: the router (or a model asked once) answered
another question. An analyst fixes that differently (the decomposition lost the question's form) from a wrong fact
(a small model's memory), so router_core.failures files it apart. Read from the question's wording with
router_core.asked_for; only English wordings are read, and a kind is judged only where a wrong one is certain (a
person is never checked positively: no name list could say who is a person, only that "1889" or "France" is not).
"""
from __future__ import annotations

import re

from .asked_for import _PERSON, asked_for, choices
from .metrics import normalize_answer

_AUX = r"(?:is|are|was|were|do|does|did|can|could|has|have|had|will|would|should|shall|may|might)"
_YES_NO = re.compile(rf"^{_AUX}\b", re.IGNORECASE)
_HOW_MANY = re.compile(r"^(?:(?:in|on|at|for|by|from|to)\s+)?how\s+(?:many|much|old|long|tall|high|far|deep|wide|"
                       r"large|big|heavy)\b", re.IGNORECASE)
_NUMBER_WORDS = {"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
                 "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty",
                 "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety", "hundred", "thousand", "million",
                 "billion", "trillion", "dozen", "half", "none", "single", "once", "twice"}
_MONTHS = {"january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
           "november", "december"}
_ERA_WORDS = {"century", "centuries", "decade", "year", "years", "bc", "bce", "ad", "ce", "millennium", "age", "era",
              "period", "dynasty", "war", "reign", "spring", "summer", "autumn", "fall", "winter", "today",
              "present", "ago"} | _MONTHS
_TIME_WORDS = {"year", "date", "century", "decade", "when"}
_COUNTRY_WORDS = {"country", "nation"}


def _country_names() -> frozenset[str]:
    """`_COUNTRY_TABLE` as normalized answers ("U.S." → "us")."""
    return frozenset(normalize_answer(n) for n in _COUNTRY_TABLE.split(";") if n.strip())


# Countries as answers name them, with the names sets and people use for ones that changed or split: a fact table
# written for this project.
_COUNTRY_TABLE = (
    "Afghanistan;Albania;Algeria;Andorra;Angola;Antigua and Barbuda;Argentina;Armenia;Australia;Austria;Azerbaijan;"
    "Bahamas;Bahrain;Bangladesh;Barbados;Belarus;Belgium;Belize;Benin;Bhutan;Bolivia;Bosnia and Herzegovina;Bosnia;"
    "Botswana;Brazil;Brunei;Bulgaria;Burkina Faso;Burundi;Cabo Verde;Cape Verde;Cambodia;Cameroon;Canada;"
    "Central African Republic;Chad;Chile;China;People's Republic of China;Colombia;Comoros;Congo;"
    "Democratic Republic of the Congo;Costa Rica;Ivory Coast;Côte d'Ivoire;Croatia;Cuba;Cyprus;Czech Republic;"
    "Czechia;Denmark;Djibouti;Dominica;Dominican Republic;Ecuador;Egypt;El Salvador;Equatorial Guinea;Eritrea;"
    "Estonia;Eswatini;Swaziland;Ethiopia;Fiji;Finland;France;Gabon;Gambia;Georgia;Germany;Ghana;Greece;Grenada;"
    "Guatemala;Guinea;Guinea-Bissau;Guyana;Haiti;Honduras;Hungary;Iceland;India;Indonesia;Iran;Iraq;Ireland;"
    "Republic of Ireland;Israel;Italy;Jamaica;Japan;Jordan;Kazakhstan;Kenya;Kiribati;Kuwait;Kyrgyzstan;Laos;Latvia;"
    "Lebanon;Lesotho;Liberia;Libya;Liechtenstein;Lithuania;Luxembourg;Madagascar;Malawi;Malaysia;Maldives;Mali;"
    "Malta;Marshall Islands;Mauritania;Mauritius;Mexico;Micronesia;Moldova;Monaco;Mongolia;Montenegro;Morocco;"
    "Mozambique;Myanmar;Burma;Namibia;Nauru;Nepal;Netherlands;Holland;New Zealand;Nicaragua;Niger;Nigeria;"
    "North Korea;North Macedonia;Macedonia;Norway;Oman;Pakistan;Palau;Palestine;Panama;Papua New Guinea;Paraguay;"
    "Peru;Philippines;Poland;Portugal;Qatar;Romania;Russia;Russian Federation;Rwanda;Saint Kitts and Nevis;"
    "Saint Lucia;Saint Vincent and the Grenadines;Samoa;San Marino;São Tomé and Príncipe;Saudi Arabia;Senegal;"
    "Serbia;Seychelles;Sierra Leone;Singapore;Slovakia;Slovenia;Solomon Islands;Somalia;South Africa;South Korea;"
    "Korea;South Sudan;Spain;Sri Lanka;Sudan;Suriname;Sweden;Switzerland;Syria;Taiwan;Tajikistan;Tanzania;Thailand;"
    "Timor-Leste;East Timor;Togo;Tonga;Trinidad and Tobago;Tunisia;Turkey;Türkiye;Turkmenistan;Tuvalu;Uganda;"
    "Ukraine;United Arab Emirates;UAE;United Kingdom;UK;Great Britain;Britain;England;Scotland;Wales;"
    "Northern Ireland;United States;United States of America;USA;US;U.S.;U.S.A.;America;Uruguay;Uzbekistan;"
    "Vanuatu;Vatican City;Vatican;Holy See;Venezuela;Vietnam;Yemen;Zambia;Zimbabwe;"
    # countries of history and places often answered as one
    "Soviet Union;USSR;West Germany;East Germany;Yugoslavia;Czechoslovakia;Prussia;Ottoman Empire;Persia;Ceylon;"
    "Rhodesia;Zaire;Siam;Kingdom of Hawaii;Hong Kong;Macau;Puerto Rico;Greenland;Kosovo;Roman Empire;"
    "Austria-Hungary;Austro-Hungarian Empire;British Empire;Kingdom of Italy;Kingdom of Prussia;Holy Roman Empire;"
    "Byzantine Empire;Russian Empire;Empire of Japan;Republic of China")


def is_country(answer: str) -> bool:
    """Whether `answer` names a country (or holds one: "Paris, France" is about France)."""
    a = normalize_answer(answer)
    if not a:
        return False
    if a in _COUNTRIES:
        return True
    padded = f" {a} "
    return any(f" {c} " in padded for c in _COUNTRIES if len(c) > 3)


def has_number(answer: str) -> bool:
    a = normalize_answer(answer)
    return bool(re.search(r"\d", answer)) or bool(set(a.split()) & _NUMBER_WORDS)


def is_yes_no(answer: str) -> bool:
    return normalize_answer(answer).split()[:1] in (["yes"], ["no"])


def expected(question: str) -> str | None:
    """What kind of answer `question` asks for — "yes/no", "number", "date", "country" or "person" — or None
    when its wording does not say, or says something this module cannot judge ("What nationality …?")."""
    q = " ".join(question.split())
    if not q or choices(q):
        return None  # a choice question ("…, A or B?") is answered by one of the two: router_core.failures
    if _YES_NO.match(q):
        return None if re.search(r"\bor\b", q, re.IGNORECASE) else "yes/no"  # "Is it A or B?" names its answers
    if _HOW_MANY.match(q):
        return "number"
    words = asked_for(q)
    if set(words) & _COUNTRY_WORDS:
        return "country"
    if set(words) & _TIME_WORDS:
        return "date"
    if "who" in words or set(words) & _PERSON:
        return "person"
    return None


def wrong_kind(question: str, answer: str) -> str | None:
    """Words saying how `answer` is of another kind than `question` asks for ("a yes/no question answered with
    'Italian'"), or None when it is of that kind, or the kind cannot be judged."""
    want = expected(question)
    a = normalize_answer(answer)
    if want is None or not a:
        return None
    said = f"'{answer.strip()[:60]}'"
    if want == "yes/no":
        return None if is_yes_no(answer) else f"a yes/no question answered with {said}"
    if is_yes_no(answer):
        return f"asked for a {want}, answered with {said}"
    if want == "number":
        return None if has_number(answer) else f"asked for a number, answered with {said}"
    if want == "date":
        if has_number(answer) or set(a.split()) & _ERA_WORDS:
            return None
        return f"asked for a date, answered with {said}"
    if want == "country":
        return None if is_country(answer) else f"asked for a country, answered with {said}"
    # a person: only what is surely not one
    if re.fullmatch(r"[\d\s.,/-]+", answer.strip()) or a in _COUNTRIES:
        return f"asked for a person, answered with {said}"
    return None


_COUNTRIES = _country_names()
