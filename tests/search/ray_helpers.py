"""Local Ray clusters for tests: one at a time on the machine, torn down without leftovers.

Ray clusters of concurrent pytest processes (``pytest -n auto``, other checkouts) would compete
for the 2 CI cores and for ports, so every cluster here is started under one machine-wide file
lock. Each cluster gets its own short temp dir; its processes are the ones whose command line
names that dir plus the descendants of the process that started it, and the teardown asserts that
none of them is left. Nothing here stops processes by name (``ray stop`` would stop every Ray on
the machine): only the processes this cluster started, by pid.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

LOCK = Path(tempfile.gettempdir()) / "qengine-ray-tests.lock"

# The environment of a head node on 127.0.0.1 and of the drivers that join it by address:
# * Ray turns a loopback address into the machine's IP before it connects (ray-project/ray issue
#   59110), which a head bound to 127.0.0.1 does not serve; this switch of Ray's keeps loopback
#   addresses as they are (a single-machine setting: real clusters use real IPs);
# * ``ray start`` turns on token authentication, which a driver joining by address does not
#   (it would need RAY_AUTH_MODE=token and the token): a loopback-only test cluster goes without.
LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "disabled"}


@contextlib.contextmanager
def machine_lock() -> Iterator[None]:
    """Hold the machine-wide Ray test lock (blocks while another test process holds it)."""
    with open(LOCK, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def short_temp_dir() -> str:
    """A new temp dir with a short path (Ray's unix sockets allow about 107 characters)."""
    return tempfile.mkdtemp(prefix="qr", dir="/tmp")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cmdline(pid: str) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def cluster_processes(temp_dir: str, root: int) -> set[int]:
    """Pids whose command line names ``temp_dir``, and all descendants of ``root``."""
    children: dict[int, list[int]] = defaultdict(list)
    named = set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        children[int(stat.rsplit(")", 1)[1].split()[1])].append(int(pid))
        if temp_dir in _cmdline(pid):
            named.add(int(pid))
    found, stack = set(), [root]
    while stack:
        for child in children[stack.pop()]:
            found.add(child)
            stack.append(child)
    return (found | named) - {os.getpid()}


def alive(pids: set[int]) -> set[int]:
    """The pids still running (zombies count as gone)."""
    out = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            out.add(pid)
    return out


def wait_gone(pids: set[int], timeout: float) -> set[int]:
    """Wait up to ``timeout`` s for ``pids`` to exit; SIGKILL (by pid) and return the rest."""
    deadline = time.monotonic() + timeout
    while alive(pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = alive(pids)
    for pid in left:  # never leave them running, even when the test fails
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return left


@contextlib.contextmanager
def in_process_cluster(num_cpus: int = 2) -> Iterator[str]:
    """``ray.init(num_cpus=...)`` in this process; yields its temp dir. Asserts at the end that
    ``ray.shutdown()`` left none of its processes running."""
    import ray

    temp = short_temp_dir()
    # Ray's workers import from the driver's working directory: started in a source checkout,
    # they would import its uncompiled qengine/ instead of the installed package
    cwd = os.getcwd()
    with machine_lock():
        os.chdir(temp)
        try:
            ray.init(
                num_cpus=num_cpus,
                include_dashboard=False,
                log_to_driver=False,
                _temp_dir=temp,
            )
        finally:
            os.chdir(cwd)
        try:
            yield temp
        finally:
            pids = cluster_processes(temp, os.getpid())
            ray.shutdown()
            left = wait_gone(pids, timeout=30)
            shutil.rmtree(temp, ignore_errors=True)
    assert not left, f"ray.shutdown() left processes running: {sorted(left)}"


@contextlib.contextmanager
def head_node(num_cpus: int = 2, timeout: float = 120) -> Iterator[str]:
    """``ray start --head --block`` on 127.0.0.1 and a free port; yields its address. Stopped by
    signalling that one process group (not ``ray stop``); asserts nothing of it is left."""
    temp, port = short_temp_dir(), free_port()
    command = [
        os.path.join(os.path.dirname(sys.executable), "ray"),
        "start",
        "--head",
        "--block",
        f"--port={port}",
        "--node-ip-address=127.0.0.1",
        f"--num-cpus={num_cpus}",
        "--include-dashboard=false",
        "--disable-usage-stats",
        f"--temp-dir={temp}",
    ]
    with machine_lock():
        head = subprocess.Popen(
            command,
            env={**os.environ, **LOOPBACK_ENV},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # its own process group, signalled as one at the end
        )
        try:
            _wait_started(head, timeout)
            yield f"127.0.0.1:{port}"
        finally:
            pids = cluster_processes(temp, head.pid) | {head.pid}
            with contextlib.suppress(ProcessLookupError):
                os.killpg(head.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                head.wait(timeout=30)
            left = wait_gone(pids, timeout=30)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(head.pid, signal.SIGKILL)
            head.wait()
            shutil.rmtree(temp, ignore_errors=True)
    assert not left, f"the head node left processes running: {sorted(left)}"


def _wait_started(head: subprocess.Popen, timeout: float) -> None:
    """Wait until the head says Ray started; its output keeps being drained by a thread (a full
    pipe would block it)."""
    started, seen = threading.Event(), []

    def drain() -> None:
        assert head.stdout is not None
        for line in head.stdout:
            seen.append(line)
            if "Ray runtime started" in line:
                started.set()

    threading.Thread(target=drain, daemon=True).start()
    deadline = time.monotonic() + timeout
    while not started.wait(0.2):
        if head.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("ray start --head did not start:\n" + "".join(seen[-30:]))
