"""The chaos soak's short variant: 3 SuperNodes, 6 rounds, 3 faults, checked by the benchmark.

`benchmarks/chaos.py --short` starts a loopback federation (TLS and SuperNode
authentication on), SIGKILLs a SuperNode and restarts it, makes another send NaN
tensors, SIGKILLs the SuperLink and resumes the run, then checks that every round is
accounted for, every checkpoint loads and no process is left behind; it exits non-zero
otherwise. The long soak (N = 3 and 8, 30 rounds) is `benchmarks/results/chaos.md`.
"""

from __future__ import annotations

import json
import subprocess
import sys

from federation_helpers import needs_deployment
from flower_processes import REPO

pytestmark = needs_deployment


def test_the_short_chaos_soak_survives_its_faults_and_passes_its_checks(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "chaos.py"), "--short"]
        + ["--results", str(tmp_path / "results"), "--work", str(tmp_path / "work")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    (run,) = json.loads((tmp_path / "results" / "chaos.json").read_text())["runs"]
    assert run["nodes"] == 3 and run["rounds"] == 6
    assert run["faults_injected"] == {"node-kill": 1, "malformed (nan)": 1, "server-kill": 1}
    assert all(check["passed"] for check in run["checks"].values()), run["checks"]
    assert set(run["checks"]) == {"a", "b", "c"}
    assert [r["checkpoint_round"] for r in run["resumes"]] in ([2], [3])  # killed after round 3
    assert "server-kill" in run["recovery"]
    nan = next(f for f in run["faults"] if f["kind"] == "malformed")
    assert "NaN" in nan["note"] and nan["observed_round"] is not None
