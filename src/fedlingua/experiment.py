"""Setup of a run, in one place: what each process of a run needs.

* `build(cfg) -> Experiment`: one process holding a whole dataset (the in-process
  simulation, and the tools that re-score a finished run): the dataset, the backbone
  (loaded once, frozen), the clients and their encoded training data, the encoded dev/test
  data per evaluated language, the workbench (backbone wrapped by the configured method),
  the topology and the simulated sites (`Experiment.sites`).
* `build_site(cfg, data, backbone) -> ClientSite`: one site of a deployment, from its own
  data only (a folder, or a preset restricted to the site's languages).
* `coordinate(cfg, grid, ...) -> Coordinator`: the coordinator, which holds no data: the
  backbone, the workbench and, from the roll call, the membership, the label list, the
  topology and federated evaluation (dev/test scored on the sites).

Nothing else derives the method, the number of virtual tokens or the text budget. The
checks that need the data or the model (languages the data has, room for the prompt in
the model's positions) live here too.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from flwr.app import ConfigRecord
from flwr.serverapp import Grid

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
from fedlingua.evaluation import scores, scores_from_confusion
from fedlingua.federation.client import ClientSite, train_config
from fedlingua.federation.payload import CLIENT_KEY
from fedlingua.federation.rollcall import Roster, SiteInfo, ask, roll_call
from fedlingua.federation.scoring import EvaluationOutcome, FederatedEvaluation, Pair
from fedlingua.federation.site import encode_labels, identity
from fedlingua.methods import make_method
from fedlingua.models import Backbone, load_backbone
from fedlingua.topology import Topology, build_topology, concat, simulated_sites
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

    def train_sizes(self) -> dict[str, int]:
        """Training examples per language, summed over its clients."""
        sizes: dict[str, int] = {}
        for c in self.clients:
            sizes[c.lang] = sizes.get(c.lang, 0) + len(self.train[c.client_id])
        return sizes

    def sites(self) -> list[ClientSite]:
        """The sites the configured paradigm makes of this dataset (the in-process
        simulation's nodes), each with its own training rows and dev/test share."""
        evaluation = {
            lang: {"dev": self.dev[lang], "test": self.test[lang]} for lang in self.eval_languages
        }
        return simulated_sites(self.cfg, self.clients, self.train, evaluation, self.dataset.labels)

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
        topology=build_topology(cfg, roster_of(simulated_sites(cfg, clients, train, {}, ()))),
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
def load_data(
    cfg: RunConfig, source: str | None = None, languages: list[str] | None = None
) -> MultilingualDataset:
    """The dataset `cfg.data` names (or `source`, restricted to `languages`: a site's own
    data), read as configured."""
    d = cfg.data
    return load_dataset(
        source or d.source,
        languages=languages,
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
    enc = _encoder(backbone, max_length)
    train = {c.client_id: enc(c.train) for c in clients}
    test, dev = {}, {}
    for lang in eval_langs:
        test[lang] = enc(evaluation_rows(dataset, lang, "test", cfg))
        dev[lang] = enc(evaluation_rows(dataset, lang, "dev", cfg))
    return train, test, dev


def _encoder(backbone: Backbone, max_length: int) -> Callable[[list[Example]], EncodedSplit]:
    """Rows -> token ids, as the backbone's tokenizer and the text budget make them."""
    tok, prefix = backbone.tokenizer, backbone.text_prefix

    def enc(rows: list[Example]) -> EncodedSplit:
        return encode(tok, rows, max_length=max_length, text_prefix=prefix)

    return enc


def _same_data(a: RunConfig, b: RunConfig) -> bool:
    """Do two configs make the same clients and evaluation data (given the same dataset)?"""
    return a.data == b.data and a.seed == b.seed and a.model.name == b.model.name


# ---- one site of a deployment -------------------------------------------------------------------
def build_site(
    cfg: RunConfig,
    backbone: Backbone,
    source: str,
    *,
    languages: list[str] | None = None,
    client_id: str | None = None,
) -> ClientSite:
    """A site from its own data only: `source` (a folder in the folder-source layout, or a
    preset restricted to `languages`), sampled and encoded as the simulation does for one
    client per language, with its own dev/test rows. Its label indices point into its own
    label list until the roll call fixes the run's (`ClientSite.relabel`)."""
    d = cfg.data
    dataset = load_data(cfg, source, languages)
    have = dataset.languages()
    train_langs = [
        x
        for x in have
        if dataset.split(x, "train")
        and x not in d.zero_shot_languages
        and (d.languages is None or x in d.languages)
    ]
    eval_langs = [x for x in have if d.eval_languages is None or x in d.eval_languages]
    if not train_langs and not eval_langs:
        raise ConfigError(f"the site's data ({source}) holds none of the run's languages")
    clients = _clients(cfg, dataset, train_langs) if train_langs else []
    enc = _encoder(backbone, text_length(cfg, backbone))
    evaluation = {
        x: {s: enc(evaluation_rows(dataset, x, s, cfg)) for s in ("dev", "test")}
        for x in eval_langs
    }
    name = "+".join(train_langs or eval_langs)
    train = concat([enc(c.train) for c in clients])
    return ClientSite(client_id or name, name, train, evaluation, tuple(dataset.labels))


def roster_of(sites: list[ClientSite]) -> Roster:
    """The roster the roll call makes of `sites` (nodes 1..N in order)."""
    return Roster.of(
        [SiteInfo.from_record(i + 1, identity(s)[CLIENT_KEY]) for i, s in enumerate(sites)]
    )


# ---- the coordinator ----------------------------------------------------------------------------
@dataclass
class Coordinator:
    """What the coordinator of a run holds: no data. The model (backbone and workbench, for
    the initial tensors and their shapes), the membership and label list from the roll
    call, the topology, and the grid through which sites train and evaluate."""

    cfg: RunConfig
    backbone: Backbone
    bench: Workbench
    roster: Roster
    labels: tuple[str, ...]
    topology: Topology
    grid: Grid
    eval_languages: list[str]
    failures: dict[str, str] = field(default_factory=dict)  # the last evaluation's failed sites
    evaluation: FederatedEvaluation = field(init=False)
    _asked: dict[int, float] = field(default_factory=dict)  # unknown node -> when last asked

    def __post_init__(self) -> None:
        config = self.message_config()
        config["eval-batch-size"] = int(self.cfg.train.eval_batch_size)
        self.evaluation = FederatedEvaluation(
            self.grid, self.roster, self.labels, config, timeout=self.cfg.federation.round_timeout
        )

    @property
    def num_labels(self) -> int:
        return len(self.labels)

    def model_for(self, language: str) -> str:
        return self.topology.model_for(language)

    def train_sizes(self) -> dict[str, int]:
        """Training examples per language (as the sites reported them)."""
        return self.roster.train_sizes()

    def refresh(self, rejoin_timeout_s: float = 30.0, reask_s: float = 60.0) -> list[str]:
        """Let a site whose SuperNode restarted (a new node id) back in: ask the connected
        nodes the roster does not know who they are, and rebind a site whose old node is
        gone (`Roster.rebind`; a node claiming a live site is refused). What happened, in
        words (nothing in-process, where the nodes never change)."""
        nodes = set(self.grid.get_node_ids())
        now = time.monotonic()
        new = [
            n
            for n in sorted(nodes - set(self.roster.names))
            if now - self._asked.get(n, -math.inf) >= reask_s
        ]
        if not new:
            return []
        self._asked |= dict.fromkeys(new, now)
        infos, _, refused = ask(self.grid, new, rejoin_timeout_s)
        notes = [self.roster.rebind(info, nodes) for info in infos]
        return notes + [f"node {n} refused: {why}" for n, why in refused.items()]

    def message_config(self) -> ConfigRecord:
        """What every train and evaluate message carries: the client hyper-parameters and
        the run's label list."""
        config = train_config(self.cfg, self.cfg.train.lr or self.bench.method.default_lr)
        config["labels"] = encode_labels(self.labels)
        return config

    def _request(self, states, pairs_for, splits, **kw) -> EvaluationOutcome:
        """The sites' counts for the pairs `pairs_for(site)` names; their failures kept."""
        outcome = self.evaluation.request(states, pairs_for, splits, **kw)
        self.failures = outcome.failed
        return outcome

    @staticmethod
    def _held(pairs: list[Pair]) -> Callable[[SiteInfo], list[Pair]]:
        """`pairs_for` asking each site for the pairs of the languages it holds."""
        return lambda site: [p for p in pairs if p[1] in site.eval_languages]

    def evaluate(
        self, states: dict[str, State], split: str = "test", *, language_prior: bool = False
    ) -> dict[str, dict]:
        """Scores per evaluated language, each by the model that serves it, from the
        sites' counts (`language_prior`: each site adds the log label distribution of its
        own training rows of that language)."""
        pairs = [(self.model_for(x), x) for x in self.eval_languages]
        pairs = [p for p in pairs if p[0] in states]
        outcome = self._request(states, self._held(pairs), [split], language_prior=language_prior)
        return self.scored(outcome, split, pairs)

    def scored(self, outcome: EvaluationOutcome, split: str, pairs: list[Pair]) -> dict:
        out = {}
        for model, lang in pairs:
            counts = outcome.counts.get((split, model, lang))
            if counts is not None and counts.sum() > 0:
                out[lang] = scores_from_confusion(counts, self.labels)
        return out

    def matrix(
        self, states: dict[str, State], split: str = "test", languages: list[str] | None = None
    ) -> dict[str, dict[str, float]]:
        """Accuracy of every model on every evaluated language (a transfer matrix)."""
        langs = self.eval_languages if languages is None else languages
        unknown = sorted(set(langs) - set(self.eval_languages))
        if unknown:
            raise ValueError(f"languages {unknown} are not evaluated by this run")
        pairs = [(m, x) for m in states for x in langs]
        outcome = self._request(states, self._held(pairs), [split])
        return {
            m: {
                x: s["accuracy"]
                for x, s in self.scored(outcome, split, [(m, x) for x in langs]).items()
            }
            for m in states
        }

    def personalized(self, states: dict[str, State], steps: int) -> EvaluationOutcome:
        """Every training site fine-tunes the model serving its language for `steps` local
        steps and scores it on its own dev and test rows of that language."""
        wanted = {x for x in self.eval_languages if self.model_for(x) in states}

        def pairs_for(site: SiteInfo) -> list[Pair]:
            mine = [x for x in site.train_sizes if x in wanted and x in site.eval_languages]
            return [(self.model_for(x), x) for x in mine] if site.trains else []

        return self._request(states, pairs_for, ["test", "dev"], personalize=steps)


def coordinate(
    cfg: RunConfig,
    grid: Grid,
    *,
    backbone: Backbone | None = None,
    bench: Workbench | None = None,
    expected: int | None = None,
    wait_s: float = 300.0,
) -> Coordinator:
    """The coordinator of `cfg` over the sites of `grid`: roll call, label list, model."""
    roster = roll_call(grid, expected, wait_s)
    labels = roster.labels(cfg.data.labels)
    backbone = backbone or load_backbone(cfg.model.name)
    check_prompt_room(cfg, backbone.max_positions)
    if bench is None:
        bench = build_workbench(backbone, len(labels), cfg)
    elif bench.num_labels != len(labels):
        raise ConfigError(f"the workbench has {bench.num_labels} labels, the sites {list(labels)}")
    return Coordinator(
        cfg=cfg,
        backbone=backbone,
        bench=bench,
        roster=roster,
        labels=labels,
        topology=build_topology(cfg, roster),
        grid=grid,
        eval_languages=_evaluated(cfg, roster),
    )


def language_order(cfg: RunConfig, languages: list[str]) -> list[str]:
    """`languages` in the order the config names them (eval, client, zero-shot languages),
    the others after them in alphabetical order: reports list languages as configured."""
    d = cfg.data
    named = list(
        dict.fromkeys((d.eval_languages or []) + (d.languages or []) + d.zero_shot_languages)
    )
    rank = {x: i for i, x in enumerate(named)}
    return sorted(languages, key=lambda x: (rank.get(x, len(rank)), x))


def _evaluated(cfg: RunConfig, roster: Roster) -> list[str]:
    """The evaluated languages: `data.eval_languages` (each held by some site), else every
    language a site evaluates (training languages first, as the config orders them)."""
    have = roster.eval_languages()
    declared = cfg.data.eval_languages
    if not declared:
        trained = set(roster.train_sizes())
        return language_order(cfg, [x for x in have if x in trained]) + language_order(
            cfg, [x for x in have if x not in trained]
        )
    missing = sorted(set(declared) - set(have))
    if missing:
        raise ConfigError(f"data.eval_languages {missing}: no site holds their dev/test rows")
    return list(declared)
