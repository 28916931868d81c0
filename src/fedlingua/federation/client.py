"""The client side of a round, written once: the in-process grid and the Flower ClientApp call it.

A client receives the global trainable tensors and the train config, trains
its private data for the configured local epochs, and replies with its new
tensors and `num-examples` (what FedAvg weights by). Nothing else leaves the
client: no text, token ids, labels or per-example values.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from flwr.app import ConfigRecord, MetricRecord, RecordDict

from fedlingua.config import RunConfig
from fedlingua.data import EncodedSplit
from fedlingua.federation.payload import (
    ARRAYS_KEY,
    CLIENT_KEY,
    CONFIG_KEY,
    METRICS_KEY,
    record_to_state,
    state_to_record,
)
from fedlingua.runtime import derive_seed
from fedlingua.training import Workbench, local_update


class ClientDropout(RuntimeError):
    """A simulated client failure (federation.client_dropout)."""


@dataclass
class ClientSite:
    """What one client holds privately: its identity, language and encoded training data."""

    client_id: str
    lang: str
    train: EncodedSplit


def client_seed(seed: int, server_round: int, client_id: str) -> int:
    """Per (run seed, round, client) seed: identical whether a run is resumed or not."""
    return derive_seed("train", seed, server_round, client_id)


def drops_out(seed: int, server_round: int, client_id: str, probability: float) -> bool:
    if probability <= 0:
        return False
    rng = np.random.default_rng(derive_seed("dropout", seed, server_round, client_id))
    return bool(rng.random() < probability)


def train_config(cfg: RunConfig, lr: float) -> ConfigRecord:
    """Hyper-parameters the server sends with every train message."""
    t = cfg.train
    config = ConfigRecord(
        {
            "lr": float(lr),
            "local-epochs": int(t.local_epochs),
            "local-steps": int(t.local_steps or 0),
            "batch-size": int(t.batch_size),
            "weight-decay": float(t.weight_decay),
            "max-grad-norm": float(t.max_grad_norm),
            "seed": int(cfg.seed),
            "client-dropout": float(cfg.federation.client_dropout),
        }
    )
    # sent only when they differ from the client's defaults (AdamW, plain cross-entropy)
    if t.optimizer != "adamw":
        config["optimizer"], config["momentum"] = t.optimizer, float(t.momentum)
    if t.logit_adjustment > 0:
        config["logit-adjustment"] = float(t.logit_adjustment)
    return config


def handle_train(
    bench: Workbench,
    site: ClientSite,
    content: RecordDict,
    on_step: Callable[[], None] | None = None,
) -> RecordDict:
    """Run one client update from a train message's content; returns the reply content."""
    config = content[CONFIG_KEY]
    server_round = int(config["server-round"])
    seed = int(config["seed"])
    if drops_out(seed, server_round, site.client_id, float(config["client-dropout"])):
        raise ClientDropout(f"client {site.client_id} dropped out in round {server_round}")
    expected = {n: tuple(p.shape) for n, p in bench.model.named_parameters() if p.requires_grad}
    state = record_to_state(content[ARRAYS_KEY], expected)
    result = local_update(
        bench,
        state,
        site.train,
        epochs=int(config["local-epochs"]),
        max_steps=int(config.get("local-steps", 0)) or None,
        batch_size=int(config["batch-size"]),
        lr=float(config["lr"]),
        seed=client_seed(seed, server_round, site.client_id),
        weight_decay=float(config["weight-decay"]),
        max_grad_norm=float(config["max-grad-norm"]),
        proximal_mu=float(config.get("proximal-mu", 0.0)),
        optimizer=str(config.get("optimizer", "adamw")),
        momentum=float(config.get("momentum", 0.0)),
        logit_adjustment=float(config.get("logit-adjustment", 0.0)),
        on_step=on_step,
    )
    metrics = MetricRecord(
        {
            "num-examples": result.num_examples,
            "train-loss": result.loss_mean,
            "train-loss-last": result.loss_last,
            "steps": result.steps,
            "compute-s": result.compute_s,
        }
    )
    identity = ConfigRecord({"client-id": site.client_id, "lang": site.lang})
    return RecordDict(
        {ARRAYS_KEY: state_to_record(result.state), METRICS_KEY: metrics, CLIENT_KEY: identity}
    )
