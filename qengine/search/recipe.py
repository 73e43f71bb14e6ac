"""``Recipe``: how to build an object where it is used (a Ray worker), instead of shipping it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class Recipe:
    """A picklable call ``fn(*args, **kwargs)`` made by whoever runs the search.

    A Hugging Face policy holds a model that should be loaded by each worker on its own device,
    not pickled by the driver: pass ``Recipe(HFPolicy, "ckpt-dir", temperature=1.0)`` as the
    policy (or ``Recipe(make_env, "shop")`` as the environment). ``fn`` must be importable by
    the workers (a module-level function or class); its arguments must pickle.
    """

    def __init__(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> None:
        if not callable(fn):
            raise TypeError(f"Recipe needs a callable, got {type(fn).__name__}")
        self.fn, self.args, self.kwargs = fn, args, kwargs

    def build(self) -> Any:
        """The object: ``fn(*args, **kwargs)``."""
        return self.fn(*self.args, **self.kwargs)

    def __repr__(self) -> str:
        name = getattr(self.fn, "__qualname__", repr(self.fn))
        return f"Recipe({name}, args={self.args!r}, kwargs={self.kwargs!r})"


def built(thing: Any) -> Any:
    """``thing.build()`` for a :class:`Recipe`, else ``thing`` itself."""
    return thing.build() if isinstance(thing, Recipe) else thing
