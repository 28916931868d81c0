"""Setup of a run, in one place: `build(cfg) -> Experiment`.

An `Experiment` holds what every consumer of a run config needs: the dataset, the
backbone (loaded once, frozen), the clients and their encoded training data, the
encoded dev/test data per evaluated language, the workbench (backbone wrapped by the
configured method) and the topology (which federations exist, which model serves
which language). The engine, `compare`, the audit, the Flower App, the benchmarks and
the tests all call `build`; nothing else derives the method, the number of virtual
tokens or the text budget. The checks that need the data or the model (languages the
data has, room for the prompt in the model's positions) live here too.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from fedlingua.config import ConfigError, RunConfig
from fedlingua.data import (
    ClientData,
    EncodedSplit,
    Example,
    MultilingualDataset,
    encode,
    load_dataset,
    make_clients,
    text_budget,
)
from fedlingua.data.sampling import rng_for, stratified_sample
from fedlingua.evaluation import scores
from fedlingua.methods import make_method
from fedlingua.models import Backbone, load_backbone
from fedlingua.topology import Topology, build_topology
from fedlingua.training import State, Workbench, build_workbench, label_prior, predict


@dataclass
class Experiment:
    """Data, model and topology of one run config."""

    cfg: RunConfig
    dataset: MultilingualDataset
    backbone: Backbone
    clients: list[ClientData]
    eval_languages: list[str]
    max_length: int
    bench: Workbench
    topology: Topology
    train: dict[str, EncodedSplit] = field(default_factory=dict)  # client id -> encoded
    test: dict[str, EncodedSplit] = field(default_factory=dict)  # lang -> encoded
    dev: dict[str, EncodedSplit] = field(default_factory=dict)  # lang -> encoded

    @property
    def num_labels(self) -> int:
        return len(self.dataset.labels)

    def model_for(self, language: str) -> str:
        """Name of the model (federation) that serves `language`."""
        return self.topology.model_for(language)

    def evaluate(
        self, states: dict[str, State], split: str = "test", *, language_prior: bool = False
    ) -> dict[str, dict]:
        """Scores per evaluated language, each by the model that serves it.

        `language_prior`: predict argmax(logits + log p_lang), p_lang being the label
        distribution of the language's own training data (languages without training
        data keep the plain argmax).
        """
        data = self.test if split == "test" else self.dev
        out = {}
        for lang in self.eval_languages:
            model = self.model_for(lang)
            if model not in states or len(data[lang]) == 0:
                continue
            shift = self.log_prior(lang) if language_prior else None
            preds = predict(
                self.bench, states[model], data[lang], self.cfg.train.eval_batch_size, shift
            )
            out[lang] = scores(preds, data[lang].labels, self.dataset.labels)
        return out

    def log_prior(self, language: str) -> torch.Tensor | None:
        """log of the label distribution of `language`'s training data (None without any)."""
        labels = [
            y for c in self.clients if c.lang == language for y in self.train[c.client_id].labels
        ]
        return torch.log(label_prior(labels, self.num_labels)) if labels else None

    def matrix(
        self, states: dict[str, State], split: str = "test", languages: list[str] | None = None
    ) -> dict[str, dict[str, float]]:
        """Accuracy of every model on every evaluated language (rows: models), on `split`;
        `languages`: only these of the evaluated languages. A transfer matrix: a model
        scored on languages it does not serve (monolingual models on each other's, or on
        zero-shot languages)."""
        data = self.test if split == "test" else self.dev
        langs = self.eval_languages if languages is None else languages
        unknown = sorted(set(langs) - set(self.eval_languages))
        if unknown:
            raise ValueError(f"languages {unknown} are not evaluated by this experiment")
        out: dict[str, dict[str, float]] = {}
        for model, state in states.items():
            out[model] = {}
            for lang in langs:
                preds = predict(self.bench, state, data[lang], self.cfg.train.eval_batch_size)
                out[model][lang] = scores(preds, data[lang].labels)["accuracy"]
        return out


def build(
    cfg: RunConfig,
    *,
    backbone: Backbone | None = None,
    dataset: MultilingualDataset | None = None,
    reuse: Experiment | None = None,
) -> Experiment:
    """Load (or reuse) the backbone and data, make the clients, encode, wrap the model.

    `reuse`: an experiment on the same data (e.g. another row of a comparison): its
    backbone and dataset are taken, and its encodings too when the text budget matches.
    The workbench is always new (a method changes the model it wraps).
    """
    if reuse is not None:
        backbone, dataset = reuse.backbone, reuse.dataset
    backbone = backbone or load_backbone(cfg.model.name)
    max_length = text_length(cfg, backbone)
    dataset = dataset or load_data(cfg)
    check_languages(cfg, dataset.languages())
    client_langs, eval_langs = _languages(cfg, dataset.languages())
    if reuse is not None and reuse.max_length == max_length and _same_data(cfg, reuse.cfg):
        clients, train, test, dev = reuse.clients, reuse.train, reuse.test, reuse.dev
    else:
        clients = _clients(cfg, dataset, client_langs)
        train, test, dev = _encode(cfg, backbone, dataset, clients, eval_langs, max_length)
    bench = build_workbench(backbone, len(dataset.labels), cfg)
    return Experiment(
        cfg=cfg,
        dataset=dataset,
        backbone=backbone,
        clients=clients,
        eval_languages=eval_langs,
        max_length=max_length,
        bench=bench,
        topology=build_topology(cfg, clients, train),
        train=train,
        test=test,
        dev=dev,
    )


def evaluation_rows(
    dataset: MultilingualDataset, language: str, split: str, cfg: RunConfig
) -> list[Example]:
    """The dev/test rows a run scores `language` on: all of them, or a seeded stratified
    sample of `data.max_eval_per_language` (`data.max_dev_per_language` for dev, when set;
    never just the head of a file)."""
    rows = dataset.split(language, split)
    limit = cfg.data.max_eval_per_language
    if split == "dev" and cfg.data.max_dev_per_language is not None:
        limit = cfg.data.max_dev_per_language
    if limit is None or len(rows) <= limit:
        return rows
    rng = rng_for("eval-cap", cfg.seed, language, split)
    keep = stratified_sample([ex.label for ex in rows], limit, rng)
    return [rows[i] for i in keep]


def text_length(cfg: RunConfig, backbone: Backbone) -> int:
    """Text tokens per example: `data.max_length`, within what the method's virtual
    tokens leave of the model's positions (checked: there must be room for text)."""
    check_prompt_room(cfg, backbone.max_positions)
    virtual = make_method(cfg.method).virtual_tokens
    return text_budget(backbone.max_positions, virtual, cfg.data.max_length)


# ---- data-dependent checks ---------------------------------------------------------------------
def check_prompt_room(cfg: RunConfig, max_positions: int) -> None:
    """Fail when the virtual prompt leaves no room for text in the model's positions."""
    virtual = make_method(cfg.method).virtual_tokens
    room = max_positions - virtual
    if virtual and room < 8:
        raise ConfigError(
            f"method.num_virtual_tokens={virtual} leaves {room} of the model's "
            f"{max_positions} positions for text: use fewer virtual tokens"
        )


def check_languages(cfg: RunConfig, available: list[str]) -> None:
    """Fail when a language list names languages the dataset does not have."""
    d = cfg.data
    groups = {
        "data.languages": d.languages or [],
        "data.eval_languages": d.eval_languages or [],
        "data.zero_shot_languages": d.zero_shot_languages,
        "data.low_resource": d.low_resource,
    }
    for key, langs in groups.items():
        unknown = sorted(set(langs) - set(available))
        if unknown:
            raise ConfigError(
                f"{key} names unknown languages {unknown}; the data has {sorted(available)}"
            )
    overlap = set(d.zero_shot_languages) & set(d.languages or available)
    if d.zero_shot_languages and overlap:
        raise ConfigError(
            f"data.zero_shot_languages {sorted(overlap)} also have clients: set data.languages "
            "to the client languages only"
        )


# ---- steps of `build` --------------------------------------------------------------------------
def load_data(cfg: RunConfig) -> MultilingualDataset:
    """The dataset `cfg.data` names, read as configured."""
    d = cfg.data
    return load_dataset(
        d.source,
        root=d.root,
        columns=d.columns,
        on_bad_rows=d.on_bad_rows,
        seed=cfg.seed,
        quoting=d.quoting,
        splits=d.splits,
    )


def _languages(cfg: RunConfig, available: list[str]) -> tuple[list[str], list[str]]:
    """(languages with clients, languages evaluated)."""
    d = cfg.data
    client_langs = d.languages or [x for x in available if x not in d.zero_shot_languages]
    eval_langs = d.eval_languages or client_langs + [
        x for x in d.zero_shot_languages if x not in client_langs
    ]
    return client_langs, eval_langs


def _clients(cfg: RunConfig, dataset: MultilingualDataset, languages: list[str]) -> list:
    d = cfg.data
    return make_clients(
        dataset,
        languages=languages,
        clients_per_language=d.clients_per_language,
        partition=d.partition,
        alpha=d.alpha,
        few_shot=d.few_shot,
        max_train=d.max_train_per_client,
        seed=cfg.seed,
    )


def _encode(cfg, backbone, dataset, clients, eval_langs, max_length) -> tuple[dict, dict, dict]:
    """Token ids of every client's training data and of every evaluated language's dev/test."""
    tok, prefix = backbone.tokenizer, backbone.text_prefix

    def enc(rows: list[Example]) -> EncodedSplit:
        return encode(tok, rows, max_length=max_length, text_prefix=prefix)

    train = {c.client_id: enc(c.train) for c in clients}
    test, dev = {}, {}
    for lang in eval_langs:
        test[lang] = enc(evaluation_rows(dataset, lang, "test", cfg))
        dev[lang] = enc(evaluation_rows(dataset, lang, "dev", cfg))
    return train, test, dev


def _same_data(a: RunConfig, b: RunConfig) -> bool:
    """Do two configs make the same clients and evaluation data (given the same dataset)?"""
    return a.data == b.data and a.seed == b.seed and a.model.name == b.model.name
