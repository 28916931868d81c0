"""Property-based fuzzing of fedlingua's input boundaries, at length.

Runs the properties of tests/fuzz (folder readers, labels.txt, run configs, the tensor
payload decoder, run-directory checkpoints and atomic writes) with Hypothesis's `long`
profile: `--examples` random inputs per property instead of CI's bounded count, with a
fresh random seed. Counts the inputs tried per boundary and the failures found, i.e.
inputs that produced anything but a correct load or the project's own error.

Usage:  nice -n 10 .venv/bin/python benchmarks/fuzz.py [--examples 1000]
Writes benchmarks/results/fuzz.md and fuzz.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
BOUNDARIES = {  # test file -> boundary
    "test_fuzz_readers.py": "readers",
    "test_fuzz_labels.py": "labels",
    "test_fuzz_config.py": "config",
    "test_fuzz_payload.py": "payload",
    "test_fuzz_checkpoint.py": "checkpoint",
}


class Outcomes:
    """pytest plugin: per boundary, the property tests run, failed, and their wall time."""

    def __init__(self) -> None:
        self.rows = {
            b: {"properties": 0, "failed": [], "seconds": 0.0} for b in BOUNDARIES.values()
        }

    def pytest_runtest_logreport(self, report) -> None:
        if report.when != "call":
            return
        boundary = BOUNDARIES[Path(report.nodeid.split("::")[0]).name]
        row = self.rows[boundary]
        row["properties"] += 1
        row["seconds"] += report.duration
        if report.failed:
            row["failed"].append(report.nodeid.split("::")[-1])


def run(examples: int) -> dict:
    os.environ["FEDLINGUA_FUZZ_PROFILE"] = "long"
    os.environ["FEDLINGUA_FUZZ_EXAMPLES"] = str(examples)
    import pytest

    outcomes = Outcomes()
    start = time.perf_counter()
    # Only the properties (Hypothesis marks @given tests); the regressions run in CI.
    code = pytest.main(
        [str(ROOT / "tests" / "fuzz"), "-q", "-p", "no:cacheprovider", "-m", "hypothesis"],
        plugins=[outcomes],
    )
    tried = sys.modules["fuzz_helpers"].TRIED
    return {
        "examples_per_property": examples,
        "pytest_exit_code": int(code),
        "wall_s": round(time.perf_counter() - start, 1),
        "boundaries": {
            b: {**row, "seconds": round(row["seconds"], 1), "inputs_tried": tried[b]}
            for b, row in outcomes.rows.items()
        },
    }


def render(result: dict, command: str) -> str:
    lines = [
        "# Fuzzing fedlingua's input boundaries",
        "",
        f"Command: `{command}`",
        "",
        f"Hypothesis `long` profile, {result['examples_per_property']} examples per property, "
        f"a fresh seed; {result['wall_s']} s wall on one core (niced, shared machine). "
        "A failure is an input that neither loaded correctly nor raised the project's own "
        "error (DataError, ConfigError, PayloadError, CorruptFileError/CheckpointError) "
        "naming its file; the bugs such inputs exposed are fixed, each with a regression "
        "test in tests/fuzz.",
        "",
        "| boundary | properties | inputs tried | failures | seconds |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, row in result["boundaries"].items():
        failed = ", ".join(row["failed"]) or "0"
        lines.append(
            f"| {name} | {row['properties']} | {row['inputs_tried']} | {failed} "
            f"| {row['seconds']} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=1000, help="inputs per property")
    args = parser.parse_args()
    command = "nice -n 10 .venv/bin/python benchmarks/fuzz.py " + " ".join(sys.argv[1:])
    result = run(args.examples)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "fuzz.json").write_text(
        json.dumps({"command": command.strip(), **result}, indent=2) + "\n"
    )
    (RESULTS / "fuzz.md").write_text(render(result, command.strip()))
    print((RESULTS / "fuzz.md").read_text())
    sys.exit(0 if result["pytest_exit_code"] == 0 else 1)


if __name__ == "__main__":
    main()
