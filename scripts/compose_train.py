"""Compose the two-hop *training* questions (assets/questions/train_two_hop.jsonl) from a table of well-known facts.

Why a composed set: the public multi-hop train splits (HotpotQA, 2WikiMultiHopQA, MuSiQue) ask about things this
CPU pool has never heard of. Asked each of the 800 shipped HotpotQA/2Wiki train questions once, the pool's dearest
model (Qwen2.5-Coder-1.5B) answered none right (see training/collect.py's screen), so rejection sampling on them keeps
nothing. Compositional Celebrities (Press et al., 2022) showed the way out: join well-known one-hop facts into
two-hop questions ("What is the calling code of the birthplace of Frida Kahlo?"). This script does that with its own
table, written for this project: works → their maker → where and when the maker was born; landmarks and cities →
their country → its capital, currency, language or continent; and comparisons of two makers' birth years.

Kept apart from every evaluation set: a question whose work, landmark, city or bridge entity (the maker, the country)
appears in any bundled question or gold answer (single_hop, multi_hop, dev) is left out, so the bundled sets stay
questions the trained router never saw. They share *shapes* of question with them (that is what the router should
learn), not entities. The public dev samples (HotpotQA, 2Wiki) stay the out-of-distribution check.

    python scripts/compose_train.py            # writes assets/questions/train_two_hop.jsonl (deterministic)
"""
from __future__ import annotations

import json
import random
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "assets" / "questions" / "train_two_hop.jsonl"
EVAL_SETS = ("single_hop.jsonl", "multi_hop.jsonl", "dev.jsonl")
SEED = 20261207

# maker: (birth year, birth country golds, birth city golds)
US = ["United States", "USA", "US", "United States of America", "America"]
UK_ENG = ["England", "United Kingdom", "UK", "Britain", "Great Britain"]
UK_SCO = ["Scotland", "United Kingdom", "UK", "Britain", "Great Britain"]
IE = ["Ireland"]
PEOPLE: dict[str, tuple[int, list[str], list[str]]] = {
    "Quentin Tarantino": (1963, US, ["Knoxville"]),
    "Peter Jackson": (1961, ["New Zealand"], ["Pukerua Bay"]),
    "Martin Scorsese": (1942, US, ["New York City", "New York", "Queens"]),
    "Akira Kurosawa": (1910, ["Japan"], ["Tokyo"]),
    "Hayao Miyazaki": (1941, ["Japan"], ["Tokyo"]),
    "Ridley Scott": (1937, UK_ENG, ["South Shields"]),
    "Robert Zemeckis": (1952, US, ["Chicago"]),
    "Guillermo del Toro": (1964, ["Mexico"], ["Guadalajara"]),
    "Ang Lee": (1954, ["Taiwan"], ["Pingtung"]),
    "Bong Joon-ho": (1969, ["South Korea", "Korea"], ["Daegu"]),
    "David Lean": (1908, UK_ENG, ["Croydon"]),
    "George Miller": (1945, ["Australia"], ["Chinchilla"]),
    "Jane Campion": (1954, ["New Zealand"], ["Wellington"]),
    "Danny Boyle": (1956, UK_ENG, ["Radcliffe"]),
    "Alfonso Cuarón": (1961, ["Mexico"], ["Mexico City"]),
    "Alejandro González Iñárritu": (1963, ["Mexico"], ["Mexico City"]),
    "Park Chan-wook": (1963, ["South Korea", "Korea"], ["Seoul"]),
    "Federico Fellini": (1920, ["Italy"], ["Rimini"]),
    "Jean-Luc Godard": (1930, ["France"], ["Paris"]),
    "François Truffaut": (1932, ["France"], ["Paris"]),
    "Fritz Lang": (1890, ["Austria"], ["Vienna"]),
    "Ingmar Bergman": (1918, ["Sweden"], ["Uppsala"]),
    "Wolfgang Petersen": (1941, ["Germany"], ["Emden"]),
    "Tim Burton": (1958, US, ["Burbank"]),
    "Wes Anderson": (1969, US, ["Houston"]),
    "David Fincher": (1962, US, ["Denver"]),
    "Spike Lee": (1957, US, ["Atlanta"]),
    "Jordan Peele": (1979, US, ["New York City", "New York"]),
    "Denis Villeneuve": (1967, ["Canada"], ["Bécancour", "Trois-Rivières"]),
    "F. Scott Fitzgerald": (1896, US, ["Saint Paul", "St. Paul"]),
    "Harper Lee": (1926, US, ["Monroeville"]),
    "J. D. Salinger": (1919, US, ["New York City", "New York", "Manhattan"]),
    "Fyodor Dostoevsky": (1821, ["Russia", "Russian Empire"], ["Moscow"]),
    "Victor Hugo": (1802, ["France"], ["Besançon"]),
    "Alexandre Dumas": (1802, ["France"], ["Villers-Cotterêts"]),
    "Gustave Flaubert": (1821, ["France"], ["Rouen"]),
    "Johann Wolfgang von Goethe": (1749, ["Germany"], ["Frankfurt", "Frankfurt am Main"]),
    "Ernest Hemingway": (1899, US, ["Oak Park"]),
    "Mark Twain": (1835, US, ["Florida, Missouri", "Florida"]),
    "James Joyce": (1882, IE, ["Dublin"]),
    "Bram Stoker": (1847, IE, ["Dublin"]),
    "Oscar Wilde": (1854, IE, ["Dublin"]),
    "Jonathan Swift": (1667, IE, ["Dublin"]),
    "Robert Louis Stevenson": (1850, UK_SCO, ["Edinburgh"]),
    "J. M. Barrie": (1860, UK_SCO, ["Kirriemuir"]),
    "J. R. R. Tolkien": (1892, ["South Africa"], ["Bloemfontein"]),
    "J. K. Rowling": (1965, UK_ENG, ["Yate"]),
    "Lewis Carroll": (1832, UK_ENG, ["Daresbury"]),
    "Charlotte Brontë": (1816, UK_ENG, ["Thornton"]),
    "H. G. Wells": (1866, UK_ENG, ["Bromley"]),
    "Jules Verne": (1828, ["France"], ["Nantes"]),
    "Antoine de Saint-Exupéry": (1900, ["France"], ["Lyon"]),
    "Umberto Eco": (1932, ["Italy"], ["Alessandria"]),
    "Chinua Achebe": (1930, ["Nigeria"], ["Ogidi"]),
    "Paulo Coelho": (1947, ["Brazil"], ["Rio de Janeiro"]),
    "Haruki Murakami": (1949, ["Japan"], ["Kyoto"]),
    "Toni Morrison": (1931, US, ["Lorain"]),
    "John Steinbeck": (1902, US, ["Salinas"]),
    "Vladimir Nabokov": (1899, ["Russia", "Russian Empire"], ["Saint Petersburg", "St. Petersburg"]),
    "Boris Pasternak": (1890, ["Russia", "Russian Empire"], ["Moscow"]),
    "Aldous Huxley": (1894, UK_ENG, ["Godalming"]),
    "William Golding": (1911, UK_ENG, ["Newquay"]),
    "Agatha Christie": (1890, UK_ENG, ["Torquay"]),
    "George R. R. Martin": (1948, US, ["Bayonne"]),
    "Suzanne Collins": (1962, US, ["Hartford"]),
    "Pyotr Ilyich Tchaikovsky": (1840, ["Russia", "Russian Empire"], ["Votkinsk"]),
    "Georges Bizet": (1838, ["France"], ["Paris"]),
    "Giuseppe Verdi": (1813, ["Italy"], ["Le Roncole", "Busseto"]),
    "Giacomo Puccini": (1858, ["Italy"], ["Lucca"]),
    "Gioachino Rossini": (1792, ["Italy"], ["Pesaro"]),
    "Maurice Ravel": (1875, ["France"], ["Ciboure"]),
    "Claude Debussy": (1862, ["France"], ["Saint-Germain-en-Laye"]),
    "Gustav Holst": (1874, UK_ENG, ["Cheltenham"]),
    "Igor Stravinsky": (1882, ["Russia", "Russian Empire"], ["Oranienbaum", "Lomonosov"]),
    "George Frideric Handel": (1685, ["Germany"], ["Halle"]),
    "Edvard Grieg": (1843, ["Norway"], ["Bergen"]),
    "Jean Sibelius": (1865, ["Finland"], ["Hämeenlinna"]),
    "George Gershwin": (1898, US, ["New York City", "New York", "Brooklyn"]),
    "Richard Wagner": (1813, ["Germany"], ["Leipzig"]),
    "Frédéric Chopin": (1810, ["Poland"], ["Żelazowa Wola"]),
    "Vincent van Gogh": (1853, ["Netherlands", "the Netherlands", "Holland"], ["Zundert"]),
    "Edvard Munch": (1863, ["Norway"], ["Løten", "Ådalsbruk"]),
    "Pablo Picasso": (1881, ["Spain"], ["Málaga", "Malaga"]),
    "Salvador Dalí": (1904, ["Spain"], ["Figueres"]),
    "Johannes Vermeer": (1632, ["Netherlands", "the Netherlands", "Dutch Republic"], ["Delft"]),
    "Rembrandt": (1606, ["Netherlands", "the Netherlands", "Dutch Republic"], ["Leiden"]),
    "Gustav Klimt": (1862, ["Austria"], ["Baumgarten", "Vienna"]),
    "Claude Monet": (1840, ["France"], ["Paris"]),
    "Katsushika Hokusai": (1760, ["Japan"], ["Edo", "Tokyo"]),
    "Grant Wood": (1891, US, ["Anamosa"]),
    "Diego Velázquez": (1599, ["Spain"], ["Seville"]),
    "René Magritte": (1898, ["Belgium"], ["Lessines"]),
    "Andy Warhol": (1928, US, ["Pittsburgh"]),
    "Auguste Rodin": (1840, ["France"], ["Paris"]),
    "Edward Hopper": (1882, US, ["Nyack"]),
    "Alexander Graham Bell": (1847, UK_SCO, ["Edinburgh"]),
    "Thomas Edison": (1847, US, ["Milan, Ohio", "Milan"]),
    "Tim Berners-Lee": (1955, UK_ENG, ["London"]),
    "Alfred Nobel": (1833, ["Sweden"], ["Stockholm"]),
    "Charles Darwin": (1809, UK_ENG, ["Shrewsbury"]),
    "Dmitri Mendeleev": (1834, ["Russia", "Russian Empire"], ["Tobolsk"]),
    "Guglielmo Marconi": (1874, ["Italy"], ["Bologna"]),
    "Yuri Gagarin": (1934, ["Soviet Union", "USSR", "Russia"], ["Klushino"]),
}

# (work, the phrase before it, maker)
WORKS: list[tuple[str, str, str]] = [
    ("Pulp Fiction", "the director of the film", "Quentin Tarantino"),
    ("Kill Bill", "the director of the film", "Quentin Tarantino"),
    ("The Lord of the Rings: The Fellowship of the Ring", "the director of the film", "Peter Jackson"),
    ("Taxi Driver", "the director of the film", "Martin Scorsese"),
    ("Goodfellas", "the director of the film", "Martin Scorsese"),
    ("Seven Samurai", "the director of the film", "Akira Kurosawa"),
    ("Rashomon", "the director of the film", "Akira Kurosawa"),
    ("Spirited Away", "the director of the film", "Hayao Miyazaki"),
    ("My Neighbor Totoro", "the director of the film", "Hayao Miyazaki"),
    ("Blade Runner", "the director of the film", "Ridley Scott"),
    ("Gladiator", "the director of the 2000 film", "Ridley Scott"),
    ("Back to the Future", "the director of the film", "Robert Zemeckis"),
    ("Forrest Gump", "the director of the film", "Robert Zemeckis"),
    ("Pan's Labyrinth", "the director of the film", "Guillermo del Toro"),
    ("The Shape of Water", "the director of the film", "Guillermo del Toro"),
    ("Crouching Tiger, Hidden Dragon", "the director of the film", "Ang Lee"),
    ("Life of Pi", "the director of the film", "Ang Lee"),
    ("Parasite", "the director of the 2019 film", "Bong Joon-ho"),
    ("Lawrence of Arabia", "the director of the film", "David Lean"),
    ("Mad Max: Fury Road", "the director of the film", "George Miller"),
    ("The Piano", "the director of the 1993 film", "Jane Campion"),
    ("Slumdog Millionaire", "the director of the film", "Danny Boyle"),
    ("Trainspotting", "the director of the film", "Danny Boyle"),
    ("Gravity", "the director of the 2013 film", "Alfonso Cuarón"),
    ("Birdman", "the director of the film", "Alejandro González Iñárritu"),
    ("The Revenant", "the director of the film", "Alejandro González Iñárritu"),
    ("Oldboy", "the director of the 2003 film", "Park Chan-wook"),
    ("La Dolce Vita", "the director of the film", "Federico Fellini"),
    ("Breathless", "the director of the 1960 film", "Jean-Luc Godard"),
    ("The 400 Blows", "the director of the film", "François Truffaut"),
    ("Metropolis", "the director of the 1927 film", "Fritz Lang"),
    ("The Seventh Seal", "the director of the film", "Ingmar Bergman"),
    ("Das Boot", "the director of the film", "Wolfgang Petersen"),
    ("Edward Scissorhands", "the director of the film", "Tim Burton"),
    ("The Grand Budapest Hotel", "the director of the film", "Wes Anderson"),
    ("Fight Club", "the director of the film", "David Fincher"),
    ("The Social Network", "the director of the film", "David Fincher"),
    ("Do the Right Thing", "the director of the film", "Spike Lee"),
    ("Get Out", "the director of the 2017 film", "Jordan Peele"),
    ("Dune", "the director of the 2021 film", "Denis Villeneuve"),
    ("The Great Gatsby", "the author of the novel", "F. Scott Fitzgerald"),
    ("To Kill a Mockingbird", "the author of the novel", "Harper Lee"),
    ("The Catcher in the Rye", "the author of the novel", "J. D. Salinger"),
    ("Crime and Punishment", "the author of the novel", "Fyodor Dostoevsky"),
    ("The Brothers Karamazov", "the author of the novel", "Fyodor Dostoevsky"),
    ("Les Misérables", "the author of the novel", "Victor Hugo"),
    ("The Hunchback of Notre-Dame", "the author of the novel", "Victor Hugo"),
    ("The Count of Monte Cristo", "the author of the novel", "Alexandre Dumas"),
    ("The Three Musketeers", "the author of the novel", "Alexandre Dumas"),
    ("Madame Bovary", "the author of the novel", "Gustave Flaubert"),
    ("Faust", "the author of the play", "Johann Wolfgang von Goethe"),
    ("The Old Man and the Sea", "the author of the novella", "Ernest Hemingway"),
    ("A Farewell to Arms", "the author of the novel", "Ernest Hemingway"),
    ("Adventures of Huckleberry Finn", "the author of the novel", "Mark Twain"),
    ("The Adventures of Tom Sawyer", "the author of the novel", "Mark Twain"),
    ("Ulysses", "the author of the novel", "James Joyce"),
    ("Dracula", "the author of the novel", "Bram Stoker"),
    ("The Picture of Dorian Gray", "the author of the novel", "Oscar Wilde"),
    ("Gulliver's Travels", "the author of the book", "Jonathan Swift"),
    ("Treasure Island", "the author of the novel", "Robert Louis Stevenson"),
    ("Peter Pan", "the author of the play", "J. M. Barrie"),
    ("The Hobbit", "the author of the novel", "J. R. R. Tolkien"),
    ("Harry Potter and the Philosopher's Stone", "the author of the novel", "J. K. Rowling"),
    ("Alice's Adventures in Wonderland", "the author of the book", "Lewis Carroll"),
    ("Jane Eyre", "the author of the novel", "Charlotte Brontë"),
    ("The Time Machine", "the author of the novel", "H. G. Wells"),
    ("The War of the Worlds", "the author of the novel", "H. G. Wells"),
    ("Twenty Thousand Leagues Under the Seas", "the author of the novel", "Jules Verne"),
    ("Around the World in Eighty Days", "the author of the novel", "Jules Verne"),
    ("The Little Prince", "the author of the book", "Antoine de Saint-Exupéry"),
    ("The Name of the Rose", "the author of the novel", "Umberto Eco"),
    ("Things Fall Apart", "the author of the novel", "Chinua Achebe"),
    ("The Alchemist", "the author of the novel", "Paulo Coelho"),
    ("Norwegian Wood", "the author of the novel", "Haruki Murakami"),
    ("Beloved", "the author of the novel", "Toni Morrison"),
    ("The Grapes of Wrath", "the author of the novel", "John Steinbeck"),
    ("Of Mice and Men", "the author of the novella", "John Steinbeck"),
    ("Lolita", "the author of the novel", "Vladimir Nabokov"),
    ("Doctor Zhivago", "the author of the novel", "Boris Pasternak"),
    ("Brave New World", "the author of the novel", "Aldous Huxley"),
    ("Lord of the Flies", "the author of the novel", "William Golding"),
    ("Murder on the Orient Express", "the author of the novel", "Agatha Christie"),
    ("A Game of Thrones", "the author of the novel", "George R. R. Martin"),
    ("The Hunger Games", "the author of the novel", "Suzanne Collins"),
    ("Swan Lake", "the composer of the ballet", "Pyotr Ilyich Tchaikovsky"),
    ("The Nutcracker", "the composer of the ballet", "Pyotr Ilyich Tchaikovsky"),
    ("Carmen", "the composer of the opera", "Georges Bizet"),
    ("La Traviata", "the composer of the opera", "Giuseppe Verdi"),
    ("Aida", "the composer of the opera", "Giuseppe Verdi"),
    ("Madama Butterfly", "the composer of the opera", "Giacomo Puccini"),
    ("The Barber of Seville", "the composer of the opera", "Gioachino Rossini"),
    ("Boléro", "the composer of", "Maurice Ravel"),
    ("Clair de lune", "the composer of", "Claude Debussy"),
    ("The Planets", "the composer of the suite", "Gustav Holst"),
    ("The Rite of Spring", "the composer of the ballet", "Igor Stravinsky"),
    ("Messiah", "the composer of the oratorio", "George Frideric Handel"),
    ("Peer Gynt", "the composer of the incidental music", "Edvard Grieg"),
    ("Finlandia", "the composer of the tone poem", "Jean Sibelius"),
    ("Rhapsody in Blue", "the composer of", "George Gershwin"),
    ("Ride of the Valkyries", "the composer of", "Richard Wagner"),
    ("Minute Waltz", "the composer of the", "Frédéric Chopin"),
    ("The Starry Night", "the painter of", "Vincent van Gogh"),
    ("The Scream", "the painter of", "Edvard Munch"),
    ("Guernica", "the painter of", "Pablo Picasso"),
    ("The Persistence of Memory", "the painter of", "Salvador Dalí"),
    ("Girl with a Pearl Earring", "the painter of", "Johannes Vermeer"),
    ("The Night Watch", "the painter of", "Rembrandt"),
    ("The Kiss", "the painter of", "Gustav Klimt"),
    ("Impression, Sunrise", "the painter of", "Claude Monet"),
    ("The Great Wave off Kanagawa", "the artist of", "Katsushika Hokusai"),
    ("American Gothic", "the painter of", "Grant Wood"),
    ("Las Meninas", "the painter of", "Diego Velázquez"),
    ("The Son of Man", "the painter of", "René Magritte"),
    ("Campbell's Soup Cans", "the artist of", "Andy Warhol"),
    ("The Thinker", "the sculptor of", "Auguste Rodin"),
    ("Nighthawks", "the painter of", "Edward Hopper"),
    ("the telephone", "the inventor of", "Alexander Graham Bell"),
    ("the phonograph", "the inventor of", "Thomas Edison"),
    ("the World Wide Web", "the inventor of", "Tim Berners-Lee"),
    ("dynamite", "the inventor of", "Alfred Nobel"),
    ("the theory of evolution by natural selection", "the scientist behind", "Charles Darwin"),
    ("the periodic table", "the chemist who first published", "Dmitri Mendeleev"),
    ("the first human spaceflight", "the cosmonaut of", "Yuri Gagarin"),
]

# place: (country, its capital golds, currency golds, official language golds, continent golds)
COUNTRIES: dict[str, tuple[list[str], list[str], list[str], list[str]]] = {
    "United States": (["Washington, D.C.", "Washington"], ["United States dollar", "US dollar", "dollar"], ["English"],
                      ["North America"]),
    "United Kingdom": (["London"], ["Pound sterling", "pound", "British pound"], ["English"], ["Europe"]),
    "Spain": (["Madrid"], ["Euro"], ["Spanish"], ["Europe"]),
    "Jordan": (["Amman"], ["Jordanian dinar", "dinar"], ["Arabic"], ["Asia"]),
    "Russia": (["Moscow"], ["Russian ruble", "ruble", "rouble"], ["Russian"], ["Europe", "Asia"]),
    "Germany": (["Berlin"], ["Euro"], ["German"], ["Europe"]),
    "Australia": (["Canberra"], ["Australian dollar", "dollar"], ["English"], ["Australia", "Oceania"]),
    "South Africa": (["Pretoria", "Cape Town", "Bloemfontein"], ["South African rand", "rand"], ["English", "Zulu",
                     "Afrikaans", "Xhosa"], ["Africa"]),
    "United Arab Emirates": (["Abu Dhabi"], ["UAE dirham", "dirham"], ["Arabic"], ["Asia"]),
    "Mexico": (["Mexico City"], ["Mexican peso", "peso"], ["Spanish"], ["North America"]),
    "Malaysia": (["Kuala Lumpur"], ["Malaysian ringgit", "ringgit"], ["Malay", "Malaysian"], ["Asia"]),
    "Tanzania": (["Dodoma"], ["Tanzanian shilling", "shilling"], ["Swahili", "English"], ["Africa"]),
    "Denmark": (["Copenhagen"], ["Danish krone", "krone"], ["Danish"], ["Europe"]),
    "Belgium": (["Brussels"], ["Euro"], ["Dutch", "French", "German"], ["Europe"]),
    "Thailand": (["Bangkok"], ["Thai baht", "baht"], ["Thai"], ["Asia"]),
    "Romania": (["Bucharest"], ["Romanian leu", "leu"], ["Romanian"], ["Europe"]),
    "Czech Republic": (["Prague"], ["Czech koruna", "koruna", "crown"], ["Czech"], ["Europe"]),
    "Iceland": (["Reykjavík", "Reykjavik"], ["Icelandic króna", "króna", "krona"], ["Icelandic"], ["Europe"]),
    "Morocco": (["Rabat"], ["Moroccan dirham", "dirham"], ["Arabic", "Berber", "Tamazight"], ["Africa"]),
    "Switzerland": (["Bern", "Berne"], ["Swiss franc", "franc"], ["German", "French", "Italian", "Romansh"],
                    ["Europe"]),
    "Poland": (["Warsaw"], ["Polish złoty", "złoty", "zloty"], ["Polish"], ["Europe"]),
    "Sweden": (["Stockholm"], ["Swedish krona", "krona"], ["Swedish"], ["Europe"]),
    "Netherlands": (["Amsterdam"], ["Euro"], ["Dutch"], ["Europe"]),
    "New Zealand": (["Wellington"], ["New Zealand dollar", "dollar"], ["English", "Māori", "Maori"], ["Oceania",
                    "Australia"]),
    "Nigeria": (["Abuja"], ["Nigerian naira", "naira"], ["English"], ["Africa"]),
    "Vietnam": (["Hanoi"], ["Vietnamese đồng", "đồng", "dong"], ["Vietnamese"], ["Asia"]),
    "South Korea": (["Seoul"], ["South Korean won", "won"], ["Korean"], ["Asia"]),
    "Colombia": (["Bogotá", "Bogota"], ["Colombian peso", "peso"], ["Spanish"], ["South America"]),
    "Chile": (["Santiago"], ["Chilean peso", "peso"], ["Spanish"], ["South America"]),
    "Pakistan": (["Islamabad"], ["Pakistani rupee", "rupee"], ["Urdu", "English"], ["Asia"]),
    "Finland": (["Helsinki"], ["Euro"], ["Finnish", "Swedish"], ["Europe"]),
    "Ireland": (["Dublin"], ["Euro"], ["Irish", "English"], ["Europe"]),
    "Austria": (["Vienna"], ["Euro"], ["German"], ["Europe"]),
}

PLACES: list[tuple[str, str, str]] = [  # (the place as a question names it, verb phrase, country)
    ("the Sagrada Família", "stands", "Spain"), ("the Alhambra", "stands", "Spain"),
    ("Petra", "is located", "Jordan"), ("the Kremlin", "stands", "Russia"), ("Red Square", "is located", "Russia"),
    ("Neuschwanstein Castle", "stands", "Germany"), ("the Brandenburg Gate", "stands", "Germany"),
    ("the Sydney Opera House", "stands", "Australia"), ("Uluru", "is located", "Australia"),
    ("Table Mountain", "is located", "South Africa"), ("the Burj Khalifa", "stands", "United Arab Emirates"),
    ("Chichen Itza", "is located", "Mexico"), ("the Petronas Towers", "stand", "Malaysia"),
    ("Mount Kilimanjaro", "is located", "Tanzania"), ("the Little Mermaid statue", "stands", "Denmark"),
    ("the Atomium", "stands", "Belgium"), ("Wat Arun", "stands", "Thailand"), ("Bran Castle", "stands", "Romania"),
    ("the Charles Bridge", "stands", "Czech Republic"), ("Hallgrímskirkja", "stands", "Iceland"),
    ("Stonehenge", "stands", "United Kingdom"), ("Tower Bridge", "stands", "United Kingdom"),
    ("Mount Rushmore", "is located", "United States"), ("the Space Needle", "stands", "United States"),
    ("the city of Marrakesh", "is", "Morocco"), ("the city of Munich", "is", "Germany"),
    ("the city of Geneva", "is", "Switzerland"), ("the city of Saint Petersburg", "is", "Russia"),
    ("the city of Seville", "is", "Spain"), ("the city of Kraków", "is", "Poland"),
    ("the city of Gothenburg", "is", "Sweden"), ("the city of Antwerp", "is", "Belgium"),
    ("the city of Rotterdam", "is", "Netherlands"), ("the city of Melbourne", "is", "Australia"),
    ("the city of Auckland", "is", "New Zealand"), ("the city of Lagos", "is", "Nigeria"),
    ("Ho Chi Minh City", "is", "Vietnam"), ("the city of Busan", "is", "South Korea"),
    ("the city of Medellín", "is", "Colombia"), ("the city of Valparaíso", "is", "Chile"),
    ("the city of Karachi", "is", "Pakistan"), ("the city of Chicago", "is", "United States"),
    ("the city of Dubai", "is", "United Arab Emirates"), ("the city of Zurich", "is", "Switzerland"),
    ("the city of Salamanca", "is", "Spain"), ("the city of Hamburg", "is", "Germany"),
    ("the city of Manchester", "is", "United Kingdom"), ("the city of Perth in Western Australia", "is",
                                                         "Australia"),
]


def _eval_text() -> str:
    parts = []
    for name in EVAL_SETS:
        for line in (ROOT / "assets" / "questions" / name).read_text(encoding="utf-8").splitlines():
            if line.strip():
                d = json.loads(line)
                parts += [d["question"], *d["golden_answers"]]
    return " || ".join(parts).lower()


def _seen(entity: str, text: str) -> bool:
    e = re.sub(r"^(the city of |the )", "", entity.lower())
    surname = e.split()[-1] if " " in e and not e.startswith("the ") else e
    return e in text or (len(surname) > 4 and re.search(rf"\b{re.escape(surname)}\b", text) is not None)


def _q(qid: str, question: str, golds: list[str], kind: str, hops: list[str]) -> dict:
    return {"id": qid, "question": question, "golden_answers": golds, "type": kind, "hops": hops}


def compose() -> tuple[list[dict], list[str]]:
    text = _eval_text()
    out: list[dict] = []
    left_out: list[str] = []
    rng = random.Random(SEED)
    for i, (work, role, maker) in enumerate(WORKS):
        if _seen(work, text) or _seen(maker, text):
            left_out.append(f"{work} / {maker}")
            continue
        year, countries, cities = PEOPLE[maker]
        quoted = work if work[0].islower() else f'"{work}"'
        asks = [("country", f"In which country was {role} {quoted} born?", countries),
                ("year", f"In what year was {role} {quoted} born?", [str(year)]),
                ("city", f"In which city was {role} {quoted} born?", cities)]
        for kind, question, golds in rng.sample(asks, 2):
            out.append(_q(f"tr-w{i:03d}-{kind}", question, golds, "bridge", [maker]))
    for i, (place, verb, country) in enumerate(PLACES):
        if _seen(place, text) or _seen(country, text):
            left_out.append(f"{place} / {country}")
            continue
        capital, currency, language, continent = COUNTRIES[country]
        asks = [("capital", f"What is the capital of the country where {place} {verb}?", capital),
                ("currency", f"What is the currency of the country where {place} {verb}?", currency),
                ("language", f"What is the official language of the country where {place} {verb}?", language),
                ("continent", f"On which continent is the country where {place} {verb}?", continent)]
        for kind, question, golds in rng.sample(asks, 2):
            out.append(_q(f"tr-p{i:03d}-{kind}", question, golds, "bridge", [country]))
    makers = sorted({m for _, _, m in WORKS if not _seen(m, text)})
    pairs = set()
    while len(pairs) < 60:
        a, b = rng.sample(makers, 2)
        if abs(PEOPLE[a][0] - PEOPLE[b][0]) >= 5 and (b, a) not in pairs:
            pairs.add((a, b))
    for j, (a, b) in enumerate(sorted(pairs)):
        first = a if PEOPLE[a][0] < PEOPLE[b][0] else b
        golds = [first] + ([first.split()[-1]] if " " in first else [])
        out.append(_q(f"tr-c{j:03d}", f"Who was born first, {a} or {b}?", golds, "comparison", [a, b]))
    return out, left_out


def main() -> int:
    rows, left_out = compose()
    with open(OUT, "w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"{len(rows)} questions → {OUT.relative_to(ROOT)}; left out (named by an evaluation set): "
          f"{len(left_out)}: {', '.join(left_out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
