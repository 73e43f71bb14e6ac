"""The machine record every benchmark's JSON carries: which CPU, how many cores, how busy.

Rates measured on a shared machine are only comparable with the load beside them, so the record
keeps the 1-minute load average at the time of the call.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

import qengine


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else what ``platform`` says)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(**extra: Any) -> dict[str, Any]:
    """CPU, cores, platform, Python and qengine versions, load average; ``extra`` is added as is
    (library versions, thread counts: what the calling benchmark depends on)."""
    return {
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "qengine": qengine.__version__,
        # Other work on the machine skews every rate (the loop cost ratio least: thread CPU time).
        "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        **extra,
    }
