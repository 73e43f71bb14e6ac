"""Search configuration shared by the native core and the pure-Python reference.

The meaning of every field is defined in ``docs/search-semantics.md`` (section 2); the fields, their
kinds, defaults and checks live once, in the core's table (``csrc/qengine/config.h``): this module
spells them as a dataclass for readers and type checkers, is checked against that table at import,
and lets the core validate every value (``qengine._core.check_config``).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, Literal, get_args

from ._native import core

Rule = Literal["uct", "puct", "muzero", "lats"]
Fpu = Literal["inf", "parent", "reduction", "constant"]
QNorm = Literal["none", "bounds", "tree_minmax", "parent_minmax"]
Backup = Literal["mean", "max"]

CONFIG_FIELDS: tuple[dict[str, Any], ...] = tuple(core().CONFIG_FIELDS)
"""The schema of ``SearchConfig``, defined once in ``csrc/qengine/config.h`` (an X-macro table
that also generates the core's struct, its dict conversion and checks): one dict per field, in
order, with ``name``, ``kind`` (``"str"``, ``"float"``, ``"int"``, ``"bool"``), ``default``,
``choices`` (enum names) and ``doc``. The dataclass below spells the fields for readers and type
checkers; :func:`_check_schema` refuses to import if it drifts from this table."""

_CHOICES = {f["name"]: tuple(f["choices"]) for f in CONFIG_FIELDS if f["kind"] == "str"}
RULES: tuple[str, ...] = _CHOICES["rule"]
FPUS: tuple[str, ...] = _CHOICES["fpu"]
QNORMS: tuple[str, ...] = _CHOICES["qnorm"]
BACKUPS: tuple[str, ...] = _CHOICES["backup"]


@dataclass(frozen=True, kw_only=True)
class SearchConfig:
    """How a forest selects, normalises and backs up.

    Selection rules (formulas in ``docs/search-semantics.md`` 4.4):
      * ``uct``:    Q̂ + c·sqrt(ln N(s) / n(a))
      * ``puct``:   Q̂ + c·P(a)·sqrt(N(s)) / (1 + n(a))                      (AlphaZero)
      * ``muzero``: Q̂ + P(a)·sqrt(N(s)) / (1 + n(a))·(c1 + ln((N(s)+c2+1)/c2))
      * ``lats``:   unvisited children first (highest prior), then UCT        (arXiv 2409.09345)
    """

    rule: Rule = "puct"
    c: float = 1.25
    c1: float = 1.25
    c2: float = 19652.0
    fpu: Fpu = "inf"
    fpu_value: float = 0.0
    fpu_reduction: float = 0.25
    qnorm: QNorm = "none"
    value_min: float = 0.0
    value_max: float = 1.0
    minmax_floor: float = 1e-6
    backup: Backup = "mean"
    discount: float = 1.0
    two_player: bool = False
    virtual_loss_value: float = 0.0
    mark_exhausted: bool = True
    gumbel: bool = False
    gumbel_simulations: int = 64
    gumbel_max_considered: int = 16
    gumbel_c_visit: float = 50.0
    gumbel_c_scale: float = 1.0
    max_nodes: int = 1 << 22
    seed: int = 0

    def __post_init__(self) -> None:
        # The core checks every field, in the order of docs section 2 (types field by field:
        # TypeError, the rules of qengine._args; then the values: ValueError), and returns the
        # values normalised to plain Python values; one set of checks for every caller.
        checked = core().check_config(dataclasses.asdict(self))
        for name, value in checked.items():
            object.__setattr__(self, name, value)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SearchConfig:
        """The inverse of :meth:`to_dict`: not a dict (TypeError), unknown keys (ValueError),
        then the checks of the constructor. Missing keys keep their defaults."""
        return cls(**core().check_config(data))

    def replace(self, **changes: Any) -> SearchConfig:
        return dataclasses.replace(self, **changes)


_ANNOTATION_KINDS = {"Rule": "str", "Fpu": "str", "QNorm": "str", "Backup": "str"}


def _check_schema() -> None:
    """ImportError unless SearchConfig's fields are the core's, in order, with the same kinds,
    defaults and enum choices (so the two spellings cannot drift apart)."""
    ours = [
        (f.name, _ANNOTATION_KINDS.get(f.type, f.type), f.default)
        for f in dataclasses.fields(SearchConfig)
    ]
    theirs = [(f["name"], f["kind"], f["default"]) for f in CONFIG_FIELDS]
    literals = {"rule": Rule, "fpu": Fpu, "qnorm": QNorm, "backup": Backup}
    choices = {name: get_args(alias) for name, alias in literals.items()}
    if ours != theirs or choices != _CHOICES:
        raise ImportError(
            "qengine.SearchConfig does not match the core's schema (csrc/qengine/config.h): "
            f"{ours} / {choices} != {theirs} / {_CHOICES}; rebuild the core or update config.py"
        )


_check_schema()
