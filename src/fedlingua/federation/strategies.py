"""Server-side aggregation through Flower's own strategies, and their resumable state.

FedAvg weights client results by the `num-examples` metric each client
reports. FedProx adds the proximal term on the client (its mu travels in the
train config). FedAdam/FedYogi keep server optimizer moments; those (and the
current global arrays they step from) are saved with each checkpoint so a
resumed run continues with the same server state.

With `privacy.dp` the strategy is wrapped in one of Flower's differential-privacy
wrappers (`fedlingua.privacy.dp`); its inner strategy then weighs clients equally.
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

from fedlingua.config import FederationConfig, PrivacyConfig
from fedlingua.runtime import flower_log_level


def make_strategy(
    cfg: FederationConfig,
    num_nodes: int,
    privacy: PrivacyConfig | None = None,
    noise_multiplier: float | None = None,
) -> Strategy:
    """The configured Flower strategy, sampling `fraction` of `num_nodes` (at least one).

    With `privacy.dp` set it comes wrapped in the Flower DP wrapper that mode selects,
    with noise multiplier `noise_multiplier`.
    """
    from fedlingua.privacy import dp

    private = privacy is not None and privacy.dp != "none"
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
    avg, prox = FedAvg, FedProx
    if private:  # client-level DP: every client weighs the same in the average
        avg, prox = dp.uniform(FedAvg), dp.uniform(FedProx)
        common["weighted_by_key"] = dp.UNIT_WEIGHT_KEY
    builders = {
        "fedavg": lambda: avg(**common),
        "fedprox": lambda: prox(proximal_mu=cfg.proximal_mu, **common),
        "fedadam": lambda: FedAdam(eta=cfg.server_lr, **common),
        "fedyogi": lambda: FedYogi(eta=cfg.server_lr, **common),
        "fedmedian": lambda: FedMedian(**common),
        "fedtrimmedavg": lambda: FedTrimmedAvg(beta=cfg.trim_beta, **common),
    }
    if cfg.strategy not in builders:
        raise ValueError(f"unknown strategy {cfg.strategy!r}")
    # fraction_evaluate=0 is deliberate (the server evaluates the global model itself):
    # silence Flower's warning about it.
    if private and cfg.strategy not in ("fedavg", "fedprox"):
        raise ValueError(f"differential privacy needs fedavg or fedprox, not {cfg.strategy!r}")
    with flower_log_level(logging.ERROR):
        strategy = builders[cfg.strategy]()
    if private:
        assert privacy is not None and noise_multiplier is not None
        strategy = dp.wrap_strategy(strategy, privacy, noise_multiplier, sample)
    return strategy


_STATE_ATTRS = ("current_arrays", "m_t", "v_t")
_CLIP_KEY = "dp/clipping_norm"


def strategy_state(strategy: Strategy) -> dict[str, np.ndarray]:
    """Flatten the strategy's server-side state (empty for stateless strategies).

    A DP wrapper contributes its current clipping norm (adaptive clipping changes it every
    round) and the state of the strategy it wraps.
    """
    from fedlingua.privacy.dp import DP_WRAPPERS

    if isinstance(strategy, DP_WRAPPERS):
        return strategy_state(strategy.strategy) | {
            _CLIP_KEY: np.asarray(strategy.clipping_norm, dtype=np.float64)
        }
    flat: dict[str, np.ndarray] = {}
    for attr in _STATE_ATTRS:
        value = getattr(strategy, attr, None)
        if value:
            flat.update({f"{attr}/{k}": np.asarray(v) for k, v in value.items()})
    return flat


def restore_strategy_state(strategy: Strategy, flat: dict[str, np.ndarray]) -> None:
    from fedlingua.privacy.dp import DP_WRAPPERS

    if isinstance(strategy, DP_WRAPPERS):
        if _CLIP_KEY in flat:
            strategy.clipping_norm = float(np.asarray(flat[_CLIP_KEY]).reshape(-1)[0])
        restore_strategy_state(strategy.strategy, {k: v for k, v in flat.items() if k != _CLIP_KEY})
        return
    for attr in _STATE_ATTRS:
        prefix = f"{attr}/"
        part = {k[len(prefix) :]: v for k, v in flat.items() if k.startswith(prefix)}
        if part:
            setattr(strategy, attr, part)
