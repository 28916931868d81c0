"""Driving `scripts/federation.sh` from tests and benchmarks/chaos.py: one private folder and
port range per federation."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
from flower_processes import BIN, MARKER, REPO, free_port_range, needs_flwr_cli

SCRIPT = REPO / "scripts" / "federation.sh"
MAX_NODES = 4


def tools_missing() -> str | None:
    for tool in ("openssl", "setsid", "ps"):
        if subprocess.run(["which", tool], capture_output=True).returncode != 0:
            return tool
    return None


needs_deployment = [
    needs_flwr_cli,
    pytest.mark.skipif(
        tools_missing() is not None,
        reason=f"needs {tools_missing()} (certificates, process sessions)",
    ),
]


class Deployment:
    """`scripts/federation.sh` on one private folder and port range."""

    def __init__(self, root: Path, env: dict[str, str], max_nodes: int = MAX_NODES) -> None:
        self.root = root
        self.dir = root / "federation"
        self.env = env
        self.port = free_port_range(max_nodes + 2)
        self.tag = env[MARKER]

    def sh(self, *args: str, timeout: float = 300, check: bool = True):
        proc = subprocess.run(
            ["bash", str(SCRIPT), *args, "--dir", str(self.dir)],
            env=self.env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"federation.sh {' '.join(args)}: exit {proc.returncode}\n"
                f"{proc.stdout}\n{proc.stderr}\n{self.logs()}"
            )
        return proc

    def up(self, nodes: int, config: Path, *extra: str):
        return self.sh(
            "up", "--nodes", str(nodes), "--config", str(config), "--port", str(self.port), *extra
        )

    def run(self, *extra: str, timeout: float = 400):
        return self.sh("run", *extra, timeout=timeout, check=False)

    def run_in_background(self, *extra: str, output: Path | None = None) -> subprocess.Popen:
        """`federation.sh run`, not waited for; its output in a pipe, or appended to `output`
        (a long run fills a pipe nobody reads)."""
        sink = subprocess.PIPE if output is None else output.open("a")
        try:
            return subprocess.Popen(
                ["bash", str(SCRIPT), "run", *extra, "--dir", str(self.dir)],
                env=self.env,
                cwd=REPO,
                stdout=sink,
                stderr=subprocess.STDOUT,
                text=True,
            )
        finally:
            if output is not None:
                sink.close()  # the child holds its own copy

    def pid(self, component: str) -> int | None:
        path = self.dir / "pids" / f"{component}.pid"
        return int(path.read_text()) if path.exists() else None

    def online(self) -> int:
        proc = subprocess.run(
            [str(BIN / "flwr"), "supernode", "ls", "fedlingua", "--format", "json"],
            env=self.env | {"FLWR_HOME": str(self.dir / "homes" / "cli")},
            capture_output=True,
            text=True,
            timeout=60,
        )
        try:
            nodes = json.loads(proc.stdout).get("nodes", [])
        except json.JSONDecodeError:
            return 0
        return sum(n.get("status") == "online" for n in nodes)

    def wait_online(self, count: int, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while (n := self.online()) < count:
            assert time.monotonic() < deadline, f"{n} of {count} nodes online\n{self.logs()}"
            time.sleep(2)

    def logs(self, tail: int = 30) -> str:
        out = []
        for log in sorted((self.dir / "logs").glob("*.log")) if self.dir.exists() else []:
            lines = log.read_text(errors="replace").splitlines()[-tail:]
            out.append(f"---- {log.name}\n" + "\n".join(lines))
        return "\n".join(out)


def metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
