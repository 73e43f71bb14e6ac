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
by the state, as ``ScriptedPolicy``'s and ``HFPolicy(seed=...)``'s are, on the same torch build
and thread count; an LLM sampled on a GPU is not bit-reproducible anyway).

Ray is optional: this module imports it only when an executor is made, and says what to install.
"""

from __future__ import annotations

import importlib
import math
import os
import time
import warnings
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

        self.error: Exception | None = None
        try:
            self.env, self.policy, self.value_fn = built(env), built(policy), built(value_fn)
        except Exception as exc:  # raised by the first call, so the driver gets it as it was
            self.error = exc
        self.task_ids, self.settings, self.engine = task_ids, settings, engine
        self.store = TreeStore(out_dir)

    def pid(self) -> int:
        """The actor's process id, once it is up (raises what building it raised)."""
        if self.error is not None:
            raise self.error
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
        An actor takes a chunk as soon as it is up; actors the cluster cannot place yet wait
        for resources (with a warning) while the others do the work.
      chunk_size: tasks an actor searches in one forest (default: an even share of the tasks,
        which batches the most states per policy call; smaller chunks lose less to a killed
        worker and balance uneven tasks).
      max_retries: times a chunk is handed to a new actor after its actor died, before the
        collection fails.
      actor_options: Ray options of each actor (default ``{"num_cpus": 1}``; e.g.
        ``{"num_gpus": 1}`` for an HF policy per GPU). An actor that fails to build its
        environment or policy (e.g. a checkpoint that does not load) stops the run with that
        error, as it was raised.
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
        # the last run's startup: seconds from its start until the first ``workers`` actors were
        # up, and when each actor came up (replacements included); actors search as they come up
        self.startup_seconds = 0.0
        self.ready_seconds: list[float] = []

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
        failures: Counter[tuple[int, ...] | None] = Counter()  # deaths per chunk (None: at start)
        running: dict[Any, tuple[Any, tuple[int, ...]]] = {}  # task ref -> (actor, chunk)
        starting: dict[Any, Any] = {}  # ref of an actor's first call -> the actor, not yet up
        idle: list[Any] = []
        actors: list[Any] = []
        t0 = time.perf_counter()
        first_wave = min(self.workers, len(pending))
        self.ready_seconds = []

        def new_actor() -> None:
            name = f"{self.name}-{self.actors_started}"
            self.actors_started += 1
            actor = remote.options(name=name, **self.actor_options).remote(*args)
            actors.append(actor)
            starting[actor.pid.remote()] = actor

        for _ in range(first_wave):
            new_actor()
        self._warn_if_short_of_resources(ray, first_wave)
        bar = tqdm(total=len(todo), desc="collect", unit="tree", disable=not progress)
        waited = 0.0
        try:
            while pending or running:
                while idle and pending:  # an actor searches as soon as it is up
                    actor, chunk = idle.pop(), pending.popleft()
                    running[actor.search.remote(chunk)] = (actor, chunk)
                ready, _ = ray.wait([*running, *starting], num_returns=1, timeout=_PATIENCE_S)
                if not ready:  # nothing finished or came up for a while
                    waited += _PATIENCE_S
                    if not running and _hostable(ray, self.actor_options) == 0:
                        _warn_waiting(ray, waited, len(starting), self.actor_options)
                    continue  # (actors still building, e.g. loading a model, are left alone)
                waited = 0.0
                ref = ready[0]
                if ref in starting:
                    actor = starting.pop(ref)
                    try:
                        ray.get(ref)
                    except ray.exceptions.RayActorError:  # its process died while starting
                        self._count_death(failures, None)
                        new_actor()
                        continue
                    except ray.exceptions.RayTaskError as exc:  # building env / policy failed
                        raise exc.as_instanceof_cause() from None
                    self.ready_seconds.append(time.perf_counter() - t0)
                    idle.append(actor)
                    continue
                actor, chunk = running.pop(ref)
                try:
                    done = ray.get(ref)
                except ray.exceptions.RayActorError:
                    self._count_death(failures, chunk)
                    pending.appendleft(chunk)  # the replacement resumes the chunk
                    ray.kill(actor)  # in case it is only unreachable
                    new_actor()
                    continue
                except ray.exceptions.RayTaskError as exc:  # a bug: raise it as it was
                    raise exc.as_instanceof_cause() from None
                stats.add(done)
                bar.update(done.trees)  # (trees a dead actor wrote are not counted here)
                idle.append(actor)
        finally:
            bar.close()
            up = self.ready_seconds[:first_wave]  # (actors that never came up: the last that did)
            self.startup_seconds = up[-1] if up else 0.0
            for actor in actors:
                ray.kill(actor)
            # a killed actor's process may still be finishing a write: wait until every one is gone
            _wait_dead(ray, actors)

    def _count_death(
        self, failures: Counter[tuple[int, ...] | None], chunk: tuple[int, ...] | None
    ) -> None:
        """Count an actor's death against its chunk (None: died before it was up)."""
        failures[chunk] += 1
        limit = self.max_retries if chunk is not None else self.max_retries * self.workers
        if failures[chunk] > limit:
            what = f"tasks {list(chunk)}: their worker" if chunk is not None else "workers"
            raise RuntimeError(
                f"{what} died {failures[chunk]} times (max_retries={self.max_retries}); "
                "see the Ray logs"
            )

    def _warn_if_short_of_resources(self, ray: Any, actors: int) -> None:
        """Warn when the cluster cannot host every actor at once (they would queue: the first
        ones up take the chunks, so the run still ends, with fewer actors than asked)."""
        fit = _hostable(ray, self.actor_options)
        if fit < actors:
            warnings.warn(
                f"RayExecutor: {actors} actors need {_actor_resources(self.actor_options)} each, "
                f"the cluster ({ray.cluster_resources()}) has room for {fit}: the others wait for "
                "resources (lower workers= or actor_options, or add nodes)",
                RuntimeWarning,
                stacklevel=4,
            )


# how long the driver waits for any news before it checks whether the run is stuck
_PATIENCE_S = 30.0


def _actor_resources(options: dict[str, Any]) -> dict[str, float]:
    """The resources one actor asks for (Ray's defaults: 1 CPU for an actor's placement)."""
    wanted = {"CPU": float(options.get("num_cpus", 1)), "GPU": float(options.get("num_gpus", 0))}
    wanted.update({k: float(v) for k, v in (options.get("resources") or {}).items()})
    return {k: v for k, v in wanted.items() if v > 0}


def _hostable(ray: Any, options: dict[str, Any]) -> int:
    """How many actors the cluster's total resources hold at once (an upper bound: it ignores
    how the resources are split over nodes)."""
    total = ray.cluster_resources()
    wanted = _actor_resources(options)
    return min((int(total.get(k, 0.0) // v) for k, v in wanted.items()), default=1 << 30)


def _warn_waiting(ray: Any, waited: float, starting: int, options: dict[str, Any]) -> None:
    """No actor came up for ``waited`` seconds and none fits the cluster: say what they need."""
    warnings.warn(
        f"RayExecutor: no actor is up after {waited:.0f} s ({starting} waiting); each needs "
        f"{_actor_resources(options)}, which no part of the cluster ({ray.cluster_resources()}) "
        "has. Waiting (an autoscaler may add nodes); check `ray status`",
        RuntimeWarning,
        stacklevel=4,
    )


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
