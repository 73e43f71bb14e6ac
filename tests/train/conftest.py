"""Make the shared helpers module next to this file importable under any import mode."""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
