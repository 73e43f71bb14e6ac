"""Exceptions of qengine's own: ``CapacityError`` (the native core raises this same class) and
``UsageError``, a user's mistake, which the ``qengine`` command reports in one line."""

from __future__ import annotations


class CapacityError(RuntimeError):
    """A tree would grow past ``SearchConfig.max_nodes`` (or a packed counter past its width).

    Raise the cap, search fewer simulations per tree, or ``reroot`` / ``prune`` to free nodes.
    """


class UsageError(Exception):
    """The user asked for something that cannot be done as asked: an unknown name, a path that is
    not what it should be, a missing file, an out-of-range option.

    The message says what is wrong and what to do, in one line. The ``qengine`` command prints it
    (``qengine: error: ...``) and exits with status 2 instead of a traceback; tracebacks are kept
    for everything else (bugs). Library callers catch it like any exception; loaders raise a
    subclass that is also the built-in kind they raised before (``FileNotFoundError``,
    ``ValueError``) so existing ``except`` clauses still hold.
    """


class UsageFileNotFoundError(UsageError, FileNotFoundError):
    """A file or directory the user named does not exist or is not of the expected kind."""


class UsageValueError(UsageError, ValueError):
    """A value the user gave (an option, a name) is not one of the valid ones."""
