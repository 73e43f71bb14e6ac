"""``RayExecutor``: ``collect`` sharded over Ray actors, trees written to one shared store.

The driver (the process calling ``collect``) cleans the store, lists the tasks not yet written and
cuts them into chunks. Each actor builds its environment, policy and value function once (from
Recipes, or unpickled) and searches one chunk at a time in its own forest with its own pool of
environments (``search_tasks``), writing each tree as it finishes. When an actor dies (killed with
``ray.kill``, its process killed, its node lost) the driver starts a replacement and hands it the
dead actor's chunk; the replacement skips the trees the dead actor had already written. So no
tree is lost, none is written twice, and the staged files a killed writer leaves are removed when
the run ends (``TreeStore.clean``). A driver restarted with the same arguments resumes likewise.

A tree's search depends only on its task and the seeds, never on the actor or the chunk, so the
trees are bit for bit those of a single-process ``collect`` (with a policy whose sampling is keyed
by the state, as ``ScriptedPolicy``'s is; an LLM sampled on a GPU is not bit-reproducible anyway).

Ray is optional: this module imports it only when an executor is made, and says what to install.
"""

from __future__ import annotations

import importlib
import math
import os
import time
from collections import Counter, deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from .settings import CollectSettings, CollectStats
from .storage import TreeStore

__all__ = ["RayExecutor"]

_INSTALL = 'pip install "qengine[ray]"'


def _ray() -> Any:
    """The ``ray`` module, or an ImportError that says how to install it."""
    try:
        return importlib.import_module("ray")
    except ImportError as exc:
        raise ImportError(f"distributed collect needs Ray: {_INSTALL}") from exc


class _Worker:
    """One actor: an environment, a policy and a store, searching chunks of tasks."""

    def __init__(
        self,
        env: Any,
        policy: Any,
        value_fn: Any,
        task_ids: Sequence[str],
        settings: CollectSettings,
        out_dir: str,
        engine: str,
    ) -> None:
        from .recipe import built

        self.env, self.policy, self.value_fn = built(env), built(policy), built(value_fn)
        self.task_ids, self.settings, self.engine = task_ids, settings, engine
        self.store = TreeStore(out_dir)

    def pid(self) -> int:
        return os.getpid()

    def search(self, chunk: Sequence[int]) -> CollectStats:
        """Search the tasks of ``chunk`` not yet in the store (a dead worker's chunk resumes)."""
        from .driver import search_tasks

        todo = [i for i in chunk if not self.store.has(i)]
        if not todo:
            return CollectStats()
        return search_tasks(
            self.env,
            self.policy,
            self.task_ids,
            todo,
            self.settings,
            store=self.store,
            value_fn=self.value_fn,
            engine=self.engine,
        )


class RayExecutor:
    """Runs ``collect`` on a Ray cluster: ``collect(..., executor=RayExecutor(workers=8))``.

    Args:
      address: the cluster to join (``"auto"``, ``"ray://host:10001"``, ``"host:6379"``). None:
        the one this process is already connected to, else ``$RAY_ADDRESS``, else a local Ray
        started for the run. Ray is shut down after the collection only if this executor
        started or joined it (a connection made by the caller stays).
      workers: actors searching at once (each with its own forest, policy and environments).
      chunk_size: tasks an actor searches in one forest (default: an even share of the tasks,
        which batches the most states per policy call; smaller chunks lose less to a killed
        worker and balance uneven tasks).
      max_retries: times a chunk is handed to a new actor after its actor died, before the
        collection fails.
      actor_options: Ray options of each actor (default ``{"num_cpus": 1}``; e.g.
        ``{"num_gpus": 1}`` for an HF policy per GPU).
      init_options: keyword arguments of ``ray.init`` when this executor connects.
      name: actors are named ``f"{name}-{k}"`` (k = 0, 1, ... in order of creation), so that
        tools and tests can find them with ``ray.get_actor``.
    """

    def __init__(
        self,
        address: str | None = None,
        *,
        workers: int = 2,
        chunk_size: int | None = None,
        max_retries: int = 3,
        actor_options: dict[str, Any] | None = None,
        init_options: dict[str, Any] | None = None,
        name: str = "qengine-collect",
    ) -> None:
        _ray()
        if workers < 1:
            raise ValueError(f"RayExecutor.workers must be >= 1, got {workers}")
        if chunk_size is not None and chunk_size < 1:
            raise ValueError(f"RayExecutor.chunk_size must be >= 1, got {chunk_size}")
        if max_retries < 0:
            raise ValueError(f"RayExecutor.max_retries must be >= 0, got {max_retries}")
        self.address, self.workers, self.chunk_size = address, workers, chunk_size
        self.max_retries = max_retries
        self.actor_options = dict(actor_options or {"num_cpus": 1})
        self.init_options = dict(init_options or {})
        self.name = name
        self.actors_started = 0  # replacements included
        self.startup_seconds = 0.0  # until every first actor was up (last run)

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
    ) -> CollectStats:
        """Search every task not yet in ``out_dir`` over the actors (see the module docstring)."""
        ray = _ray()
        start = time.perf_counter()
        out_dir = Path(out_dir).resolve()  # the actors' working directory is not the driver's
        store = TreeStore(out_dir)
        store.clean()
        finished = store.done()
        todo = [i for i in range(len(task_ids)) if i not in finished]
        stats = CollectStats(trees=len(task_ids), resumed=len(finished))
        if not todo:
            return stats
        owns_ray = not ray.is_initialized()
        if owns_ray:
            ray.init(address=self.address, **self.init_options)
        try:
            args = (env, policy, value_fn, list(task_ids), settings, str(out_dir), engine)
            self._run(ray, [ray.put(a) for a in args], todo, stats, progress)
        finally:
            store.clean()  # staged files of killed writers (every actor is gone by now)
            if owns_ray:
                ray.shutdown()
        stats.seconds = time.perf_counter() - start
        return stats

    # ------------------------------------------------------------------ scheduling
    def _chunks(self, todo: list[int]) -> deque[tuple[int, ...]]:
        size = self.chunk_size or math.ceil(len(todo) / self.workers)
        return deque(tuple(todo[i : i + size]) for i in range(0, len(todo), size))

    def _run(
        self,
        ray: Any,
        args: list[Any],
        todo: list[int],
        stats: CollectStats,
        progress: bool,
    ) -> None:
        remote = ray.remote(_Worker)
        pending = self._chunks(todo)
        failures: Counter[tuple[int, ...]] = Counter()
        running: dict[Any, tuple[Any, tuple[int, ...]]] = {}  # task ref -> (actor, chunk)
        actors: list[Any] = []

        def new_actor() -> Any:
            name = f"{self.name}-{self.actors_started}"
            self.actors_started += 1
            actor = remote.options(name=name, **self.actor_options).remote(*args)
            actors.append(actor)
            return actor

        t0 = time.perf_counter()
        idle = [new_actor() for _ in range(min(self.workers, len(pending)))]
        ray.get([a.pid.remote() for a in idle])  # every actor built: its startup is measured
        self.startup_seconds = time.perf_counter() - t0
        bar = tqdm(total=len(todo), desc="collect", unit="tree", disable=not progress)
        try:
            while pending or running:
                while idle and pending:
                    actor, chunk = idle.pop(), pending.popleft()
                    running[actor.search.remote(chunk)] = (actor, chunk)
                ready, _ = ray.wait(list(running), num_returns=1)
                for ref in ready:
                    actor, chunk = running.pop(ref)
                    try:
                        done = ray.get(ref)
                    except ray.exceptions.RayActorError:
                        failures[chunk] += 1
                        if failures[chunk] > self.max_retries:
                            raise RuntimeError(
                                f"tasks {list(chunk)}: their worker died {failures[chunk]} times "
                                f"(max_retries={self.max_retries}); see the Ray logs"
                            ) from None
                        pending.appendleft(chunk)  # the replacement resumes the chunk
                        ray.kill(actor)  # in case it is only unreachable
                        idle.append(new_actor())
                        continue
                    except ray.exceptions.RayTaskError as exc:  # a bug: raise it as it was
                        raise exc.as_instanceof_cause() from None
                    stats.add(done)
                    bar.update(done.trees)  # (trees a dead actor wrote are not counted here)
                    idle.append(actor)
        finally:
            bar.close()
            for actor in actors:
                ray.kill(actor)
            # a killed actor's process may still be finishing a write: wait until every one is gone
            _wait_dead(ray, actors)


def _wait_dead(ray: Any, actors: list[Any], timeout: float = 30.0) -> None:
    """Block until the actors' processes have exited (so no writer runs during the clean)."""
    deadline = time.monotonic() + timeout
    for actor in actors:
        while time.monotonic() < deadline:
            try:
                ray.get(actor.pid.remote(), timeout=1.0)
            except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError):
                break
            time.sleep(0.05)
