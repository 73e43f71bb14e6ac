"""Shared setup of the core tests: hypothesis profiles and the helper module on sys.path.

Profiles: ``ci`` (the default; the whole tests/core suite stays under 3 minutes on 2 cores) and
``thorough`` (``QENGINE_CORE_PROFILE=thorough``, many more examples, for local bug hunts). They are
registered here and applied per test by ``core_helpers.core_settings`` (not loaded globally, so the
other test folders keep their own hypothesis settings).
"""

from __future__ import annotations

import os
import sys

from hypothesis import HealthCheck, settings

sys.path.insert(0, os.path.dirname(__file__))  # core_helpers, whatever pytest's import mode

settings.register_profile(
    "ci",
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,
    print_blob=True,
)
settings.register_profile(
    "thorough",
    max_examples=1000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
