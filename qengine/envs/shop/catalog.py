"""The generated catalogue of the ``shop`` environment: products, search index, purchase goals.

Everything is a pure function of a seed, so the catalogue is rebuilt identically in every
process (no files, no downloads). The vocabulary below plays the role of WebShop's scraped
product data: each category has a type name, a category path, an attribute pool and option
dimensions. Option values never occur in titles or descriptions, so an option only counts in the
reward when it was actually selected.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..text import rng_for, tokens

__all__ = ["CATEGORIES", "Catalog", "Category", "Goal", "Product", "build_catalog"]

_COLORS = (
    "black", "white", "navy blue", "red", "green", "grey", "beige", "pink", "purple", "orange",
)  # fmt: skip
_CLOTH_SIZES = ("x-small", "small", "medium", "large", "x-large", "xx-large")
_SHOE_SIZES = ("6", "7", "8", "9", "10", "11", "12")
_VOLUMES = ("12 oz", "18 oz", "24 oz", "32 oz", "40 oz")
_PACKS = ("pack of 1", "pack of 2", "pack of 3", "pack of 6")
_DIMS = ("60 x 80 inch", "50 x 60 inch", "90 x 90 inch", "108 x 90 inch")


@dataclass(frozen=True)
class Category:
    """One product type of the store."""

    key: str  # the type name, e.g. "running shoes" (also WebShop's "query")
    path: str  # category path, "›"-separated
    attributes: tuple[str, ...]  # pool the products' attributes are drawn from
    options: tuple[tuple[str, tuple[str, ...]], ...]  # (dimension, values) pairs
    price: tuple[float, float]  # price range in dollars


CATEGORIES: tuple[Category, ...] = (
    Category("running shoes", "clothing › shoes › athletic",
             ("lightweight", "non-slip", "breathable", "memory foam", "arch support",
              "waterproof", "wide fit"),
             (("color", _COLORS), ("size", _SHOE_SIZES)), (25, 120)),
    Category("hiking boots", "clothing › shoes › outdoor",
             ("waterproof", "ankle support", "non-slip", "insulated", "lightweight",
              "leather upper", "wide fit"),
             (("color", _COLORS), ("size", _SHOE_SIZES)), (40, 180)),
    Category("t-shirt", "clothing › tops › casual",
             ("cotton", "slim fit", "moisture wicking", "short sleeve", "crew neck",
              "machine wash", "relaxed fit"),
             (("color", _COLORS), ("size", _CLOTH_SIZES)), (8, 40)),
    Category("hoodie", "clothing › tops › sweatshirts",
             ("fleece lined", "zip up", "cotton", "oversized", "kangaroo pocket",
              "machine wash", "slim fit"),
             (("color", _COLORS), ("size", _CLOTH_SIZES)), (20, 70)),
    Category("water bottle", "home › kitchen › drinkware",
             ("stainless steel", "bpa free", "leak proof", "insulated", "dishwasher safe",
              "wide mouth", "lightweight"),
             (("color", _COLORS), ("size", _VOLUMES)), (9, 45)),
    Category("coffee mug", "home › kitchen › drinkware",
             ("ceramic", "dishwasher safe", "microwave safe", "insulated", "lid included",
              "stainless steel", "handmade"),
             (("color", _COLORS), ("size", _VOLUMES)), (7, 35)),
    Category("backpack", "bags › travel › daypacks",
             ("waterproof", "laptop compartment", "lightweight", "usb charging port",
              "anti theft", "padded straps", "large capacity"),
             (("color", _COLORS),), (20, 110)),
    Category("headphones", "electronics › audio › headphones",
             ("wireless", "noise cancelling", "over ear", "long battery life",
              "built-in microphone", "foldable", "bluetooth"),
             (("color", _COLORS),), (18, 250)),
    Category("yoga mat", "sports › fitness › yoga",
             ("non-slip", "extra thick", "eco friendly", "carrying strap", "lightweight",
              "latex free", "double sided"),
             (("color", _COLORS), ("size", _PACKS)), (15, 80)),
    Category("throw blanket", "home › bedding › blankets",
             ("fleece", "machine wash", "soft", "lightweight", "hypoallergenic", "cotton",
              "reversible"),
             (("color", _COLORS), ("size", _DIMS)), (15, 90)),
    Category("face moisturizer", "beauty › skin care › face",
             ("fragrance free", "hyaluronic acid", "oil free", "sensitive skin",
              "cruelty free", "spf protection", "paraben free"),
             (("size", _PACKS),), (8, 60)),
    Category("dog bed", "pets › dogs › beds",
             ("orthopedic", "machine wash", "non-slip", "waterproof", "memory foam",
              "removable cover", "calming"),
             (("color", _COLORS), ("size", _CLOTH_SIZES)), (20, 140)),
)  # fmt: skip

_BRAND_A = ("zo", "ka", "ve", "lu", "mi", "tor", "an", "bel", "cor", "dri", "fen", "gal", "hu")
_BRAND_B = ("rix", "nova", "ton", "lia", "vex", "dor", "mo", "sa", "quil", "bex", "ra", "nel")
_FILLERS = (
    "for men", "for women", "unisex", "classic", "premium", "everyday", "essential",
    "deluxe", "original", "sport", "pro", "plus",
)  # fmt: skip


@dataclass(frozen=True)
class Product:
    """One catalogue item (the fields WebShop's reward reads)."""

    asin: str  # item id shown on result pages and clicked with click[asin]
    category: str  # Category.key (WebShop's "query")
    path: str  # category path
    brand: str
    title: str
    attributes: tuple[str, ...]
    options: tuple[tuple[str, tuple[str, ...]], ...]  # (dimension, offered values)
    price: float
    description: str

    @property
    def type_words(self) -> frozenset[str]:
        """Stand-in for the nouns spaCy would tag in the title: the words of the type name."""
        return frozenset(tokens(self.category))

    def option_values(self) -> dict[str, tuple[str, ...]]:
        """Offered values per option dimension."""
        return dict(self.options)


@dataclass(frozen=True)
class Goal:
    """What the instruction asks for (WebShop's goal dict)."""

    target: str  # asin of the product the goal was generated from
    category: str
    path: str
    type_words: frozenset[str]  # of the target product (WebShop's goal["name"] nouns)
    attributes: tuple[str, ...]
    options: tuple[tuple[str, str], ...]  # (dimension, wanted value)
    price_upper: float
    instruction: str
    search_query: str  # the words an expert searches for


class Catalog:
    """The product list plus a deterministic keyword search over it."""

    def __init__(self, products: list[Product]) -> None:
        self.products: tuple[Product, ...] = tuple(products)
        self.by_asin: dict[str, Product] = {p.asin: p for p in products}
        self._postings: dict[str, list[int]] = defaultdict(list)
        for i, p in enumerate(products):
            for t in set(tokens(f"{p.title} {p.category} {' '.join(p.attributes)}")):
                self._postings[t].append(i)
        n = len(products)
        self._idf = {t: math.log(1.0 + n / len(ix)) for t, ix in self._postings.items()}

    def search(self, query: str, *, limit: int = 50) -> list[str]:
        """Asins of the best ``limit`` matches of ``query``.

        Score = sum of the idf of the distinct query words the product's title, type or
        attributes contain (a BM25 without length normalisation); ties keep catalogue order,
        which is a seeded shuffle. Products matching no word are left out.
        """
        scores: dict[int, float] = defaultdict(float)
        for t in set(tokens(query)):
            for i in self._postings.get(t, ()):
                scores[i] += self._idf[t]
        ranked = sorted(scores, key=lambda i: (-round(scores[i], 9), i))
        return [self.products[i].asin for i in ranked[:limit]]


def _asin(rng: np.random.Generator, used: set[str]) -> str:
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    while True:
        s = "b0" + "".join(alphabet[int(k)] for k in rng.integers(0, len(alphabet), size=8))
        if s not in used:
            used.add(s)
            return s


def _make_product(cat: Category, rng: np.random.Generator, used: set[str]) -> Product:
    brand = _BRAND_A[rng.integers(len(_BRAND_A))] + _BRAND_B[rng.integers(len(_BRAND_B))]
    brand = brand.capitalize()
    n_att = int(rng.integers(2, 5))
    attrs = tuple(sorted(rng.choice(cat.attributes, size=n_att, replace=False).tolist()))
    shown = rng.choice(attrs, size=int(rng.integers(0, min(2, n_att) + 1)), replace=False)
    filler = _FILLERS[rng.integers(len(_FILLERS))]
    title = " ".join([brand, *shown.tolist(), cat.key, filler])
    opts = []
    for dim, values in cat.options:
        k = int(rng.integers(2, 4))  # few offered values: many near-miss distractors
        picked = sorted(rng.choice(len(values), size=k, replace=False).tolist())
        opts.append((dim, tuple(values[j] for j in picked)))
    lo, hi = cat.price
    price = round(float(np.floor(rng.uniform(lo, hi))) + 0.99, 2)
    desc = f"{brand} {cat.key}. Features: {', '.join(attrs)}."
    return Product(
        _asin(rng, used), cat.key, cat.path, brand, title, attrs, tuple(opts), price, desc
    )


@lru_cache(maxsize=8)
def build_catalog(seed: int, products_per_category: int) -> Catalog:
    """The catalogue of ``seed`` (cached: environments with one seed share it)."""
    rng = rng_for("shop-catalog", seed)
    used: set[str] = set()
    products = [
        _make_product(cat, rng, used) for cat in CATEGORIES for _ in range(products_per_category)
    ]
    order = rng.permutation(len(products))
    return Catalog([products[int(i)] for i in order])
