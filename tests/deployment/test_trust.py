"""An outsider who reaches the SuperLink and `flwr run`s an app of their own.

The app package names its own ServerApp and ClientApp, each of which would write a file
the moment it is imported. fedlingua's guarded executors (`fedlingua.flower_app.guard`,
first on the PATH `scripts/federation.sh` gives the SuperLink's SuperExec; the
long-running worker on every site) refuse the package: the run fails and neither file
appears.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from federation_helpers import needs_deployment
from flower_processes import BIN, REPO

pytestmark = needs_deployment

PYPROJECT = """[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "evilapp"
version = "1.0.0"
dependencies = []

[tool.hatch.build.targets.wheel]
packages = ["."]

[tool.flwr.app]
publisher = "outsider"

[tool.flwr.app.components]
serverapp = "evilapp.server:app"
clientapp = "evilapp.client:app"

[tool.flwr.app.config]
"""

MODULE = """from pathlib import Path
Path({marker!r}).write_text("ran")
from flwr.{kind}app import {cls}
app = {cls}()
"""


def _evil_app(root: Path) -> tuple[Path, list[Path]]:
    app = root / "evilapp-project"
    package = app / "evilapp"
    package.mkdir(parents=True)
    (app / "pyproject.toml").write_text(PYPROJECT)
    (package / "__init__.py").write_text("")
    markers = []
    for kind, cls in (("server", "ServerApp"), ("client", "ClientApp")):
        marker = root / f"{kind}-code-ran"
        markers.append(marker)
        (package / f"{kind}.py").write_text(MODULE.format(marker=str(marker), kind=kind, cls=cls))
    return app, markers


ROGUE = """import sys
from flwr.proto.runtime_pb2 import AcquireTaskRequest
from flwr.supercore.constant import TaskType
from flwr.supercore.interceptors import RuntimeVersionHttpInterceptor
from fedlingua.flower_app.worker import _client
port, kind = int(sys.argv[1]), getattr(TaskType, sys.argv[3])
client = _client(f"127.0.0.1:{port}", open(sys.argv[2], "rb").read(), False,
                 RuntimeVersionHttpInterceptor(component_name="SuperExec"))
try:
    reply = client.AcquireTask(AcquireTaskRequest(supported_task_types=[kind]))
    print("acquired" if reply.HasField("task") else "accepted")
except BaseException as exc:  # Flower's retry gives up with SIGINT
    print("refused", exc.__cause__ or exc.__context__ or exc)
"""


def _acquire_without_secret(deployment, port: int, kind: str) -> str:
    proc = subprocess.run(
        [str(BIN / "python"), "-c", ROGUE, str(port), str(deployment.dir / "tls" / "ca.crt"), kind],
        env=deployment.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return proc.stdout + proc.stderr


def test_a_foreign_app_package_runs_no_code_anywhere(deployment, run_config, tmp_path):
    path, _ = run_config("honest", languages=("fr", "sw"), federation__rounds=1)
    deployment.up(2, path)
    # whoever reaches a Runtime API without the SuperExec secret gets no task: the SuperLink's
    # (ServerApp tasks) and each SuperNode's (ClientApp tasks)
    for port, kind in ((deployment.port, "SERVER_APP"), (deployment.port + 1, "CLIENT_APP")):
        out = _acquire_without_secret(deployment, port, kind)
        assert "refused" in out and "401" in out, out
    app, markers = _evil_app(tmp_path)
    proc = subprocess.run(
        [str(BIN / "flwr"), "run", str(app), "fedlingua", "--stream"],
        env=deployment.env | {"FLWR_HOME": str(deployment.dir / "homes" / "cli")},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
    )
    log = proc.stdout + proc.stderr
    assert "Successfully started run" in log, log + deployment.logs()
    assert "finished:completed" not in log
    assert not [m for m in markers if m.exists()], "the foreign app's code ran"
    assert "ForeignAppError" in log + deployment.logs(tail=200), log + deployment.logs()
