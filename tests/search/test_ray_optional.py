"""Ray stays optional: everything but the distributed collect works without it, and asking for
the distributed collect says what to install."""

from __future__ import annotations

import subprocess
import sys

import pytest

from qengine.search import RayExecutor

INSTALL = 'pip install "qengine[ray]"'

WITHOUT_RAY = f"""
import sys
sys.modules["ray"] = None  # any "import ray" now fails, as on a machine without it
import qengine, qengine.search, qengine.cli
from qengine.envs import make_env
from qengine.policies import ScriptedPolicy
from qengine.search import CollectSettings, RayExecutor, TreeStore, collect
env = make_env("shop")
settings = CollectSettings(iterations=2, candidates=2, max_depth=4, workers=1)
collect(env, ScriptedPolicy(env), env.task_ids("train")[:2], settings=settings, out_dir="out",
        progress=False)
assert sorted(TreeStore("out").done()) == [0, 1]
try:
    RayExecutor()
except ImportError as e:
    assert {INSTALL!r} in str(e), e
else:
    raise AssertionError("RayExecutor() without Ray did not fail")
print("ok")
"""


def test_qengine_works_without_ray(tmp_path) -> None:
    done = subprocess.run([sys.executable, "-c", WITHOUT_RAY], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-3000:]


def test_cli_without_ray_says_what_to_install(tmp_path) -> None:
    code = (
        "import sys; sys.modules['ray'] = None; from qengine.cli import main; "
        "sys.exit(main(['collect', '--out', 'out', '--tasks', '1', '--ray']))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert done.returncode != 0
    assert INSTALL in done.stderr and "Traceback" not in done.stderr, done.stderr[-3000:]
    assert not (tmp_path / "out").exists()


def test_missing_ray_is_an_import_error_naming_the_extra(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ImportError, match=r"qengine\[ray\]"):
        RayExecutor(workers=2)
