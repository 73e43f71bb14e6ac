"""Search configuration shared by the native core and the pure-Python reference.

The meaning of every field is defined in ``docs/search-semantics.md`` (section 2); this module only
holds the values and validates them before they reach the core.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from typing import Any, Literal

from . import _args

Rule = Literal["uct", "puct", "muzero", "lats"]
Fpu = Literal["inf", "parent", "reduction", "constant"]
QNorm = Literal["none", "bounds", "tree_minmax", "parent_minmax"]
Backup = Literal["mean", "max"]

RULES: tuple[str, ...] = ("uct", "puct", "muzero", "lats")
FPUS: tuple[str, ...] = ("inf", "parent", "reduction", "constant")
QNORMS: tuple[str, ...] = ("none", "bounds", "tree_minmax", "parent_minmax")
BACKUPS: tuple[str, ...] = ("mean", "max")

# The limits of docs/search-semantics.md; the native core exports the same (qengine._core.MAX_*,
# compared by the tests).
MAX_IN_FLIGHT = 16383  # 14 bits of the packed per-node status word
MAX_CHILDREN = 65535  # uint16 child count
MAX_DEPTH = 65535  # uint16 depth
MAX_VISITS = 2**31 - 1  # visit counts saturate here (int32), never wrap
MAX_TREES = 2**31 - 1  # trees per forest (int32 tree ids)
MAX_THREADS = 1024  # threads per forest (num_threads 0: all cores, at most this)


_FIELD_TYPES = {"float": _args.real, "int": _args.integer, "bool": _args.flag}  # others: str


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
        # Types first, field by field (TypeError; the rules of qengine._args, the same as the
        # native core's), normalised to plain Python values; then the values (ValueError).
        for field in dataclasses.fields(self):
            check = _FIELD_TYPES.get(field.type, _args.text)
            value = check(f"SearchConfig.{field.name}", getattr(self, field.name))
            object.__setattr__(self, field.name, value)

        def choose(name: str, options: tuple[str, ...]) -> None:
            value = getattr(self, name)
            if value not in options:
                raise ValueError(f"SearchConfig.{name}={value!r}; choose one of {options}")

        choose("rule", RULES)
        choose("fpu", FPUS)
        choose("qnorm", QNORMS)
        choose("backup", BACKUPS)
        for name in ("gumbel_simulations", "gumbel_max_considered"):
            if not _args.INT64_MIN <= getattr(self, name) <= _args.INT64_MAX:
                raise ValueError(f"SearchConfig.{name} is outside the int64 range")
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.type == "float" and not math.isfinite(value):
                raise ValueError(f"SearchConfig.{field.name} must be finite, got {value!r}")
        checks = [
            (self.c >= 0, "c must be >= 0"),
            (self.c1 >= 0, "c1 must be >= 0"),
            (self.c2 > 0, "c2 must be > 0"),
            (0.0 <= self.discount <= 1.0, "discount must lie in [0, 1]"),
            (self.value_max > self.value_min, "value_max must be greater than value_min"),
            (self.minmax_floor > 0, "minmax_floor must be > 0"),
            (self.gumbel_simulations >= 1, "gumbel_simulations must be >= 1"),
            (self.gumbel_max_considered >= 1, "gumbel_max_considered must be >= 1"),
            (1 <= self.max_nodes <= 2**31 - 1, "max_nodes must lie in [1, 2**31 - 1]"),
            (0 <= self.seed <= _args.UINT64_MAX, "seed must lie in [0, 2**64)"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"SearchConfig: {message}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SearchConfig:
        """The inverse of :meth:`to_dict`: unknown keys (ValueError), then the checks of the
        constructor. Missing keys keep their defaults."""
        if not isinstance(data, dict):
            raise TypeError(f"config must be a dict, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(repr(k) for k in data if not (isinstance(k, str) and k in known))
        if unknown:
            raise ValueError(
                f"unknown SearchConfig fields {', '.join(unknown)}; known: {sorted(known)}"
            )
        return cls(**data)

    def replace(self, **changes: Any) -> SearchConfig:
        return dataclasses.replace(self, **changes)
