"""What a site answers besides training: the roll call and federated evaluation.

A site scores models on its own dev/test rows and replies with counts only: per requested
(model, language) pair and split, the confusion matrix (rows: gold label, columns:
predicted label; its sum is the example count, its diagonal the correct predictions per
class). No text, token id, label or per-example output leaves the site. With
`personalize-steps` the site first fine-tunes each model for that many local steps on its
own training data, then scores the personalized model (personalization runs on the sites).

`SiteHandler` answers every message type for one in-process node exactly as the Flower
ClientApp's `query`, `train` and `evaluate` handlers do: both call the functions below.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence

import torch
from flwr.app import ConfigRecord, Context, MessageType, MetricRecord, RecordDict

from fedlingua.evaluation import confusion_matrix
from fedlingua.federation.client import ClientSite, handle_train, hyperparameters
from fedlingua.federation.payload import CLIENT_KEY, CONFIG_KEY, METRICS_KEY, record_to_state
from fedlingua.runtime import derive_seed
from fedlingua.training import State, Workbench, label_prior, local_update, predict

MODEL_PREFIX = "model:"  # evaluate messages: one ArrayRecord per model, "model:<name>"
SPLITS = ("dev", "test")


def identity(site: ClientSite) -> RecordDict:
    """A site's answer to the roll call: who it is, which languages it trains and evaluates,
    how many training examples it holds per language and its label names. Nothing else
    about its data."""
    sizes = site.train_sizes
    record = ConfigRecord(
        {
            "client-id": site.client_id,
            "lang": site.lang,
            "languages": list(sizes),
            "train-sizes": [int(n) for n in sizes.values()],
            "eval-languages": sorted(site.evaluation),
            "labels": list(site.labels),
        }
    )
    return RecordDict({CLIENT_KEY: record})


def confusion_key(split: str, pair: int) -> str:
    return f"confusion/{split}/{pair}"


def handle_evaluate(
    bench: Workbench, site: ClientSite, content: RecordDict, context: Context | None = None
) -> RecordDict:
    """Score the models of an evaluate message on this site's own rows; the reply's counts."""
    config = content[CONFIG_KEY]
    expected = {n: tuple(p.shape) for n, p in bench.model.named_parameters() if p.requires_grad}
    pairs = list(zip(config["models"], config["languages"], strict=True))
    splits = [str(s) for s in config["splits"]]
    unknown = [lang for _, lang in pairs if lang not in site.evaluation]
    if unknown or not set(splits) <= set(SPLITS):
        raise ValueError(f"site {site.client_id} holds no {sorted(set(unknown))} {splits} rows")
    if site.labels and bench_labels(config) != site.labels:
        raise ValueError(f"site {site.client_id} was prepared for other labels than this run's")
    states = {
        name: record_to_state(content[MODEL_PREFIX + name], expected)
        for name in dict.fromkeys(m for m, _ in pairs)
    }
    start = time.perf_counter()
    steps = int(config.get("personalize-steps", 0))
    if steps > 0:
        states = {name: _personalized(bench, site, s, config, steps) for name, s in states.items()}
    k = len(bench_labels(config))
    batch = int(config["eval-batch-size"])
    prior = bool(config.get("language-prior", False))
    metrics: dict = {}
    for i, (model, lang) in enumerate(pairs):
        shift = log_prior(site, lang, k) if prior else None
        for split in splits:
            data = site.evaluation[lang][split]
            preds = predict(bench, states[model], data, batch, shift) if len(data) else []
            counts = confusion_matrix(preds, data.labels, k)
            metrics[confusion_key(split, i)] = [int(x) for x in counts.ravel()]
    metrics["compute-s"] = time.perf_counter() - start
    return RecordDict(
        {
            METRICS_KEY: MetricRecord(metrics),
            CLIENT_KEY: ConfigRecord({"client-id": site.client_id}),
        }
    )


def encode_labels(labels: Sequence[str]) -> str:
    """The run's label list as messages carry it: one JSON string (legacy SecAgg+ configs
    hold scalars only)."""
    return json.dumps(list(labels))


def decode_labels(value: object) -> tuple[str, ...]:
    labels = json.loads(value) if isinstance(value, str) else None
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels) or not labels:
        raise ValueError("the message's label list is not a JSON list of names")
    return tuple(labels)


def message_labels(content: RecordDict) -> tuple[str, ...] | None:
    """The run's label list a train or evaluate message carries (fixed at the roll call;
    under SecAgg+ it travels inside the legacy fit config), or None."""
    for record in content.config_records.values():
        if "labels" in record:
            return decode_labels(record["labels"])
    return None


def relabelled(site: ClientSite, content: RecordDict) -> ClientSite:
    """`site` with its labels indexed as the message's label list orders them (a message
    without one leaves the site as it is)."""
    labels = message_labels(content)
    return site.relabel(labels) if labels else site


def bench_labels(config: ConfigRecord) -> tuple[str, ...]:
    """The run's label names (fixed at the roll call), which every train and evaluate
    message carries."""
    return decode_labels(config["labels"])


def log_prior(site: ClientSite, language: str, num_labels: int) -> torch.Tensor | None:
    """log of the label distribution of the site's own `language` training rows (None
    without any: the plain argmax)."""
    labels = [y for y, x in zip(site.train.labels, site.train.langs, strict=True) if x == language]
    return torch.log(label_prior(labels, num_labels)) if labels else None


def _personalized(
    bench: Workbench, site: ClientSite, state: State, config: ConfigRecord, steps: int
) -> State:
    """`state` fine-tuned for `steps` local steps (one pass at most) on the site's data."""
    if len(site.train) == 0:
        raise ValueError(f"site {site.client_id} has no training rows to personalize on")
    params = hyperparameters(config) | {"epochs": 1, "max_steps": steps, "proximal_mu": 0.0}
    seed = derive_seed("personalize", int(config["seed"]), site.client_id)
    return local_update(bench, state, site.train, seed=seed, **params).state


class SiteHandler:
    """One in-process node: answers the roll call, train and evaluate messages for `site` on
    the shared workbench, as the Flower ClientApp does for a SuperNode."""

    def __init__(
        self,
        bench: Workbench,
        site: ClientSite,
        train: Callable[..., RecordDict] = handle_train,
        on_step: Callable[[], None] | None = None,
    ) -> None:
        self.bench, self.site, self.train, self.on_step = bench, site, train, on_step

    def __call__(self, message_type: str, content: RecordDict, context: Context) -> RecordDict:
        self.site = relabelled(self.site, content)
        if message_type == MessageType.QUERY:
            return identity(self.site)
        if message_type.startswith(MessageType.EVALUATE):
            return handle_evaluate(self.bench, self.site, content, context)
        if message_type.startswith(MessageType.TRAIN):
            return self.train(self.bench, self.site, content, on_step=self.on_step, context=context)
        raise ValueError(f"site {self.site.client_id}: no handler for {message_type!r} messages")
