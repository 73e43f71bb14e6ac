"""``collect``: batched MCTS over text-environment tasks, one tree per task, trees written to a
resumable store as they finish; in this process (one forest, a thread pool of environments) or
sharded over workers by an executor (``qengine.search.RayExecutor``).

The search itself is :class:`qengine.search.collector.Collector`; this module picks the tasks
still to do and runs them.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from tqdm.auto import tqdm

from .collector import Collector, PolicyLike, ValueFn
from .envpool import EnvPool
from .recipe import Recipe, built
from .settings import DEFAULT_SEARCH_CONFIG, CollectSettings, CollectStats
from .storage import TreeStore

__all__ = ["DEFAULT_SEARCH_CONFIG", "Executor", "collect", "search_tasks"]


class Executor(Protocol):
    """Runs a collection somewhere else (``RayExecutor``); ``collect`` hands it every argument."""

    def collect(
        self,
        env: Any,
        policy: Any,
        task_ids: Sequence[str],
        *,
        settings: CollectSettings,
        out_dir: Path,
        value_fn: Any,
        progress: bool,
        engine: str,
    ) -> CollectStats: ...


def collect(
    env: Any,
    policy: PolicyLike | Recipe,
    task_ids: Sequence[str],
    *,
    settings: CollectSettings | None = None,
    out_dir: str | Path | None = None,
    value_fn: ValueFn | Recipe | None = None,
    progress: bool = True,
    engine: str = "native",
    executor: Executor | None = None,
) -> CollectStats:
    """Search every task and write its tree under ``out_dir`` (resuming what is already there).

    Args:
      env: a ``qengine.envs.TextEnv`` (its ``fresh()`` twins serve the worker pool), or a
        :class:`Recipe` that builds one.
      policy: proposes candidate actions for many states at once (or a :class:`Recipe`).
      task_ids: the tasks, one tree each; tree ``i`` is written as ``trees/{i:05d}.*``.
      value_fn: values leaf states in one batch instead of policy rollouts (or a Recipe).
      engine: the forest engine, "native" or "reference" (tests compare the two).
      executor: where to search (None: here). With one, ``out_dir`` is required and must be a
        directory every worker reaches; env, policy and value_fn are pickled to the workers,
        or built there when given as Recipes. The trees are the same either way.
    """
    settings = settings or CollectSettings()
    start = time.perf_counter()
    if executor is not None:
        if out_dir is None:
            raise ValueError("a distributed collect needs out_dir (a directory all workers reach)")
        return executor.collect(
            env,
            policy,
            task_ids,
            settings=settings,
            out_dir=Path(out_dir),
            value_fn=value_fn,
            progress=progress,
            engine=engine,
        )
    store = TreeStore(out_dir) if out_dir is not None else None
    finished = set()
    if store is not None:
        store.clean()  # what a killed run left half-written
        finished = store.done()
    todo = [i for i in range(len(task_ids)) if i not in finished]
    stats = CollectStats(trees=len(task_ids), resumed=len(finished))
    if todo:
        stats.add(
            search_tasks(
                built(env),
                built(policy),
                task_ids,
                todo,
                settings,
                store=store,
                value_fn=built(value_fn),
                engine=engine,
                progress=progress,
            )
        )
    stats.seconds = time.perf_counter() - start
    return stats


def search_tasks(
    env: Any,
    policy: PolicyLike,
    task_ids: Sequence[str],
    todo: Sequence[int],
    settings: CollectSettings,
    *,
    store: TreeStore | None = None,
    value_fn: ValueFn | None = None,
    engine: str = "native",
    progress: bool = False,
) -> CollectStats:
    """Search the tasks ``todo`` (indices into ``task_ids``) in one forest, writing to ``store``;
    returns this search's counters (``trees`` = ``len(todo)``). A worker's unit of work."""
    stats = CollectStats(trees=len(todo))
    pool = EnvPool(env, settings.workers)
    bar = tqdm(total=len(todo), desc="collect", unit="tree", disable=not progress)
    try:
        collector = Collector(
            pool,
            policy,
            task_ids,
            todo,
            settings,
            stats,
            store=store,
            value_fn=value_fn,
            engine=engine,
            on_finish=lambda _: bar.update(1),
        )

        def show() -> None:
            rate = stats.leaves / max(stats.seconds, 1e-9)
            bar.set_postfix(sims_per_s=f"{rate:.1f}", mean_best=f"{collector.mean_best():.3f}")

        collector.run(show)
    finally:
        bar.close()
        pool.close()
    return stats
