"""The generated knowledge base of the ``hotpot`` environment: entities and their articles.

Entities are countries, cities, people, films and books with made-up names, linked by facts
(a film's director, a person's birthplace, a city's country). Every entity has a short article
of sentences; each sentence records the *spans* it mentions (entity titles, years, nationality
words) so the environment knows what an agent has seen. The search observation shows only the
first two sentences of an article, so some facts (birthplaces) need ``lookup``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..text import rng_for

__all__ = ["Article", "KnowledgeBase", "Sentence", "build_kb"]

_COUNTRIES = (
    ("Valdoria", "Valdorian"), ("Nordmark", "Nordmarkish"), ("Estravia", "Estravian"),
    ("Kalvaria", "Kalvarian"), ("Ostrelia", "Ostrelian"), ("Merovia", "Merovian"),
    ("Tarsonia", "Tarsonian"), ("Belmora", "Belmoran"), ("Lusvania", "Lusvanian"),
    ("Corvania", "Corvanian"), ("Drakmoor", "Drakmoorish"), ("Felgard", "Felgardian"),
)  # fmt: skip
_CITY_A = ("bel", "cor", "dun", "el", "fal", "gren", "hal", "ist", "kar", "lin", "mor", "nor",
           "ost", "pra", "quen", "ros", "sel", "tor", "ul", "ven", "wes", "zar")  # fmt: skip
_CITY_B = ("burg", "haven", "ford", "holm", "mouth", "stad", "vik", "mere", "gate", "wick",
           "dale", "port", "field", "moor")  # fmt: skip
_FIRST = ("Ada", "Bruno", "Clara", "Dmitri", "Elena", "Felix", "Greta", "Hugo", "Ines", "Jonas",
          "Katya", "Lucas", "Mira", "Nils", "Olga", "Pavel", "Rosa", "Stefan", "Tilda", "Viktor",
          "Wanda", "Yusuf", "Zora", "Anton", "Berit", "Casimir", "Dora", "Emil")  # fmt: skip
_LAST_A = ("Al", "Bran", "Dal", "Eck", "Fern", "Gold", "Hart", "Iver", "Kess", "Lind", "Mar",
           "Nov", "Orm", "Pell", "Rask", "Stra", "Tull", "Var", "Wend")  # fmt: skip
_LAST_B = ("berg", "ova", "sen", "ani", "quist", "mann", "ardi", "ell", "ovic", "ström", "eau",
           "ing", "ley")  # fmt: skip
_OCCUPATIONS = ("painter", "composer", "physicist", "architect", "poet", "chemist", "sculptor")
_ADJ = ("Silent", "Crimson", "Hollow", "Last", "Frozen", "Hidden", "Golden", "Broken", "Quiet",
        "Endless", "Distant", "Burning", "Pale", "Iron", "Wandering", "Seventh")  # fmt: skip
_NOUN = ("Harbor", "Orchard", "Lantern", "River", "Garden", "Tower", "Winter", "Mirror", "Voyage",
         "Meadow", "Signal", "Kingdom", "Bridge", "Archive", "Summer", "Compass")  # fmt: skip
_GENRES = ("drama", "comedy", "thriller", "documentary", "science fiction", "musical")
_FEATURES = ("old harbour", "cathedral", "textile mills", "botanical garden", "river festival",
             "university", "salt mines", "clock tower")  # fmt: skip
_AWARDS = ("Aurel Prize", "Golden Quill", "Meridian Medal", "Halvard Award")


@dataclass(frozen=True)
class Sentence:
    """One sentence of an article and the answer-like spans it mentions."""

    text: str
    spans: tuple[str, ...]


@dataclass(frozen=True)
class Article:
    """An entity's article."""

    title: str
    kind: str  # "country" | "city" | "person" | "film" | "book"
    sentences: tuple[Sentence, ...]
    facts: tuple[tuple[str, str], ...]  # structured facts, e.g. ("born_in", "Halmouth")

    def fact(self, name: str) -> str:
        """The value of fact ``name`` (KeyError if absent)."""
        return dict(self.facts)[name]


class KnowledgeBase:
    """Articles by title plus lookups by kind."""

    def __init__(self, articles: list[Article]) -> None:
        self.articles: dict[str, Article] = {a.title: a for a in articles}
        if len(self.articles) != len(articles):
            raise AssertionError("duplicate titles in the generated knowledge base")
        self._norm = {a.title.lower(): a.title for a in articles}
        self.by_kind: dict[str, list[str]] = {}
        for a in articles:
            self.by_kind.setdefault(a.kind, []).append(a.title)
        self.demonyms = {c: d for c, d in _COUNTRIES}

    def find(self, query: str) -> Article | None:
        """The article titled ``query`` (case- and whitespace-insensitive), or ``None``."""
        title = self._norm.get(" ".join(query.lower().split()))
        return self.articles[title] if title else None

    def similar(self, query: str, k: int = 5) -> list[str]:
        """Up to ``k`` titles sharing the most words (then letters) with ``query``."""
        q = set(query.lower().split())
        ql = set(query.lower())
        scored = sorted(
            self.articles,
            key=lambda t: (-len(q & set(t.lower().split())), -len(ql & set(t.lower())), t),
        )
        return scored[:k]


def _a(noun: str) -> str:
    return ("an " if noun[0] in "aeiou" else "a ") + noun


def _unique(make, used: set[str]) -> str:
    for _ in range(1000):
        s = make()
        if s not in used:
            used.add(s)
            return s
    raise RuntimeError("name space exhausted; use fewer entities")


def _pick(rng: np.random.Generator, seq):
    return seq[int(rng.integers(len(seq)))]


@lru_cache(maxsize=8)
def build_kb(
    seed: int,
    *,
    num_cities: int = 60,
    num_people: int = 220,
    num_films: int = 110,
    num_books: int = 80,
) -> KnowledgeBase:
    """The knowledge base of ``seed`` (cached)."""
    rng = rng_for("hotpot-kb", seed)
    used: set[str] = {c for c, _ in _COUNTRIES}
    arts: list[Article] = []

    cities = []
    for _ in range(num_cities):
        name = _unique(lambda: (_pick(rng, _CITY_A) + _pick(rng, _CITY_B)).capitalize(), used)
        country, _dem = _pick(rng, _COUNTRIES)
        year = int(rng.integers(800, 1900))
        pop = int(rng.integers(20, 900)) * 1000
        feat = _pick(rng, _FEATURES)
        cities.append((name, country))
        sents = (
            Sentence(f"{name} is a city in {country}.", (name, country)),
            Sentence(f"It was founded in {year}.", (str(year),)),
            Sentence(f"It has a population of about {pop:,} people.", ()),
            Sentence(f"The city is known for its {feat}.", ()),
        )
        facts = (("country", country), ("founded", str(year)))
        arts.append(Article(name, "city", sents, facts))

    for country, dem in _COUNTRIES:
        in_c = [c for c, k in cities if k == country][:3]
        sents = [Sentence(f"{country} is a country. Its people are called {dem}.", (country, dem))]
        if in_c:
            sents.append(Sentence(f"Its cities include {', '.join(in_c)}.", tuple(in_c)))
        arts.append(Article(country, "country", tuple(sents), (("demonym", dem),)))

    people = []  # (name, occupation)
    roles = ["film director"] * 40 + ["novelist"] * 35
    for i in range(num_people):
        name = _unique(
            lambda: f"{_pick(rng, _FIRST)} {_pick(rng, _LAST_A)}{_pick(rng, _LAST_B)}", used
        )
        occ = roles[i] if i < len(roles) else _pick(rng, _OCCUPATIONS)
        city, country = _pick(rng, cities)
        dem = dict(_COUNTRIES)[country]
        born = int(rng.integers(1890, 1996))
        school_city = _pick(rng, cities)[0]
        award_year = born + int(rng.integers(25, 60))
        award = _pick(rng, _AWARDS)
        people.append((name, occ, born))
        arts.append(
            Article(
                name,
                "person",
                (
                    Sentence(f"{name} (born {born}) is a {dem} {occ}.", (name, str(born), dem)),
                    Sentence(f"{name} began working as {_a(occ)} at a young age.", (name,)),
                    Sentence(f"{name} studied at the University of {school_city}.", (school_city,)),
                    Sentence(f"{name} was born in {city}, {country}.", (city, country)),
                    Sentence(f"{name} received the {award} in {award_year}.", (str(award_year),)),
                ),
                (("born", str(born)), ("born_in", city), ("nationality", dem)),
            )
        )
    directors = [p for p in people if p[1] == "film director"]
    novelists = [p for p in people if p[1] == "novelist"]

    for _ in range(num_films):
        title = _unique(lambda: f"The {_pick(rng, _ADJ)} {_pick(rng, _NOUN)}", used)
        director, _, born = _pick(rng, directors)
        year = born + int(rng.integers(25, 70))
        genre = _pick(rng, _GENRES)
        city = _pick(rng, cities)[0]
        sents = (
            Sentence(f"{title} is a {year} {genre} film.", (title, str(year))),
            Sentence(f"It was directed by {director}.", (director,)),
            Sentence(f"The film was shot on location in {city}.", (city,)),
        )
        arts.append(Article(title, "film", sents, (("year", str(year)), ("director", director))))

    for _ in range(num_books):
        title = _unique(
            lambda: f"{_pick(rng, _NOUN)} of the {_pick(rng, _ADJ)} {_pick(rng, _NOUN)}", used
        )
        author, _, born = _pick(rng, novelists)
        year = born + int(rng.integers(20, 70))
        sents = (
            Sentence(f"{title} is a {year} novel.", (title, str(year))),
            Sentence(f"It was written by {author}.", (author,)),
            Sentence(
                f"The book has been translated into {int(rng.integers(2, 40))} languages.", ()
            ),
        )
        arts.append(Article(title, "book", sents, (("year", str(year)), ("author", author))))
    return KnowledgeBase(arts)
