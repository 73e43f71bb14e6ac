"""Lint is part of the suite: ruff for Python, clang-format for the C++ core."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _tool(name: str) -> str:
    found = shutil.which(name) or str(Path(sys.executable).parent / name)
    if not Path(found).exists():
        pytest.fail(f"{name} is not installed: pip install '.[test]' provides it")
    return found


def test_ruff_check_and_format() -> None:
    ruff = _tool("ruff")
    for args in (["check", "."], ["format", "--check", "."]):
        out = subprocess.run([ruff, *args], cwd=ROOT, capture_output=True, text=True)
        assert out.returncode == 0, out.stdout + out.stderr


def test_clang_format_clean() -> None:
    clang_format = _tool("clang-format")
    sources = sorted(
        str(p) for p in (ROOT / "csrc").rglob("*") if p.suffix in {".h", ".cc", ".cpp", ".hpp"}
    )
    assert sources, "no C++ sources found"
    out = subprocess.run(
        [clang_format, "--dry-run", "--Werror", *sources], cwd=ROOT, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr[-4000:]
