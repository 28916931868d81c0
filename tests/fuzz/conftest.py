"""Hypothesis profiles for the fuzz tests: `ci` (default, bounded, reproducible) and `long`.

`ci` keeps the whole folder under a minute on one core and derandomizes, so a CI run
never fails on an input it has not failed on before; `long` is what benchmarks/fuzz.py
runs (FEDLINGUA_FUZZ_EXAMPLES inputs per property). Pick one with FEDLINGUA_FUZZ_PROFILE=long
or pytest's --hypothesis-profile=long.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_COMMON = {
    "database": None,  # nothing written into the checkout
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
}
settings.register_profile("ci", max_examples=80, deadline=2000, derandomize=True, **_COMMON)
settings.register_profile(
    "long",
    max_examples=int(os.environ.get("FEDLINGUA_FUZZ_EXAMPLES", "1000")),
    deadline=10000,
    **_COMMON,
)
settings.load_profile(os.environ.get("FEDLINGUA_FUZZ_PROFILE", "ci"))
