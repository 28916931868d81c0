"""What the ServerApp and the ClientApp read: the run config, and a node's own site.

The Flower run config (`context.run_config`, flat keys from `[tool.flwr.app.config]`
plus `flwr run --run-config` overrides) carries a fedlingua `RunConfig` in two keys:

    fedlingua-config   path of a fedlingua TOML run config ("" = the built-in defaults);
                       use an absolute path: a relative one resolves against the
                       working directory of the SuperLink / SuperNode process
    overrides          dotted fedlingua overrides applied on top, separated by ";",
                       e.g. "federation.rounds=2; train.lr=0.01"

A SuperNode finds its own data in its node config (`flower-supernode --node-config`):

    data-dir        a folder in the folder-source layout (<lang>/train.tsv, dev, test,
                    labels.txt) holding the language(s) this site owns
    data-source     instead of data-dir: a preset ("cldr", "sib200", ...) restricted to
    data-languages  these languages (comma-separated): for tests and trials
    client-id       the site's client id (default: its languages joined by "+")
    policy          the site's policy file: the least it accepts from a coordinator
                    (`fedlingua.privacy.policy`)

It loads, samples, encodes and scores only that data. Without any of these, a node with
`partition-id` plays site `partition-id` of the config's whole dataset, as the
in-process simulation makes them: single-machine simulation only (Flower's Ray
simulation), since every such node reads the whole dataset. A process prepares a
site once (model, data, tokenization) and keeps it for every later message.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from flwr.app import UserConfigValue

from fedlingua.config import ConfigError, RunConfig
from fedlingua.experiment import build, build_site
from fedlingua.federation.client import ClientSite
from fedlingua.models import Backbone, load_backbone
from fedlingua.privacy.policy import SitePolicy
from fedlingua.topology import require_federated
from fedlingua.training import Workbench, build_workbench

CONFIG_KEY = "fedlingua-config"
OVERRIDES_KEY = "overrides"
DATA_KEYS = ("data-dir", "data-source", "data-languages", "client-id")
POLICY_KEY = "policy"  # node config: the site's policy file (fedlingua.privacy.policy)


def parse_overrides(text: str) -> list[str]:
    """Split the `overrides` string into `key=value` items (";" or newlines separate them)."""
    return [part.strip() for part in text.replace("\n", ";").split(";") if part.strip()]


# what a `flwr run` caller may override: never a path on the coordinator or on a site
OVERRIDABLE_SECTIONS = ("federation.", "train.", "method.", "evaluation.", "privacy.")
OVERRIDABLE_KEYS = frozenset(
    {"seed", "name", "model.name", "model.precision", "model.dropout"}
    | {
        f"data.{k}"
        for k in (
            "labels languages eval_languages zero_shot_languages low_resource few_shot "
            "max_train_per_client max_eval_per_language max_dev_per_language max_length "
            "clients_per_language partition alpha"
        ).split()
    }
)
CONFIG_DIRS_ENV = "FEDLINGUA_CONFIG_DIRS"  # folders a fedlingua-config may come from


def allowed_config_dirs() -> list[Path]:
    """`$FEDLINGUA_CONFIG_DIRS` (os.pathsep-separated), else this process's working folder."""
    listed = [p for p in os.environ.get(CONFIG_DIRS_ENV, "").split(os.pathsep) if p]
    return [Path(p).resolve() for p in listed] or [Path.cwd().resolve()]


def check_overrides(items: list[str]) -> None:
    """Refuse overrides of keys outside the allow-list (paths, devices, output folders)."""
    for item in items:
        key, _, value = item.partition("=")
        key, value = key.strip(), value.strip().strip("'\"")
        if not (key.startswith(OVERRIDABLE_SECTIONS) or key in OVERRIDABLE_KEYS):
            raise ConfigError(f"{OVERRIDES_KEY}: {key!r} cannot be set by a Flower run")
        if key == "model.name" and value.startswith(("/", ".", "~")):
            raise ConfigError(f"{OVERRIDES_KEY}: model.name cannot name a local folder")


def _config_file(path: str) -> Path | None:
    """The fedlingua-config file, once it is inside an allowed folder (errors never echo
    what a file holds: the caller sees only that it was refused)."""
    if not path:
        return None
    file = Path(path)
    if not file.is_absolute():
        raise ConfigError(f"{CONFIG_KEY}: give an absolute path")
    file = file.resolve()
    if not any(file.is_relative_to(d) for d in allowed_config_dirs()):
        raise ConfigError(f"{CONFIG_KEY}: not in a folder this process may read configs from")
    try:
        RunConfig.load(file)
    except ConfigError:
        raise ConfigError(f"{CONFIG_KEY}: not a readable fedlingua run config") from None
    return file


def load_run_config(run_config: Mapping[str, UserConfigValue]) -> RunConfig:
    """The fedlingua run config a Flower run describes: the config file (from an allowed
    folder), the caller's allow-listed overrides; federated, with noise from OS entropy."""
    path = _config_file(str(run_config.get(CONFIG_KEY, "") or ""))
    overrides = parse_overrides(str(run_config.get(OVERRIDES_KEY, "")))
    check_overrides(overrides)
    cfg = RunConfig.load(path, overrides)
    require_federated(cfg)
    if cfg.privacy.seeded_noise:
        raise ConfigError(
            "privacy.seeded_noise: noise seeded from the run seed can be recomputed by anyone "
            "holding the config; a Flower run draws DP noise from OS entropy"
        )
    return cfg


@dataclass
class SiteTask:
    """One node's prepared site: the backbone, its own data, and a workbench per label list
    (the run's list arrives with the first train or evaluate message)."""

    cfg: RunConfig
    backbone: Backbone
    site: ClientSite
    policy: SitePolicy | None = None
    _benches: dict[tuple[str, ...], tuple[Workbench, ClientSite]] = field(default_factory=dict)

    def prepared(self, labels: tuple[str, ...] | None) -> tuple[Workbench, ClientSite]:
        """The workbench and the site relabelled for the run's label list."""
        labels = labels or self.site.labels
        if labels not in self._benches:
            self._benches.clear()  # one model per process
            site = self.site.relabel(labels)
            self._benches[labels] = (build_workbench(self.backbone, len(labels), self.cfg), site)
        return self._benches[labels]


def _data_spec(node_config: Mapping[str, UserConfigValue]) -> dict[str, str]:
    return {k: str(node_config[k]) for k in DATA_KEYS if str(node_config.get(k, "") or "")}


def _prepare(cfg: RunConfig, node_config: Mapping[str, UserConfigValue]) -> SiteTask:
    spec = _data_spec(node_config)
    if not spec:
        return _simulated(cfg, node_config)
    if "data-dir" in spec and "data-source" in spec:
        raise ConfigError("give a node data-dir or data-source, not both")
    if "data-dir" not in spec and "data-source" not in spec:
        raise ConfigError("a node's data needs data-dir (a folder) or data-source (a preset)")
    languages = [x.strip() for x in spec.get("data-languages", "").split(",") if x.strip()]
    if "data-source" in spec and not languages:
        raise ConfigError("data-source needs data-languages: the languages this site owns")
    backbone = load_backbone(cfg.model.name)
    site = build_site(
        cfg,
        backbone,
        spec.get("data-dir") or spec["data-source"],
        languages=languages or None,
        client_id=spec.get("client-id"),
    )
    return SiteTask(cfg, backbone, site)


def _simulated(cfg: RunConfig, node_config: Mapping[str, UserConfigValue]) -> SiteTask:
    """Site `partition-id` of the config's whole dataset (single-machine simulation)."""
    if "partition-id" not in node_config:
        raise ConfigError(
            "this node has no data: start its SuperNode with --node-config \"data-dir='DIR'\""
        )
    exp = build(cfg)
    sites = exp.sites()
    pid, num = int(node_config["partition-id"]), int(node_config.get("num-partitions", 0))
    if num != len(sites):
        raise ConfigError(
            f"the federation has {num} SuperNodes but the config makes {len(sites)} sites "
            f"({[s.client_id for s in sites]}): run it with num-supernodes={len(sites)}"
        )
    if not 0 <= pid < len(sites):
        raise ConfigError(f"partition-id={pid} is outside 0..{len(sites) - 1}")
    return SiteTask(cfg, exp.backbone, sites[pid])


_TASKS: dict[str, SiteTask] = {}


def site_task(cfg: RunConfig, node_config: Mapping[str, UserConfigValue]) -> SiteTask:
    """The prepared site for `cfg` on this node, built on the first message and reused."""
    key = cfg.to_toml() + repr(sorted((k, str(v)) for k, v in node_config.items()))
    if key not in _TASKS:
        _TASKS.clear()  # a new config (a new run) replaces the old one: keep one model per process
        policy_file = str(node_config.get(POLICY_KEY, "") or "")
        policy = SitePolicy.load(policy_file) if policy_file else None
        if policy is not None:
            policy.check_run(cfg)  # before any model or data is loaded for it
        _TASKS[key] = _prepare(cfg, node_config)
        _TASKS[key].policy = policy
    return _TASKS[key]
