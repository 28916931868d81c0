"""Server-side aggregation through Flower's own strategies, and their resumable state.

FedAvg weights client results by the `num-examples` metric each client
reports. FedProx adds the proximal term on the client (its mu travels in the
train config). FedAvgM/FedAdam/FedYogi treat the average update as a pseudo-gradient
for a server optimizer (momentum, Adam, Yogi); SCAFFOLD corrects client drift with
control variates. Their server state (moments, control variate, and the global arrays
they step from) is saved with each checkpoint so a resumed run continues exactly.

Server steps (`federation.server_lr`) default per strategy (`SERVER_LR`): FedAvgM 1.0
with momentum 0.9 (Hsu et al. 2019; Flower's FedAvgM: step 1.0, momentum 0.0, which is
plain FedAvg), SCAFFOLD 1.0 (Karimireddy et al. 2020): both multiply the average update,
so they hold for any parameter scale. FedAdam and FedYogi normalize the update: their
step moves every coordinate by about eta per round whatever its scale, so their default
is a multiple of the clients' learning rate (`ADAPTIVE_SERVER_LR`): FedAdam 10x and
FedYogi 1x, which at the prompt encoder's 1e-2 are Flower's own defaults 0.1 and 0.01
(the step the dev sweep chose); full fine-tuning at 5e-5 gets 5e-4, not a step that
would wipe out the pretrained weights in a round.

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
from flwr.app import Array, ArrayRecord, Message
from flwr.serverapp.strategy import (
    FedAdam,
    FedAvg,
    FedAvgM,
    FedMedian,
    FedProx,
    FedTrimmedAvg,
    FedYogi,
    Strategy,
)

from fedlingua.config import FederationConfig
from fedlingua.federation.payload import CONTROL_DELTA_KEY, CONTROL_KEY
from fedlingua.runtime import flower_log_level

UNIT_WEIGHT_KEY = "dp-unit-weight"
Wrap = Callable[[Strategy, int], Strategy]

SERVER_LR = {"fedavgm": 1.0, "scaffold": 1.0}
ADAPTIVE_SERVER_LR = {"fedadam": 10.0, "fedyogi": 1.0}  # x the clients' learning rate


def server_lr(cfg: FederationConfig, client_lr: float) -> float:
    """The configured server step, or the strategy's default for clients at `client_lr`."""
    if cfg.server_lr is not None:
        return cfg.server_lr
    if cfg.strategy in ADAPTIVE_SERVER_LR:
        return ADAPTIVE_SERVER_LR[cfg.strategy] * client_lr
    return SERVER_LR[cfg.strategy]


class Scaffold(FedAvg):
    """SCAFFOLD's server (Karimireddy et al. 2020): FedAvg of the clients' tensors, stepped
    by the global learning rate, plus the server control variate c, sent with every train
    message and updated by c += (|S| / N) * mean of the clients' c_i changes.

    The clients' side (their c_i, the corrected gradients) is
    `fedlingua.federation.client.Scaffolding`.
    """

    def __init__(self, *, server_lr: float = 1.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.server_lr = server_lr
        self.control: dict[str, np.ndarray] = {}
        self.current_arrays: dict[str, np.ndarray] = {}

    def configure_train(self, server_round, arrays, config, grid):  # type: ignore[override]
        self.current_arrays = {k: v.numpy().copy() for k, v in arrays.items()}
        if not self.control:
            self.control = {k: np.zeros_like(v) for k, v in self.current_arrays.items()}
        self._nodes = len(list(grid.get_node_ids()))
        messages = list(super().configure_train(server_round, arrays, config, grid))
        control = _record(self.control)
        for msg in messages:  # one content object may serve many nodes: set it once each
            msg.content[CONTROL_KEY] = control
        return messages

    def aggregate_train(self, server_round, replies):  # type: ignore[override]
        replies = list(replies)
        deltas = [_pop_record(r, CONTROL_DELTA_KEY) for r in replies]
        arrays, metrics = super().aggregate_train(server_round, replies)
        deltas = [d for d in deltas if d is not None]
        if arrays is None or not deltas:
            return arrays, metrics
        share = len(deltas) / max(self._nodes, 1)
        for k in self.control:
            mean = np.mean([d[k].numpy() for d in deltas], axis=0)
            self.control[k] = (self.control[k] + share * mean).astype(self.control[k].dtype)
        if self.server_lr != 1.0:  # x + eta_g (mean(y) - x)
            stepped = {
                k: (x + self.server_lr * (arrays[k].numpy() - x)).astype(x.dtype)
                for k, x in self.current_arrays.items()
            }
            arrays = _record(stepped)
        return arrays, metrics


def _record(arrays: dict[str, np.ndarray]) -> ArrayRecord:
    return ArrayRecord({k: Array(np.ascontiguousarray(v)) for k, v in arrays.items()})


def _pop_record(reply: Message, key: str) -> ArrayRecord | None:
    """Take the record `key` out of a reply's content (Flower's averaging expects exactly
    one ArrayRecord per reply)."""
    if not reply.has_content() or key not in reply.content:
        return None
    record = reply.content[key]
    del reply.content[key]
    return record


# name -> (Flower strategy class, its own arguments from the federation config)
_BUILDERS: dict[str, Callable[[FederationConfig, float], tuple[type[Strategy], dict]]] = {
    "fedavg": lambda cfg, lr: (FedAvg, {}),
    "fedprox": lambda cfg, lr: (FedProx, {"proximal_mu": cfg.proximal_mu}),
    "fedavgm": lambda cfg, lr: (
        FedAvgM,
        {"server_learning_rate": server_lr(cfg, lr), "server_momentum": cfg.server_momentum},
    ),
    "fedadam": lambda cfg, lr: (FedAdam, {"eta": server_lr(cfg, lr)}),
    "fedyogi": lambda cfg, lr: (FedYogi, {"eta": server_lr(cfg, lr)}),
    "scaffold": lambda cfg, lr: (Scaffold, {"server_lr": server_lr(cfg, lr)}),
    "fedmedian": lambda cfg, lr: (FedMedian, {}),
    "fedtrimmedavg": lambda cfg, lr: (FedTrimmedAvg, {"beta": cfg.trim_beta}),
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
    client_lr: float,
    equal_weights: bool = False,
    wrap: Wrap | None = None,
) -> Strategy:
    """The configured Flower strategy, sampling `fraction` of `num_nodes` (at least one);
    `client_lr`, the clients' learning rate, sets FedAdam's and FedYogi's default step.

    With `equal_weights` every client's reply weighs the same (fedavg, fedprox only);
    `wrap(strategy, num_sampled)`, if given, wraps the result (a DP wrapper).
    """
    if cfg.strategy not in _BUILDERS:
        raise ValueError(f"unknown strategy {cfg.strategy!r}")
    if equal_weights and cfg.strategy not in EQUAL_WEIGHT_STRATEGIES:
        raise ValueError(f"differential privacy needs fedavg or fedprox, not {cfg.strategy!r}")
    cls, own = _BUILDERS[cfg.strategy](cfg, client_lr)
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


_STATE_ATTRS = ("current_arrays", "m_t", "v_t", "momentum_vector", "control")
_CLIP_KEY = "dp/clipping_norm"
# how a state attribute is held: a dict of arrays (FedAdam, FedYogi, SCAFFOLD), an
# ArrayRecord (FedAvgM's current arrays) or a list of arrays (FedAvgM's momentum)
_RECORD, _LIST = "@record", "@list"


def _flatten(attr: str, value) -> dict[str, np.ndarray]:
    if isinstance(value, ArrayRecord):
        return {f"{attr}{_RECORD}/{k}": a.numpy() for k, a in value.items()}
    if isinstance(value, list):
        return {f"{attr}{_LIST}/{i:06d}": np.asarray(v) for i, v in enumerate(value)}
    return {f"{attr}/{k}": np.asarray(v) for k, v in value.items()}


def _unflatten(attr: str, flat: dict[str, np.ndarray]):
    for suffix in ("", _RECORD, _LIST):
        prefix = f"{attr}{suffix}/"
        part = {k[len(prefix) :]: v for k, v in flat.items() if k.startswith(prefix)}
        if not part:
            continue
        if suffix == _RECORD:
            return _record(part)
        if suffix == _LIST:
            return [part[k] for k in sorted(part)]
        return part
    return None


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
        if value is not None and len(value):
            flat.update(_flatten(attr, value))
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
        value = _unflatten(attr, flat)
        if value is not None:
            setattr(strategy, attr, value)
