"""Distributed collect on a real in-process Ray cluster (``ray.init(num_cpus=2)``): the same trees
as one process, bit for bit, and no tree lost or written twice when a worker dies mid-run.

One cluster for the module (starting Ray takes 10-20 s on 2 cores), held under the machine-wide
Ray test lock; its teardown asserts that no Ray process is left.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import ray
import ray_helpers
import search_helpers
from search_helpers import GOLDEN, assert_same_trees, case_env, run_case, slow_case_policy

from qengine.search import CollectSettings, RayExecutor, Recipe, TreeStore, collect

# with --dist loadgroup, xdist keeps a module's tests on one worker (one cluster start); under
# any other mode the machine-wide lock of ray_helpers serializes the clusters
pytestmark = pytest.mark.xdist_group("ray")


@pytest.fixture(scope="module", autouse=True)
def cluster():
    with ray_helpers.in_process_cluster(num_cpus=2) as temp:
        # the actors build the test policies from Recipes: ship this module's code to them
        ray.cloudpickle.register_pickle_by_value(search_helpers)
        yield temp


def collect_case(name: str, out: Path, executor: RayExecutor, delay: float = 0.0, **crash):
    """Case ``name`` through the executor: the environment pickled to the actors, the policy
    built in each actor (a Recipe)."""
    _, n, _, _, settings, value_fn = search_helpers.CASES[name]
    env = case_env(name)
    tasks = env.task_ids("train")[:n]
    policy = Recipe(slow_case_policy, name, env, delay, **crash)
    return collect(env, policy, tasks, settings=settings, out_dir=out, value_fn=value_fn,
                   progress=False, executor=executor)  # fmt: skip


def assert_written_once(out: Path) -> None:
    """Every tree has its two files, was logged as written at most once, and nothing is staged."""
    store = TreeStore(out)
    counts = Counter(w["index"] for w in store.writes())
    assert max(counts.values()) == 1, f"trees written twice: {counts}"
    assert not list(store.dir.glob("*.tmp")), "a half-written file was left"
    assert {int(p.stem) for p in store.dir.glob("*.jsonl")} == store.done()


@pytest.mark.parametrize(("case", "chunk_size"), [("shop_rollouts", 2), ("shop_gumbel", 1)])
def test_sharded_collect_grows_the_single_process_trees(case, chunk_size, tmp_path) -> None:
    executor = RayExecutor(workers=2, chunk_size=chunk_size)
    stats = collect_case(case, tmp_path / "out", executor, barrier=(str(tmp_path / "up"), 2))
    assert_same_trees(GOLDEN / case, tmp_path / "out")
    assert_written_once(tmp_path / "out")
    assert stats.trees == len(TreeStore(tmp_path / "out").done()) and stats.resumed == 0
    assert stats.leaves > 0 and executor.actors_started == 2
    assert len(executor.ready_seconds) == 2 and executor.startup_seconds > 0
    writers = {w["writer"] for w in TreeStore(tmp_path / "out").writes()}
    assert len(writers) == 2, "both actors should have written trees"


def test_worker_killed_with_ray_kill_loses_and_duplicates_nothing(tmp_path) -> None:
    """One worker hangs in the middle of a tree once a first tree is written (so the run cannot
    end under the test); then both actors are ``ray.kill``ed: the hung one mid-chunk, the other
    busy or idle. Their replacements finish the run."""
    case = "shop_rollouts"
    executor = RayExecutor(workers=2, chunk_size=1, name="kill-test")
    out, marker = tmp_path / "out", tmp_path / "hung"
    hang = {"crash_after": 0, "marker": str(marker), "crash": "hang"}
    hang["hang_after"] = str(out / "trees" / "writes.log")
    result: dict = {}
    driver = threading.Thread(
        target=lambda: result.setdefault("stats", collect_case(case, out, executor, 0.02, **hang))
    )
    driver.start()
    deadline = time.monotonic() + 180
    while not marker.exists() and driver.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.exists(), "no worker hung"
    written_before_kill = len(TreeStore(out).done())
    for name in ("kill-test-0", "kill-test-1"):  # both alive: the run cannot end while one hangs
        ray.kill(ray.get_actor(name))
    driver.join(timeout=300)
    assert not driver.is_alive() and "stats" in result
    assert 1 <= written_before_kill < 5
    assert executor.actors_started >= 3, "no replacement actor was started"
    assert_same_trees(GOLDEN / case, out)
    assert_written_once(out)


def test_worker_process_killed_mid_run_is_replaced(tmp_path) -> None:
    """The policy SIGKILLs its own actor process once, in the middle of a chunk."""
    case = "shop_gumbel"
    executor = RayExecutor(workers=2, chunk_size=2)
    marker = str(tmp_path / "killed")
    collect_case(case, tmp_path / "out", executor, crash_after=12, marker=marker, crash="kill")
    assert Path(marker).exists(), "no worker was killed"
    assert executor.actors_started == 3
    assert_same_trees(GOLDEN / case, tmp_path / "out")
    assert_written_once(tmp_path / "out")


def test_restarted_driver_resumes(tmp_path) -> None:
    """A bug in a worker stops the run with the worker's exception; the same call again
    completes it without searching a finished tree again."""
    case = "shop_rollouts"
    marker = str(tmp_path / "crashed")
    with pytest.raises(RuntimeError, match="simulated bug"):
        collect_case(case, tmp_path / "out", RayExecutor(workers=1, chunk_size=1), crash_after=100,
                     marker=marker, crash="raise")  # fmt: skip
    partial = TreeStore(tmp_path / "out").done()
    assert 0 < len(partial) < 5
    stats = collect_case(case, tmp_path / "out", RayExecutor(workers=2, chunk_size=2),
                         crash_after=100, marker=marker, crash="raise")  # fmt: skip
    assert stats.resumed == len(partial)
    assert_same_trees(GOLDEN / case, tmp_path / "out")
    assert_written_once(tmp_path / "out")


def test_more_workers_than_the_cluster_holds_still_finishes(tmp_path) -> None:
    """The third actor cannot be placed on the 2-CPU cluster: a warning, and the two that are up
    search every chunk (the run used to wait for every actor to be up, forever)."""
    case = "shop_rollouts"
    executor = RayExecutor(workers=3, chunk_size=1)
    with pytest.warns(RuntimeWarning, match=r"3 actors need \{'CPU': 1.0\} each.* room for 2"):
        collect_case(case, tmp_path, executor)
    assert_same_trees(GOLDEN / case, tmp_path)
    assert_written_once(tmp_path)
    assert executor.actors_started == 3 and 1 <= len(executor.ready_seconds) <= 2  # 3rd: never


def test_an_actor_no_node_can_hold_is_reported_while_the_run_waits(tmp_path, monkeypatch) -> None:
    """Resources no node has: the run waits (an autoscaler may add nodes) and says why; killing
    the waiting actor with ``max_retries=0`` ends it."""
    from qengine.search import ray_collect

    monkeypatch.setattr(ray_collect, "_PATIENCE_S", 0.5)
    executor = RayExecutor(workers=1, max_retries=0, name="no-room",
                           actor_options={"num_cpus": 1, "resources": {"tpu-pod": 1}})  # fmt: skip
    result: dict = {}

    def run() -> None:
        try:
            collect_case("shop_rollouts", tmp_path, executor)
        except RuntimeError as exc:
            result["error"] = exc

    with pytest.warns(RuntimeWarning) as caught:
        driver = threading.Thread(target=run)
        driver.start()
        deadline = time.monotonic() + 120
        while not any("no actor is up" in str(w.message) for w in caught):
            assert time.monotonic() < deadline and driver.is_alive()
            time.sleep(0.1)
        ray.kill(ray.get_actor("no-room-0"))
        driver.join(timeout=120)
    messages = [str(w.message) for w in caught]
    assert any("room for 0" in m for m in messages), messages
    assert any("'tpu-pod': 1.0" in m and "check `ray status`" in m for m in messages), messages
    assert not driver.is_alive() and "died 1 times" in str(result["error"])
    assert not TreeStore(tmp_path).done()


def test_an_actor_that_cannot_build_its_policy_stops_the_run_with_that_error(tmp_path) -> None:
    """Building the policy fails the same way in every actor: no retries, the user's error."""
    env = case_env("shop_rollouts")
    executor = RayExecutor(workers=2, max_retries=1)
    policy = Recipe(search_helpers.missing_checkpoint_policy, "/nowhere")
    start = time.monotonic()
    with pytest.raises(FileNotFoundError, match="no policy checkpoint at /nowhere"):
        collect(env, policy, env.task_ids("train")[:3], out_dir=tmp_path, progress=False,
                executor=executor)  # fmt: skip
    assert executor.actors_started == 2 and time.monotonic() - start < 120
    assert not TreeStore(tmp_path).done()


def test_local_objects_are_pickled_to_the_actors(tmp_path) -> None:
    """Env, policy and value_fn may be plain objects (e.g. a client of a shared server)."""
    run_case("shop_value_fn", tmp_path, executor=RayExecutor(workers=2))
    assert_same_trees(GOLDEN / "shop_value_fn", tmp_path)


def test_bad_executor_arguments_are_explained(tmp_path) -> None:
    with pytest.raises(ValueError, match="workers must be >= 1"):
        RayExecutor(workers=0)
    with pytest.raises(ValueError, match="chunk_size"):
        RayExecutor(chunk_size=0)
    with pytest.raises(ValueError, match="out_dir"):
        collect(case_env("shop_rollouts"), None, ["x"], executor=RayExecutor())
    assert CollectSettings().iterations >= 1


class _Completions(BaseHTTPRequestHandler):
    """A deterministic OpenAI-compatible completions server: the samples of a request depend on
    its prompt only (a hash picks them from the state's clickable ids and a search)."""

    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        prompt = body["prompt"]
        actions = ["search[red mug]", "click[back to search]", "click[buy now]"]
        actions += [f"click[{m}]" for m in sorted(set(re.findall(r"\b[bB]0\w{7,9}\b", prompt)))]
        seed = int(hashlib.sha256(prompt.encode()).hexdigest()[:8], 16)
        choices = []
        for i in range(body["n"]):
            text = f" Next.\nAction: {actions[(seed + 7 * i) % len(actions)]}"
            toks = re.findall(r"\s*[^\s\[\]]+|\s*[\[\]]|\s+", text)
            lp = {"tokens": toks, "token_logprobs": [-0.25 * (1 + i)] * len(toks)}
            choices.append({"index": i, "text": text, "logprobs": lp})
        with self.server.lock:  # type: ignore[attr-defined]
            self.server.requests += 1  # type: ignore[attr-defined]
        payload = json.dumps({"choices": choices}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


def test_actors_share_one_openai_compatible_server(tmp_path) -> None:
    """The policy is a client of one server (as of a vLLM server): pickled to every actor; the
    trees are those of the single-process run against the same server."""
    from qengine.policies import OpenAICompatiblePolicy

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Completions)
    server.daemon_threads = True
    server.lock, server.requests = threading.Lock(), 0  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        env = case_env("shop_rollouts")
        tasks = env.task_ids("train")[:4]
        policy = OpenAICompatiblePolicy(f"http://127.0.0.1:{server.server_address[1]}", "m")
        settings = CollectSettings(iterations=4, candidates=3, max_depth=4, workers=1)
        kwargs = {"settings": settings, "progress": False}
        collect(env, policy, tasks, out_dir=tmp_path / "local", **kwargs)
        served_locally = server.requests  # type: ignore[attr-defined]
        barrier = Recipe(search_helpers.BarrierPolicy, policy, str(tmp_path / "up"), 2)
        collect(env, barrier, tasks, out_dir=tmp_path / "ray", **kwargs,
                executor=RayExecutor(workers=2, chunk_size=2))  # fmt: skip
        assert server.requests == 2 * served_locally > 0  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    assert_same_trees(tmp_path / "local", tmp_path / "ray")
    assert len({w["writer"] for w in TreeStore(tmp_path / "ray").writes()}) == 2


def test_seeded_hf_policy_grows_the_same_trees_sharded(tmp_path) -> None:
    """SmolLM2 loaded by each actor, sampling keyed by the state (``HFPolicy(seed=)``, no KV
    reuse): the trees of the single-process run, bit for bit (one torch thread on both sides,
    as Ray gives an actor of one CPU). Leaves are valued by a function (no LLM rollouts)."""
    import torch

    from qengine.policies import HFPolicy

    env = case_env("shop_rollouts")
    tasks = env.task_ids("train")[:2]
    policy = Recipe(HFPolicy, "smollm2", dtype="float32", seed=5, temperature=1.0,
                    max_new_tokens=12, kv_cache_bytes=0)  # fmt: skip
    value_fn = search_helpers.CASES["shop_value_fn"][5]
    settings = CollectSettings(iterations=3, candidates=2, max_depth=4, workers=1)
    kwargs = {"settings": settings, "progress": False, "value_fn": value_fn}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        collect(env, policy, tasks, out_dir=tmp_path / "local", **kwargs)
    finally:
        torch.set_num_threads(threads)
    collect(env, policy, tasks, out_dir=tmp_path / "ray", **kwargs,
            executor=RayExecutor(workers=2, chunk_size=1))  # fmt: skip
    assert_same_trees(tmp_path / "local", tmp_path / "ray")
    assert_written_once(tmp_path / "ray")
    sizes = [len(TreeStore(tmp_path / "ray").read(i).arrays["visits"]) for i in range(2)]
    assert min(sizes) > 2, "SmolLM2 proposed (almost) no action: the test compares little"
