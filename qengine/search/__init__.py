"""Batched MCTS over text environments (``collect``) and the searched trees on disk."""

from .driver import CollectSettings, CollectStats, collect
from .storage import NodeText, SearchedTree, TreeStore, concat_trees, one_tree_arrays

__all__ = [
    "CollectSettings",
    "CollectStats",
    "NodeText",
    "SearchedTree",
    "TreeStore",
    "collect",
    "concat_trees",
    "one_tree_arrays",
]
