"""Type stubs of the native core ``qengine._core`` (docs/search-semantics.md, section 9).

Users import :class:`qengine.Forest`; this module is its engine. Every array argument must be a
1-D C-contiguous numpy array of exactly the dtype named (TypeError / ValueError otherwise); scalar
arguments are never converted (an ``int`` is a Python int or numpy integer, not a bool or a float;
section 9, "Arguments").
"""

from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

NODE_FIELDS: dict[str, str]
"""Every stored node field and its numpy dtype name, in export order (csrc/qengine/layout.h)."""
TREE_FIELDS: dict[str, str]
DERIVED_FIELDS: dict[str, str]
ROOT: int
NO_NODE: int
DEAD_SLOT: int
STATUS_IN_FLIGHT_MASK: int
STATUS_TERMINAL: int
STATUS_EXHAUSTED: int
BYTES_PER_NODE: tuple[int, int]
CONFIG_FIELDS: tuple[dict[str, Any], ...]
"""SearchConfig's schema (csrc/qengine/config.h): name, kind, default, choices, doc."""

def check_config(config: dict[str, Any]) -> dict[str, Any]: ...

MAX_IN_FLIGHT: int
MAX_CHILDREN: int
MAX_DEPTH: int
MAX_VISITS: int
MAX_TREES: int
MAX_THREADS: int

class Forest:
    bytes_per_node: ClassVar[tuple[int, int]]
    """(with payload, without payload) = (40, 32)."""

    def __init__(
        self,
        num_trees: int,
        config: dict[str, Any],
        num_threads: int,
        root_payloads: npt.NDArray[np.int64],
    ) -> None: ...
    @property
    def num_trees(self) -> int: ...
    @property
    def num_threads(self) -> int: ...
    @property
    def config(self) -> dict[str, Any]: ...
    def ask(self, max_leaves: int, with_paths: bool) -> dict[str, np.ndarray]: ...
    def expand(
        self,
        trees: npt.NDArray[np.int32],
        nodes: npt.NDArray[np.int32],
        counts: npt.NDArray[np.int32],
        priors: npt.NDArray[np.float32],
        rewards: npt.NDArray[np.float32],
        terminal: npt.NDArray[np.uint8],
        payloads: npt.NDArray[np.int64],
    ) -> None: ...
    def backup(
        self,
        trees: npt.NDArray[np.int32],
        nodes: npt.NDArray[np.int32],
        values: npt.NDArray[np.float64],
    ) -> None: ...
    def cancel(self, trees: npt.NDArray[np.int32], nodes: npt.NDArray[np.int32]) -> None: ...
    def size(self, tree: int) -> int: ...
    def view(self, tree: int, field: str) -> np.ndarray: ...
    def derived(self, tree: int, field: str) -> np.ndarray: ...
    def qvalues(self, tree: int, node: int) -> npt.NDArray[np.float64]: ...
    def root_policy(self, tree: int, temperature: float) -> npt.NDArray[np.float64]: ...
    def best_action(self, tree: int) -> int: ...
    def best_path(self, tree: int) -> npt.NDArray[np.int32]: ...
    def minmax(self, tree: int) -> tuple[float, float]: ...
    def root_epoch(self, tree: int) -> int: ...
    def pairs(
        self,
        mode: str,
        min_visits: int,
        min_q_gap: float,
        max_depth: int,
        eligible: npt.NDArray[np.uint8] | None = None,
    ) -> dict[str, np.ndarray]: ...
    def edge_values(self, tree: int) -> npt.NDArray[np.float64]: ...
    def reroot(self, tree: int, node: int) -> None: ...
    def prune(self, tree: int, node: int) -> None: ...
    def reserve(self, nodes: int) -> None: ...
    def compact(self, tree: int) -> None: ...
    def reset(self, tree: int, payload: int) -> None: ...
    def run_synthetic(
        self, num_simulations: int, num_actions: int, leaves_per_ask: int, seed: int
    ) -> int: ...
    def export_arrays(self) -> dict[str, np.ndarray]: ...
    def export_tree(self, tree: int) -> dict[str, np.ndarray]: ...
    @staticmethod
    def from_arrays(
        config: dict[str, Any], arrays: dict[str, np.ndarray], num_threads: int
    ) -> Forest: ...
