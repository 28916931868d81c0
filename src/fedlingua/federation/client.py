"""The client side of a round, written once: the in-process grid and the Flower ClientApp call it.

A client receives the global trainable tensors and the train config, trains
its private data for the configured local epochs, and replies with its new
tensors and `num-examples` (what FedAvg weights by). Nothing else leaves the
client: no text, token ids, labels or per-example values (under SCAFFOLD, also the
change of its control variate, a tensor per trainable tensor). What a client keeps
between rounds (optimizer state, SCAFFOLD's c_i) lives in its node's Flower `Context`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from flwr.app import ConfigRecord, Context, MetricRecord, RecordDict

from fedlingua.config import RunConfig
from fedlingua.data import EncodedSplit
from fedlingua.federation.mods import PublicError
from fedlingua.federation.payload import (
    ARRAYS_KEY,
    CLIENT_KEY,
    CONFIG_KEY,
    CONTROL_DELTA_KEY,
    CONTROL_KEY,
    METRICS_KEY,
    record_to_state,
    state_to_record,
)
from fedlingua.runtime import derive_seed
from fedlingua.training import State, UpdateResult, Workbench, local_update


class ClientDropout(PublicError):
    """A simulated client failure (federation.client_dropout)."""


@dataclass
class ClientSite:
    """What one site holds privately: its identity, its language, its encoded training data
    and its own dev/test rows per language (`evaluation`: language -> split -> encoded), with
    label indices into `labels`. A site without training rows only evaluates (a zero-shot
    language); a site without `evaluation` only trains."""

    client_id: str
    lang: str
    train: EncodedSplit
    evaluation: dict[str, dict[str, EncodedSplit]] = field(default_factory=dict)
    labels: tuple[str, ...] = ()

    @property
    def train_sizes(self) -> dict[str, int]:
        """Training examples per language (a site may hold several languages)."""
        return dict(Counter(self.train.langs))

    def relabel(self, labels: Sequence[str]) -> ClientSite:
        """This site with its label indices into `labels` (the federation's list, fixed at
        the roll call); itself when the lists agree."""
        labels = tuple(labels)
        if labels == self.labels or not self.labels:
            return self
        missing = sorted(set(self.labels) - set(labels))
        if missing:
            raise ValueError(f"site {self.client_id}: labels {missing} are not in the run's list")
        index = [labels.index(name) for name in self.labels]

        def move(split: EncodedSplit) -> EncodedSplit:
            return replace(split, labels=[index[y] for y in split.labels])

        evaluation = {
            lang: {name: move(split) for name, split in splits.items()}
            for lang, splits in self.evaluation.items()
        }
        return replace(self, train=move(self.train), evaluation=evaluation, labels=labels)


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
    if t.keep_optimizer_state:
        config["keep-optimizer-state"] = True
    return config


def hyperparameters(config: ConfigRecord) -> dict:
    """`local_update`'s hyper-parameters from a train message's config record."""
    return dict(
        epochs=int(config["local-epochs"]),
        max_steps=int(config.get("local-steps", 0)) or None,
        batch_size=int(config["batch-size"]),
        lr=float(config["lr"]),
        weight_decay=float(config["weight-decay"]),
        max_grad_norm=float(config["max-grad-norm"]),
        proximal_mu=float(config.get("proximal-mu", 0.0)),
        optimizer=str(config.get("optimizer", "adamw")),
        momentum=float(config.get("momentum", 0.0)),
        logit_adjustment=float(config.get("logit-adjustment", 0.0)),
    )


def round_seed(config: ConfigRecord, client_id: str) -> int:
    """The client's training seed this round; raises `ClientDropout` when the seeded
    simulated failure (federation.client_dropout) picks it."""
    server_round, seed = int(config["server-round"]), int(config["seed"])
    if drops_out(seed, server_round, client_id, float(config["client-dropout"])):
        raise ClientDropout(f"client {client_id} dropped out in round {server_round}")
    return client_seed(seed, server_round, client_id)


def train_reply(site: ClientSite, result: UpdateResult) -> RecordDict:
    """What a client sends back: its tensors, its metrics and who it is."""
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


def handle_train(
    bench: Workbench,
    site: ClientSite,
    content: RecordDict,
    on_step: Callable[[], None] | None = None,
    context: Context | None = None,
) -> RecordDict:
    """Run one client update from a train message's content; returns the reply content.

    `context` is the node's persistent Flower `Context`: with `keep-optimizer-state` the
    client optimizer's state lives on in `context.state` from round to round, and under
    SCAFFOLD so does the client's control variate c_i.
    """
    config = content[CONFIG_KEY]
    seed = round_seed(config, site.client_id)
    expected = {n: tuple(p.shape) for n, p in bench.model.named_parameters() if p.requires_grad}
    state = record_to_state(content[ARRAYS_KEY], expected)
    keep = bool(config.get("keep-optimizer-state", False)) and context is not None
    scaffold = Scaffolding(content, context, expected) if CONTROL_KEY in content else None
    result = local_update(
        bench,
        state,
        site.train,
        seed=seed,
        optimizer_state=_kept(context, OPTIMIZER_STATE) if keep else None,
        keep_optimizer_state=keep,
        correction=scaffold.correction if scaffold is not None else None,
        on_step=on_step,
        **hyperparameters(config),
    )
    if keep:
        _keep(context, OPTIMIZER_STATE, result.optimizer_state)
    reply = train_reply(site, result)
    if scaffold is not None:
        reply[CONTROL_DELTA_KEY] = state_to_record(scaffold.update(result.mean_gradient))
    return reply


OPTIMIZER_STATE = "fedlingua.optimizer-state"  # records of a node's Context.state
CLIENT_CONTROL = "fedlingua.scaffold-control"


def _kept(context: Context | None, name: str) -> State | None:
    if context is None or name not in context.state:
        return None
    return record_to_state(context.state[name])


def _keep(context: Context | None, name: str, state: State) -> None:
    if context is not None:
        context.state[name] = state_to_record(state)


class Scaffolding:
    """The client side of SCAFFOLD (Karimireddy et al. 2020).

    The server sends its control variate c; the client keeps its own c_i (zero at first)
    in its Context, corrects every gradient by c - c_i, and sets c_i+ to the mean of the
    gradients it computed along its local steps, replying with c_i+ - c_i. With plain SGD
    that is exactly the paper's option II, c_i - c + (x - y) / (K lr); unlike option II it
    stays a gradient estimate under an adaptive client optimizer (AdamW moves every
    parameter by about lr per step whatever its gradient, which option II would turn
    into a control variate of size 1).
    """

    def __init__(self, content: RecordDict, context: Context | None, expected: dict) -> None:
        self.context = context
        self.c = record_to_state(content[CONTROL_KEY], expected)
        kept = _kept(context, CLIENT_CONTROL)
        self.c_i = kept if kept is not None else {k: torch.zeros_like(v) for k, v in self.c.items()}
        self.correction = {k: self.c[k] - self.c_i[k] for k in self.c}

    def update(self, mean_gradient: State) -> State:
        """Store c_i+ (the mean local gradient) in the node's context; return c_i+ - c_i."""
        new = {k: mean_gradient[k].to(self.c[k].dtype) for k in self.c}
        _keep(self.context, CLIENT_CONTROL, new)
        return {k: new[k] - self.c_i[k] for k in self.c}
