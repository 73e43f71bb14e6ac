"""``textworld``: Microsoft TextWorld games generated locally (optional: ``pip install textworld``).

Each task is one game made by TextWorld's own challenge generator (``tw-coin_collector``,
``tw-treasure_hunter``, ``tw-cooking``) from a seed derived from ``(seed, split, index)``; games
are compiled on first use into ``cache_dir`` (about 1-4 s each) and reused afterwards. Actions
are TextWorld's admissible commands; any other text is refused with feedback (and costs a
step). The step reward is the gain in game score divided by the game's maximum score, so a won
game sums to 1. The expert is TextWorld's own ``policy_commands`` (a winning plan from the
current state).

Snapshots hold the action history and are restored by replay (TextWorld games are
deterministic), which costs a game reset plus one engine call per action; a restore to a state
that extends the current one (same game, the current actions a prefix of the snapshot's) steps
only the missing actions, without a reset. Each environment keeps up to ``max_loaded_games``
games loaded (an LRU): loading a game and its first reset (TextWorld builds the game's command
lists then) cost far more than a reset, and a search moves between its trees' games all the
time, so each pool worker keeps every game it has seen instead of reloading.

A game that TextWorld cannot generate for a derived seed (``QuestGenerationError``, e.g.
``tw-treasure_hunter`` at ``level=10`` on some seeds) does not end the run: the task takes the
next seed derived from ``(seed, split, index)``, with a warning; the failed seed is remembered
in the cache directory so that other processes skip it too.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import threading
import warnings
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .base import StepResult, TextEnv
from .text import stable_hash

__all__ = ["CHALLENGE_DEFAULTS", "TextWorldEnv"]

CHALLENGE_DEFAULTS: dict[str, dict[str, Any]] = {
    "tw-coin_collector": {"level": 5},
    "tw-treasure_hunter": {"level": 5},
    "tw-cooking": {"recipe": 2, "take": 1, "go": 6, "open": True, "cook": False, "cut": False,
                   "drop": False, "recipe_seed": 0, "split": "train"},
}  # fmt: skip


# TextWorld's grammar parser (tatsu) and its game-logic cache are not thread-safe: generating or
# loading games from several threads at once (collect's environment pool) fails with
# FailedLeftRecursion / TypeError. Every generation and load holds this lock; steps do not.
_TEXTWORLD_LOCK = threading.RLock()


def _import_textworld() -> Any:
    try:
        import textworld
        import textworld.challenges
    except ImportError as e:  # pragma: no cover - depends on the installation
        raise ImportError(
            "the 'textworld' environment needs Microsoft TextWorld: pip install textworld "
            f"(import failed: {e})"
        ) from e
    return textworld


@contextmanager
def _quiet() -> Iterator[None]:
    """Silence Jericho's "not fully supported game" warnings: TextWorld tracks the score itself."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*(not fully supported|unsupported game).*")
        yield


def _default_cache_dir() -> str:
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(root, "qengine", "textworld")


class TextWorldEnv(TextEnv):
    """TextWorld games as a :class:`TextEnv`; see the module docstring.

    Args (keyword-only): ``challenge`` one of :data:`CHALLENGE_DEFAULTS`; ``settings`` the
    challenge's settings (defaults above); ``seed``; ``num_train`` / ``num_test`` games;
    ``max_steps`` step cap; ``cache_dir`` where compiled games are kept; ``max_loaded_games``
    games kept loaded (1: reload on every change of game, as before the LRU).
    """

    name = "textworld"
    scores_progress = True  # step reward: the game score's gain / max score
    # Restore a state ahead of the current one by stepping the missing actions only (False:
    # always reset and replay, the behaviour before; bench/real_lm.py measures both).
    restore_ahead = True

    def __init__(
        self,
        *,
        challenge: str = "tw-coin_collector",
        settings: dict[str, Any] | None = None,
        seed: int = 0,
        num_train: int = 20,
        num_test: int = 5,
        max_steps: int = 50,
        cache_dir: str | None = None,
        max_loaded_games: int = 64,
    ) -> None:
        self._tw = _import_textworld()
        if challenge not in CHALLENGE_DEFAULTS:
            raise ValueError(
                f"unknown TextWorld challenge {challenge!r}; valid: {', '.join(CHALLENGE_DEFAULTS)}"
            )
        merged = {**CHALLENGE_DEFAULTS[challenge], **(settings or {})}
        config = dict(
            challenge=challenge,
            settings=merged,
            seed=seed,
            num_train=num_train,
            num_test=num_test,
            max_steps=max_steps,
            cache_dir=cache_dir,
            max_loaded_games=max_loaded_games,
        )
        super().__init__(max_steps=max_steps, config=config)
        self.challenge = challenge
        self.settings = merged
        self.cache_dir = cache_dir or _default_cache_dir()
        self._game_seeds: dict[str, int] = {}
        self._splits: dict[str, list[str]] = {}
        self._seed = seed
        self._attempt: dict[str, int] = {}  # task id -> k of its seed (see _derive_seed)
        self._used: set[int] = set()
        for split, count in (("train", num_train), ("test", num_test)):
            ids = []
            for i in range(count):
                tid = f"{split}/{i:05d}"
                self._derive_seed(tid, 0)
                ids.append(tid)
            self._splits[split] = ids
        if max_loaded_games < 1:
            raise ValueError(f"max_loaded_games must be >= 1, got {max_loaded_games}")
        self.max_loaded_games = int(max_loaded_games)
        self._loaded: OrderedDict[str, Any] = OrderedDict()  # game path -> started game
        self._game: Any = None  # the running textworld environment
        self._game_path = ""
        self._gs: Any = None  # last game state
        self._max_score = 1.0
        self._score = 0.0
        self._actions: tuple[str, ...] = ()

    # ----------------------------------------------------------------- tasks
    def task_ids(self, split: str = "train") -> list[str]:
        self._check_split(split)
        return list(self._splits[split])

    def game_seed(self, task_id: str) -> int:
        """The generator seed of ``task_id``'s game."""
        try:
            return self._game_seeds[task_id]
        except KeyError:
            raise KeyError(
                f"textworld: unknown task id {task_id!r}; ids look like 'train/00000' "
                "(see task_ids(split))"
            ) from None

    def _derive_seed(self, task_id: str, k: int) -> int:
        """Give ``task_id`` the first unused seed ``stable_hash("tw", challenge, seed, split,
        index, k')`` with ``k' >= k`` (deterministic: the same tasks get the same seeds)."""
        split, index = task_id.split("/")
        while (
            s := stable_hash("tw", self.challenge, self._seed, split, int(index), k) % 2**31
        ) in self._used:
            k += 1
        self._used.add(s)
        self._game_seeds[task_id], self._attempt[task_id] = s, k
        return s

    def _compiled_path(self, game_seed: int) -> str:
        key = stable_hash(self.challenge, json.dumps(self.settings, sort_keys=True), game_seed)
        return os.path.join(self.cache_dir, f"{self.challenge}-{key:016x}.z8")

    def game_file(self, task_id: str) -> str:
        """Path of the compiled game of ``task_id`` (generated and compiled on first use).

        When TextWorld cannot generate the game of the task's seed, the task moves to its next
        derived seed (with a warning) until one generates.
        """
        while True:
            game_seed = self.game_seed(task_id)
            path = self._compiled_path(game_seed)
            if os.path.exists(path) and os.path.exists(path[:-3] + ".json"):
                return path
            with _TEXTWORLD_LOCK:
                if os.path.exists(path) and os.path.exists(path[:-3] + ".json"):
                    return path  # another thread built it while this one waited
                failed = path[:-3] + ".failed"
                error = open(failed).read().strip() if os.path.exists(failed) else None
                if error is None:
                    try:
                        self._generate(game_seed, path)
                        return path
                    except self._tw.generator.chaining.QuestGenerationError as e:
                        error = str(e).strip() or type(e).__name__
                        os.makedirs(self.cache_dir, exist_ok=True)
                        with open(failed, "w") as f:  # other processes skip this seed too
                            f.write(error + "\n")
            nxt = self._derive_seed(task_id, self._attempt[task_id] + 1)
            warnings.warn(
                f"textworld {self.challenge} task {task_id}: TextWorld cannot generate the game "
                f"of seed {game_seed} ({error}); using the next derived seed {nxt}",
                RuntimeWarning,
                stacklevel=2,
            )

    def _generate(self, game_seed: int, path: str) -> None:
        os.makedirs(self.cache_dir, exist_ok=True)
        tw = self._tw
        with tempfile.TemporaryDirectory(dir=self.cache_dir) as tmp, _quiet():
            opts = tw.GameOptions()
            opts.seeds = game_seed
            opts.path = os.path.join(tmp, os.path.basename(path))
            opts.force_recompile = True
            game = tw.challenges.CHALLENGES[self.challenge][1](dict(self.settings), opts)
            built = tw.generator.compile_game(game, opts)
            # Publish atomically: the json first, the game file last (its presence = ready).
            os.replace(built[:-3] + ".json", path[:-3] + ".json")
            shutil.move(built, path + ".part")
            os.replace(path + ".part", path)

    # -------------------------------------------------------------- episode
    def _start(self, task_id: str) -> None:
        path = self.game_file(task_id)
        loaded = path not in self._loaded
        if loaded:
            infos = self._tw.EnvInfos(
                admissible_commands=True,
                policy_commands=True,
                max_score=True,
                score=True,
                won=True,
                lost=True,
                objective=True,
                description=True,
            )
            with _TEXTWORLD_LOCK, _quiet():
                self._loaded[path] = self._tw.start(path, request_infos=infos)
            while len(self._loaded) > self.max_loaded_games:
                _, old = self._loaded.popitem(last=False)
                old.close()
        self._loaded.move_to_end(path)
        self._game = self._loaded[path]
        self._game_path = path
        # The first reset of a freshly loaded game still parses its logic: under the lock too.
        with _TEXTWORLD_LOCK if loaded else contextlib.nullcontext(), _quiet():
            self._gs = self._game.reset()
        self._max_score = float(self._gs["max_score"] or 1)
        self._score = float(self._gs["score"] or 0)
        self._actions = ()

    def _reset(self, task_id: str) -> tuple[str, str]:
        self._start(task_id)
        return str(self._gs["objective"]).strip(), str(self._gs["description"]).strip()

    def admissible_actions(self) -> tuple[str, ...] | None:
        if self._gs is None:
            return None
        return tuple(self._gs["admissible_commands"] or ())

    def _engine_step(self, action: str) -> tuple[str, float, bool]:
        with _quiet():
            self._gs, score, done = self._game.step(action)
        reward = (float(score) - self._score) / self._max_score
        self._score = float(score)
        self._actions = (*self._actions, action)
        return str(self._gs.feedback).strip(), reward, bool(done)

    def _step(self, action: str) -> StepResult:
        adm = self.admissible_actions() or ()
        cmd = " ".join(action.lower().split())
        if cmd not in adm:
            return StepResult(
                f"Invalid action: {action!r} is not admissible here. {self._valid_hint()}",
                0.0,
                False,
                {"valid": False, "error": "inadmissible"},
            )
        obs, reward, done = self._engine_step(cmd)
        info = {"success": bool(self._gs["won"]), "score": self._score}
        return StepResult(obs, reward, done, info)

    def _get_payload(self) -> Any:
        return self._actions

    def _set_payload(self, payload: Any) -> None:
        assert self._task_id is not None
        done = len(self._actions)
        same_game = self._game is not None and self._game_path == self.game_file(self._task_id)
        ahead = len(payload) >= done and tuple(payload[:done]) == self._actions
        if self.restore_ahead and same_game and ahead:
            payload = payload[done:]  # already there: step only the missing actions
        else:
            self._start(self._task_id)
        for a in payload:
            self._engine_step(a)

    # ---------------------------------------------------------- expert hooks
    def oracle_action(self) -> str:
        plan = list(self._gs["policy_commands"] or ()) if self._gs is not None else []
        if plan:
            return plan[0]
        adm = self.admissible_actions() or ("look",)
        return "look" if "look" in adm else adm[0]

    def plausible_actions(self) -> tuple[str, ...]:
        return self.admissible_actions() or ("look",)

    # ------------------------------------------------------------- pickling
    # Loaded games hold native (ctypes) handles: a pickle carries the configuration, the task
    # seeds and the episode (its action history) and the copy loads its games again. Ray ships
    # environments to its actors this way (qengine.search.RayExecutor).
    _LIVE = ("_tw", "_loaded", "_game", "_gs")

    def __getstate__(self) -> dict[str, Any]:
        state = {k: v for k, v in self.__dict__.items() if k not in self._LIVE}
        state["_live_episode"] = self._game is not None and self._task_id is not None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        live = state.pop("_live_episode")
        self.__dict__.update(state)
        self._tw = _import_textworld()
        self._loaded, self._game, self._gs = OrderedDict(), None, None
        if live:  # back to the same game state: load the game and replay the actions
            actions, self._actions = self._actions, ()
            self._set_payload(actions)

    def close(self) -> None:
        for game in self._loaded.values():
            game.close()
        self._loaded.clear()
        self._game = None
        self._game_path = ""
