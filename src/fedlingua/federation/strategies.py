"""Server-side aggregation through Flower's own strategies, and their resumable state.

FedAvg weights client results by the `num-examples` metric each client
reports. FedProx adds the proximal term on the client (its mu travels in the
train config). FedAdam/FedYogi keep server optimizer moments; those (and the
current global arrays they step from) are saved with each checkpoint so a
resumed run continues with the same server state.

What privacy decides arrives as plain arguments of `make_strategy`: `equal_weights`
(client-level DP: FedAvg/FedProx weigh every client the same) and `wrap` (a strategy
wrapper such as one of Flower's DP wrappers: the privacy package's `DPPlan.wrap`). A
wrapper is known here only by its shape: it holds the strategy it wraps in `.strategy`
and its current clipping norm in `.clipping_norm`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

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

UNIT_WEIGHT_KEY = "dp-unit-weight"
Wrap = Callable[[Strategy, int], Strategy]

# name -> (Flower strategy class, its own arguments from the federation config)
_BUILDERS: dict[str, Callable[[FederationConfig], tuple[type[Strategy], dict]]] = {
    "fedavg": lambda cfg: (FedAvg, {}),
    "fedprox": lambda cfg: (FedProx, {"proximal_mu": cfg.proximal_mu}),
    "fedadam": lambda cfg: (FedAdam, {"eta": cfg.server_lr}),
    "fedyogi": lambda cfg: (FedYogi, {"eta": cfg.server_lr}),
    "fedmedian": lambda cfg: (FedMedian, {}),
    "fedtrimmedavg": lambda cfg: (FedTrimmedAvg, {"beta": cfg.trim_beta}),
}
STRATEGIES = tuple(_BUILDERS)
EQUAL_WEIGHT_STRATEGIES = ("fedavg", "fedprox")  # the averages that can weigh clients equally


class _UniformWeights:
    """Mixin for FedAvg-like strategies: every client's reply weighs the same."""

    def aggregate_train(self, server_round, replies):  # type: ignore[no-untyped-def]
        replies = list(replies)
        for reply in replies:
            if reply.has_content():
                for record in reply.content.metric_records.values():
                    record[UNIT_WEIGHT_KEY] = 1
        return super().aggregate_train(server_round, replies)  # type: ignore[misc]


def uniform(strategy_cls: type[FedAvg]) -> type[FedAvg]:
    """`strategy_cls` with equal client weights (FedAvg -> UniformFedAvg, ...)."""
    return type(f"Uniform{strategy_cls.__name__}", (_UniformWeights, strategy_cls), {})


def make_strategy(
    cfg: FederationConfig,
    num_nodes: int,
    *,
    equal_weights: bool = False,
    wrap: Wrap | None = None,
) -> Strategy:
    """The configured Flower strategy, sampling `fraction` of `num_nodes` (at least one).

    With `equal_weights` every client's reply weighs the same (fedavg, fedprox only);
    `wrap(strategy, num_sampled)`, if given, wraps the result (a DP wrapper).
    """
    if cfg.strategy not in _BUILDERS:
        raise ValueError(f"unknown strategy {cfg.strategy!r}")
    if equal_weights and cfg.strategy not in EQUAL_WEIGHT_STRATEGIES:
        raise ValueError(f"differential privacy needs fedavg or fedprox, not {cfg.strategy!r}")
    cls, own = _BUILDERS[cfg.strategy](cfg)
    sample = max(1, int(num_nodes * cfg.fraction))
    common = dict(
        fraction_train=cfg.fraction,
        fraction_evaluate=0.0,
        # never wait inside Flower's sampling for absent nodes: the quorum
        # (federation.min_clients) is checked by Federation.step, which skips the round
        min_train_nodes=1,
        min_evaluate_nodes=0,
        min_available_nodes=1,
    )
    if equal_weights:  # client-level DP: every client weighs the same in the average
        cls = uniform(cls)  # type: ignore[arg-type]
        common["weighted_by_key"] = UNIT_WEIGHT_KEY
    # fraction_evaluate=0 is deliberate (the server evaluates the global model itself):
    # silence Flower's warning about it.
    with flower_log_level(logging.ERROR):
        strategy = cls(**own, **common)
    return strategy if wrap is None else wrap(strategy, sample)


def _wrapped(strategy: Strategy) -> Strategy | None:
    """The strategy a wrapper (a DP wrapper: `.strategy` and `.clipping_norm`) wraps."""
    inner = getattr(strategy, "strategy", None)
    return inner if isinstance(inner, Strategy) and hasattr(strategy, "clipping_norm") else None


_STATE_ATTRS = ("current_arrays", "m_t", "v_t")
_CLIP_KEY = "dp/clipping_norm"


def strategy_state(strategy: Strategy) -> dict[str, np.ndarray]:
    """Flatten the strategy's server-side state (empty for stateless strategies).

    A DP wrapper contributes its current clipping norm (adaptive clipping changes it every
    round) and the state of the strategy it wraps.
    """
    inner = _wrapped(strategy)
    if inner is not None:
        return strategy_state(inner) | {
            _CLIP_KEY: np.asarray(strategy.clipping_norm, dtype=np.float64)
        }
    flat: dict[str, np.ndarray] = {}
    for attr in _STATE_ATTRS:
        value = getattr(strategy, attr, None)
        if value:
            flat.update({f"{attr}/{k}": np.asarray(v) for k, v in value.items()})
    return flat


def restore_strategy_state(strategy: Strategy, flat: dict[str, np.ndarray]) -> None:
    inner = _wrapped(strategy)
    if inner is not None:
        if _CLIP_KEY in flat:
            clip = float(np.asarray(flat[_CLIP_KEY]).reshape(-1)[0])
            strategy.clipping_norm = clip  # type: ignore[attr-defined]
        restore_strategy_state(inner, {k: v for k, v in flat.items() if k != _CLIP_KEY})
        return
    for attr in _STATE_ATTRS:
        prefix = f"{attr}/"
        part = {k[len(prefix) :]: v for k, v in flat.items() if k.startswith(prefix)}
        if part:
            setattr(strategy, attr, part)
