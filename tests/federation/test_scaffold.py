"""SCAFFOLD and clients that keep state: on a small heterogeneous problem FedAvg drifts away
from the centralized optimum and SCAFFOLD converges to it; kept state survives a resume."""

from __future__ import annotations

from functools import partial
from types import SimpleNamespace

import numpy as np
import torch
from flwr.app import ConfigRecord
from torch import nn

from fedlingua.config import FederationConfig, RunConfig
from fedlingua.data import EncodedSplit
from fedlingua.federation.client import ClientSite, handle_train, train_config
from fedlingua.federation.grid import InProcessGrid
from fedlingua.federation.server import Federation
from fedlingua.federation.strategies import make_strategy
from fedlingua.methods import count_parameters
from fedlingua.training import Workbench, local_update

VOCAB, CLASSES = 12, 3


class BagOfTokens(nn.Module):
    """Multinomial logistic regression on token counts: a convex problem with one optimum."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(VOCAB, CLASSES))
        self.bias = nn.Parameter(torch.zeros(CLASSES))

    def forward(self, input_ids, attention_mask):
        counts = torch.zeros(len(input_ids), VOCAB).scatter_add_(
            1, input_ids, attention_mask.float()
        )
        return SimpleNamespace(logits=counts @ self.weight + self.bias)


def _bench() -> Workbench:
    model = BagOfTokens()
    names = [n for n, _ in model.named_parameters()]
    return Workbench(model, None, names, pad_id=0, params=count_parameters(model), num_labels=3)


def _client(seed: int, classes: list[int], scale: int) -> EncodedSplit:
    """Examples of `classes` only; class c is told by token c + 1, repeated `scale` times
    (clients differ in label skew and in feature scale: their local optima differ)."""
    rng = np.random.default_rng(seed)
    ids, labels = [], []
    for _ in range(60):
        y = int(rng.choice(classes))
        noise = rng.integers(4, VOCAB, size=3).tolist()
        ids.append([y + 1] * scale + noise)
        labels.append(y)
    return EncodedSplit(ids, labels, ["xx"] * len(ids))


CLIENTS = [_client(1, [0, 1], 1), _client(2, [1, 2], 4), _client(3, [0, 2], 2)]


def _cfg(**train) -> RunConfig:
    cfg = RunConfig()
    cfg.train.optimizer, cfg.train.momentum = "sgd", 0.0
    cfg.train.batch_size, cfg.train.local_steps, cfg.train.max_grad_norm = 60, 20, 0.0
    cfg.train.weight_decay = 0.1  # L2: a strongly convex objective with one finite optimum
    cfg.train.logit_adjustment = 0.0  # the plain cross-entropy whose optimum is centralized
    for k, v in train.items():
        setattr(cfg.train, k, v)
    return cfg


def _federated(strategy: str, rounds: int, cfg: RunConfig) -> dict[str, torch.Tensor]:
    bench = _bench()
    sites = [ClientSite(f"c{i}", "xx", data) for i, data in enumerate(CLIENTS)]
    grid = InProcessGrid(
        {i + 1: partial(handle_train, bench, s) for i, s in enumerate(sites)}, with_context=True
    )
    config = train_config(cfg, lr=0.5)
    fed = Federation(
        "global",
        make_strategy(FederationConfig(strategy=strategy), len(sites), client_lr=1e-2),
        grid,
        bench.get_state(),
        lambda rnd: ConfigRecord(dict(config)),
        seed=0,
    )
    for rnd in range(1, rounds + 1):
        assert fed.step(rnd).updated
    return fed.state


def _centralized_optimum() -> dict[str, torch.Tensor]:
    bench = _bench()
    ids, labels = [i for c in CLIENTS for i in c.input_ids], [y for c in CLIENTS for y in c.labels]
    pooled = EncodedSplit(ids, labels, ["xx"] * len(ids))
    result = local_update(
        bench,
        bench.get_state(),
        pooled,
        epochs=1,
        max_steps=3000,
        batch_size=len(pooled),
        lr=0.5,
        seed=0,
        weight_decay=0.1,
        max_grad_norm=0.0,
        optimizer="sgd",
        momentum=0.0,
    )
    return result.state


def _distance(a, b) -> float:
    return float(sum(((a[k] - b[k]) ** 2).sum() for k in a) ** 0.5)


def test_scaffold_reaches_the_centralized_optimum_where_fedavg_drifts():
    optimum = _centralized_optimum()
    fedavg = _federated("fedavg", 100, _cfg())
    scaffold = _federated("scaffold", 100, _cfg())
    drift, corrected = _distance(fedavg, optimum), _distance(scaffold, optimum)
    # 20 local steps on label- and scale-skewed clients: FedAvg's fixed point is not the
    # optimum of the pooled objective (measured 0.38, the optimum's norm is 1.7) ...
    assert drift > 0.2, drift
    # ... SCAFFOLD's corrected gradients reach it (measured 7.5e-7)
    assert corrected < 1e-3, corrected


def test_kept_optimizer_state_changes_the_second_round_and_lives_in_the_context():
    bench = _bench()
    site = ClientSite("c0", "xx", CLIENTS[0])
    grid = InProcessGrid({1: partial(handle_train, bench, site)}, with_context=True)
    config = train_config(_cfg(optimizer="adamw", keep_optimizer_state=True), lr=0.05)
    fed = Federation(
        "global",
        make_strategy(FederationConfig(), 1, client_lr=1e-2),
        grid,
        bench.get_state(),
        lambda rnd: ConfigRecord(dict(config)),
        seed=0,
    )
    fed.step(1)
    kept = grid.node_states()
    assert any("exp_avg_sq" in k for k in kept) and all(k.startswith("node/1/") for k in kept)
    # a grid restored from the flat state holds the same records (what a resume does)
    other = InProcessGrid({1: partial(handle_train, bench, site)}, with_context=True)
    other.restore_node_states(kept)
    again = other.node_states()
    assert set(again) == set(kept) and all(np.array_equal(again[k], kept[k]) for k in kept)
