"""The Flower App: fedlingua's federated run under Flower (simulation or SuperLink + SuperNodes).

    server_app.py  ServerApp: the coordinator (no data: roll call, then
                   `fedlingua.engine.run` with Flower's grid; run-config `resume`:
                   continue a run directory after the server died)
    client_app.py  ClientApp: one site per SuperNode (roll call, train, evaluate)
    task.py        what both read: the run config; a node's own site (its `data-dir`)
    guard.py       only fedlingua's own apps run: guarded `flwr-serverapp` /
                   `flwr-clientapp` and the app-package check the worker applies
    worker.py      a long-running ClientApp process for `flower-supernode --isolation
                   process`: no fresh process, imports and model load per message

Fault injection (`fedlingua-fault` in a node's node config: a node that sends scaled,
random, wrong-shaped, NaN or pickled tensors) is `fedlingua.federation.faults`.

The App is declared in the repository's own pyproject.toml (`[tool.flwr.app]`), so
`flwr run .` from the repository root builds it. The FAB packs pyproject.toml and
`src/fedlingua/**/*.py` only (`fab-include`): never .venv, runs/ or benchmark
output. The code that runs is the `fedlingua` installed in the environment of the
SuperLink and SuperNodes (the packed sources only pin the FAB hash to the code
version), so install fedlingua there and keep runtime dependency installation off
(`FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION=1`: Flower would otherwise install
the dependencies with uv, which pulls a CUDA torch).

Local simulation (Ray), e.g. 2 clients (one SuperNode per client):

    export FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION=1 FLWR_TELEMETRY_ENABLED=0
    flwr run . --stream \\
        --run-config "fedlingua-config='/abs/path/run.toml' overrides='federation.rounds=2'" \\
        --federation-config "num-supernodes=2 client-resources-num-cpus=1"

`flwr run` talks to the SuperLink connection of `$FLWR_HOME/config.toml` (default
~/.flwr); the default `local` connection (`address = ":local:"`) starts a detached
local SuperLink that keeps running after the run: stop it when done. Flower 1.42
keeps connections there, not in pyproject.toml: a `[tool.flwr.federations]` table
would be migrated out (and commented out in pyproject.toml) by `flwr run`.

Deployment (a SuperLink and one SuperNode per client, TLS and SuperNode authentication,
faults survived): `scripts/federation.sh` runs a whole federation on one host, and the
README's "Running across machines" describes the same on a network.
"""
