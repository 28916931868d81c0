"""Server-side aggregation through Flower's own strategies, and their resumable state.

FedAvg weights client results by the `num-examples` metric each client
reports. FedProx adds the proximal term on the client (its mu travels in the
train config). FedAdam/FedYogi keep server optimizer moments; those (and the
current global arrays they step from) are saved with each checkpoint so a
resumed run continues with the same server state.
"""

from __future__ import annotations

import logging

import numpy as np
from flwr.serverapp.strategy import (
    FedAdam,
    FedAvg,
    FedMedian,
    FedProx,
    FedTrimmedAvg,
    FedYogi,
    Strategy,
)

from fedlingua.config import FederationConfig
from fedlingua.runtime import flower_log_level


def make_strategy(cfg: FederationConfig, num_nodes: int) -> Strategy:
    """The configured Flower strategy, sampling `fraction` of `num_nodes` (at least one)."""
    sample = max(1, int(num_nodes * cfg.fraction))
    common = dict(
        fraction_train=cfg.fraction,
        fraction_evaluate=0.0,
        min_train_nodes=sample,
        min_evaluate_nodes=0,
        min_available_nodes=num_nodes,
    )
    builders = {
        "fedavg": lambda: FedAvg(**common),
        "fedprox": lambda: FedProx(proximal_mu=cfg.proximal_mu, **common),
        "fedadam": lambda: FedAdam(eta=cfg.server_lr, **common),
        "fedyogi": lambda: FedYogi(eta=cfg.server_lr, **common),
        "fedmedian": lambda: FedMedian(**common),
        "fedtrimmedavg": lambda: FedTrimmedAvg(beta=cfg.trim_beta, **common),
    }
    if cfg.strategy not in builders:
        raise ValueError(f"unknown strategy {cfg.strategy!r}")
    # fraction_evaluate=0 is deliberate (the server evaluates the global model itself):
    # silence Flower's warning about it.
    with flower_log_level(logging.ERROR):
        return builders[cfg.strategy]()


_STATE_ATTRS = ("current_arrays", "m_t", "v_t")


def strategy_state(strategy: Strategy) -> dict[str, np.ndarray]:
    """Flatten the strategy's server-side state (empty for stateless strategies)."""
    flat: dict[str, np.ndarray] = {}
    for attr in _STATE_ATTRS:
        value = getattr(strategy, attr, None)
        if value:
            flat.update({f"{attr}/{k}": np.asarray(v) for k, v in value.items()})
    return flat


def restore_strategy_state(strategy: Strategy, flat: dict[str, np.ndarray]) -> None:
    for attr in _STATE_ATTRS:
        prefix = f"{attr}/"
        part = {k[len(prefix) :]: v for k, v in flat.items() if k.startswith(prefix)}
        if part:
            setattr(strategy, attr, part)
