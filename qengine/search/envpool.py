"""A pool of environment twins stepping in threads (environments are not thread-safe)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any


class EnvPool:
    """One environment per worker thread: ``env`` itself and ``workers - 1`` of its ``fresh()``
    twins. ``map`` deals the items round-robin to the workers and returns results in item order
    (so results never depend on the number of workers)."""

    def __init__(self, env: Any, workers: int) -> None:
        self.envs = [env] + [env.fresh() for _ in range(workers - 1)]
        self.pool = ThreadPoolExecutor(max_workers=workers) if workers > 1 else None

    def map(self, fn: Callable[[Any, Any], Any], items: Sequence[Any]) -> list[Any]:
        """``[fn(env, item) for item in items]``, spread over the workers' environments."""
        if self.pool is None or len(items) < 2:
            return [fn(self.envs[0], item) for item in items]
        chunks = [items[w :: len(self.envs)] for w in range(len(self.envs))]
        results = list(
            self.pool.map(lambda w: [fn(self.envs[w], x) for x in chunks[w]], range(len(chunks)))
        )
        out: list[Any] = [None] * len(items)
        for w, chunk_results in enumerate(results):
            out[w :: len(self.envs)] = chunk_results
        return out

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown()
