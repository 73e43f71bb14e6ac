"""The RL tests' helper module (stub_lm) on sys.path, whatever pytest's import mode."""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
