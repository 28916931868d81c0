"""What the ServerApp and the ClientApp share: the run config, the prepared data, the node identity.

The Flower run config (`context.run_config`, flat keys from `[tool.flwr.app.config]`
plus `flwr run --run-config` overrides) carries a fedlingua `RunConfig` in two keys:

    fedlingua-config   path of a fedlingua TOML run config ("" = the built-in defaults);
                       use an absolute path: a relative one resolves against the
                       working directory of the SuperLink / SuperNode process
    overrides          dotted fedlingua overrides applied on top, separated by ";",
                       e.g. "federation.rounds=2; data.languages=['fr','sw']"

Server and clients resolve the same config, so they prepare the same clients in the
same order: SuperNode `partition-id` i is client `build(cfg).clients[i]`, and a federation
must have exactly one SuperNode per client (`num-partitions` = number of clients).
A process prepares a config once (model, data, tokenization) and keeps it for every
later message of that config.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from flwr.app import ConfigRecord, RecordDict, UserConfigValue

from fedlingua.config import ConfigError, RunConfig
from fedlingua.experiment import Experiment, build
from fedlingua.federation.client import ClientSite
from fedlingua.federation.payload import CLIENT_KEY
from fedlingua.topology import require_federated
from fedlingua.training import Workbench

CONFIG_KEY = "fedlingua-config"
OVERRIDES_KEY = "overrides"


def parse_overrides(text: str) -> list[str]:
    """Split the `overrides` string into `key=value` items (";" or newlines separate them)."""
    return [part.strip() for part in text.replace("\n", ";").split(";") if part.strip()]


def load_run_config(run_config: Mapping[str, UserConfigValue]) -> RunConfig:
    """The fedlingua run config a Flower run describes; only the federated paradigm runs here."""
    path = str(run_config.get(CONFIG_KEY, "") or "")
    if path and not Path(path).is_absolute() and not Path(path).exists():
        raise ConfigError(
            f"{CONFIG_KEY}={path!r} does not exist relative to {Path.cwd()} (the working "
            "directory of this Flower process): pass an absolute path"
        )
    cfg = RunConfig.load(path or None, parse_overrides(str(run_config.get(OVERRIDES_KEY, ""))))
    require_federated(cfg)
    return cfg


@dataclass
class ClientTask:
    """One process's experiment: a workbench and every client it can play."""

    exp: Experiment

    @property
    def bench(self) -> Workbench:
        return self.exp.bench

    def site(self, partition_id: int, num_partitions: int) -> ClientSite:
        clients = self.exp.clients
        if num_partitions != len(clients):
            raise ConfigError(
                f"the federation has {num_partitions} SuperNodes but the config makes "
                f"{len(clients)} clients ({[c.client_id for c in clients]}): run it with "
                f"num-supernodes={len(clients)} (one SuperNode per client)"
            )
        if not 0 <= partition_id < len(clients):
            raise ConfigError(f"partition-id={partition_id} is outside 0..{len(clients) - 1}")
        c = clients[partition_id]
        return ClientSite(c.client_id, c.lang, self.exp.train[c.client_id])


_TASKS: dict[str, ClientTask] = {}


def client_task(cfg: RunConfig) -> ClientTask:
    """The prepared task for `cfg`, built on the first message and reused after that."""
    key = cfg.to_toml()
    if key not in _TASKS:
        _TASKS.clear()  # a new config (a new run) replaces the old one: keep one model per process
        _TASKS[key] = ClientTask(build(cfg))
    return _TASKS[key]


def identity(site: ClientSite) -> RecordDict:
    """What a node says about itself: its client id and language, nothing about its data."""
    return RecordDict({CLIENT_KEY: ConfigRecord({"client-id": site.client_id, "lang": site.lang})})
