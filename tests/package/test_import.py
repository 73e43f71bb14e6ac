"""`import qengine` on a machine without a GPU, without Triton and without torch."""

from __future__ import annotations

import subprocess
import sys

BLOCK = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {'triton', 'torch'}:
            raise ImportError(f'{name} is blocked for this test')
        return None
sys.meta_path.insert(0, Block())
"""


def test_import_without_triton_and_torch(tmp_path) -> None:
    code = BLOCK + "import qengine; f = qengine.Forest(2); print(f.num_trees)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "2"


def test_missing_core_says_how_to_build(tmp_path) -> None:
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'qengine._core':\n"
        "            raise ImportError('simulated missing extension')\n"
        "sys.meta_path.insert(0, Block())\n"
        "import qengine\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode != 0
    assert "pip install ." in out.stderr and "not built" in out.stderr
