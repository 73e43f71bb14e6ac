"""Batched MCTS over text environments (``collect``) and the searched trees on disk.

``collect`` searches in this process, or sharded over a Ray cluster with
``executor=RayExecutor(...)`` (``pip install "qengine[ray]"``; Ray is imported only then).
"""

from .driver import collect
from .ray_collect import RayExecutor
from .recipe import Recipe
from .settings import DEFAULT_SEARCH_CONFIG, CollectSettings, CollectStats
from .storage import NodeText, SearchedTree, TreeStore, concat_trees

__all__ = [
    "DEFAULT_SEARCH_CONFIG",
    "CollectSettings",
    "CollectStats",
    "NodeText",
    "RayExecutor",
    "Recipe",
    "SearchedTree",
    "TreeStore",
    "collect",
    "concat_trees",
]
