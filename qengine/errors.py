"""Exceptions raised by qengine (the native core raises these same classes)."""

from __future__ import annotations


class CapacityError(RuntimeError):
    """A tree would grow past ``SearchConfig.max_nodes`` (or a packed counter past its width).

    Raise the cap, search fewer simulations per tree, or ``reroot`` / ``prune`` to free nodes.
    """
